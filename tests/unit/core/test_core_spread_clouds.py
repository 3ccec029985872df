"""The blast-radius spread counted in capacity and over clouds' spot (docs/decisions.md
section 4, "Blast-radius spread"): a region row per region and a row per cloud's spot
capacity, each replica weighted by its pool's capacity, each kind of failure domain priced
by its worst member, never adding a replica.

Worked examples at the solver (each row's comment gives the hand computation), a
brute-force check of the optimum over small random problems, and the planner passing the
capacities of its profiles.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from core_builders import cluster, offering, placed, run, spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelfleet.core import DecisionState
from modelfleet.core.profiles import CapacityProfile, Workload
from modelfleet.core.solver import Pool, Problem, evaluate, solve


def pool(
    name: str,
    region: str,
    price: float,
    *,
    cloud: str = "",
    spot: bool = True,
    capacity: float = 1.0,
) -> Pool:
    kind = "Spot" if spot else "OnDemand"
    return Pool(
        (name, "g", kind), region, spot, price, price, 1, None, capacity=capacity, cloud=cloud
    )


def by_name(counts: dict[tuple[str, str, str], int]) -> dict[str, int]:
    return {k[0]: n for k, n in counts.items()}


# Region a: an A100-class pool ($1); region b: an L40S-class pool with half the capacity
# ($0.60, the same $1.20 per unit of capacity) and an A100-class one ($1.50).
HALF = (pool("a", "a", 1.0), pool("bL", "b", 0.6, capacity=0.5), pool("bA", "b", 1.5))
HALF_AS_REPLICAS = tuple(replace(p, capacity=1.0) for p in HALF)

# Cloud x holds regions x1 ($1) and x2 ($1.10), cloud y region y1 ($1.50): all spot.
XY = (
    pool("x1", "x1", 1.0, cloud="x"),
    pool("x2", "x2", 1.1, cloud="x"),
    pool("y1", "y1", 1.5, cloud="y"),
)


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        # Counted in replicas, the L40S in b covers a whole replica: a + bL costs $1.60
        # with nothing uncovered (the over-spread onto the slower GPU).
        (Problem(HALF_AS_REPLICAS, main=2, spread_demand=1, spread_price=4), {"a": 1, "bL": 1}),
        # Counted in capacity, a + bL carries 1.5: losing a leaves 0.5 of 1, $1.60 + 0.5 x
        # $4 = $3.60; a + bA ($2.50, each loss leaves 1) is the optimum; a + a leaves 0
        # ($2 + $4).
        (Problem(HALF, main=2, spread_demand=1, spread_price=4), {"a": 1, "bA": 1}),
        # Regions only (one cloud: every pool's cloud ""): 4 spot replicas, demand 2, $2 a
        # unit. 2 in x1 and 2 in x2 ($4.20) leave 2 after either region's loss.
        (
            Problem(
                tuple(replace(p, cloud="") for p in XY), main=4, spread_demand=2, spread_price=2
            ),
            {"x1": 2, "x2": 2},
        ),
        # Over clouds: a reclaim of x's spot takes x1 and x2 at once. 2/2/0 leaves 0 of 2
        # ($4.20 + 2 x $2 = $8.20); x1 2 + x2 1 + y1 1 leaves 1 ($4.60 + $2); x1 2 + y1 2
        # leaves 2 after any region's or cloud's loss for $5.00 (x1 1 + x2 1 + y1 2: $5.10).
        (Problem(XY, main=4, spread_demand=2, spread_price=2), {"x1": 2, "y1": 2}),
        # On-demand capacity is outside every reclaim wave: x1 2 spot + x2 2 on-demand
        # ($1.20 each) costs $4.40 with nothing uncovered.
        (
            Problem(
                (*XY, pool("x2od", "x2", 1.2, cloud="x", spot=False)),
                main=4,
                spread_demand=2,
                spread_price=2,
            ),
            {"x1": 2, "x2od": 2},
        ),
        # The price stays a price: at $0.20 a unit, x1 2 + x2 2 ($4.20 + 2 x $0.20) beats
        # x1 2 + y1 2 ($5.00).
        (Problem(XY, main=4, spread_demand=2, spread_price=0.2), {"x1": 2, "x2": 2}),
    ],
)
def test_spread_counts_capacity_and_clouds_spot(problem: Problem, expected: dict[str, int]) -> None:
    sol = solve(problem)
    assert sol.status == "Optimal"
    assert by_name(sol.counts) == expected
    assert sum(sol.counts.values()) == problem.main  # never a replica for the spread


def test_clouds_spot_are_domains_only_over_two_clouds() -> None:
    assert Problem(XY, main=4, spread_demand=2, spread_price=2).spread_spot_clouds() == ("x", "y")
    one = tuple(replace(p, cloud="x") for p in XY)
    assert Problem(one, main=4, spread_demand=2, spread_price=2).spread_spot_clouds() == ()
    # Off with the spread (no price) and under region-loss tolerance.
    assert Problem(XY, main=4, spread_demand=2).spread_spot_clouds() == ()
    assert (
        Problem(
            XY, main=4, spread_demand=2, spread_price=2, tolerate_region_loss=True, demand=4
        ).spread_spot_clouds()
        == ()
    )


@pytest.mark.parametrize(
    ("counts", "regions", "clouds"),
    [
        ({"x1": 2, "x2": 2}, {}, {"x": 2.0}),
        ({"x1": 2, "x2": 1, "y1": 1}, {}, {"x": 1.0}),
        ({"x1": 3, "y1": 1}, {"x1": 1.0}, {"x": 1.0}),
        ({"x1": 2, "y1": 2}, {}, {}),
        ({"x1": 4}, {"x1": 2.0}, {"x": 2.0}),
    ],
)
def test_evaluate_reports_each_domains_uncovered_demand(
    counts: dict[str, int], regions: dict[str, float], clouds: dict[str, float]
) -> None:
    problem = Problem(XY, main=4, spread_demand=2, spread_price=2)
    got = evaluate(problem, {(n, "g", "Spot"): c for n, c in counts.items()})
    assert dict(got.spread) == pytest.approx(regions)
    assert dict(got.spot_clouds) == pytest.approx(clouds)
    assert got.total() == 0  # priced in the cost tier, not a tier-2 requirement


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    pools = []
    for i in range(draw(st.integers(2, 4))):
        region = draw(st.sampled_from(["a", "b", "c"]))
        cloud = {"a": "x", "b": "x", "c": "y"}[region]
        pools.append(
            Pool(
                (f"p{i}", "g", "Spot"),
                region,
                draw(st.booleans()),
                price := draw(st.sampled_from([0.6, 1.0, 1.5, 2.0])),
                price,
                1,
                3,
                capacity=draw(st.sampled_from([0.5, 1.0, 1.0])),
                cloud=cloud,
            )
        )
    main = draw(st.integers(1, 4))
    return Problem(
        tuple(pools),
        main=main,
        spread_demand=main / draw(st.sampled_from([1.0, 1.2, 2.0])),
        spread_price=draw(st.sampled_from([0.5, 2.0, 6.0])),
    )


def worst(problem: Problem, carried: float, inside: list[float]) -> float:
    """The largest demand one domain's loss leaves uncovered (0: none)."""
    return max((max(0.0, problem.spread_demand - (carried - c)) for c in inside), default=0.0)


