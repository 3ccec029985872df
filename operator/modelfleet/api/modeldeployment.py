"""The ``ModelDeployment`` resource: one model served within an SLO and a budget.

Namespaced, group ``modelfleet.io``, version ``v1alpha1``, short name ``md``. The field names
follow the API sketch in the product brief; they are a contract for users, tests and tools.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from modelfleet.api.common import (
    ApiModel,
    CapacityType,
    CloudName,
    Condition,
    GpuName,
    LabelSelector,
    ObjectMeta,
    RegionName,
    Timestamp,
)
from modelfleet.api.profiles import CapacityProfileSpec, WorkloadMix

Engine = Literal["builtin", "vllm", "sglang", "tgi", "custom"]
SpotPolicy = Literal["Never", "Allowed", "Preferred"]


_DNS_SUBDOMAIN: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
"""A Kubernetes object name (RFC 1123 subdomain) without its 253-character limit."""
_PVC_SEGMENT: Final = r"([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+)"
"""One path segment other than ``.`` and ``..`` (RE2 has no look-ahead to say it shorter)."""
PVC_URI: Final = rf"^pvc://{_DNS_SUBDOMAIN}(/{_PVC_SEGMENT})*/?$"
"""``pvc://<claimName>[/<path inside the volume>]``: the claim a DNS-1123 subdomain, the path
relative (no empty, ``.`` or ``..`` segment); one trailing slash allowed."""
PVC_CLAIM_MAX: Final = 253
"""Longest PersistentVolumeClaim name (a DNS-1123 subdomain)."""
_PVC_URI_RE: Final = re.compile(PVC_URI)


def parse_pvc_uri(uri: str) -> tuple[str, str] | None:
    """``(claimName, path)`` of a ``pvc://`` URI, the path without leading or trailing
    slashes (empty: the volume root); None for any other URI. Raises ValueError, saying
    what is wrong, for a ``pvc://`` URI that is not ``pvc://<claimName>[/<path>]``."""
    if not uri.startswith("pvc://"):
        return None
    claim, _, path = uri[len("pvc://") :].partition("/")
    if not _PVC_URI_RE.fullmatch(uri):
        raise ValueError(
            "a pvc:// URI is pvc://<claimName>/<path inside the volume>, "
            "claimName a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit), the path optional and without "
            "empty, '.' or '..' segments"
        )
    if len(claim) > PVC_CLAIM_MAX:
        raise ValueError(
            f"the claim name of a pvc:// URI is at most {PVC_CLAIM_MAX} "
            f"characters, got {len(claim)}"
        )
    return claim, path.strip("/")


class ModelSource(ApiModel):
    """Which model to serve and where its weights live."""

    name: str = Field(
        description="Model name as clients address it (OpenAI `model` field), e.g. "
        "llama-3.1-8b-instruct.",
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$",
    )
    uri: str | None = Field(
        default=None,
        description="Where the weights are: s3://, gs://, az://, hf://, http(s)://, file://, "
        "pvc://<claimName>/<path> or an absolute path, passed to the engine as its model "
        "(hf:// and file:// stripped); unset: the model name. pvc://: modelfleet mounts the "
        "PersistentVolumeClaim claimName of the member cluster's workload namespace "
        "read-only at /models/<claimName> and passes /models/<claimName>/<path> (the path "
        "optional: the volume root). Other URIs: the engine must load it itself: the "
        "built-in server reads paths, file://, s3://, gs://, http(s):// and Hub ids. No "
        "engine loads az:// as rendered: only vLLM, given --load-format runai_streamer in "
        "runtime.args and a Run:ai streamer with Azure support.",
        max_length=2048,
        pattern=rf"^(s3|gs|az|hf|https?|file)://.+|{PVC_URI}|^/.+",
    )

    @field_validator("uri", mode="before")
    @classmethod
    def _pvc_uri(cls, value: object) -> object:
        # Before the pattern: say what a pvc:// URI must be, not which regex it missed.
        if isinstance(value, str):
            parse_pvc_uri(value)
        return value


