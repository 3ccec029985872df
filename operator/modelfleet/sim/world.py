"""The simulator's world model: every physical parameter, its default and where it comes from.

The simulator is only as credible as these numbers, so they live in one place, each with
its source (docs/simulation.md lists them with links), and every one can be overridden per
scenario under ``[world]`` (camelCase keys, as below). Nothing here is tuned to make any
policy look good: the defaults are the cited figures, or physics derived from spec sheets
where no measurement was found, and say so.

Units: seconds, milliseconds where the name says ``Ms``, USD, tokens, bytes.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from modelfleet.core.gpus import DATASHEETS


class SimModel(BaseModel):
    """Base of the simulator's settings: camelCase keys, unknown keys rejected, numbers
    finite (TOML's ``inf`` and ``nan`` are refused), frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
    )


class Distribution(SimModel):
    """A positive duration drawn from a log-normal with the given median and 90th
    percentile (seconds); ``p90 == median`` gives a constant."""

    median: float = Field(gt=0, description="Median, seconds.")
    p90: float = Field(gt=0, description="90th percentile, seconds (>= median).")

    @property
    def sigma(self) -> float:
        """Log-space standard deviation (z of the 90th percentile is 1.2816)."""
        return max(0.0, math.log(max(self.p90, self.median) / self.median) / 1.2816)


class GpuProfile(SimModel):
    """Spec-sheet figures of one GPU model (per GPU)."""

    memory_bandwidth_tbs: float = Field(gt=0, description="HBM/GDDR bandwidth, TB/s.")
    dense_bf16_tflops: float = Field(gt=0, description="Dense BF16 tensor TFLOPS (no sparsity).")
    memory_gib: float = Field(gt=0, description="GPU memory, GiB.")


def _gpus() -> dict[str, GpuProfile]:
    # The data-sheet table is the core's (core.gpus.DATASHEETS, NVIDIA data sheets, dense
    # BF16): the operator's estimate for an unprofiled GPU type reads the same figures.
    return {
        name: GpuProfile(
            memory_bandwidth_tbs=sheet.memory_bandwidth_tbs,
            dense_bf16_tflops=sheet.dense_bf16_tflops,
            memory_gib=sheet.memory_gib,
        )
        for name, sheet in DATASHEETS.items()
    }


class ServingEngine(SimModel):
    """The inference engine (vLLM-like continuous batching), per replica."""

    decode_bandwidth_efficiency: float = Field(
        default=0.77,
        gt=0,
        le=1,
        description="Fraction of memory bandwidth a decode step achieves. 0.77: Llama-3.1-8B "
        "BF16 at one request on an A100 decodes at ~75 tok/s, 77% of its bandwidth ceiling "
        "(J. Musgrave, vLLM throughput-latency sweep on A100).",
    )
    prefill_mfu: float = Field(
        default=0.45,
        gt=0,
        le=1,
        description="Model FLOPs utilisation of prefill (compute-bound): 2 x params FLOPs per "
        "prompt token at this fraction of dense BF16 peak. An assumption (typical 40-55%).",
    )
    step_overhead_ms: float = Field(
        default=1.0,
        ge=0,
        description="Fixed per-step cost (scheduling, kernel launches, sampling). 1 ms makes "
        "the model match NIM's published single-stream ITL for Llama-3.1-8B on H100 (FP8).",
    )
    prefill_chunk_tokens: int = Field(
        default=2048,
        ge=1,
        description="Chunked-prefill token budget per step (vLLM max_num_batched_tokens, 2048 "
        "by default with chunked prefill): a prompt of P tokens needs ceil(P / budget) steps.",
    )
    max_num_seqs: int = Field(
        default=256, ge=1, description="Concurrency limit (vLLM --max-num-seqs default 256)."
    )
    kv_cache_memory_fraction: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="GPU memory the engine may use (vLLM --gpu-memory-utilization 0.9); what "
        "the weights leave of it holds the KV cache, which caps concurrency too.",
    )
    request_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Requests waiting longer than this fail (client timeout)."
    )


