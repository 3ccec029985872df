"""Capacity profiles in the ModelDeployment API: ``spec.capacityProfiles`` and ``spec.workload``.

What one replica sustains within the deployment's SLO on a GPU type and count, as prefill
and decode tokens/s (see ``modelfleet.core.profiles`` for the arithmetic and
docs/api.md for the design). ``modelfleet profile`` writes entries with ``source:
Measured``; people write ``source: Declared`` ones. A field of the ModelDeployment rather
than a resource of its own: the profile is only meaningful under that deployment's SLO,
and kubectl/GitOps keep it beside the objective it was measured against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from modelfleet.api.common import ApiModel, GpuName


class ProfilePoint(ApiModel):
    """One step of the rate sweep: the latency a replica gave at one offered rate."""

    requests_per_second: float = Field(ge=0, description="Rate achieved at this step.")
    ttft_p95_ms: float | None = Field(default=None, ge=0, description="TTFT p95 at that rate.")
    tpot_p95_ms: float | None = Field(default=None, ge=0, description="TPOT p95 at that rate.")


class ProfileMeasurement(ApiModel):
    """How a measured profile was obtained (written by ``modelfleet profile``)."""

    requests_per_second: float = Field(
        ge=0, description="Highest rate found within the TTFT and TPOT p95 objectives."
    )
    ttft_p95_ms: float | None = Field(default=None, ge=0, description="TTFT p95 at that rate.")
    tpot_p95_ms: float | None = Field(default=None, ge=0, description="TPOT p95 at that rate.")
    at: datetime | None = Field(default=None, description="When it was measured.")
    endpoint: str | None = Field(
        default=None, max_length=2048, description="Endpoint measured (no credentials)."
    )
    curve: list[ProfilePoint] | None = Field(
        default=None,
        max_length=64,
        description=(
            "The sweep: latency per rate, lowest rate first (the online correction reads "
            "the capacity from observed latency against it)."
        ),
    )


class CapacityProfileSpec(ApiModel):
    """One replica on ``gpuCount`` GPUs of type ``gpu``, at its highest load within the SLO."""

    gpu: GpuName = Field(description="GPU model, as in FleetCluster gpuOfferings.")
    gpu_count: int | None = Field(
        default=None, ge=1, le=16, description="GPUs per replica; unset: any count."
    )
    prefill_tokens_per_second: float = Field(
        ge=0, description="Prompt tokens/s the replica processes within the SLO (0: cannot)."
    )
    decode_tokens_per_second: float = Field(
        ge=0, description="Generated tokens/s the replica produces within the SLO (0: cannot)."
    )
    source: Literal["Measured", "Declared"] = Field(
        default="Declared",
        description="Measured (modelfleet profile) is trusted over Declared for the same GPU.",
    )
    prompt_tokens: float | None = Field(
        default=None, ge=0, description="Mean prompt tokens of the mix it was measured at."
    )
    output_tokens: float | None = Field(
        default=None, ge=0, description="Mean output tokens of the mix it was measured at."
    )
    measurement: ProfileMeasurement | None = Field(
        default=None, description="Details of the measurement (Measured profiles)."
    )


class WorkloadMix(ApiModel):
    """Mean request lengths the deployment is sized for (capacity = f(prompt, output))."""

    prompt_tokens: float | None = Field(default=None, ge=0, description="Mean prompt tokens.")
    output_tokens: float | None = Field(default=None, ge=0, description="Mean output tokens.")