class EnvVar(ApiModel):
    """An environment variable for the inference container (Kubernetes EnvVar shape)."""

    name: str = Field(
        description="Variable name.", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=253
    )
    value: str | None = Field(default=None, description="Literal value.")
    value_from: dict[str, Any] | None = Field(
        default=None,
        description="Kubernetes EnvVarSource (secretKeyRef, configMapKeyRef, ...): use it for "
        "tokens so that no secret appears in the ModelDeployment.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class Runtime(ApiModel):
    """How replicas are run: the built-in PyTorch server or a standard engine image."""

    x_validations: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "self.engine != 'custom' || has(self.image)",
            "message": "runtime.image is required when runtime.engine is custom",
        }
    ]

    engine: Engine = Field(
        default="builtin",
        description="Inference engine: builtin (modelfleet's PyTorch server), vllm, sglang, "
        "tgi or custom (your own image).",
    )
    image: str | None = Field(
        default=None,
        description="Container image; defaults to the engine's standard image. Required for "
        "custom.",
        max_length=1024,
    )
    args: list[str] | None = Field(
        default=None, max_length=128, description="Extra arguments for the engine."
    )
    env: list[EnvVar] | None = Field(
        default=None, max_length=128, description="Extra environment variables."
    )
    port: int = Field(default=8000, ge=1, le=65535, description="Port the engine serves HTTP on.")

    @model_validator(mode="after")
    def _custom_needs_image(self) -> Runtime:
        if self.engine == "custom" and not self.image:
            raise ValueError("runtime.image is required when runtime.engine is custom")
        return self