class ModelProfile(SimModel):
    """The served model's size (defaults: Llama-3.1-8B in BF16)."""

    params_billion: float = Field(default=8.03, gt=0, description="Parameters, billions.")
    bytes_per_param: float = Field(default=2.0, gt=0, description="2 for BF16, 1 for FP8.")
    kv_bytes_per_token: float = Field(
        default=131072,
        ge=1,
        description="KV cache per token: 2 x 32 layers x 8 KV heads x 128 dims x 2 bytes "
        "for Llama-3.1-8B (grouped-query attention).",
    )


class Provisioning(SimModel):
    """Time from a node request until the GPU node is Ready, per cloud."""

    by_cloud: dict[str, Distribution] = Field(
        default_factory=lambda: {
            "aws": Distribution(median=270, p90=420),
            "gcp": Distribution(median=240, p90=390),
            "azure": Distribution(median=330, p90=540),
        },
        description="Per cloud label. Instance boot is 1-2 minutes; a GPU node is Ready only "
        "after the NVIDIA driver and device plugin are up: several minutes in practice (see "
        "docs/simulation.md for the sources). Azure GPU VMs are slower to boot.",
    )
    default: Distribution = Field(
        default_factory=lambda: Distribution(median=300, p90=480),
        description="Clouds not listed (neoclouds, on-prem).",
    )

    def for_cloud(self, cloud: str) -> Distribution:
        """The distribution of ``cloud`` (the default when not listed)."""
        return self.by_cloud.get(cloud, self.default)


class SpotMarket(SimModel):
    """How spot capacity is reclaimed."""

    notice_seconds_by_cloud: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"aws": 120.0, "gcp": 30.0, "azure": 30.0},
        description="Interruption notice before the node goes: AWS two minutes (EC2 Spot "
        "interruption notice), GCP 30 s (Spot VM preemption), Azure 30 s (Scheduled Events "
        "eviction notice). Seconds, 0 or more.",
    )
    default_notice_seconds: float = Field(default=120.0, ge=0, description="Other clouds.")
    drain_on_notice: bool = Field(
        default=True,
        description="The pods of the nodes to be reclaimed terminate at the notice and leave "
        "the routing then (Kubernetes graceful node shutdown, which GKE turns on for Spot "
        "VMs; Karpenter's interruption handling and the AWS Node Termination Handler cordon "
        "and drain on the EC2 notice; on AKS a Scheduled Events handler does the same): the "
        "capacity goes at the notice, and no request is sent to a vanished replica. False: "
        "the pods serve until the node vanishes and the router keeps sending them requests "
        "for routing.detectSeconds, which fail (a fleet without a drain on notice).",
    )

    def notice(self, cloud: str) -> float:
        """Notice seconds of ``cloud``."""
        return self.notice_seconds_by_cloud.get(cloud, self.default_notice_seconds)


# fmt: off
VLLM_TTFT_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)
# fmt: on
"""vLLM's ``time_to_first_token_seconds`` histogram buckets (seconds)."""


class Monitoring(SimModel):
    """Prometheus as the autoscaler sees it."""

    scrape_interval_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Scrape interval (kube-prometheus-stack default 30 s; "
        "15 s is common for serving).",
    )
    window_seconds: float = Field(
        default=60.0, gt=0, description="Range of rate()/histogram_quantile() (the [1m] window)."
    )
    ttft_buckets_seconds: tuple[float, ...] = Field(
        default=VLLM_TTFT_BUCKETS,
        description="vLLM's time_to_first_token_seconds histogram buckets; the p95 is "
        "interpolated inside a bucket exactly as histogram_quantile() does.",
    )


class Routing(SimModel):
    """The global router in front of the regional replicas (planned product feature)."""

    detect_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long requests keep going to replicas that vanished (health-check "
        "interval): those requests fail.",
    )


