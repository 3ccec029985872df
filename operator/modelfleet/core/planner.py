"""``plan()``: the single entry point of the decision core.

It ties the pieces together for one deployment: classify the replicas already running
(sticky, retiring, lost), ask the autoscaler for the replica count, handle the spot
fallback timer, filter and cost the candidates, place, size node pools, and explain every
candidate left out and every change. Same inputs, same Plan: no clock, no I/O, no
randomness; ties are broken by fleet order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from modelfleet.core import reasons as R
from modelfleet.core.autoscale import Memory, aggregate_signals, recommend_replicas
from modelfleet.core.candidates import (
    Candidate,
    Eligibility,
    FleetIndex,
    PoolKey,
    clear_offering_passes,
    eligibility,
    fleet_index,
)
from modelfleet.core.health import failing_back, is_lost
from modelfleet.core.latency_curve import CurvePoint
from modelfleet.core.nodepools import PoolInfo, size_node_pools
from modelfleet.core.placement import PlacementResult, PlaceOptions, clear_place_memo, place
from modelfleet.core.profiles import (
    applicable,
    best_profile,
    capacity_basis,
    profiles_digest,
    replica_capacity,
)
from modelfleet.core.reasons import Reason
from modelfleet.core.result import NodePoolSize, PlacementDecision, Plan, Retiring
from modelfleet.core.solver import Limits, clear_memo
from modelfleet.core.state import DecisionState
from modelfleet.core.stockouts import open_zones, pool_stockout
from modelfleet.core.types import (
    DEFAULT_SETTINGS,
    ON_DEMAND,
    SPOT,
    DeploymentSpec,
    ExistingPlacement,
    FleetSnapshot,
    MetricsSnapshot,
    Offering,
    PlannerSettings,
)
from modelfleet.core.warm import warm_pools, warm_sticky


@dataclass(frozen=True, slots=True)
class _Existing:
    sticky: dict[PoolKey, int]
    retiring: tuple[Retiring, ...]
    running_elsewhere: dict[PoolKey, int]  # retiring but still serving (keeps its nodes)
    serving: dict[PoolKey, int]  # Ready replicas now, per pool (their nodes stay until gone)
    spot_lost: int
    spot_stocked_out: bool
    total: int


def _classify(
    spec: DeploymentSpec,
    fleet: FleetSnapshot,
    existing: Sequence[ExistingPlacement],
    now: datetime,
    *,
    elig: Eligibility,
) -> _Existing:
    """Split existing replicas into sticky, retiring (static constraint now forbids them:
    kept until replaced) and lost (failed cluster, reclaimed/stocked-out capacity)."""
    index = fleet_index(fleet)
    sticky: dict[PoolKey, int] = {}
    retiring: list[Retiring] = []
    running: dict[PoolKey, int] = {}
    serving: dict[PoolKey, int] = {}
    spot_lost = 0
    spot_out = False
    for p in existing:
        key = (p.cluster, p.instance_type, p.capacity_type)
        cluster = index.clusters.get(p.cluster)
        if cluster is None or is_lost(cluster, spec.failover, now):
            why = "cluster left the fleet" if cluster is None else f"cluster is {cluster.health}"
            retiring.append(Retiring(*key, p.replicas, True, f"{R.CLUSTER_FAILED}: {why}"))
            continue
        if min(p.replicas, p.ready) > 0:
            serving[key] = serving.get(key, 0) + min(p.replicas, p.ready)
        held = failing_back(cluster, spec.failover, now)
        if held is not None:
            # Failback hysteresis applies to replicas still there from before the outage as
            # much as to new ones: they keep serving (and keep their nodes) but are not
            # sticky, so they never displace the healthy replacements before the window.
            retiring.append(Retiring(*key, p.replicas, False, f"{R.CLUSTER_FAILING_BACK}: {held}"))
            running[key] = p.replicas
            continue
        static = elig.static_reason(key)
        if static is not None or key not in elig.known:
            why = static.message if static else "offering no longer listed"
            code = static.code if static else R.REPLICAS_RETIRING
            retiring.append(Retiring(*key, p.replicas, False, f"{code}: {why}"))
            running[key] = p.replicas
            continue
        keep = p.replicas
        offering = index.offerings.get((p.cluster, p.instance_type))
        mark = (
            pool_stockout(
                cluster.stockouts,
                offering.gpu,
                capacity_type=p.capacity_type,
                instance_type=p.instance_type,
                zones=offering.zones,
                now=now,
            )
            if offering
            else None
        )
        if mark is not None:
            spot_out = spot_out or p.capacity_type == SPOT
            lost = max(0, p.replicas - p.ready)
            if lost:
                code = R.SPOT_RECLAIMED if p.capacity_type == SPOT else R.STOCKOUT
                retiring.append(
                    Retiring(
                        *key,
                        lost,
                        True,
                        f"{code}: {lost} replica(s) not ready and no "
                        f"capacity until {mark.until.isoformat()}",
                    )
                )
                if p.capacity_type == SPOT:
                    spot_lost += lost
            keep = min(p.replicas, p.ready)
        if keep:
            sticky[key] = sticky.get(key, 0) + keep
    total = sum(p.replicas for p in existing)
    return _Existing(sticky, tuple(retiring), running, serving, spot_lost, spot_out, total)


def plan(
    spec: DeploymentSpec,
    fleet: FleetSnapshot,
    *,
    metrics: MetricsSnapshot,
    state: DecisionState,
    now: datetime,
    settings: PlannerSettings = DEFAULT_SETTINGS,
) -> Plan:
    """Decide how many replicas ``spec`` needs and where they run, at ``now``.

    Pure and deterministic: equal arguments give an equal Plan. ``now`` must be timezone
    aware. Raises nothing for any valid input; an impossible deployment gets a plan with
    ``unplaced > 0`` and reasons (see ``core.result.unsatisfiable``).
    """
    index = fleet_index(fleet)
    elig = eligibility(fleet, spec, now, discount=settings.preferred_region_discount)
    existing = index.by_deployment.get(spec.key, [])
    ex = _classify(spec, fleet, existing, now, elig=elig)
    scaling = spec.scaling
    pol = spec.placement

    # 1. Autoscaling.
    current = state.last_desired if state.last_desired is not None else ex.total
    if state.last_desired is None and not existing:
        current = scaling.min_replicas
    running_clusters = frozenset(k[0] for k in ex.sticky)
    signals = aggregate_signals(
        metrics.for_deployment(spec.key),
        scaling=scaling,
        running_clusters=running_clusters,
        snapshot_time=metrics.observed_at,
        now=now,
        settings=settings,
    )
    # The correction scales the profile it was learned against: after an edit of the
    # profiles or the mix, the old factor says nothing about the new ones (a profile
    # fixed from 2x optimistic to right would otherwise start at half its capacity and
    # drift back 10% a pass). A state recorded before the digest existed keeps it.
    digest = profiles_digest(spec.profiles, spec.workload)
    correction = state.capacity_correction
    if state.corrected_profile is not None and state.corrected_profile != digest:
        correction = None
    profiled, growth_ranked = _capacity_view(
        spec, elig.candidates, ex.sticky, index, gpu_hour_price=settings.gpu_hour_price
    )
    auto = recommend_replicas(
        scaling,
        signals,
        current=current,
        history=state.recommendations,
        idle_since=state.idle_since,
        now=now,
        settings=settings,
        capacity=state.capacity_per_replica,
        capacity_bounded_at=state.capacity_bounded_at,
        profiled=profiled,
        memory=Memory(
            correction,
            state.rate_history,
            state.lead_time_seconds,
            state.short_since,
        ),
        standby=spec.failover.warm_standby_replicas,
        curve=_curve_view(spec, ex.sticky, index, growth_ranked),
    )
    desired = auto.desired
    standby = spec.failover.warm_standby_replicas if desired > 0 else 0
    changes: list[Reason] = (
        [auto.reason] if desired != current or auto.reason.code == R.METRICS_MISSING else []
    )
    reasons: list[Reason] = list(elig.reasons)
    reasons.extend(_capacity_reasons(spec, elig.candidates, index))

    # 2. Spot fallback with hysteresis.
    fallback = state.spot_fallback_replicas
    unavailable_at = state.spot_unavailable_at
    sticky = dict(ex.sticky)
    if pol.spot != "Never":
        if ex.spot_lost or ex.spot_stocked_out:
            unavailable_at = now
        fallback += ex.spot_lost
        if fallback and unavailable_at is not None:
            waited = (now - unavailable_at).total_seconds()
            if waited >= settings.spot_return_after_seconds:
                changes.append(
                    Reason(
                        R.SPOT_RETURN,
                        f"spot available for {waited:.0f}s: moving "
                        f"{fallback} fallback replica(s) back to spot",
                    )
                )
                fallback = 0
                sticky = _release_on_demand(sticky, keep=pol.on_demand_base)
            else:
                reasons.append(
                    Reason(
                        R.SPOT_HYSTERESIS,
                        f"{fallback} replica(s) on on-demand "
                        "after a spot loss; back to spot "
                        f"{settings.spot_return_after_seconds - waited:.0f}s after "
                        "spot stays available",
                    )
                )
    else:
        fallback = 0
    base = min(pol.on_demand_base + fallback, desired)

    # 3. Growth candidates: open ones, plus quota-exhausted pools where this deployment
    #    holds nodes itself (its own nodes count towards the quota it may use).
    #    Own nodes are counted exactly as they were counted into the fleet-wide usage.
    own_nodes: dict[PoolKey, int] = {}
    for p in existing:
        pkey: PoolKey = (p.cluster, p.instance_type, p.capacity_type)
        own_nodes[pkey] = index.own_nodes.get((spec.key, pkey), 0)
    growth: Sequence[Candidate] = growth_ranked
    regained = [c for c in elig.exhausted if (elig.quota[c.key] or 0) + own_nodes.get(c.key, 0) > 0]
    if regained:
        _, regained_ranked = _capacity_view(
            spec, regained, {}, index, gpu_hour_price=settings.gpu_hour_price
        )
        growth = sorted([*growth, *regained_ranked], key=lambda c: (c.effective, c.order))

    # 3a. Warm nodes first (core.warm): a shortfall goes onto Ready nodes nobody books.
    #     warm_node_price_factor 0 turns the rule off, also while the SLO breaks (the
    #     urgent factor only widens a rule that is on).
    if (
        fleet.idle_nodes
        and settings.warm_node_price_factor > 0
        and desired + standby > sum(sticky.values())
    ):
        sticky, warm_reasons = warm_sticky(
            sticky,
            wanted=desired + standby,
            idle_nodes=dict(fleet.idle_nodes),
            growth=growth,
            price_factor=(
                settings.warm_node_urgent_price_factor
                if auto.urgent
                else settings.warm_node_price_factor
            ),
        )
        changes.extend(warm_reasons)

    # 4. Placement (and, with region-loss tolerance, the same placement without it, to say
    #    what the headroom costs).
    options = PlaceOptions(
        tolerate_region_loss=spec.failover.tolerate_region_loss and desired > 0,
        move_cost_factor=settings.move_cost_node_hours,
        limits=Limits(settings.solver_max_nodes, settings.solver_time_limit_seconds),
        # Only for deployments that ask to survive a region (minRegions > 1 or a warm
        # standby): the others keep the cheapest packing.
        spread_demand=(
            desired / (1.0 + max(0.0, scaling.headroom))
            if pol.min_regions > 1 or spec.failover.warm_standby_replicas > 0
            else 0.0
        ),
        spread_price_factor=settings.region_spread_price_factor,
    )

    def placed_with(opts: PlaceOptions) -> PlacementResult:
        return place(
            spec,
            main=desired,
            standby=standby,
            growth=growth,
            known=elig.known,
            sticky=sticky,
            free=elig.quota,
            own_nodes=own_nodes,
            on_demand_base=base,
            options=opts,
        )

    result = placed_with(options)
    headroom_cost = 0.0
    if options.tolerate_region_loss:
        plain = placed_with(replace(options, tolerate_region_loss=False))
        headroom_cost = max(0.0, _cost(result.counts, elig.known) - _cost(plain.counts, elig.known))
    reasons.extend(result.reasons)
    counts = result.counts

    # 5. Node pools and cost.
    info: dict[PoolKey, PoolInfo] = {}
    for key in set(counts) | set(ex.running_elsewhere) | set(ex.serving):
        offering = index.offerings.get((key[0], key[1]))
        if offering is not None:
            price = offering.price(ON_DEMAND if key[2] == ON_DEMAND else SPOT) or 0.0
            rpn = max(1, offering.gpus_per_node // spec.gpu.count)
            info[key] = PoolInfo(offering.gpu, price, rpn)
    pools, zone_reasons = _zone_fall_through(
        size_node_pools(counts, ex.running_elsewhere, info=info, serving=ex.serving), index, now
    )
    reasons.extend(zone_reasons)
    cost = sum(-(-n // info[k].replicas_per_node) * info[k].price for k, n in counts.items())
    placements = tuple(
        PlacementDecision(
            cluster=c.cluster,
            cloud=c.cloud,
            region=c.region,
            gpu=c.gpu,
            instance_type=c.instance_type,
            capacity_type=c.capacity_type,
            replicas=n,
            replicas_per_node=c.replicas_per_node,
            price_per_node_hour=c.price,
        )
        for k, n in sorted(counts.items())
        for c in (elig.known[k],)
    )
    placed = sum(counts.values())
    unplaced = max(0, desired + standby - placed)

    # 6. Reasons for candidates left out, and for the deployment as a whole.
    if desired + standby > 0:
        reasons.extend(_unused(growth, counts, index, result.budget_bound, result.full_regions))
    if unplaced:
        reasons.append(_unplaced_reason(unplaced, desired + standby, reasons))
    if desired + standby > 0 and not elig.known:
        reasons.append(
            Reason(
                R.NO_CANDIDATES,
                "no cluster offering satisfies the hard "
                "constraints (clouds, regions, selector, GPU type/memory/count)",
            )
        )
    if result.budget_bound and placed < scaling.min_replicas:
        reasons.append(
            Reason(
                R.BUDGET_EXCEEDED,
                f"maxCostPerHour {pol.max_cost_per_hour:g} "
                f"cannot pay for replicas.min {scaling.min_replicas}",
            )
        )
    changes.extend(_changes(ex, existing, counts))

    new_state = DecisionState(
        recommendations=auto.recommendations,
        last_desired=desired,
        idle_since=auto.idle_since,
        spot_fallback_replicas=fallback,
        spot_unavailable_at=unavailable_at if fallback or ex.spot_stocked_out else None,
        capacity_per_replica=auto.capacity_per_replica,
        capacity_bounded_at=auto.capacity_bounded_at,
        capacity_correction=auto.capacity_correction,
        corrected_profile=digest,
        rate_history=auto.rate_history,
        lead_time_seconds=auto.lead_time_seconds,
        short_since=auto.short_since,
    )
    return Plan(
        deployment=spec.key,
        desired_replicas=desired,
        standby_replicas=standby,
        placements=placements,
        node_pools=pools,
        retiring=ex.retiring,
        cost_per_hour=cost,
        unplaced=unplaced,
        reasons=tuple(reasons),
        changes=tuple(changes),
        state=new_state,
        signals=signals,
        headroom_cost_per_hour=headroom_cost,
        placement_method=result.method,
        first_pool=growth[0].key if growth else None,
        # The test this pass's scale-up applies (3a): the urgent factor while the SLO
        # breaks or the fleet is saturated, when a dearer warm node beats a new one.
        warm_pools=warm_pools(
            growth,
            price_factor=(
                settings.warm_node_urgent_price_factor
                if auto.urgent and settings.warm_node_price_factor > 0
                else settings.warm_node_price_factor
            ),
        ),
    )


def _capacity_view(
    spec: DeploymentSpec,
    candidates: Sequence[Candidate],
    sticky: Mapping[PoolKey, int],
    index: FleetIndex,
    *,
    gpu_hour_price: float = 0.0,
) -> tuple[float | None, tuple[Candidate, ...]]:
    """Capacity profiles as the autoscaler and placement use them.

    Returns the requests/s per replica the autoscaler sizes with (the replica-weighted
    capacity of what runs now, else that of the candidate cheapest per unit of capacity;
    None without profiles), and ``candidates`` priced per unit of capacity: each one's
    ``effective`` node price plus ``gpu_hour_price`` (USD) per GPU of the node, scaled by
    (best capacity / its capacity), those whose profile says they cannot meet the SLO
    dropped, cheapest first. Without profiles (none of the replicas' GPU count:
    ``profiles.applicable``) both are unchanged.
    """
    if not applicable(spec.profiles, spec.gpu.count):
        return None, tuple(candidates)
    per_gpu: dict[str, float] = {}  # replica_capacity depends on the offering's GPU only

    def capacity(offering: Offering) -> float:
        cap = per_gpu.get(offering.gpu)
        if cap is None:
            cap = per_gpu[offering.gpu] = replica_capacity(spec, offering)
        return cap

    caps: dict[PoolKey, float] = {}
    gpus: dict[PoolKey, int] = {}
    for c in candidates:
        offering = index.offerings.get((c.cluster, c.instance_type))
        if offering is not None:
            caps[c.key] = capacity(offering)
            gpus[c.key] = offering.gpus_per_node
    usable = [c for c in candidates if caps.get(c.key, 0.0) > 0]
    best = max((caps[c.key] for c in usable), default=0.0)
    shadow = max(0.0, gpu_hour_price)
    ranked = tuple(
        sorted(
            (
                _repriced(c, (c.effective + shadow * gpus[c.key]) * best / caps[c.key])
                for c in usable
            ),
            key=lambda c: (c.effective, c.order),
        )
    )
    weighted = 0.0
    count = 0
    for key, n in sticky.items():
        offering = index.offerings.get((key[0], key[1]))
        if offering is not None and n > 0:
            weighted += n * capacity(offering)
            count += n
    if count:
        return weighted / count, ranked
    if ranked:
        return caps[ranked[0].key], ranked
    return None, ranked


def _capacity_reasons(
    spec: DeploymentSpec, candidates: Sequence[Candidate], index: FleetIndex
) -> list[Reason]:
    """One reason per (cluster, offering) of ``candidates`` whose GPU type no applicable
    profile covers while others do (``profiles.capacity_basis``): ``CapacityEstimated``
    (sized from another type's profile, which one and by what factor) or
    ``NoCapacityProfile`` (no data-sheet figures to estimate from: not a candidate).
    Empty without profiles."""
    if not applicable(spec.profiles, spec.gpu.count):
        return []
    out: list[Reason] = []
    seen: set[tuple[str, str]] = set()
    for c in candidates:
        if (c.cluster, c.instance_type) in seen:
            continue
        seen.add((c.cluster, c.instance_type))
        offering = index.offerings.get((c.cluster, c.instance_type))
        if offering is None:
            continue
        basis = capacity_basis(spec, offering.gpu)
        if basis.kind == "Estimated" and basis.reference is not None:
            ref = capacity_basis(spec, basis.reference).capacity
            out.append(
                Reason(
                    R.CAPACITY_ESTIMATED,
                    f"no capacity profile for GPU {offering.gpu}: estimated at "
                    f"{basis.capacity:.3g} req/s per replica from the {basis.reference} "
                    f"profile ({ref:.3g} req/s x {basis.ratio:.2f}, the slower of the "
                    "memory-bandwidth and BF16 data-sheet ratios); profile it to replace "
                    "the estimate",
                    c.cluster,
                    c.instance_type,
                )
            )
        elif basis.kind == "NoFigures":
            out.append(
                Reason(
                    R.NO_CAPACITY_PROFILE,
                    f"no profile and no data-sheet figures for GPU {offering.gpu}: add a "
                    "profile (modelfleet profile) to use it",
                    c.cluster,
                    c.instance_type,
                )
            )
    return out


def _curve_view(
    spec: DeploymentSpec,
    sticky: Mapping[PoolKey, int],
    index: FleetIndex,
    ranked: Sequence[Candidate],
) -> tuple[CurvePoint, ...]:
    """The latency-vs-load curve the online correction reads: that of the most trusted
    profile of the one GPU type every replica runs on now (else of the candidate cheapest
    per unit of capacity); () when the replicas run on several GPU types (the fleet's
    latency is then the slowest type's, at a load the others share: no one curve reads
    it), when that profile has no curve, or without profiles."""
    if not applicable(spec.profiles, spec.gpu.count):
        return ()
    gpus: set[str] = set()
    for key, n in sticky.items():
        offering = index.offerings.get((key[0], key[1]))
        if offering is not None and n > 0:
            gpus.add(offering.gpu)
    if len(gpus) > 1:
        return ()
    gpu: str | None = next(iter(gpus)) if gpus else None
    if gpu is None and ranked:
        first = index.offerings.get((ranked[0].cluster, ranked[0].instance_type))
        gpu = first.gpu if first is not None else None
    profile = None if gpu is None else best_profile(spec.profiles, gpu, spec.gpu.count)
    return () if profile is None else profile.curve


def clear_memos() -> None:
    """Forget every memo the planner keeps across snapshots (the offering filter, repriced
    candidates, placements, solver answers): benchmarks measure cold plans with it. Never needed for
    correctness: every memo is keyed by all it reads."""
    clear_offering_passes()
    clear_place_memo()
    _repriced.cache_clear()
    clear_memo()


@functools.lru_cache(maxsize=4096)
def _repriced(candidate: Candidate, effective: float) -> Candidate:
    """``candidate`` at the ``effective`` price per unit of capacity. Memoised (pure, on
    immutable values): the same candidates are repriced the same way every pass."""
    return replace(candidate, effective=effective)


def _zone_fall_through(
    pools: tuple[NodePoolSize, ...], index: FleetIndex, now: datetime
) -> tuple[tuple[NodePoolSize, ...], list[Reason]]:
    """Pools restricted to their open zones where some zones of the offering are stocked
    out (fall-through zone -> zone within the pool; a pool with every zone out is not a
    candidate at all, so the plan falls through to another cluster, region or cloud)."""
    out: list[NodePoolSize] = []
    reasons: list[Reason] = []
    for pool in pools:
        cluster = index.clusters.get(pool.cluster)
        offering = index.offerings.get((pool.cluster, pool.instance_type))
        zones: tuple[str, ...] = ()
        if cluster is not None and offering is not None and cluster.stockouts:
            zones = open_zones(
                cluster.stockouts,
                pool.gpu,
                capacity_type=pool.capacity_type,
                instance_type=pool.instance_type,
                zones=offering.zones,
                now=now,
            )
        if zones:
            out.append(replace(pool, zones=zones))
            closed = [z for z in offering.zones if z not in zones] if offering else []
            reasons.append(
                Reason(
                    R.ZONE_STOCKOUT,
                    f"no capacity in {', '.join(closed)}: pool limited to {', '.join(zones)}",
                    pool.cluster,
                    pool.instance_type,
                    pool.capacity_type,
                )
            )
        else:
            out.append(pool)
    return tuple(out), reasons


def _cost(counts: Mapping[PoolKey, int], known: Mapping[PoolKey, Candidate]) -> float:
    """USD per hour of whole nodes for ``counts``."""
    return sum(-(-n // known[k].replicas_per_node) * known[k].price for k, n in counts.items())


def _release_on_demand(sticky: Mapping[PoolKey, int], *, keep: int) -> dict[PoolKey, int]:
    """Sticky replicas with on-demand ones beyond ``keep`` released (returning to spot)."""
    out: dict[PoolKey, int] = {}
    left = keep
    for key, n in sorted(sticky.items()):
        if key[2] != ON_DEMAND:
            out[key] = n
        elif left > 0:
            out[key] = min(n, left)
            left -= out[key]
    return out


def _unused(
    growth: Iterable[Candidate],
    counts: Mapping[PoolKey, int],
    index: FleetIndex,
    budget: bool,
    full: frozenset[str],
) -> list[Reason]:
    """A reason for every growth candidate left without replicas."""
    if not budget and not full:
        return [index.idle_reason(c) for c in growth if c.key not in counts]
    out = []
    for c in growth:
        if c.key in counts:
            continue
        if budget:
            out.append(
                Reason(
                    R.OVER_BUDGET,
                    "maxCostPerHour reached",
                    c.cluster,
                    c.instance_type,
                    c.capacity_type,
                )
            )
        elif c.region in full:
            out.append(
                Reason(
                    R.SPREAD_LIMIT,
                    f"region {c.region} at spread.maxReplicasPerRegion",
                    c.cluster,
                    c.instance_type,
                    c.capacity_type,
                )
            )
        else:
            out.append(index.idle_reason(c))
    return out


def _unplaced_reason(unplaced: int, wanted: int, reasons: Sequence[Reason]) -> Reason:
    tally: dict[str, int] = {}
    for r in reasons:
        if r.cluster and r.code not in (R.NOT_CHEAPEST, R.CAPACITY_ESTIMATED):
            tally[r.code] = tally.get(r.code, 0) + 1
    blockers = ", ".join(f"{code} x{n}" for code, n in sorted(tally.items())) or "none eligible"
    return Reason(
        R.UNPLACED,
        f"{unplaced} of {wanted} replica(s) could not be placed (candidates excluded: {blockers})",
    )


def _changes(
    ex: _Existing, existing: Sequence[ExistingPlacement], counts: Mapping[PoolKey, int]
) -> list[Reason]:
    out: list[Reason] = []
    for r in ex.retiring:
        code = r.reason.split(":", 1)[0]
        # Failing back, nothing replaces them: they serve on and become sticky again.
        what = (
            "lost" if r.lost else "kept serving" if code == R.CLUSTER_FAILING_BACK else "retiring"
        )
        out.append(
            Reason(
                code,
                f"{r.replicas} replica(s) {what}: {r.reason}",
                r.cluster,
                r.instance_type,
                r.capacity_type,
            )
        )
    before: dict[PoolKey, int] = {}
    for p in existing:
        pkey: PoolKey = (p.cluster, p.instance_type, p.capacity_type)
        before[pkey] = before.get(pkey, 0) + p.replicas
    for key in sorted(set(before) | set(counts)):
        delta = counts.get(key, 0) - before.get(key, 0)
        if delta > 0:
            out.append(Reason(R.PLACED, f"+{delta} replica(s)", *key))
        elif (delta < 0 and key in counts) or (delta < 0 and key in ex.sticky):
            out.append(Reason(R.REMOVED, f"{delta} replica(s) (scale-in, dearest first)", *key))
    return out
