"""The planner's immutable inputs: what a deployment asks for and what the fleet looks like.

These are plain frozen dataclasses rather than the pydantic API models: the planner runs for
every deployment on every reconcile, so the shell converts API objects once
(``core.from_api``) and the hot path touches only cheap attribute reads. Prices are USD per
node-hour; times are timezone-aware datetimes; durations are seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from modelfleet.core.profiles import CapacityProfile, Workload

CapacityType = Literal["OnDemand", "Spot"]
SpotPolicy = Literal["Never", "Allowed", "Preferred"]
HealthState = Literal["Healthy", "Suspect", "Failed", "Recovering", "Unknown"]
ON_DEMAND: CapacityType = "OnDemand"
SPOT: CapacityType = "Spot"


@dataclass(frozen=True, slots=True)
class SelectorTerm:
    """One set-based label requirement (Kubernetes ``matchExpressions`` semantics)."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Selector:
    """A label selector: every ``match_labels`` pair and every term must hold."""

    match_labels: tuple[tuple[str, str], ...] = ()
    terms: tuple[SelectorTerm, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when ``labels`` satisfy the selector; the empty selector matches everything."""
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        for term in self.terms:
            present = term.key in labels
            if term.operator == "In" and (not present or labels[term.key] not in term.values):
                return False
            if term.operator == "NotIn" and present and labels[term.key] in term.values:
                return False
            if term.operator == "Exists" and not present:
                return False
            if term.operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True, slots=True)
class GpuNeed:
    """GPUs one replica needs, all on one node."""

    count: int = 1
    memory_gib: float | None = None
    types: frozenset[str] | None = None  # None: any GPU model


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """Autoscaler bounds, SLO targets (None: not enforced) and windows in seconds."""

    min_replicas: int = 1
    max_replicas: int = 1
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None
    max_queue_per_replica: float | None = None
    up_stabilization_seconds: int = 0
    down_stabilization_seconds: int = 300
    scale_to_zero_after_seconds: int | None = None
    predictor: str = "trend"
    """Name in ``core.forecast.PREDICTORS``."""
    headroom: float = 0.2
    """Capacity kept above the forecast demand (fraction)."""
    lead_time_seconds: float | None = None
    """Forecast horizon; None: learned from observed starts (``DecisionState``)."""


@dataclass(frozen=True, slots=True)
class PlacementPolicy:
    """Hard constraints and preferences for where replicas go. ``None`` sets mean "any"."""

    clouds: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    selector: Selector | None = None
    preferred_regions: frozenset[str] = frozenset()
    min_regions: int = 1
    max_replicas_per_region: int | None = None
    spot: SpotPolicy = "Never"
    on_demand_base: int = 0
    max_cost_per_hour: float | None = None


@dataclass(frozen=True, slots=True)
class FailoverPolicy:
    """Warm standby and the deployment's view of cluster failure timing (seconds)."""

    warm_standby_replicas: int = 0
    fail_after_seconds: int = 45
    failback_after_seconds: int = 300
    tolerate_region_loss: bool = False
    """Keep, for every region, enough capacity outside it to carry the desired replicas."""


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """Everything the planner needs from a ModelDeployment spec. ``key`` is namespace/name."""

    key: str
    gpu: GpuNeed = field(default_factory=GpuNeed)
    scaling: ScalingPolicy = field(default_factory=ScalingPolicy)
    placement: PlacementPolicy = field(default_factory=PlacementPolicy)
    failover: FailoverPolicy = field(default_factory=FailoverPolicy)
    profiles: tuple[CapacityProfile, ...] = ()
    """Capacity profiles (``core.profiles``); empty: capacity is learned online."""
    workload: Workload = field(default_factory=Workload)
    """Mean request lengths to size capacity for."""


@dataclass(frozen=True, slots=True)
class Offering:
    """A GPU node type a cluster provides: the one model of an offering.

    The core plans with it, every ``NodePoolProvider.discover_offerings`` returns it, the
    reconciler sizes pools with it and the simulator prices with it; ``core.from_api``
    holds the one converter each way to the API's ``GpuOffering`` (``offering_from_api``,
    ``offering_to_api``).

    Prices are USD per node-hour, one per capacity type. ``None`` means modelfleet has no
    price for that capacity type here and never places replicas of that type on it (a
    placement is costed and checked against ``maxCostPerHour``; an unknown price can take
    part in neither):

    - ``spot_per_hour`` None: no spot market (or none known);
    - ``on_demand_per_hour`` None: no on-demand price known: a GPU the cloud sells only as
      spot, an instance type the bundled price table lacks, or static nodes found on the
      cluster that nobody declared a price for. The offering is still reported (it appears
      in ``status.offerings``); on-demand replicas go there once a price is declared in
      ``spec.gpuOfferings`` (0 for capacity already paid for).
    """

    gpu: str
    gpu_memory_gib: float
    gpus_per_node: int
    instance_type: str
    on_demand_per_hour: float | None
    spot_per_hour: float | None = None
    max_nodes: int | None = None
    """Most nodes of this instance type in the cluster (quota or pool limit), shared by
    both capacity types: on-demand plus spot nodes together never exceed it (the core's
    quota, the pool ledger and the providers all count it so). None: no known limit."""
    zones: tuple[str, ...] = ()
    """Zones where the cloud offers this type (empty: no zone data, the pool is one unit)."""

    def price(self, capacity_type: CapacityType) -> float | None:
        """Price per node-hour for ``capacity_type``, None when that market is not offered."""
        return self.on_demand_per_hour if capacity_type == ON_DEMAND else self.spot_per_hour


@dataclass(frozen=True, slots=True)
class StockoutMark:
    """A remembered capacity error for (gpu, capacity type[, instance type]) in a cluster.

    Active while ``now < until``; kept after expiry (until a success resets it) so that the
    next error doubles the backoff. ``instance_type`` None matches every instance type;
    ``zone`` None blocks every zone, a zone blocks only that zone of the pool (see
    ``core.stockouts.pool_stockout``).
    """

    gpu: str
    capacity_type: CapacityType
    until: datetime
    failures: int = 1
    instance_type: str | None = None
    since: datetime | None = None
    message: str | None = None
    zone: str | None = None

    def covers(self, gpu: str, capacity_type: str, instance_type: str) -> bool:
        """True when this mark concerns that (gpu, capacity type, instance type)."""
        return (
            self.gpu == gpu
            and self.capacity_type == capacity_type
            and (self.instance_type is None or self.instance_type == instance_type)
        )


@dataclass(frozen=True, slots=True)
class ClusterView:
    """A FleetCluster as the planner sees it: identity, labels, health, offerings, stockouts.

    ``health_since`` is when ``health`` last changed; ``last_success`` the last good probe;
    ``recovered_since`` when it last came back from Failed (None: never failed, or failed
    again since), the start of every deployment's failback window.
    """

    name: str
    cloud: str
    region: str
    offerings: tuple[Offering, ...] = ()
    zones: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    health: HealthState = "Healthy"
    health_since: datetime | None = None
    last_success: datetime | None = None
    cordoned: bool = False
    recovered_since: datetime | None = None
    stockouts: tuple[StockoutMark, ...] = ()


@dataclass(frozen=True, slots=True)
class ExistingPlacement:
    """Replicas of one deployment already on (cluster, instance type, capacity type).

    ``nodes`` is the node count allocated to that pool (None: unknown, assume tight packing).
    """

    deployment: str
    cluster: str
    instance_type: str
    capacity_type: CapacityType
    replicas: int
    ready: int = 0
    nodes: int | None = None


@dataclass(frozen=True)
class FleetSnapshot:
    """Every cluster of the fleet and what every deployment already runs there.

    Not slotted: ``core.candidates`` caches per-fleet indexes on the instance (pure
    memoisation; the snapshot itself never changes).
    """

    clusters: tuple[ClusterView, ...]
    placements: tuple[ExistingPlacement, ...] = ()
    idle_nodes: tuple[tuple[tuple[str, str, CapacityType], int], ...] = ()
    """``((cluster, instance type, capacity type), nodes)``: Ready nodes per pool that no
    deployment books (kept for the pool's scale-in delay); a new replica there needs only
    its model start (``core.warm``). Empty: none known."""


@dataclass(frozen=True, slots=True)
class ClusterSignals:
    """SLO signals of one deployment in one cluster; any may be missing (None).

    ``queue_per_replica`` is requests waiting per ready replica; ``observed_at`` overrides
    the snapshot's time for staleness checks.
    """

    ready_replicas: int | None = None
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None
    queue_per_replica: float | None = None
    request_rate: float | None = None
    tokens_per_second: float | None = None
    observed_at: datetime | None = None
    kv_cache_per_replica: float | None = None
    """Mean KV-cache use of a ready replica, 0..1 (None: missing, e.g. TGI)."""
    running_per_replica: float | None = None
    """Running requests per ready replica."""
    reporting_replicas: int | None = None
    """Pods whose metrics the source holds (None: unknown). Fewer than ``ready_replicas``:
    the summed signals miss serving pods, so the data counts as incomplete."""


@dataclass(frozen=True)
class MetricsSnapshot:
    """Signals per deployment key, per cluster name, taken at ``observed_at``."""

    by_deployment: Mapping[str, Mapping[str, ClusterSignals]] = field(default_factory=dict)
    observed_at: datetime | None = None

    def for_deployment(self, key: str) -> Mapping[str, ClusterSignals]:
        """Signals of deployment ``key`` by cluster (empty when none were collected)."""
        return self.by_deployment.get(key, {})


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    """Tunables that are not part of the API. Defaults are the documented behaviour."""

    tolerance: float = 0.10
    """Ratios within 1 +/- tolerance of the target leave the replica count alone."""
    panic_ratio: float = 2.0
    """A signal above this multiple of its target scales up at once, skipping windows."""
    stale_after_seconds: float = 120.0
    """Signals older than this count as missing (never cause a scale-down)."""
    preferred_region_discount: float = 0.05
    """preferredRegions win when no more than this fraction dearer."""
    spot_return_after_seconds: float = 600.0
    """After a spot loss, stay on on-demand until spot has been available this long."""
    stockout_initial_seconds: float = 180.0
    """First stockout backoff (Karpenter's insufficient-capacity cache is 3 minutes)."""
    stockout_max_seconds: float = 1800.0
    """Backoff ceiling; the backoff doubles per consecutive capacity error up to it."""
    utilisation_target: float = 0.8
    """Scale-down sizes the fleet so each replica runs at this fraction of its learned
    capacity (requests/s it has sustained within the SLOs)."""
    scale_down_step: float = 0.10
    """Without a request rate or a learned capacity, scale down by at most
    ``max(1, ceil(step * current))`` replicas per reconcile."""
    max_scale_down_fraction: float = 0.5
    """No single reconcile removes more than this fraction of the current replicas."""
    capacity_breach_margin: float = 0.9
    """On an SLO breach at R/n requests/s per replica, capacity becomes at most this times R/n."""
    move_cost_node_hours: float = 1.0
    """Stickiness: removing a healthy replica beyond what a scale-in forces costs this many
    node-hours of the dearest pool the deployment holds (>= 1: never moved to save cost
    alone; moved only when a constraint needs it)."""
    region_spread_price_factor: float = 1.0
    """Blast-radius spread (docs/decisions.md section 4): for every region, the replicas
    already paid for (main + standby) outside it should carry the demand without headroom
    (``desired / (1 + scaling.headroom)``). Each replica of that demand left uncovered
    costs this multiple of the dearest per-replica price among the candidates, per hour,
    in the placement's objective: spreading moves replicas to dearer regions, never adds
    any. 0 turns it off (``failover.tolerateRegionLoss`` adds headroom for full cover)."""
    warm_node_price_factor: float = 1.5
    """A scale-up takes Ready nodes no deployment books (``core.warm``) on pools at most
    this multiple of the cheapest growth candidate's price per unit of capacity; 0 turns
    warm placement off (docs/decisions.md section 2, "Warm nodes first")."""
    warm_node_urgent_price_factor: float = 3.0
    """The same limit while the fleet breaches its SLO or is saturated (capacity needed
    now): a warm on-demand node at twice the spot price is better than a new spot node in
    seven minutes, and scale-in removes the dearest replicas first afterwards. Applies only
    while warm placement is on (``warm_node_price_factor`` > 0)."""
    gpu_hour_price: float = 1.0
    """Placement only: a shadow price in USD per GPU-hour added to every offering's node
    price (``gpus_per_node x gpu_hour_price``) before it is ranked and costed per unit of
    capacity, so that at about the same price per unit of capacity the offering that
    needs fewer GPUs for it wins (fewer GPUs of quota, fewer replicas to start and to
    lose): a trade of dollars for GPUs, larger among cheap GPUs. Never part of the
    reported cost. 0 turns it off (docs/decisions.md section 2)."""
    solver_max_nodes: int = 20_000
    """Branch-and-bound node limit of the placement MILP (deterministic)."""
    solver_time_limit_seconds: float = 1.0
    """Wall-clock safety net of the placement MILP; hitting it is reported (SolverLimit)."""
    kv_cache_threshold: float = 0.85
    """Saturation: mean KV-cache use of the ready replicas above this scales up
    (core.saturation; llm-d's saturation analyzer defaults to 0.80 per replica)."""
    kv_cache_target: float = 0.75
    """Saturation scale-up sizes the fleet so the projected mean KV-cache use is at most this."""
    saturation_queue_per_replica: float = 2.0
    """Saturation: waiting requests per ready replica above this (with running-request data)
    scale up by the concurrency the queue needs."""


DEFAULT_SETTINGS = PlannerSettings()