class GpuRequirement(ApiModel):
    """GPUs one replica needs, all on one node."""

    count: int = Field(default=1, ge=1, le=16, description="GPUs per replica (on one node).")
    memory_gi_b: float | None = Field(
        default=None,
        alias="memoryGiB",
        gt=0,
        description="Minimum memory per GPU in GiB.",
    )
    types: list[GpuName] | None = Field(
        default=None,
        max_length=32,
        description="Acceptable GPU models (H100, A100-80GB, L40S, ...); any when empty.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


QuantityString = Annotated[
    str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$", max_length=32)
]


class Resources(ApiModel):
    """Compute resources of one replica."""

    gpu: GpuRequirement = Field(
        default_factory=GpuRequirement, description="GPU requirement of one replica."
    )
    cpu: QuantityString | None = Field(
        default=None, description="CPU request per replica (Kubernetes quantity)."
    )
    memory: QuantityString | None = Field(
        default=None, description="Memory request per replica (Kubernetes quantity)."
    )


class ReplicaRange(ApiModel):
    """Bounds for the autoscaler."""

    x_validations: ClassVar[list[dict[str, str]]] = [
        {"rule": "self.min <= self.max", "message": "replicas.min must not exceed replicas.max"}
    ]

    min: int = Field(
        default=1, ge=0, le=10000, description="Fewest replicas (0 allows scale-to-zero)."
    )
    max: int = Field(ge=1, le=10000, description="Most replicas.")

    @model_validator(mode="after")
    def _min_le_max(self) -> ReplicaRange:
        if self.min > self.max:
            raise ValueError(
                f"replicas.min must not exceed replicas.max (min={self.min}, max={self.max})"
            )
        return self


class Slo(ApiModel):
    """Service-level objectives the autoscaler holds. Unset objectives are not enforced."""

    ttft_p95_ms: float | None = Field(
        default=None, gt=0, description="95th percentile time to first token, milliseconds."
    )
    tpot_p95_ms: float | None = Field(
        default=None, gt=0, description="95th percentile time per output token, milliseconds."
    )
    max_queue_per_replica: float | None = Field(
        default=None, gt=0, description="Largest acceptable queued requests per replica."
    )


class Spread(ApiModel):
    """How replicas are spread across regions."""

    min_regions: int = Field(default=1, ge=1, le=64, description="Fewest regions holding replicas.")
    max_replicas_per_region: int | None = Field(
        default=None, ge=1, description="Most replicas in any one region."
    )


class CapacityPolicy(ApiModel):
    """Spot versus on-demand capacity."""

    spot: SpotPolicy = Field(
        default="Never",
        description="Never: on-demand only. Allowed: spot where it is cheaper. Preferred: spot "
        "wherever available, on-demand as fallback.",
    )
    on_demand_base: int = Field(
        default=0, ge=0, description="Replicas always kept on on-demand capacity."
    )


class Placement(ApiModel):
    """Where replicas may run, and how to choose among the candidates."""

    x_validations: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.regions) || !has(self.spread) || "
            "self.spread.minRegions <= size(self.regions)",
            "message": "placement.spread.minRegions must not exceed the number of "
            "placement.regions",
        },
        {
            "rule": "!has(self.regions) || !has(self.preferredRegions) || "
            "self.preferredRegions.all(r, r in self.regions)",
            "message": "placement.preferredRegions must be listed in placement.regions",
        },
    ]

    clouds: list[CloudName] | None = Field(
        default=None,
        max_length=16,
        description="Allowed clouds (aws, gcp, azure, or a static cluster's cloud label); any "
        "when empty.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    regions: list[RegionName] | None = Field(
        default=None,
        max_length=64,
        description="Allowed regions; any when empty.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    cluster_selector: LabelSelector | None = Field(
        default=None, description="Only FleetClusters whose labels match."
    )
    preferred_regions: list[RegionName] | None = Field(
        default=None,
        max_length=64,
        description="Regions preferred when the cost is about equal (within 5%).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    spread: Spread = Field(default_factory=Spread, description="Spread across regions.")
    capacity: CapacityPolicy = Field(
        default_factory=CapacityPolicy, description="Spot versus on-demand."
    )
    max_cost_per_hour: float | None = Field(
        default=None, gt=0, description="Budget: most this deployment may cost per hour (USD)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Placement:
        if self.regions is not None and self.spread.min_regions > len(self.regions):
            raise ValueError(
                "placement.spread.minRegions must not exceed the number of placement.regions "
                f"(minRegions={self.spread.min_regions}, regions={len(self.regions)})"
            )
        if self.regions is not None and self.preferred_regions is not None:
            stray = sorted(set(self.preferred_regions) - set(self.regions))
            if stray:
                raise ValueError(
                    "placement.preferredRegions must be listed in placement.regions "
                    f"(not listed: {', '.join(stray)})"
                )
        return self


class Failover(ApiModel):
    """Region and cluster failure handling."""

    warm_standby_replicas: int = Field(
        default=0,
        ge=0,
        description="Extra ready replicas kept in a region other than the one holding most "
        "replicas, so a region outage loses no capacity while replacements start.",
    )
    fail_after_seconds: int = Field(
        default=45, ge=1, description="A cluster failing probes this long is declared Failed."
    )
    failback_after_seconds: int = Field(
        default=300,
        ge=0,
        description="A recovered cluster must stay healthy this long before replicas return.",
    )
    tolerate_region_loss: bool = Field(
        default=False,
        description="Keep, for every region, enough ready replicas outside it to carry the "
        "desired replicas (the count that meets the SLO at current demand), so losing any one "
        "region needs no new node. The headroom is placed at the least extra cost; "
        "status.headroomCostPerHour says what it costs.",
    )


class Scaling(ApiModel):
    """Autoscaler behaviour."""

    up_stabilization_seconds: int = Field(
        default=0, ge=0, description="Scale up only to the lowest recommendation over this window."
    )
    down_stabilization_seconds: int = Field(
        default=300,
        ge=0,
        description="Scale down only to the highest recommendation over this window.",
    )
    scale_to_zero_after_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Scale to zero after this long without requests (needs replicas.min: 0).",
    )
    predictor: Literal["constant", "trend"] = Field(
        default="trend",
        description="Demand forecast over the provisioning lead time (docs/decisions.md).",
    )
    headroom: float = Field(
        default=0.2, ge=0, le=4, description="Capacity kept above the forecast demand (0.2: 20%)."
    )
    lead_time_seconds: int | None = Field(
        default=None,
        ge=0,
        le=7200,
        description="Provisioning lead time (node + model start) to forecast over; unset: "
        "learned from observed starts (480 s until one is seen).",
    )


class MetricsQueries(ApiModel):
    """PromQL overrides for the SLO signals. ``$namespace``, ``$deployment``, ``$cluster``,
    ``$window`` and ``$selector`` (the label matchers selecting this deployment's pods) are
    substituted. Unset signals use the engine's default query (docs/metrics.md)."""

    ttft_p95_ms: str | None = Field(default=None, max_length=4096, description="TTFT p95 (ms).")
    tpot_p95_ms: str | None = Field(default=None, max_length=4096, description="TPOT p95 (ms).")
    queue_depth: str | None = Field(
        default=None, max_length=4096, description="Requests waiting, summed over replicas."
    )
    request_rate: str | None = Field(
        default=None, max_length=4096, description="Requests per second."
    )
    tokens_per_second: str | None = Field(
        default=None, max_length=4096, description="Generated tokens per second."
    )
    kv_cache_usage: str | None = Field(
        default=None,
        max_length=4096,
        description="KV-cache use summed over the pods (each pod 0..1); TGI has no default.",
    )
    requests_running: str | None = Field(
        default=None, max_length=4096, description="Running requests, summed over replicas."
    )
    demand: str | None = Field(
        default=None,
        max_length=4096,
        description="Demand that exists at zero replicas (scale from zero), in requests/s "
        "arriving at a gateway, e.g. sum(rate(modelfleet_gateway_received_requests_total"
        '{namespace="$namespace",deployment="$deployment"}[1m])); a rate, not a count of '
        "held requests. Asked only while no cluster runs a ready replica; any value above 0 "
        "starts the deployment, and with capacity profiles the first step is sized for it.",
    )


class ModelDeploymentSpec(ApiModel):
    """Desired state: which model, on what GPUs, how many, where, within which SLO and budget."""

    x_validations: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.scaling) || !has(self.scaling.scaleToZeroAfterSeconds) || "
            "self.replicas.min == 0",
            "message": "scaling.scaleToZeroAfterSeconds requires replicas.min: 0",
        },
        {
            "rule": "!has(self.placement) || !has(self.placement.capacity) || "
            "!has(self.placement.capacity.onDemandBase) || "
            "self.placement.capacity.onDemandBase <= self.replicas.max",
            "message": "placement.capacity.onDemandBase must not exceed replicas.max",
        },
    ]

    model: ModelSource = Field(description="The model to serve.")
    runtime: Runtime = Field(default_factory=Runtime, description="Inference engine.")
    resources: Resources = Field(default_factory=Resources, description="Per-replica resources.")
    replicas: ReplicaRange = Field(description="Autoscaling bounds.")
    slo: Slo = Field(default_factory=Slo, description="Service-level objectives.")
    placement: Placement = Field(default_factory=Placement, description="Where replicas may run.")
    failover: Failover = Field(default_factory=Failover, description="Failure handling.")
    scaling: Scaling = Field(default_factory=Scaling, description="Autoscaler behaviour.")
    capacity_profiles: list[CapacityProfileSpec] = Field(
        default_factory=list,
        max_length=64,
        description="What one replica sustains within the SLO per GPU type (docs/api.md).",
    )
    workload: WorkloadMix | None = Field(
        default=None, description="Mean request lengths to size capacity for."
    )
    metrics: MetricsQueries | None = Field(
        default=None, description="PromQL overrides for the SLO signals."
    )

    @field_validator("capacity_profiles")
    @classmethod
    def _one_profile_per_key(cls, profiles: list[CapacityProfileSpec]) -> list[CapacityProfileSpec]:
        # Two entries for one (gpu, gpuCount, source) are equally trusted: the planner took
        # the first and ignored the other without a word, so a re-measured profile appended
        # below the old one (a GitOps edit, `modelfleet profile` output pasted in) never
        # applied. The schema cannot say it: a list-map key must be required or defaulted,
        # and an unset gpuCount means "any count".
        seen: dict[tuple[str, int | None, str], int] = {}
        for j, p in enumerate(profiles):
            first = seen.setdefault((p.gpu, p.gpu_count, p.source), j)
            if first != j:
                # The fields, never their values (as spec_problems reports every error).
                raise ValueError(
                    f"capacityProfiles.{j} repeats capacityProfiles.{first} (same gpu, "
                    "gpuCount and source): only one would be used; keep one"
                )
        return profiles

    @model_validator(mode="after")
    def _consistent(self) -> ModelDeploymentSpec:
        if self.scaling.scale_to_zero_after_seconds is not None and self.replicas.min != 0:
            raise ValueError("scaling.scaleToZeroAfterSeconds requires replicas.min: 0")
        if self.placement.capacity.on_demand_base > self.replicas.max:
            raise ValueError(
                "placement.capacity.onDemandBase must not exceed replicas.max "
                f"(onDemandBase={self.placement.capacity.on_demand_base}, "
                f"max={self.replicas.max})"
            )
        return self


