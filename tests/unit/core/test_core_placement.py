"""Placement decisions of ``core.plan``: hard constraints, cost, packing, spread, stickiness,
spot hedging, failover, stockouts, quotas, budget and node pools (docs/decisions.md §2-6)."""

from __future__ import annotations

import pytest
from core_builders import (
    NOW,
    ago,
    cluster,
    codes,
    existing,
    offering,
    placed,
    run,
    spec,
)

from modelfleet.core import GpuNeed, Selector, StockoutMark, unsatisfiable
from modelfleet.core.types import ClusterView, PlannerSettings


@pytest.mark.parametrize(
    ("deployment", "fleet", "code"),
    [
        (spec(clouds=frozenset({"gcp"})), [cluster("a", offering())], "ExcludedByCloud"),
        (spec(regions=frozenset({"us-x"})), [cluster("a", offering())], "ExcludedByRegion"),
        (
            spec(selector=Selector(match_labels=(("tier", "prod"),))),
            [cluster("a", offering(), labels={"tier": "dev"})],
            "ExcludedBySelector",
        ),
        (
            spec(gpu=GpuNeed(types=frozenset({"H100"}))),
            [cluster("a", offering())],
            "GpuTypeMismatch",
        ),
        (spec(gpu=GpuNeed(memory_gib=80)), [cluster("a", offering(mem=48))], "GpuMemoryTooSmall"),
        (spec(gpu=GpuNeed(count=2)), [cluster("a", offering(per_node=1))], "TooManyGpusPerReplica"),
        (spec(), [cluster("a", offering(), cordoned=True)], "ClusterCordoned"),
    ],
)
def test_static_constraint_excludes_with_reason_and_is_terminal(
    deployment: object, fleet: list[ClusterView], code: str
) -> None:
    p = run(deployment, fleet)  # type: ignore[arg-type]
    assert p.placements == ()
    assert p.unplaced == 1
    assert code in codes(p, "a")
    terminal = unsatisfiable(p)
    assert terminal is not None and terminal.code == "NoCandidates"


@pytest.mark.parametrize(
    ("health", "since_s", "code", "places"),
    [
        ("Healthy", 0, None, True),
        ("Suspect", 10, "ClusterUnhealthy", False),
        ("Failed", 10, "ClusterUnhealthy", False),
        ("Unknown", 10, "ClusterUnhealthy", False),
        ("Recovering", 100, "ClusterFailingBack", False),  # failback needs 300 s
        ("Recovering", 400, None, True),
    ],
)
def test_cluster_health_gates_new_replicas(
    health: str, since_s: int, code: str | None, places: bool
) -> None:
    c = cluster("a", offering(), health=health, health_since=ago(since_s))
    p = run(spec(), [c])
    assert bool(p.placements) is places
    if code:
        assert code in codes(p, "a")
        assert unsatisfiable(p) is None  # transient, not terminal


def test_cheapest_offering_wins_with_whole_node_pricing() -> None:
    # One replica: a 1-GPU node at 11 beats an 8-GPU node at 40 (cheaper per GPU, dearer whole).
    fleet = [cluster("a", offering("big", per_node=8, od=40.0), offering("small", od=11.0))]
    p = run(spec(1, 1), fleet)
    assert placed(p) == {("a", "small", "OnDemand"): 1}
    assert p.cost_per_hour == pytest.approx(11.0)
    # Eight replicas: the 8-GPU node (40) beats eight 1-GPU nodes (88).
    p8 = run(spec(8, 8), fleet)
    assert placed(p8) == {("a", "big", "OnDemand"): 8}
    assert [(n.instance_type, n.nodes) for n in p8.node_pools] == [("big", 1)]
    assert p8.cost_per_hour == pytest.approx(40.0)


def test_packing_uses_replicas_per_node_from_gpu_count() -> None:
    fleet = [cluster("a", offering("n8", per_node=8, od=30.0))]
    p = run(spec(3, 3, gpu=GpuNeed(count=4)), fleet)  # 2 replicas per node -> 2 nodes
    assert placed(p) == {("a", "n8", "OnDemand"): 3}
    assert p.node_pools[0].nodes == 2
    assert p.cost_per_hour == pytest.approx(60.0)


