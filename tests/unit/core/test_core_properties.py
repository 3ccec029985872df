"""Invariants of ``core.plan`` over random small fleets (hypothesis).

Each property restates a rule of docs/decisions.md independently of the implementation:
hard constraints always hold, replica bounds, determinism, nothing on Failed clusters or
active stockouts, on-demand base, no scale-down on missing metrics, and cost optimality
against brute force where the greedy is proven exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from core_builders import KEY, NOW
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfleet.core import (
    ClusterSignals,
    ClusterView,
    DecisionState,
    DeploymentSpec,
    ExistingPlacement,
    FailoverPolicy,
    FleetSnapshot,
    GpuNeed,
    MetricsSnapshot,
    Offering,
    PlacementPolicy,
    Plan,
    ScalingPolicy,
    StockoutMark,
    plan,
)
from modelfleet.core import reasons as R
from modelfleet.core.cover import INF, Option, brute_force_cover
from modelfleet.core.types import CapacityType

GPUS = ["H100", "A100", "L40S"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def offerings(draw: st.DrawFn, name: str) -> Offering:
    gpu = draw(st.sampled_from(GPUS))
    od = draw(st.integers(1, 40)) / 2
    spot = draw(st.one_of(st.none(), st.integers(1, 40).map(lambda p: p / 4)))
    return Offering(
        gpu,
        draw(st.sampled_from([24, 48, 80])),
        draw(st.sampled_from([1, 2, 4, 8])),
        name,
        od,
        spot,
        draw(st.one_of(st.none(), st.integers(0, 3))),
    )


@st.composite
def clusters(draw: st.DrawFn, index: int, *, one_region: bool, healthy: bool) -> ClusterView:
    offers = tuple(draw(offerings(f"it{index}-{j}")) for j in range(draw(st.integers(1, 3))))
    health = (
        "Healthy" if healthy else draw(st.sampled_from(["Healthy", "Healthy", "Suspect", "Failed"]))
    )
    stockouts: tuple[StockoutMark, ...] = ()
    if not healthy and draw(st.booleans()):
        o = offers[0]
        until = NOW + timedelta(seconds=draw(st.integers(-100, 300)))
        stockouts = (StockoutMark(o.gpu, draw(st.sampled_from(["OnDemand", "Spot"])), until),)
    return ClusterView(
        name=f"c{index}",
        cloud=draw(st.sampled_from(["aws", "gcp"])),
        region="r0" if one_region else draw(st.sampled_from(["r0", "r1", "r2"])),
        offerings=offers,
        health=health,  # type: ignore[arg-type]
        health_since=NOW - timedelta(seconds=10),
        last_success=NOW - timedelta(seconds=10),
        stockouts=stockouts,
    )


@st.composite
def fleets(draw: st.DrawFn, *, one_region: bool = False, healthy: bool = False) -> FleetSnapshot:
    n = draw(st.integers(1, 3))
    return FleetSnapshot(
        tuple(draw(clusters(i, one_region=one_region, healthy=healthy)) for i in range(n))
    )


@st.composite
def specs(draw: st.DrawFn, *, simple: bool = False) -> DeploymentSpec:
    lo = draw(st.integers(0, 4))
    hi = lo + draw(st.integers(0 if lo else 1, 6))
    types = draw(st.one_of(st.none(), st.sets(st.sampled_from(GPUS), min_size=1)))
    return DeploymentSpec(
        key=KEY,
        gpu=GpuNeed(
            draw(st.integers(1, 2)),
            draw(st.sampled_from([None, 40.0])),
            frozenset(types) if types else None,
        ),
        scaling=ScalingPolicy(lo, hi, ttft_p95_ms=200.0),
        placement=PlacementPolicy(
            clouds=None if simple else draw(st.sampled_from([None, frozenset({"aws"})])),
            min_regions=1 if simple else draw(st.integers(1, 3)),
            max_replicas_per_region=None if simple else draw(st.sampled_from([None, 2, 3])),
            spot=draw(
                st.sampled_from(
                    ["Never", "Allowed"] if simple else ["Never", "Allowed", "Preferred"]
                )
            ),
            on_demand_base=0 if simple else draw(st.integers(0, 2)),
            max_cost_per_hour=None if simple else draw(st.sampled_from([None, 10.0, 40.0])),
        ),
        failover=FailoverPolicy(warm_standby_replicas=0 if simple else draw(st.integers(0, 1))),
    )


@dataclass(frozen=True)
class Pool:
    cluster: ClusterView
    offering: Offering
    capacity_type: CapacityType

    @property
    def price(self) -> float:
        p = self.offering.price(self.capacity_type)
        assert p is not None
        return p


def feasible_pools(s: DeploymentSpec, fleet: FleetSnapshot) -> list[Pool]:
    """Every pool satisfying the hard constraints, computed independently of the planner."""
    out = []
    for c in fleet.clusters:
        if c.health != "Healthy" or c.cordoned:
            continue
        if s.placement.clouds is not None and c.cloud not in s.placement.clouds:
            continue
        for o in c.offerings:
            if s.gpu.types is not None and o.gpu not in s.gpu.types:
                continue
            if s.gpu.memory_gib is not None and o.gpu_memory_gib < s.gpu.memory_gib:
                continue
            if o.gpus_per_node < s.gpu.count or o.max_nodes == 0:
                continue
            cts: tuple[CapacityType, ...] = ("OnDemand", "Spot")
            for ct in cts:
                if o.price(ct) is None or (ct == "Spot" and s.placement.spot == "Never"):
                    continue
                if any(m.covers(o.gpu, ct, o.instance_type) and m.until > NOW for m in c.stockouts):
                    continue
                out.append(Pool(c, o, ct))
    return out


def run(
    s: DeploymentSpec,
    fleet: FleetSnapshot,
    *,
    metrics: MetricsSnapshot | None = None,
    state: DecisionState | None = None,
) -> Plan:
    return plan(
        s, fleet, metrics=metrics or MetricsSnapshot(), state=state or DecisionState(), now=NOW
    )


@SETTINGS
@given(s=specs(), fleet=fleets())
def test_every_placement_satisfies_the_hard_constraints(
    s: DeploymentSpec, fleet: FleetSnapshot
) -> None:
    p = run(s, fleet)
    allowed = {
        (q.cluster.name, q.offering.instance_type, q.capacity_type): q
        for q in feasible_pools(s, fleet)
    }
    for d in p.placements:
        key = (d.cluster, d.instance_type, d.capacity_type)
        assert key in allowed, f"{key} violates a hard constraint"
        rpn = allowed[key].offering.gpus_per_node // s.gpu.count
        assert d.replicas_per_node == rpn
        max_nodes = allowed[key].offering.max_nodes
        assert max_nodes is None or math.ceil(d.replicas / rpn) <= max_nodes
    # maxNodes is shared by the offering's on-demand and spot nodes.
    nodes: dict[tuple[str, str], int] = {}
    for d in p.placements:
        offering = (d.cluster, d.instance_type)
        nodes[offering] = nodes.get(offering, 0) + math.ceil(d.replicas / d.replicas_per_node)
    offerings = {key[:2]: q.offering for key, q in allowed.items()}
    for offering, n in nodes.items():
        limit = offerings[offering].max_nodes
        assert limit is None or n <= limit, (offering, n)
    if s.placement.max_cost_per_hour is not None:
        assert p.cost_per_hour <= s.placement.max_cost_per_hour + 1e-9
    assert p.cost_per_hour == sum(n.nodes * n.price_per_node_hour for n in p.node_pools)


@SETTINGS
@given(s=specs(), fleet=fleets())
def test_replica_bounds_and_accounting(s: DeploymentSpec, fleet: FleetSnapshot) -> None:
    p = run(s, fleet)
    assert s.scaling.min_replicas <= p.desired_replicas <= s.scaling.max_replicas
    assert p.placed_replicas + p.unplaced == p.desired_replicas + p.standby_replicas
    pools = feasible_pools(s, fleet)
    budget = s.placement.max_cost_per_hour
    # Without a budget, replicas go unplaced only when the feasible capacity (or spread
    # rules) cannot hold them.
    if budget is None and p.unplaced and s.placement.max_replicas_per_region is None:
        # One offering's on-demand and spot pools share its maxNodes: count it once.
        offerings = {(q.cluster.name, q.offering.instance_type): q.offering for q in pools}
        capacity = sum(
            (o.max_nodes or 10**6) * (o.gpus_per_node // s.gpu.count) for o in offerings.values()
        )
        if p.unplaced > p.standby_replicas:  # serving replicas left out: capacity is full
            assert p.placed_replicas == capacity
        else:  # only standby is missing: the plan says why
            assert any(r.code == R.STANDBY_UNAVAILABLE for r in p.reasons), p.reasons


@SETTINGS
@given(s=specs(), fleet=fleets())
def test_deterministic_even_across_fresh_snapshots(s: DeploymentSpec, fleet: FleetSnapshot) -> None:
    first = run(s, fleet)
    assert run(s, fleet) == first  # memoised path
    assert run(s, FleetSnapshot(fleet.clusters, fleet.placements)) == first  # fresh index


@SETTINGS
@given(s=specs(), fleet=fleets(), data=st.data())
def test_nothing_new_on_failed_clusters_or_active_stockouts(
    s: DeploymentSpec, fleet: FleetSnapshot, data: st.DataObject
) -> None:
    # Existing replicas anywhere, including on Failed clusters.
    c = data.draw(st.sampled_from(fleet.clusters))
    o = data.draw(st.sampled_from(c.offerings))
    ex = ExistingPlacement(KEY, c.name, o.instance_type, "OnDemand", 2, 2)
    p = run(s, FleetSnapshot(fleet.clusters, (ex,)))
    by_name = {cl.name: cl for cl in fleet.clusters}
    for d in p.placements:
        cl = by_name[d.cluster]
        assert cl.health != "Failed"
        sticky = (d.cluster, d.instance_type, d.capacity_type) == (
            c.name,
            o.instance_type,
            "OnDemand",
        )
        if not sticky:
            assert cl.health == "Healthy"
            assert not any(
                m.covers(d.gpu, d.capacity_type, d.instance_type) and m.until > NOW
                for m in cl.stockouts
            )
    if c.health == "Failed":
        assert any(r.lost and r.cluster == c.name for r in p.retiring)


@SETTINGS
@given(s=specs(), fleet=fleets())
def test_on_demand_base_is_respected_when_capacity_and_budget_allow(
    s: DeploymentSpec, fleet: FleetSnapshot
) -> None:
    p = run(s, fleet)
    want = min(s.placement.on_demand_base, p.desired_replicas)
    od_capacity = sum(
        (q.offering.max_nodes if q.offering.max_nodes is not None else 10**6)
        * (q.offering.gpus_per_node // s.gpu.count)
        for q in feasible_pools(s, fleet)
        if q.capacity_type == "OnDemand"
    )
    if s.placement.max_cost_per_hour is None and od_capacity >= want:
        assert sum(d.replicas for d in p.placements if d.capacity_type == "OnDemand") >= want
    if s.placement.spot == "Never":
        assert all(d.capacity_type == "OnDemand" for d in p.placements)


@SETTINGS
@given(s=specs(), current=st.integers(1, 8), missing=st.sampled_from(["none", "partial", "stale"]))
def test_missing_or_stale_metrics_never_scale_down(
    s: DeploymentSpec, current: int, missing: str
) -> None:
    fleet = FleetSnapshot((ClusterView("c0", "aws", "r0", (Offering("H100", 80, 8, "x", 1.0),)),))
    sig = {
        "none": {},
        "partial": {"c0": ClusterSignals(current, ttft_p95_ms=None, request_rate=1.0)},
        "stale": {
            "c0": ClusterSignals(current, 1.0, 1.0, 0.0, 0.0, observed_at=NOW - timedelta(hours=1))
        },
    }[missing]
    state = DecisionState(last_desired=current)
    p = run(s, fleet, metrics=MetricsSnapshot({KEY: sig}, observed_at=NOW), state=state)
    assert p.desired_replicas >= min(current, s.scaling.max_replicas)


@settings(max_examples=300, deadline=None)
@given(s=specs(simple=True), fleet=fleets(one_region=True, healthy=True))
def test_cost_equals_brute_force_optimum_in_the_exact_case(
    s: DeploymentSpec, fleet: FleetSnapshot
) -> None:
    """One region, no spread/base/standby/budget/stickiness: the plan is the optimum."""
    p = run(s, fleet)
    # An offering's two capacity types share its maxNodes and hold the same replicas per
    # node, so the cheaper one dominates: one option per offering.
    cheapest: dict[tuple[str, str], Pool] = {}
    for q in feasible_pools(s, fleet):
        key = (q.cluster.name, q.offering.instance_type)
        if key not in cheapest or q.price < cheapest[key].price:
            cheapest[key] = q
    options = [
        Option(q.offering.gpus_per_node // s.gpu.count, q.price, q.offering.max_nodes)
        for q in cheapest.values()
    ]
    best = brute_force_cover(p.desired_replicas, options)
    if best == INF:  # cannot hold them all: placed is the most that fits
        assert p.unplaced > 0
        assert brute_force_cover(p.placed_replicas + 1, options) == INF
        assert p.cost_per_hour <= brute_force_cover(p.placed_replicas, options) + 1e-9
    else:
        assert p.unplaced == 0
        assert abs(p.cost_per_hour - best) < 1e-9, (p.cost_per_hour, best)
