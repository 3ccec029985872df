"""Zones: a capacity error naming a zone closes only that zone of the pool.

The planner falls through zone -> zone within a pool (the pool is restricted to its open
zones, ``ZoneStockout``), then to another cluster, region or cloud once every zone of the
offering is out (``Stockout``), all in the same plan. Clusters without zone data keep the
old behaviour: any mark closes the whole pool.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from core_builders import NOW, cluster, codes, offering, placed, run, spec

from modelfleet.core import StockoutMark, record_capacity_error, record_capacity_success
from modelfleet.core.stockouts import open_zones, pool_stockout

ZONES = ("r-a-1", "r-a-2")


def mark(zone: str | None, *, minutes: int = 3) -> StockoutMark:
    return StockoutMark("L40S", "OnDemand", NOW + timedelta(minutes=minutes), zone=zone)


def test_one_zone_out_restricts_the_pool_to_the_others() -> None:
    o = replace(offering(od=1.0), zones=ZONES)
    fleet = [cluster("a", o, stockouts=(mark("r-a-1"),)), cluster("b", offering(od=2.0))]
    p = run(spec(2, 2), fleet)
    assert placed(p) == {("a", "g1", "OnDemand"): 2}
    (pool,) = p.node_pools
    assert pool.zones == ("r-a-2",) and pool.to_dict()["zones"] == ["r-a-2"]
    assert "ZoneStockout" in codes(p, "a")


def test_every_zone_out_falls_through_to_the_next_cluster_in_the_same_plan() -> None:
    o = replace(offering(od=1.0), zones=ZONES)
    fleet = [
        cluster("a", o, stockouts=(mark("r-a-1", minutes=5), mark("r-a-2", minutes=9))),
        cluster("b", offering(od=2.0)),
    ]
    p = run(spec(2, 2), fleet)
    assert placed(p) == {("b", "g1", "OnDemand"): 2}
    stockout = [r for r in p.reasons if r.code == "Stockout" and r.cluster == "a"]
    # The pool reopens when its first zone does.
    assert stockout and (NOW + timedelta(minutes=5)).isoformat() in stockout[0].message


def test_clusters_without_zone_data_keep_the_whole_pool_behaviour() -> None:
    fleet = [
        cluster("a", offering(od=1.0), stockouts=(mark("r-a-1"),)),
        cluster("b", offering(od=2.0)),
    ]
    p = run(spec(1, 1), fleet)
    assert placed(p) == {("b", "g1", "OnDemand"): 1}
    assert all(n.zones == () for n in p.node_pools)


def test_zone_marks_back_off_per_zone_and_success_elsewhere_keeps_them() -> None:
    marks = record_capacity_error((), "L40S", capacity_type="OnDemand", now=NOW, zone="z1")
    marks = record_capacity_error(marks, "L40S", capacity_type="OnDemand", now=NOW, zone="z1")
    marks = record_capacity_error(marks, "L40S", capacity_type="OnDemand", now=NOW, zone="z2")
    assert [(m.zone, m.failures) for m in marks] == [("z1", 2), ("z2", 1)]
    args = {"capacity_type": "OnDemand", "instance_type": "g1", "now": NOW}
    assert pool_stockout(marks, "L40S", zones=("z1", "z2", "z3"), **args) is None
    assert open_zones(marks, "L40S", zones=("z1", "z2", "z3"), **args) == ("z3",)
    closed = pool_stockout(marks, "L40S", zones=("z1", "z2"), **args)
    assert closed is not None and closed.zone == "z2"  # expires first (one failure)
    # Capacity obtained in z3 only: the z1/z2 marks stay; obtained anywhere: all go.
    assert record_capacity_success(marks, "L40S", capacity_type="OnDemand", zones=("z3",)) == marks
    assert record_capacity_success(marks, "L40S", capacity_type="OnDemand") == ()
