"""Conversion from the pydantic API objects to the planner's frozen inputs.

The shell (reconciler, CLI, simulator) reads ModelDeployments and FleetClusters as pydantic
models; the planner wants small frozen dataclasses it can read quickly thousands of times.
Converting here, once per snapshot, keeps pydantic out of the hot path and the mapping from
API field to planner input in one place (stockout marks also go back the other way, with
``stockout_to_api``, and offerings with ``offering_to_api``, so both directions live
together). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelfleet.api.common import LabelSelector
from modelfleet.api.fleetcluster import FleetCluster, GpuOffering, Stockout
from modelfleet.api.modeldeployment import ModelDeployment, ModelDeploymentSpec
from modelfleet.api.profiles import CapacityProfileSpec
from modelfleet.core.latency_curve import CurvePoint, curve_from
from modelfleet.core.profiles import CapacityProfile, Workload
from modelfleet.core.types import (
    ClusterView,
    DeploymentSpec,
    ExistingPlacement,
    FailoverPolicy,
    FleetSnapshot,
    GpuNeed,
    HealthState,
    Offering,
    PlacementPolicy,
    ScalingPolicy,
    Selector,
    SelectorTerm,
    StockoutMark,
)


def deployment_key(md: ModelDeployment) -> str:
    """``namespace/name`` of a ModelDeployment (namespace ``default`` when unset)."""
    return f"{md.metadata.namespace or 'default'}/{md.metadata.name}"


def selector_from_api(selector: LabelSelector | None) -> Selector | None:
    """The planner's Selector for an API LabelSelector (None stays None)."""
    if selector is None:
        return None
    return Selector(
        match_labels=tuple(sorted((selector.match_labels or {}).items())),
        terms=tuple(
            SelectorTerm(e.key, e.operator, tuple(e.values or ()))
            for e in selector.match_expressions or []
        ),
    )


def _curve(cp: CapacityProfileSpec) -> tuple[CurvePoint, ...]:
    """A measured profile's sweep as loads relative to its capacity point; () without."""
    m = cp.measurement
    if m is None or not m.curve:
        return ()
    return curve_from(
        ((p.requests_per_second, p.ttft_p95_ms, p.tpot_p95_ms) for p in m.curve),
        m.requests_per_second,
    )


def spec_from_api(spec: ModelDeploymentSpec, *, key: str) -> DeploymentSpec:
    """The planner's DeploymentSpec for a validated API spec; ``key`` is namespace/name."""
    gpu = spec.resources.gpu
    p = spec.placement
    return DeploymentSpec(
        key=key,
        gpu=GpuNeed(
            count=gpu.count,
            memory_gib=gpu.memory_gi_b,
            types=frozenset(gpu.types) if gpu.types else None,
        ),
        scaling=ScalingPolicy(
            min_replicas=spec.replicas.min,
            max_replicas=spec.replicas.max,
            ttft_p95_ms=spec.slo.ttft_p95_ms,
            tpot_p95_ms=spec.slo.tpot_p95_ms,
            max_queue_per_replica=spec.slo.max_queue_per_replica,
            up_stabilization_seconds=spec.scaling.up_stabilization_seconds,
            down_stabilization_seconds=spec.scaling.down_stabilization_seconds,
            scale_to_zero_after_seconds=spec.scaling.scale_to_zero_after_seconds,
            predictor=spec.scaling.predictor,
            headroom=spec.scaling.headroom,
            lead_time_seconds=(
                None
                if spec.scaling.lead_time_seconds is None
                else float(spec.scaling.lead_time_seconds)
            ),
        ),
        profiles=tuple(
            CapacityProfile(
                gpu=cp.gpu,
                prefill_tokens_per_second=cp.prefill_tokens_per_second,
                decode_tokens_per_second=cp.decode_tokens_per_second,
                gpu_count=cp.gpu_count,
                source=cp.source,
                prompt_tokens=cp.prompt_tokens,
                output_tokens=cp.output_tokens,
                curve=_curve(cp),
            )
            for cp in spec.capacity_profiles
        ),
        workload=Workload(
            prompt_tokens=spec.workload.prompt_tokens if spec.workload else None,
            output_tokens=spec.workload.output_tokens if spec.workload else None,
        ),
        placement=PlacementPolicy(
            clouds=frozenset(p.clouds) if p.clouds else None,
            regions=frozenset(p.regions) if p.regions else None,
            selector=selector_from_api(p.cluster_selector),
            preferred_regions=frozenset(p.preferred_regions or ()),
            min_regions=p.spread.min_regions,
            max_replicas_per_region=p.spread.max_replicas_per_region,
            spot=p.capacity.spot,
            on_demand_base=p.capacity.on_demand_base,
            max_cost_per_hour=p.max_cost_per_hour,
        ),
        failover=FailoverPolicy(
            warm_standby_replicas=spec.failover.warm_standby_replicas,
            fail_after_seconds=spec.failover.fail_after_seconds,
            failback_after_seconds=spec.failover.failback_after_seconds,
            tolerate_region_loss=spec.failover.tolerate_region_loss,
        ),
    )


