"""The blast-radius spread (docs/decisions.md section 4): the replicas already paid for
(main + standby) are placed so that losing any one region leaves capacity for the demand
without headroom, priced in the placement's cost tier and never adding a replica.

Table-driven at the solver (exact answers worked out by hand in each row's comment) and
at the planner (which deployments get it, what it is computed from, how to turn it off).
"""

from __future__ import annotations

import itertools
import math

import pytest
from core_builders import NOW, cluster, offering, placed, spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfleet.core import DecisionState, FleetSnapshot, MetricsSnapshot, plan
from modelfleet.core.solver import Pool, Problem, evaluate, solve
from modelfleet.core.types import PlannerSettings


def pool(region: str, price: float, slots: int = 1) -> Pool:
    return Pool((region, "g", "OnDemand"), region, False, price, price, slots, None)


ABC = (pool("a", 1.0), pool("b", 2.0), pool("c", 3.0))


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        # Off: the cheapest packing, 6 x $1.
        (Problem(ABC, main=6), {"a": 6}),
        # Demand 4 of 6: no region may hold more than 2. 2/2/2 costs $12 with nothing
        # uncovered; 3/2/1 costs $10 + 1 unit x $10 = $20.
        (Problem(ABC, main=6, spread_demand=4, spread_price=10), {"a": 2, "b": 2, "c": 2}),
        # Same demand, a unit priced at $0.50: moving a replica from a to b costs $1/h and
        # saves $0.50, so the packing stays ($6 + 4 x $0.50 = $8 vs 5/1/0: $7 + $1.50).
        (Problem(ABC, main=6, spread_demand=4, spread_price=0.5), {"a": 6}),
        # Demand 5 of 6 over three regions: every region can hold only 1 without a
        # shortfall; the worst region's is priced. 2/2/2 ($12 + 1 x $10) beats 4/1/1
        # ($9 + 3 x $10): a sum over regions would rate them equal (3 units each).
        (Problem(ABC, main=6, spread_demand=5, spread_price=10), {"a": 2, "b": 2, "c": 2}),
        # One region only: nothing to spread over, nothing priced.
        (Problem(ABC[:1], main=3, spread_demand=2, spread_price=10), {"a": 3}),
        # Tolerance replaces the spread: full cover with headroom on top (demand 3 outside
        # every region: 3 in a and 3 in b, $9, beats 2/2/1 at $11 with c at $5).
        (
            Problem(
                (pool("a", 1.0), pool("b", 2.0), pool("c", 5.0)),
                main=3,
                tolerate_region_loss=True,
                demand=3,
                spread_demand=1,
                spread_price=9,
            ),
            {"a": 3, "b": 3},
        ),
    ],
)
def test_spread_places_the_paid_replicas_across_regions(
    problem: Problem, expected: dict[str, int]
) -> None:
    sol = solve(problem)
    assert sol.status == "Optimal"
    assert {k[0]: n for k, n in sol.counts.items()} == expected
    # Never a replica beyond main + standby for the spread.
    if not problem.tolerate_region_loss:
        assert sum(sol.counts.values()) == problem.main + problem.standby


def test_whole_nodes_are_not_bought_to_spread() -> None:
    """An 8-slot node in region b costs $8/h: covering 2.5 units of spread demand priced at
    $1 is worth $2.50, so the replicas stay on region a's 1-slot nodes."""
    big = Pool(("b", "g8", "OnDemand"), "b", False, 8.0, 8.0, 8, None)
    problem = Problem((pool("a", 1.0), big), main=3, spread_demand=2.5, spread_price=1.0)
    sol = solve(problem)
    assert {k[0]: n for k, n in sol.counts.items()} == {"a": 3}
    assert sol.shortfall.spread == {"a": 2.5}


@pytest.mark.parametrize(
    ("counts", "short"),
    [
        ({"a": 6}, {"a": 4.0}),
        ({"a": 3, "b": 3}, {"a": 1.0, "b": 1.0}),
        ({"a": 2, "b": 2, "c": 2}, {}),
    ],
)
def test_evaluate_reports_demand_each_region_loss_leaves_uncovered(
    counts: dict[str, int], short: dict[str, float]
) -> None:
    problem = Problem(ABC, main=6, spread_demand=4, spread_price=1)
    got = evaluate(problem, {(r, "g", "OnDemand"): n for r, n in counts.items()})
    assert dict(got.spread) == pytest.approx(short)
    # Priced in the cost tier, not a soft requirement of tier 2.
    assert got.total() == 0