class ReplicaCounts(ApiModel):
    """Replica counts across the whole fleet."""

    desired: int = Field(default=0, ge=0, description="Replicas the autoscaler wants.")
    ready: int = Field(default=0, ge=0, description="Replicas serving.")
    spot: int = Field(default=0, ge=0, description="Placed replicas on spot capacity.")
    on_demand: int = Field(default=0, ge=0, description="Placed replicas on on-demand capacity.")
    unplaced: int = Field(
        default=0, ge=0, description="Desired replicas no candidate could take (see conditions)."
    )


class PlacementStatus(ApiModel):
    """Replicas of this deployment on one (cluster, offering, capacity type)."""

    cluster: str = Field(description="FleetCluster name.")
    cloud: str = Field(description="Cloud of the cluster.")
    region: str = Field(description="Region of the cluster.")
    gpu: str = Field(description="GPU model.")
    instance_type: str = Field(description="Instance type / machine type / VM size.")
    capacity_type: CapacityType = Field(description="OnDemand or Spot.")
    replicas: int = Field(ge=0, description="Replicas placed here.")
    ready: int = Field(default=0, ge=0, description="Replicas ready here.")
    nodes: int | None = Field(
        default=None, ge=0, description="Nodes of the pool this deployment accounts for."
    )


class RetiringStatus(ApiModel):
    """Replicas the plan replaces that still serve until their replacements are ready
    (a make-before-break move, or a recovered cluster failing back). Lost replicas
    (failed cluster, reclaimed spot) are not listed: they serve nothing."""

    cluster: str = Field(description="FleetCluster name.")
    region: str | None = Field(default=None, description="Region of the cluster.")
    instance_type: str = Field(description="Instance type / machine type / VM size.")
    capacity_type: CapacityType = Field(description="OnDemand or Spot.")
    replicas: int = Field(ge=0, description="Replicas retiring here.")
    ready: int = Field(default=0, ge=0, description="Of those, replicas ready (serving).")
    reason: str = Field(default="", description="Why they retire (the planner's reason).")