def test_quota_falls_through_to_next_candidate_and_reports_missing() -> None:
    fleet = [
        cluster("a", offering("cheap", od=1.0, max_nodes=2)),
        cluster("b", offering("dear", od=3.0, max_nodes=1)),
    ]
    p = run(spec(4, 4), fleet)
    assert placed(p) == {("a", "cheap", "OnDemand"): 2, ("b", "dear", "OnDemand"): 1}
    assert p.unplaced == 1
    assert any(r.code == "Unplaced" and "1 of 4" in r.message for r in p.reasons)


def test_quota_counts_nodes_used_by_other_deployments() -> None:
    from modelfleet.core import ExistingPlacement

    other = ExistingPlacement("ns/other", "a", "cheap", "OnDemand", 2, 2, nodes=2)
    fleet = [
        cluster("a", offering("cheap", od=1.0, max_nodes=2)),
        cluster("b", offering("dear", od=3.0)),
    ]
    p = run(spec(1, 1), fleet, placements=(other,))
    assert placed(p) == {("b", "dear", "OnDemand"): 1}
    assert "QuotaExhausted" in codes(p, "a")


def test_stockout_falls_through_in_the_same_plan_and_names_expiry() -> None:
    mark = StockoutMark("L40S", "OnDemand", until=ago(-180))
    fleet = [cluster("a", offering(od=1.0), stockouts=(mark,)), cluster("b", offering(od=2.0))]
    p = run(spec(2, 2), fleet)
    assert placed(p) == {("b", "g1", "OnDemand"): 2}
    stock = [r for r in p.reasons if r.code == "Stockout"]
    assert stock and stock[0].cluster == "a" and "2025-06-01T12:03:00" in stock[0].message


def test_expired_stockout_no_longer_blocks() -> None:
    mark = StockoutMark("L40S", "OnDemand", until=ago(1))
    p = run(
        spec(1, 1),
        [cluster("a", offering(od=1.0), stockouts=(mark,)), cluster("b", offering(od=2.0))],
    )
    assert placed(p) == {("a", "g1", "OnDemand"): 1}


def test_budget_places_what_fits_and_flags_min_unaffordable() -> None:
    fleet = [cluster("a", offering(od=10.0))]
    p = run(spec(3, 3, max_cost_per_hour=25.0), fleet)
    assert p.placed_replicas == 2 and p.cost_per_hour <= 25.0
    terminal = unsatisfiable(p)
    assert terminal is not None and terminal.code == "BudgetExceeded"


def test_min_regions_spreads_and_max_per_region_caps() -> None:
    fleet = [
        cluster("a", offering(od=1.0)),
        cluster("b", offering(od=2.0)),
        cluster("c", offering(od=3.0)),
    ]
    # minRegions alone (the blast-radius spread off): the cheapest two regions.
    p = run(
        spec(4, 4, min_regions=2), fleet, settings=PlannerSettings(region_spread_price_factor=0)
    )
    assert placed(p) == {("a", "g1", "OnDemand"): 3, ("b", "g1", "OnDemand"): 1}
    # By default a deployment asking to survive a region is spread too (demand 4 / 1.2 =
    # 3.33): 2/2 ($6 + 1.33 uncovered x $3) beats 3/1 ($5 + 2.33 x $3) and 2/1/1 ($7 + 4).
    spread = run(spec(4, 4, min_regions=2), fleet)
    assert placed(spread) == {("a", "g1", "OnDemand"): 2, ("b", "g1", "OnDemand"): 2}
    capped = run(spec(5, 5, max_replicas_per_region=2), fleet)
    assert placed(capped) == {
        ("a", "g1", "OnDemand"): 2,
        ("b", "g1", "OnDemand"): 2,
        ("c", "g1", "OnDemand"): 1,
    }
    assert "SpreadLimit" not in codes(capped)  # every candidate was used


def test_preferred_region_wins_within_five_percent_only() -> None:
    fleet = [cluster("a", offering(od=1.00)), cluster("b", offering(od=1.04))]
    assert set(placed(run(spec(1, 1, preferred_regions=frozenset({"r-b"})), fleet))) == {
        ("b", "g1", "OnDemand")
    }
    dear = [cluster("a", offering(od=1.00)), cluster("b", offering(od=1.10))]
    assert set(placed(run(spec(1, 1, preferred_regions=frozenset({"r-b"})), dear))) == {
        ("a", "g1", "OnDemand")
    }


