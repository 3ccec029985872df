"""Exact placement under coupling constraints, against brute force (hypothesis).

Random small fleets (up to 3 clusters in up to 3 regions, 1-2 offerings each, optional
spot, quotas shared by on-demand and spot, capacity already booked by another deployment)
and specs with spread (minRegions, maxReplicasPerRegion), preferred regions, on-demand
base, warm standby, spot policies, a budget and region-loss tolerance. The brute force below restates every rule
of docs/decisions.md ("Exact placement") independently of the planner: it enumerates
every assignment of replicas to pools and keeps those meeting every hard constraint and
every requirement. Whenever one exists, the plan must meet them all too and cost no more
than the cheapest (effective price, preferred regions discounted 5%) within 0.5%.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

from core_builders import KEY, NOW
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfleet.core import (
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
    plan,
)
from modelfleet.core.types import PlannerSettings

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OTHER = "other/booked"


@st.composite
def fleets(draw: st.DrawFn) -> FleetSnapshot:
    clusters = []
    booked = []
    for i in range(draw(st.integers(1, 3))):
        offers = []
        for j in range(draw(st.integers(1, 2))):
            od = draw(st.integers(2, 40)) / 2
            spot = draw(st.one_of(st.none(), st.integers(1, 30).map(lambda p: p / 4)))
            quota = draw(st.one_of(st.none(), st.integers(1, 3)))
            offers.append(
                Offering(
                    "L40S", 48, draw(st.sampled_from([1, 2, 4])), f"it{i}-{j}", od, spot, quota
                )
            )
            if quota is not None and draw(st.booleans()):
                # Another deployment already holds nodes of this pool (the booking ledger).
                ct = draw(st.sampled_from(["OnDemand", "Spot"] if spot else ["OnDemand"]))
                booked.append(ExistingPlacement(OTHER, f"c{i}", f"it{i}-{j}", ct, 1, 1, nodes=1))
        clusters.append(
            ClusterView(
                name=f"c{i}",
                cloud="aws",
                region=draw(st.sampled_from(["r0", "r1", "r2"])),
                offerings=tuple(offers),
            )
        )
    return FleetSnapshot(tuple(clusters), tuple(booked))


@st.composite
def specs(draw: st.DrawFn) -> DeploymentSpec:
    n = draw(st.integers(1, 3))
    return DeploymentSpec(
        key=KEY,
        gpu=GpuNeed(1),
        scaling=ScalingPolicy(n, n),
        placement=PlacementPolicy(
            preferred_regions=draw(st.sampled_from([frozenset(), frozenset({"r1"})])),
            min_regions=draw(st.integers(1, 3)),
            max_replicas_per_region=draw(st.sampled_from([None, 1, 2, 3])),
            spot=draw(st.sampled_from(["Never", "Allowed", "Preferred"])),
            on_demand_base=draw(st.integers(0, 2)),
            max_cost_per_hour=draw(st.sampled_from([None, 15.0, 40.0])),
        ),
        failover=FailoverPolicy(
            warm_standby_replicas=draw(st.integers(0, 1)),
            tolerate_region_loss=draw(st.booleans()),
        ),
    )


@dataclass(frozen=True)
class Pool:
    key: tuple[str, str, str]
    region: str
    spot: bool
    price: float
    slots: int
    max_replicas: int  # whole nodes left for this deployment, times slots
    offering_nodes: int  # nodes left on the offering, on-demand and spot together


def pools_of(s: DeploymentSpec, fleet: FleetSnapshot, total: int) -> list[Pool]:
    out = []
    for c in fleet.clusters:
        for o in c.offerings:
            for ct, price in (("OnDemand", o.on_demand_per_hour), ("Spot", o.spot_per_hour)):
                if price is None or (ct == "Spot" and s.placement.spot == "Never"):
                    continue
                # maxNodes is shared by the offering's on-demand and spot nodes.
                used = sum(
                    p.nodes or 0
                    for p in fleet.placements
                    if (p.cluster, p.instance_type) == (c.name, o.instance_type)
                )
                nodes = total if o.max_nodes is None else max(0, o.max_nodes - used)
                out.append(
                    Pool(
                        (c.name, o.instance_type, ct),
                        c.region,
                        ct == "Spot",
                        price,
                        o.gpus_per_node,
                        nodes * o.gpus_per_node,
                        nodes,
                    )
                )
    return out


def effective(s: DeploymentSpec, pool: Pool) -> float:
    return pool.price * (0.95 if pool.region in s.placement.preferred_regions else 1.0)


def meets_everything(
    s: DeploymentSpec, pools: list[Pool], x: dict[tuple[str, str, str], int]
) -> bool:
    """Every hard constraint and every requirement, restated from docs/decisions.md."""
    pol, fo = s.placement, s.failover
    main = s.scaling.min_replicas
    standby = fo.warm_standby_replicas
    by = {p.key: p for p in pools}
    placed = sum(x.values())
    regions: dict[str, int] = {}
    for k, n in x.items():
        if n:
            regions[by[k].region] = regions.get(by[k].region, 0) + n
        if n > by[k].max_replicas:
            return False
    offering_nodes: dict[tuple[str, str], int] = {}
    for k, n in x.items():
        offering_nodes[k[:2]] = offering_nodes.get(k[:2], 0) + math.ceil(n / by[k].slots)
    left = {q.key[:2]: q.offering_nodes for q in pools}
    if any(n > left[o] for o, n in offering_nodes.items()):
        return False
    cost = sum(math.ceil(n / by[k].slots) * by[k].price for k, n in x.items())
    if pol.max_cost_per_hour is not None and cost > pol.max_cost_per_hour + 1e-9:
        return False
    if pol.max_replicas_per_region is not None and any(
        n > pol.max_replicas_per_region for n in regions.values()
    ):
        return False
    if placed < main + standby:
        return False
    if not fo.tolerate_region_loss and placed != main + standby:
        return False
    if len(regions) < min(pol.min_regions, main):
        return False
    if sum(n for k, n in x.items() if not by[k].spot) < min(pol.on_demand_base, main):
        return False
    if placed - max(regions.values(), default=0) < standby:
        return False
    spot_regions = {by[k].region for k, n in x.items() if n and by[k].spot}
    spot = sum(n for k, n in x.items() if by[k].spot)
    offered = {p.region for p in pools if p.spot and p.max_replicas > 0}
    if spot >= 2 and len(spot_regions) < 2 and offered - spot_regions:
        return False
    if fo.tolerate_region_loss:
        every = {p.region for p in pools}
        if any(placed - regions.get(r, 0) < main for r in every):
            return False
    return True


def brute_force(s: DeploymentSpec, fleet: FleetSnapshot) -> tuple[float, int] | None:
    """(least on-demand replicas under Preferred, then least effective cost) over every
    assignment meeting everything, or None when none does."""
    main = s.scaling.min_replicas
    base_total = main + s.failover.warm_standby_replicas
    top = base_total + (main if s.failover.tolerate_region_loss else 0)
    pools = pools_of(s, fleet, top)
    best: tuple[float, int] | None = None
    for total in range(base_total, top + 1):
        for combo in itertools.combinations_with_replacement(range(len(pools)), total):
            x: dict[tuple[str, str, str], int] = {}
            for i in combo:
                x[pools[i].key] = x.get(pools[i].key, 0) + 1
            if not meets_everything(s, pools, x):
                continue
            od = sum(n for k, n in x.items() if k[2] == "OnDemand")
            eff = sum(
                math.ceil(n / p.slots) * effective(s, p) for p in pools if (n := x.get(p.key, 0))
            )
            rank = (od if s.placement.spot == "Preferred" else 0, eff)
            if best is None or rank < (best[1], best[0]):
                best = (eff, rank[0])
    return best


def run(s: DeploymentSpec, fleet: FleetSnapshot) -> Plan:
    # The blast-radius spread (a price in the objective, not a rule of the brute force
    # below) is off here; test_core_spread.py checks it against its own brute force.
    return plan(
        s,
        fleet,
        metrics=MetricsSnapshot(),
        state=DecisionState(),
        now=NOW,
        settings=PlannerSettings(region_spread_price_factor=0.0),
    )


@SETTINGS
@given(s=specs(), fleet=fleets())
def test_plan_is_the_brute_force_optimum_under_every_coupling_constraint(
    s: DeploymentSpec, fleet: FleetSnapshot
) -> None:
    p = run(s, fleet)
    main = s.scaling.min_replicas
    top = main + s.failover.warm_standby_replicas + main
    pools = pools_of(s, fleet, top)
    x = {(d.cluster, d.instance_type, d.capacity_type): d.replicas for d in p.placements}
    by = {q.key: q for q in pools}
    # Hard constraints hold on every case: known pools, quotas net of booked nodes, caps,
    # budget.
    assert set(x) <= set(by), set(x) - set(by)
    for k, n in x.items():
        assert n <= by[k].max_replicas, (k, n)
    on_offering: dict[tuple[str, str], int] = {}
    for k, n in x.items():
        on_offering[k[:2]] = on_offering.get(k[:2], 0) + math.ceil(n / by[k].slots)
    for o, nodes in on_offering.items():
        assert nodes <= by[(*o, "OnDemand")].offering_nodes, (o, nodes)
    if s.placement.max_cost_per_hour is not None:
        assert p.cost_per_hour <= s.placement.max_cost_per_hour + 1e-9
    cap = s.placement.max_replicas_per_region
    if cap is not None:
        per_region: dict[str, int] = {}
        for k, n in x.items():
            per_region[by[k].region] = per_region.get(by[k].region, 0) + n
        assert max(per_region.values(), default=0) <= cap
    best = brute_force(s, fleet)
    if best is None:
        return
    eff, od = best
    assert meets_everything(s, pools, x), (x, p.reasons)
    got = sum(math.ceil(n / by[k].slots) * effective(s, by[k]) for k, n in x.items())
    if s.placement.spot == "Preferred":
        assert sum(n for k, n in x.items() if k[2] == "OnDemand") == od
    assert got <= eff * 1.005 + 1e-9, (got, eff, x, p.placement_method)
    assert p.unplaced == 0


def test_spot_preferred_takes_spot_even_where_it_costs_more_than_on_demand() -> None:
    """Regression (found by the property above): 2 replicas, minRegions 2, spot Preferred.
    c0 (r0) sells L40S on-demand only at $1.50/h; c1 (r1) on-demand at $1.00/h or spot at
    $1.25/h, one node in all (maxNodes shared by both pools). Both regions need a replica,
    so c0 holds one on-demand; c1's single node is either on-demand ($2.50 in all) or spot
    ($2.75). docs/decisions.md section 3: `Preferred` is spot first wherever available,
    i.e. the fewest on-demand replicas before the least cost (`Allowed` is the policy in
    which price alone decides, and picks on-demand here): c0 on-demand + c1 spot.

    The planner used to answer c0 + c1 on-demand: HiGHS 1.16 returned the greedy seed as
    "Optimal" under a misreported objective; core.solver now re-solves unseeded when an
    answer's own objective is not within the gaps of HiGHS's dual bound."""
    spec = DeploymentSpec(
        key=KEY,
        gpu=GpuNeed(1),
        scaling=ScalingPolicy(2, 2),
        placement=PlacementPolicy(min_regions=2, spot="Preferred"),
    )
    fleet = FleetSnapshot(
        (
            ClusterView(
                "c0", "aws", "r0", offerings=(Offering("L40S", 48, 1, "it0-0", 1.5, None, None),)
            ),
            ClusterView(
                "c1", "aws", "r1", offerings=(Offering("L40S", 48, 1, "it1-0", 1.0, 1.25, 1),)
            ),
        )
    )
    expected = {("c0", "it0-0", "OnDemand"): 1, ("c1", "it1-0", "Spot"): 1}
    p = run(spec, fleet)
    assert {(d.cluster, d.instance_type, d.capacity_type): d.replicas for d in p.placements} == (
        expected
    )
    assert p.cost_per_hour == 2.75 and p.placement_method == "solver"
    assert brute_force(spec, fleet) == (2.75, 1)  # $2.75, one on-demand replica
    # Under Allowed price alone decides: c1's node goes on-demand.
    allowed = replace(spec, placement=replace(spec.placement, spot="Allowed"))
    q = run(allowed, fleet)
    assert {(d.cluster, d.capacity_type) for d in q.placements} == {
        ("c0", "OnDemand"),
        ("c1", "OnDemand"),
    }
    assert q.cost_per_hour == 2.5


@SETTINGS
@given(s=specs(), fleet=fleets())
def test_solver_plans_are_deterministic(s: DeploymentSpec, fleet: FleetSnapshot) -> None:
    first = run(s, fleet)
    assert run(s, FleetSnapshot(fleet.clusters, fleet.placements)) == first


def test_worked_example_min_regions_joint_optimum_beats_the_phases() -> None:
    """docs/decisions.md: 4 replicas over two regions. The phases fill region a with one
    4-slot node ($10), then add region b's cheapest node (1 slot, $4) and trim one replica
    from a: $14. The optimum pairs a 2-slot node in each region: $6 + $5.50 = $11.50."""
    from core_builders import cluster, offering, placed, spec
    from core_builders import run as run_fleet

    from modelfleet.core.placement import PlaceOptions, place

    fleet = [
        cluster("a", offering("a4", per_node=4, od=10.0), offering("a2", per_node=2, od=6.0)),
        cluster("b", offering("b2", per_node=2, od=5.5), offering("b1", per_node=1, od=4.0)),
    ]
    p = run_fleet(spec(4, 4, min_regions=2), fleet)
    assert placed(p) == {("a", "a2", "OnDemand"): 2, ("b", "b2", "OnDemand"): 2}
    assert p.cost_per_hour == 11.5 and p.placement_method == "solver"
    # The old phases, on the same candidates, pay $14.
    from modelfleet.core.candidates import eligibility

    fl = FleetSnapshot(tuple(fleet))
    s = spec(4, 4, min_regions=2)
    elig = eligibility(fl, s, NOW)
    old = place(
        s,
        main=4,
        standby=0,
        growth=elig.candidates,
        known=elig.known,
        sticky={},
        free=elig.quota,
        own_nodes={},
        on_demand_base=0,
        options=PlaceOptions(greedy=True),
    )
    assert old.counts == {("a", "a4", "OnDemand"): 3, ("b", "b1", "OnDemand"): 1}


def test_capacity_booked_by_other_deployments_is_honoured() -> None:
    """Nodes other deployments hold (FleetSnapshot.placements, the booking ledger of the
    pass) count against quotas on both paths: the fast path and the solver."""
    from core_builders import cluster, offering, placed, spec
    from core_builders import run as run_fleet

    fleet = [
        cluster("a", offering("g1", od=1.0, max_nodes=3)),
        cluster("b", offering("g1", od=2.0, max_nodes=3)),
        cluster("c", offering("g1", od=3.0)),
        cluster("d", offering("g1", od=4.0)),
    ]
    booked = (
        ExistingPlacement(OTHER, "a", "g1", "OnDemand", 2, 2, nodes=2),
        ExistingPlacement(OTHER, "b", "g1", "OnDemand", 3, 3, nodes=3),
    )
    fast = run_fleet(spec(3, 3), fleet, placements=booked)
    assert fast.placement_method == "greedy"
    assert placed(fast) == {("a", "g1", "OnDemand"): 1, ("c", "g1", "OnDemand"): 2}
    solved = run_fleet(spec(3, 3, max_replicas_per_region=1), fleet, placements=booked)
    assert solved.placement_method == "solver"
    assert placed(solved) == {
        ("a", "g1", "OnDemand"): 1,
        ("c", "g1", "OnDemand"): 1,
        ("d", "g1", "OnDemand"): 1,
    }


def test_region_loss_tolerance_keeps_demand_outside_every_region_and_prices_it() -> None:
    from core_builders import cluster, offering, placed, spec
    from core_builders import run as run_fleet

    fleet = [
        cluster("a", offering(od=1.0)),
        cluster("b", offering(od=2.0)),
        cluster("c", offering(od=3.0)),
    ]
    plain = run_fleet(spec(4, 4), fleet)
    assert placed(plain) == {("a", "g1", "OnDemand"): 4}
    tolerant = run_fleet(spec(4, 4, failover={"tolerate_region_loss": True}), fleet)
    counts = placed(tolerant)
    by_region = {k[0]: n for k, n in counts.items()}
    total = sum(by_region.values())
    assert all(total - n >= 4 for n in by_region.values())
    # Cheapest tolerant plan: 4 in a, 4 in b ($12) beats 2/2/2 over three regions ($12 too,
    # but needs c at $3): either way $12, i.e. $8/h of headroom over the plain $4.
    assert tolerant.cost_per_hour == 12.0
    assert tolerant.headroom_cost_per_hour == 8.0
    assert tolerant.to_dict()["headroomCostPerHour"] == 8.0
    alone = run_fleet(spec(2, 2, failover={"tolerate_region_loss": True}), fleet[:1])
    assert "RegionLossUncovered" in {r.code for r in alone.reasons}
    assert placed(alone) == {("a", "g1", "OnDemand"): 2}


def test_solver_limit_is_reported_and_the_plan_still_holds_the_hard_constraints() -> None:
    from core_builders import cluster, offering, spec

    from modelfleet.core.types import PlannerSettings

    fleet = FleetSnapshot(
        (
            cluster("a", offering("a4", per_node=4, od=10.0), offering("a2", per_node=2, od=6.0)),
            cluster("b", offering("b2", per_node=2, od=5.0), offering("b1", per_node=1, od=4.0)),
        )
    )
    s = spec(4, 4, min_regions=2, max_cost_per_hour=20.0)
    p = plan(
        s,
        fleet,
        metrics=MetricsSnapshot(),
        state=DecisionState(),
        now=NOW,
        settings=PlannerSettings(solver_time_limit_seconds=0.0),
    )
    assert "SolverLimit" in {r.code for r in p.reasons}
    assert p.placement_method in ("solver-limit", "greedy-fallback")
    assert p.cost_per_hour <= 20.0 and p.placed_replicas == 4