class Control(SimModel):
    """Loop timing of the operator and of the simulation itself."""

    tick_seconds: float = Field(
        default=5.0,
        ge=1,
        le=60,
        description="Pod/node bookkeeping and control step (readiness is "
        "observed at this granularity; kubelet probes every 10 s by default). 1 to 60 s: "
        "1e-6 sized the per-tick arrays of a 33-minute run at 59 GiB (a MemoryError).",
    )
    reconcile_interval_seconds: float = Field(
        default=15.0,
        ge=2,
        le=86400,
        description="`modelfleet run --interval` default; the same bounds (2 to 86400 s).",
    )
    probe_interval_seconds: float = Field(
        default=10.0,
        ge=2,
        le=86400,
        description="`modelfleet run --probe-interval` default; the same bounds (2 to 86400 s).",
    )
    warmup_minutes: float = Field(
        default=30.0,
        ge=0,
        description="Simulated before the measured window (not reported), "
        "so every policy starts with its capacity up.",
    )
    profile_error: float = Field(
        default=0.15,
        ge=0,
        lt=1,
        description="Capacity profiles a modelfleet policy reads are the truth x (1 + e), e "
        "uniform in [-profileError, profileError] per GPU type and seed (sim/profiles.py).",
    )


class Baselines(SimModel):
    """Settings of the comparison policies (docs/simulation.md defines them exactly)."""

    target_utilisation: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description="Fraction of a replica's saturation throughput a capacity planner sizes "
        "for (static-peak) and the HPA targets per replica (hpa-failover).",
    )
    hpa_sync_seconds: float = Field(default=15.0, gt=0, description="HPA sync period (default).")
    hpa_tolerance: float = Field(default=0.1, ge=0, description="HPA tolerance (default 10%).")
    hpa_scale_down_stabilization_seconds: float = Field(
        default=300.0, ge=0, description="HPA scale-down stabilization window (default)."
    )
    cluster_autoscaler_scale_down_seconds: float = Field(
        default=600.0, ge=0, description="Cluster autoscaler --scale-down-unneeded-time (10 min)."
    )
    failover_toleration_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Karmada's default toleration of a failed cluster "
        "before evicting its workloads (tolerationSeconds 300).",
    )
    failure_detection_seconds: float = Field(
        default=40.0,
        ge=0,
        description="Before the toleration starts: Karmada marks a cluster "
        "not ready after its status is stale (10 s collection + 30 s threshold).",
    )


class World(SimModel):
    """Everything physical about the simulated fleet; override any part per scenario."""

    gpus: dict[str, GpuProfile] = Field(
        default_factory=_gpus, description="GPU spec sheets by GPU name (as in gpuOfferings)."
    )
    engine: ServingEngine = Field(default_factory=ServingEngine)
    model: ModelProfile = Field(default_factory=ModelProfile)
    provisioning: Provisioning = Field(default_factory=Provisioning)
    model_start: Distribution = Field(
        default_factory=lambda: Distribution(median=150, p90=240),
        description="Pod scheduled -> Ready for an 8B model: image pull (10-20 GB) plus "
        "weights load (16 GB) and engine warm-up. AWS puts an optimised start (SOCI pull, "
        "weights streamed from S3) at under two minutes; unoptimised starts take longer.",
    )
    spot: SpotMarket = Field(default_factory=SpotMarket)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    routing: Routing = Field(default_factory=Routing)
    control: Control = Field(default_factory=Control)
    baselines: Baselines = Field(default_factory=Baselines)

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        """``[world.gpus]`` and ``[world.provisioning.byCloud]`` add to the defaults rather
        than replace them (override one GPU without restating the others)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("gpus"), dict):
            data["gpus"] = {**_gpus(), **data["gpus"]}
        prov = data.get("provisioning")
        if isinstance(prov, dict) and isinstance(prov.get("byCloud"), dict):
            defaults = {k: v.model_dump() for k, v in Provisioning().by_cloud.items()}
            data["provisioning"] = {**prov, "byCloud": {**defaults, **prov["byCloud"]}}
        return data

    def gpu(self, name: str) -> GpuProfile:
        """The profile of GPU ``name``; raises KeyError naming the known ones."""
        try:
            return self.gpus[name]
        except KeyError:
            raise KeyError(
                f"no GPU profile for {name!r} (known: {', '.join(sorted(self.gpus))}); "
                "add one under [world.gpus]"
            ) from None