def deployment_from_api(md: ModelDeployment) -> DeploymentSpec:
    """The planner's DeploymentSpec for a ModelDeployment (keyed by namespace/name)."""
    return spec_from_api(md.spec, key=deployment_key(md))


def offering_from_api(o: GpuOffering, *, cluster_zones: tuple[str, ...] = ()) -> Offering:
    """The Offering of an API ``GpuOffering`` (the one converter in this direction;
    ``offering_to_api`` is its inverse).

    Unset zones become ``cluster_zones`` (the API's "all the cluster's zones when unset";
    the planner passes the cluster's, providers pass none and keep "no zone data"). An
    unset ``onDemandPerHour`` stays None: no on-demand price known (``Offering``).
    """
    return Offering(
        gpu=o.gpu,
        gpu_memory_gib=o.gpu_memory_gi_b,
        gpus_per_node=o.gpus_per_node,
        instance_type=o.instance_type,
        on_demand_per_hour=o.on_demand_per_hour,
        spot_per_hour=o.spot_per_hour,
        max_nodes=o.max_nodes,
        zones=tuple(o.zones) if o.zones else cluster_zones,
    )


def offering_to_api(offering: Offering) -> GpuOffering:
    """The API ``GpuOffering`` of an Offering (what ``status.offerings`` publishes); no
    zones become unset. ``offering_from_api(offering_to_api(o)) == o``."""
    return GpuOffering(
        gpu=offering.gpu,
        gpu_memory_gi_b=offering.gpu_memory_gib,
        gpus_per_node=offering.gpus_per_node,
        instance_type=offering.instance_type,
        on_demand_per_hour=offering.on_demand_per_hour,
        spot_per_hour=offering.spot_per_hour,
        max_nodes=offering.max_nodes,
        zones=list(offering.zones) or None,
    )


def declared_offerings(fc: FleetCluster) -> list[Offering]:
    """The FleetCluster's declared ``spec.gpuOfferings``, in declaration order, zones as
    declared (what the static and simulated providers offer)."""
    return [offering_from_api(o) for o in fc.spec.gpu_offerings or []]


def cluster_offerings(fc: FleetCluster, *, cluster_zones: tuple[str, ...] = ()) -> list[Offering]:
    """Every offering of a FleetCluster: declared ones (``spec.gpuOfferings``) first, then
    the discovered ones (``status.offerings``) of other instance types."""
    declared = list(fc.spec.gpu_offerings or [])
    seen = {o.instance_type for o in declared}
    discovered = [
        o for o in (fc.status.offerings or [] if fc.status else []) if o.instance_type not in seen
    ]
    return [offering_from_api(o, cluster_zones=cluster_zones) for o in [*declared, *discovered]]


def offering_of(fc: FleetCluster | None, instance_type: str) -> Offering | None:
    """The Offering for ``instance_type`` in ``fc`` (declared first, then discovered), zones
    as the API has them; None when the cluster offers no such type."""
    if fc is None:
        return None
    # cluster_offerings' first match, converting only it: a declared offering of that type
    # wins; otherwise the first discovered one (none of its type is declared).
    for o in fc.spec.gpu_offerings or []:
        if o.instance_type == instance_type:
            return offering_from_api(o)
    for o in fc.status.offerings or [] if fc.status else []:
        if o.instance_type == instance_type:
            return offering_from_api(o)
    return None


