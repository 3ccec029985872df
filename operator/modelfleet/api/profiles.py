"""Capacity profiles in the ModelDeployment API: ``spec.capacityProfiles`` and ``spec.workload``.

What one replica sustains within the deployment's SLO on a GPU type and count, as prefill
and decode tokens/s (see ``modelfleet.core.profiles`` for the arithmetic and
docs/api.md for the design). ``modelfleet profile`` writes entries with ``source:
Measured``; people write ``source: Declared`` ones. A field of the ModelDeployment rather
than a resource of its own: the profile is only meaningful under that deployment's SLO,
and kubectl/GitOps keep it beside the objective it was measured against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from modelfleet.api.common import DEFAULT_IN_CODE, ApiModel, GpuName, Timestamp


class ProfilePoint(ApiModel):
    """One step of the rate sweep: the latency a replica gave at one offered rate."""

    requests_per_second: float = Field(gt=0, description="Rate achieved at this step.")
    ttft_p95_ms: float | None = Field(default=None, ge=0, description="TTFT p95 at that rate.")
    tpot_p95_ms: float | None = Field(default=None, ge=0, description="TPOT p95 at that rate.")


CURVE_LATENCIES = (("ttft_p95_ms", "ttftP95Ms"), ("tpot_p95_ms", "tpotP95Ms"))
"""The latency fields of a curve point: (attribute, API name)."""


def curve_problems(curve: Sequence[ProfilePoint]) -> list[str]:
    """What makes ``curve`` unreadable as a latency-vs-load curve, one message per problem
    naming the point (``curve.2.requestsPerSecond``) but never a value; [] when valid.

    The rules (docs/api.md, "The latency-vs-load curve"): the rates rise strictly from one
    point to the next (lowest rate first, each rate once: a list out of order or with a
    repeated rate is a mistake, and the curve would otherwise be re-sorted or averaged
    without a word), each point carries a TTFT or TPOT p95, and neither latency falls as
    the rate rises (a lower p95 at a higher rate cannot be inverted into a load; the
    operator used to read such a curve as its running maximum, silently). The CRD schema
    cannot state any of this without CEL (the operator supports API servers from 1.19),
    so ``modelfleet validate``/``plan`` and the operator (``InvalidSpec``) check it.
    """
    problems: list[str] = []
    for j, point in enumerate(curve):
        if point.ttft_p95_ms is None and point.tpot_p95_ms is None:
            problems.append(f"curve.{j} has neither ttftP95Ms nor tpotP95Ms")
        if j and point.requests_per_second <= curve[j - 1].requests_per_second:
            problems.append(
                f"curve.{j}.requestsPerSecond is not above curve.{j - 1}'s: list the "
                "points lowest rate first, each rate once"
            )
    for attr, name in CURVE_LATENCIES:
        top: tuple[int, float] | None = None
        for j, point in enumerate(curve):
            value = getattr(point, attr)
            if value is None:
                continue
            if top is not None and value < top[1]:
                problems.append(
                    f"curve.{j}.{name} is below curve.{top[0]}.{name}: a p95 latency cannot "
                    "fall as the rate rises (measure again or leave the value out)"
                )
            elif top is None or value > top[1]:
                top = (j, value)
    return problems


class ProfileMeasurement(ApiModel):
    """How a measured profile was obtained (written by ``modelfleet profile``)."""

    requests_per_second: float = Field(
        ge=0, description="Highest rate found within the TTFT and TPOT p95 objectives."
    )
    ttft_p95_ms: float | None = Field(default=None, ge=0, description="TTFT p95 at that rate.")
    tpot_p95_ms: float | None = Field(default=None, ge=0, description="TPOT p95 at that rate.")
    at: Timestamp | None = Field(default=None, description="When it was measured.")
    endpoint: str | None = Field(
        default=None, max_length=2048, description="Endpoint measured (no credentials)."
    )
    curve: list[ProfilePoint] | None = Field(
        default=None,
        max_length=64,
        description=(
            "The sweep: latency per rate, rates rising strictly from point to point, "
            "every point with a TTFT or TPOT p95, no latency falling as the rate rises "
            "(checked by modelfleet validate and the operator; the online correction "
            "reads the capacity from observed latency against it)."
        ),
    )

    @field_validator("curve")
    @classmethod
    def _curve_readable(
        cls, curve: list[ProfilePoint] | None, info: ValidationInfo
    ) -> list[ProfilePoint] | None:
        problems = curve_problems(curve or [])
        if curve and info.data.get("requests_per_second") == 0:
            # The curve's rates are read as loads relative to requestsPerSecond (the
            # capacity point, core.latency_curve.curve_from): beside 0 it would be
            # accepted and never used, the correction silently off.
            problems.append(
                "curve is set but requestsPerSecond is 0: the curve is read relative to "
                "requestsPerSecond (the highest rate within the SLO), so set that rate or "
                "leave the curve out"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return curve


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
        description="Measured (modelfleet profile) is trusted over Declared for the same GPU "
        "(unset: Declared).",
        # Not a schema default: written by the server into this list's items, it made the
        # stored list differ from git's, an Argo CD OutOfSync that never clears (crdgen).
        json_schema_extra={DEFAULT_IN_CODE: True},
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