def test_healthy_existing_replicas_stay_even_when_cheaper_elsewhere() -> None:
    fleet = [cluster("a", offering(od=5.0)), cluster("b", offering(od=1.0))]
    p = run(spec(2, 2), fleet, placements=(existing("a", replicas=2),))
    assert placed(p) == {("a", "g1", "OnDemand"): 2}
    assert p.changes == ()


def test_scale_in_removes_most_expensive_replicas_first() -> None:
    fleet = [cluster("a", offering(od=5.0)), cluster("b", offering(od=1.0))]
    p = run(spec(1, 1), fleet, placements=(existing("a"), existing("b")))
    assert placed(p) == {("b", "g1", "OnDemand"): 1}
    assert any(c.code == "Removed" and c.cluster == "a" for c in p.changes)


def test_forbidden_existing_replicas_retire_make_before_break() -> None:
    fleet = [
        cluster("a", offering(od=1.0), labels={"tier": "dev"}),
        cluster("b", offering(od=2.0), labels={"tier": "prod"}),
    ]
    s = spec(2, 2, selector=Selector(match_labels=(("tier", "prod"),)))
    p = run(s, fleet, placements=(existing("a", replicas=2),))
    assert placed(p) == {("b", "g1", "OnDemand"): 2}
    assert [(r.cluster, r.replicas, r.lost) for r in p.retiring] == [("a", 2, False)]
    # The old pool keeps its nodes until the replacements are ready.
    assert {(n.cluster, n.nodes) for n in p.node_pools} == {("a", 2), ("b", 2)}
    assert p.cost_per_hour == pytest.approx(4.0)


def test_failed_cluster_replicas_are_lost_and_replaced_elsewhere() -> None:
    fleet = [
        cluster("a", offering(od=1.0), health="Failed", health_since=ago(60)),
        cluster("b", offering(od=2.0)),
    ]
    p = run(spec(2, 2), fleet, placements=(existing("a", replicas=2),))
    assert placed(p) == {("b", "g1", "OnDemand"): 2}
    assert [(r.cluster, r.lost) for r in p.retiring] == [("a", True)]
    assert "ClusterFailed" in {c.code for c in p.changes}


def test_suspect_cluster_keeps_replicas_until_fail_after() -> None:
    fleet = [
        cluster(
            "a", offering(od=1.0), health="Suspect", health_since=ago(20), last_success=ago(20)
        ),
        cluster("b", offering(od=2.0)),
    ]
    held = run(spec(1, 1), fleet, placements=(existing("a"),))
    assert placed(held) == {("a", "g1", "OnDemand"): 1}
    strict = run(
        spec(
            1,
            1,
        ),
        fleet,
        placements=(existing("a"),),
        now=ago(-30),
    )
    assert placed(strict) == {("b", "g1", "OnDemand"): 1}  # 50 s > failAfterSeconds 45


def test_warm_standby_goes_outside_the_majority_region() -> None:
    fleet = [cluster("a", offering(od=1.0)), cluster("b", offering(od=3.0))]
    p = run(spec(2, 2, failover={"warm_standby_replicas": 1}), fleet)
    assert p.standby_replicas == 1
    assert placed(p) == {("a", "g1", "OnDemand"): 2, ("b", "g1", "OnDemand"): 1}
    alone = run(spec(2, 2, failover={"warm_standby_replicas": 1}), fleet[:1])
    assert "StandbyUnavailable" in codes(alone) and alone.unplaced == 1


def test_spot_never_allowed_preferred() -> None:
    fleet = [cluster("a", offering(od=4.0, spot=1.0))]
    assert set(placed(run(spec(2, 2), fleet))) == {("a", "g1", "OnDemand")}
    allowed = run(spec(2, 2, spot="Allowed", on_demand_base=1), fleet)
    assert placed(allowed) == {("a", "g1", "OnDemand"): 1, ("a", "g1", "Spot"): 1}
    # Preferred takes spot even when dearer; Allowed only where cheaper.
    odd = [cluster("a", offering(od=1.0, spot=2.0))]
    assert set(placed(run(spec(1, 1, spot="Preferred"), odd))) == {("a", "g1", "Spot")}
    assert set(placed(run(spec(1, 1, spot="Allowed"), odd))) == {("a", "g1", "OnDemand")}