class SloStatus(ApiModel):
    """Observed SLO figures (fleet-wide, worst cluster for percentiles)."""

    ttft_p95_ms: float | None = Field(default=None, description="Observed TTFT p95, ms.")
    tpot_p95_ms: float | None = Field(default=None, description="Observed TPOT p95, ms.")
    queue_per_replica: float | None = Field(default=None, description="Observed queue/replica.")
    request_rate: float | None = Field(default=None, description="Observed requests/s.")
    kv_cache_per_replica: float | None = Field(
        default=None, description="Observed mean KV-cache use of a ready replica, 0..1."
    )
    running_per_replica: float | None = Field(
        default=None, description="Observed running requests per ready replica."
    )
    met: bool | None = Field(default=None, description="Whether every set objective is met.")


class Endpoint(ApiModel):
    """Where one member cluster serves this deployment."""

    cluster: str = Field(description="FleetCluster name.")
    url: str = Field(
        description="URL of the Service there: FleetCluster spec.endpointTemplate, by "
        "default the in-cluster name."
    )


class Recommendation(ApiModel):
    """One raw autoscaler recommendation, kept for the stabilisation windows."""

    at: Timestamp = Field(description="When it was made.")
    replicas: int = Field(ge=0, description="Replicas recommended.")


class RateSample(ApiModel):
    """One request-rate sample of the demand forecast's history."""

    at: Timestamp = Field(description="When it was observed.")
    rate: float = Field(ge=0, description="Requests per second.")