def cluster_view_offerings(fc: FleetCluster) -> tuple[Offering, ...]:
    """``ClusterView.offerings`` of ``fc``: ``cluster_offerings`` with the cluster's zones
    as the default; a function of ``fc.spec`` and ``fc.status.offerings`` alone."""
    return tuple(cluster_offerings(fc, cluster_zones=tuple(fc.spec.zones or ())))


def cluster_from_api(
    fc: FleetCluster,
    *,
    default_health: HealthState = "Unknown",
    offerings: tuple[Offering, ...] | None = None,
) -> ClusterView:
    """The planner's ClusterView of a FleetCluster.

    Offerings: ``cluster_offerings`` (declared ones override discovered ones with the same
    instance type), their zones defaulting to the cluster's; ``offerings``, when given, is
    that tuple already converted (``cluster_view_offerings`` of this ``fc``). Health and
    stockouts come from ``status``; ``default_health`` applies when there is no status
    (the operator uses Unknown, i.e. not yet probed; ``modelfleet plan`` uses Healthy so
    that plain manifests can be planned).
    """
    status = fc.status
    stockouts = tuple(stockout_from_api(s) for s in (status.stockouts or [] if status else []))
    return ClusterView(
        name=fc.metadata.name,
        cloud=fc.spec.cloud_name,
        region=fc.spec.region,
        offerings=cluster_view_offerings(fc) if offerings is None else offerings,
        zones=tuple(fc.spec.zones or ()),
        labels=dict(fc.metadata.labels),
        health=status.health if status else default_health,
        health_since=status.health_since if status else None,
        last_success=status.last_success_time if status else None,
        recovered_since=status.recovered_since if status else None,
        cordoned=fc.spec.cordoned,
        stockouts=stockouts,
    )


def stockout_from_api(stockout: Stockout) -> StockoutMark:
    """The core's mark for a FleetCluster ``status.stockouts`` entry (the one converter in
    this direction; ``stockout_to_api`` is its inverse)."""
    return StockoutMark(
        gpu=stockout.gpu,
        capacity_type=stockout.capacity_type,
        until=stockout.until,
        failures=stockout.failures,
        instance_type=stockout.instance_type,
        since=stockout.since,
        message=stockout.message,
        zone=stockout.zone,
    )


def stockout_to_api(mark: StockoutMark) -> Stockout:
    """The ``status.stockouts`` entry for a core mark (inverse of ``stockout_from_api``)."""
    return Stockout(
        gpu=mark.gpu,
        capacity_type=mark.capacity_type,
        instance_type=mark.instance_type,
        since=mark.since,
        until=mark.until,
        failures=mark.failures,
        message=mark.message,
        zone=mark.zone,
    )


def placements_from_status(md: ModelDeployment) -> tuple[ExistingPlacement, ...]:
    """Existing placements recorded in a ModelDeployment's ``status.placements``."""
    key = deployment_key(md)
    if md.status is None or not md.status.placements:
        return ()
    return tuple(
        ExistingPlacement(
            deployment=key,
            cluster=p.cluster,
            instance_type=p.instance_type,
            capacity_type=p.capacity_type,
            replicas=p.replicas,
            ready=p.ready,
            # status.placements[].nodes is newer than this module; tolerate its absence.
            nodes=getattr(p, "nodes", None),
        )
        for p in md.status.placements
    )


def fleet_from_api(
    clusters: Iterable[FleetCluster],
    deployments: Iterable[ModelDeployment] = (),
    *,
    default_health: HealthState = "Unknown",
) -> FleetSnapshot:
    """A FleetSnapshot of ``clusters`` (sorted by name, for determinism) holding the
    placements recorded in the status of ``deployments``."""
    views = sorted(
        (cluster_from_api(c, default_health=default_health) for c in clusters),
        key=lambda v: v.name,
    )
    placements = tuple(p for md in deployments for p in placements_from_status(md))
    return FleetSnapshot(clusters=tuple(views), placements=placements)