def brute_force(problem: Problem) -> float:
    """Least cost + price x (worst region's + worst cloud's spot) uncovered demand, in
    capacity, over every way to put exactly ``main`` replicas on the pools."""
    pools = problem.pools
    regions = {p.region for p in pools}
    clouds = problem.spread_spot_clouds()
    best = math.inf
    for x in itertools.product(*(range((p.max_nodes or 0) + 1) for p in pools)):
        if sum(x) != problem.main:
            continue
        carried = sum(n * p.capacity for p, n in zip(pools, x, strict=True))

        by_region = [
            sum(n * p.capacity for p, n in zip(pools, x, strict=True) if p.region == r)
            for r in regions
        ]
        by_cloud = [
            sum(n * p.capacity for p, n in zip(pools, x, strict=True) if p.spot and p.cloud == c)
            for c in clouds
        ]
        short = (worst(problem, carried, by_region) if len(regions) > 1 else 0.0) + worst(
            problem, carried, by_cloud
        )
        cost = sum(n * p.effective for p, n in zip(pools, x, strict=True))
        best = min(best, cost + problem.spread_price * short)
    return best


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_spread_over_clouds_is_the_brute_force_optimum(problem: Problem) -> None:
    sol = solve(problem)
    by_key = {p.key: p for p in problem.pools}
    cost = sum(n * by_key[k].effective for k, n in sol.counts.items())
    short = max(sol.shortfall.spread.values(), default=0.0) + max(
        sol.shortfall.spot_clouds.values(), default=0.0
    )
    assert sum(sol.counts.values()) == problem.main
    assert cost + problem.spread_price * short == pytest.approx(brute_force(problem), abs=1e-6)


def test_planner_counts_each_pool_in_its_gpus_capacity() -> None:
    """Profiles: an L40S replica carries half an A100's requests. Two replicas, minRegions
    2: the planner's capacities make a + the L40S in b carry 1.5 A100 replicas, and the
    A100 in b is placed instead (the worked example of the first table, at the planner)."""
    a100 = CapacityProfile("A100-80GB", 40_000.0, 4_000.0, source="Measured")
    l40s = CapacityProfile("L40S", 20_000.0, 2_000.0, source="Measured")
    s = replace(
        spec(2, 8, min_regions=2, spot="Preferred"),
        profiles=(a100, l40s),
        workload=Workload(600, 250),
    )
    fleet = [
        cluster("a", offering("a100", gpu="A100-80GB", mem=80, od=None, spot=1.0)),
        cluster(
            "b",
            offering("l40s", gpu="L40S", od=None, spot=0.6),
            offering("a100", gpu="A100-80GB", mem=80, od=None, spot=1.5),
        ),
    ]
    p = run(s, fleet, state=DecisionState(last_desired=2))
    assert p.desired_replicas == 2
    assert {(k[0], k[1]): n for k, n in placed(p).items()} == {("a", "a100"): 1, ("b", "a100"): 1}