FOUR = [
    cluster("a", offering(od=1.0)),
    cluster("b", offering(od=1.1)),
    cluster("c", offering(od=1.2)),
    cluster("d", offering(od=1.3)),
]


def regions_of(p: object) -> dict[str, int]:
    return {k[0]: n for k, n in placed(p).items()}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "factor", "expected"),
    [
        # minRegions 2 + one standby: 4 + 1 replicas, demand 4 / 1.2 = 3.33, so no region
        # should hold more than 1.67. 2/2/1 ($5.40 + 0.33 x $1.30) beats 2/1/1/1 ($5.60 +
        # the same) and the packing 4 + standby 1 ($5.10 + 2.33 x $1.30).
        (
            {"min_regions": 2, "failover": {"warm_standby_replicas": 1}},
            1.0,
            {"a": 2, "b": 2, "c": 1},
        ),
        # The same with the spread turned off: the packing (standby outside region a).
        ({"min_regions": 2, "failover": {"warm_standby_replicas": 1}}, 0.0, {"a": 4, "b": 1}),
        # A deployment that does not ask to survive a region keeps the cheapest packing.
        ({}, 1.0, {"a": 4}),
        # A warm standby alone asks for it.
        ({"failover": {"warm_standby_replicas": 1}}, 1.0, {"a": 2, "b": 2, "c": 1}),
    ],
)
def test_planner_spreads_deployments_that_ask_to_survive_a_region(
    kwargs: dict[str, object], factor: float, expected: dict[str, int]
) -> None:
    s = spec(4, 8, **kwargs)  # type: ignore[arg-type]
    p = plan(
        s,
        FleetSnapshot(tuple(FOUR), ()),
        metrics=MetricsSnapshot(),
        state=DecisionState(),
        now=NOW,
        settings=PlannerSettings(region_spread_price_factor=factor),
    )
    assert p.desired_replicas == 4
    assert regions_of(p) == expected


@st.composite
def spread_problems(draw: st.DrawFn) -> Problem:
    pools = []
    for i in range(draw(st.integers(2, 4))):
        region = draw(st.sampled_from("abc"))
        slots = draw(st.sampled_from([1, 1, 2, 4]))
        price = draw(st.sampled_from([1.0, 1.5, 2.0, 3.0, 5.0])) * slots
        pools.append(Pool((region, f"g{i}", "OnDemand"), region, False, price, price, slots, 3))
    main = draw(st.integers(1, 5))
    demand = main / draw(st.sampled_from([1.0, 1.2, 1.5, 2.0]))
    return Problem(
        tuple(pools),
        main=main,
        spread_demand=demand,
        spread_price=draw(st.sampled_from([0.5, 1.0, 4.0, 12.0])),
    )


def brute_force(problem: Problem) -> float:
    """Least node cost + price x the worst region's uncovered demand, over every way to
    put exactly ``main`` replicas on the pools within their node limits."""
    pools = problem.pools
    best = math.inf
    for x in itertools.product(*(range(p.slots * (p.max_nodes or 0) + 1) for p in pools)):
        if sum(x) != problem.main:
            continue
        by_region: dict[str, int] = {}
        for p, n in zip(pools, x, strict=True):
            by_region[p.region] = by_region.get(p.region, 0) + n
        nodes = sum(math.ceil(n / p.slots) * p.effective for p, n in zip(pools, x, strict=True))
        regions = {p.region for p in pools}
        worst = 0.0
        if len(regions) > 1:
            worst = max(
                max(0.0, problem.spread_demand - (problem.main - by_region.get(r, 0)))
                for r in regions
            )
        best = min(best, nodes + problem.spread_price * worst)
    return best


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=spread_problems())
def test_spread_is_the_brute_force_optimum(problem: Problem) -> None:
    sol = solve(problem)
    by_key = {p.key: p for p in problem.pools}
    nodes = sum(math.ceil(n / by_key[k].slots) * by_key[k].effective for k, n in sol.counts.items())
    worst = max(sol.shortfall.spread.values(), default=0.0)
    best = brute_force(problem)
    if math.isinf(best):
        assert sol.shortfall.unplaced > 0
        return
    assert sum(sol.counts.values()) == problem.main
    assert nodes + problem.spread_price * worst == pytest.approx(best, rel=1e-6, abs=1e-6)