class DecisionStatus(ApiModel):
    """What the planner remembers between reconciles (written by the operator only): the
    recommendation history of the stabilisation windows, the scale-to-zero and spot
    fallback timers and the learned per-replica capacity. Kept in status so that a restarted operator decides the same way."""

    recommendations: list[Recommendation] | None = Field(
        default=None, max_length=1000, description="Recent recommendations, oldest first."
    )
    last_desired: int | None = Field(default=None, description="Desired replicas last planned.")
    idle_since: Timestamp | None = Field(
        default=None, description="When the request rate was first seen at zero."
    )
    spot_fallback_replicas: int = Field(
        default=0, ge=0, description="Replicas moved to on-demand after a spot loss."
    )
    spot_unavailable_at: Timestamp | None = Field(
        default=None, description="Last spot loss or spot stockout affecting the deployment."
    )
    capacity_per_replica: float | None = Field(
        default=None,
        gt=0,
        description="Learned requests/s one replica sustains within the SLOs; scale-down "
        "sizes the fleet to requestRate / (capacityPerReplica x utilisation target).",
    )
    capacity_bounded_at: Timestamp | None = Field(
        default=None,
        description="When an SLO breach last bounded capacityPerReplica (unset: the "
        "capacity is only a demonstrated lower bound and scale-down steps by 10%).",
    )
    capacity_correction: float | None = Field(
        default=None,
        gt=0,
        description="Online correction of the capacity profile (observed / profiled).",
    )
    corrected_profile: str | None = Field(
        default=None,
        max_length=64,
        description="Digest of the capacity profiles and mix the correction was learned "
        "against; an edit of either drops the correction.",
    )
    rate_history: list[RateSample] | None = Field(
        default=None, max_length=100, description="Request rates the demand forecast reads."
    )
    lead_time_seconds: float | None = Field(
        default=None, gt=0, description="Provisioning lead time learned from observed starts."
    )
    short_since: Timestamp | None = Field(
        default=None, description="Since when fewer replicas serve than desired."
    )


class ServedModelStatus(ApiModel):
    """The model name the deployment serves and since when (its claim's date)."""

    name: str = Field(description="spec.model.name when the operator recorded it.")
    since: Timestamp = Field(
        description="When the operator first saw the deployment serve this name: its "
        "creation for the name it was created with (or had before this field existed), the "
        "edit otherwise; the gateway's first-come rule dates the claim by it."
    )


class ModelDeploymentStatus(ApiModel):
    """Observed state, written by the operator only."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status was computed from."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="Ready, Progressing, Degraded, SLOMet, CapacityAvailable.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    replicas: ReplicaCounts | None = Field(default=None, description="Replica counts.")
    placements: list[PlacementStatus] | None = Field(
        default=None, description="Where replicas are placed."
    )
    retiring: list[RetiringStatus] | None = Field(
        default=None,
        description="Replicas being replaced that still serve until their replacements are "
        "ready; counted in replicas.ready and routed to by the gateway.",
    )
    regions: str | None = Field(
        default=None, description="Regions holding replicas, comma-separated (for display)."
    )
    slo: SloStatus | None = Field(default=None, description="Observed SLO figures.")
    cost_per_hour: float | None = Field(
        default=None,
        description="Cost of the node capacity held, USD per hour: the placed replicas' "
        "and that of retiring replicas still kept (status.retiring).",
    )
    headroom_cost_per_hour: float | None = Field(
        default=None,
        description="Part of costPerHour paid for failover.tolerateRegionLoss headroom, "
        "USD per hour (unset when the option is off).",
    )
    endpoints: list[Endpoint] | None = Field(default=None, description="Serving endpoints.")
    last_reconcile_time: Timestamp | None = Field(
        default=None, description="When the operator last reconciled this deployment."
    )
    decision: DecisionStatus | None = Field(
        default=None, description="Planner memory between reconciles (operator-owned)."
    )
    served_model: ServedModelStatus | None = Field(
        default=None,
        description="The served model name and since when; an edit of spec.model.name "
        "re-dates it, so an old deployment edited to another tenant's name does not take it.",
    )


class ModelDeployment(ApiModel):
    """A model served on GPUs across the fleet within an SLO and a budget."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: Literal["modelfleet.io/v1alpha1"] = Field(
        default="modelfleet.io/v1alpha1", description="modelfleet.io/v1alpha1"
    )
    kind: Literal["ModelDeployment"] = Field(default="ModelDeployment", description="Kind.")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: ModelDeploymentSpec = Field(description="Desired state.")
    status: ModelDeploymentStatus | None = Field(default=None, description="Observed state.")