def test_spot_is_spread_over_two_regions_when_possible() -> None:
    fleet = [cluster("a", offering(od=4.0, spot=1.0)), cluster("b", offering(od=4.0, spot=1.5))]
    p = run(spec(4, 4, spot="Preferred"), fleet)
    assert placed(p) == {("a", "g1", "Spot"): 3, ("b", "g1", "Spot"): 1}
    single = run(spec(4, 4, spot="Preferred"), fleet[:1])
    assert "SpotSpreadUnavailable" in codes(single)


def test_reclaimed_spot_goes_on_demand_then_returns_after_hysteresis() -> None:
    mark = StockoutMark("L40S", "Spot", until=ago(-180))
    fleet = [
        cluster("a", offering(od=4.0, spot=1.0), stockouts=(mark,)),
        cluster("b", offering(od=5.0, spot=1.2)),
    ]
    s = spec(2, 2, spot="Preferred", max_replicas_per_region=None)
    lost = run(s, fleet, placements=(existing("a", ct="Spot", replicas=2, ready=0),))
    assert sum(n for k, n in placed(lost).items() if k[2] == "OnDemand") == 2
    assert lost.state.spot_fallback_replicas == 2
    assert "SpotReclaimed" in {c.code for c in lost.changes}
    # Spot back in "a" but within the hysteresis window: stay on on-demand.
    healthy = [cluster("a", offering(od=4.0, spot=1.0)), fleet[1]]
    on_od = tuple(existing(k[0], k[1], n, ct=k[2]) for k, n in placed(lost).items())
    held = run(s, healthy, placements=on_od, state=lost.state, now=ago(-300))
    assert placed(held) == placed(lost)
    back = run(s, healthy, placements=on_od, state=held.state, now=ago(-700))
    assert set(placed(back)) == {("a", "g1", "Spot"), ("b", "g1", "Spot")}
    assert back.state.spot_fallback_replicas == 0
    assert "SpotReturn" in {c.code for c in back.changes}


def test_node_pools_round_up_and_cost_pays_whole_nodes() -> None:
    fleet = [cluster("a", offering("n4", per_node=4, od=10.0))]
    p = run(spec(5, 5), fleet)
    assert [(n.instance_type, n.capacity_type, n.nodes) for n in p.node_pools] == [
        ("n4", "OnDemand", 2)
    ]
    assert p.cost_per_hour == pytest.approx(20.0)


def test_every_unused_candidate_has_a_reason() -> None:
    fleet = [
        cluster("a", offering("x", od=1.0), offering("y", od=2.0, gpu="H100")),
        cluster("b", offering(od=3.0), region="r-b"),
    ]
    p = run(spec(1, 1, gpu=GpuNeed(types=frozenset({"L40S"}))), fleet)
    used = set(placed(p))
    for c in fleet:
        for o in c.offerings:
            key = (c.name, o.instance_type, "OnDemand")
            if key not in used:
                assert any(
                    r.cluster == c.name and r.offering in ("", o.instance_type) for r in p.reasons
                ), key


def test_plan_is_deterministic_and_now_matters_only_through_timers() -> None:
    fleet = [cluster("a", offering(od=1.0)), cluster("b", offering(od=1.0))]
    first = run(spec(3, 3, min_regions=2), fleet)
    again = run(spec(3, 3, min_regions=2), fleet)
    assert first == again
    assert NOW.tzinfo is not None


def test_spread_and_on_demand_base_together_terminate_and_spread() -> None:
    # Regression: the base protected both on-demand replicas, so the trim took back every
    # spot replica added for spread and the planner looped. It must move one on-demand
    # replica to a second region instead.
    fleet = [cluster("a", offering(od=1.0, spot=0.5)), cluster("b", offering(od=2.0, spot=0.6))]
    p = run(spec(2, 2, min_regions=3, on_demand_base=2, spot="Preferred"), fleet)
    assert placed(p) == {("a", "g1", "OnDemand"): 1, ("b", "g1", "OnDemand"): 1}
    assert p.unplaced == 0
