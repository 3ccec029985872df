"""A FleetCluster status dated after the operator's clock does not hold off failover.

The probe reads the cluster's health timers back from its status every time
(``healthSince``, ``lastSuccessTime``, ``recoveredSince``). Written by a clock ahead of
the operator's (another replica's, a restore, a hand edit), they were taken as they were:
a cluster that stopped answering stayed Suspect, never Failed, until that time plus
``failAfterSeconds``, so its replicas were never failed over; a Recovering one did not
fail back. They are now read as no later than the probe (later, never sooner), like the
scale-in clock (test_zoneless_status_times.py) and the planner's memory
(test_future_decision_times.py). Reconciler level on the in-package fakes, virtual clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from reconciler_world import T0, World, fleet_cluster, model_deployment

from modelfleet.api import FleetCluster, dump


def _health(world: World) -> str:
    status = world.fleet["east"].status
    assert status is not None
    return status.health


def _edit_status(world: World, **changes: Any) -> None:
    body: dict[str, Any] = dump(world.fleet["east"])
    body["status"].update(changes)
    world.fleet["east"] = FleetCluster.model_validate(body)


async def test_a_last_success_from_the_future_does_not_keep_a_dead_cluster_suspect() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0)])
    await world.start()
    assert _health(world) == "Healthy"
    ahead = (world.clock() + timedelta(days=365)).isoformat()
    _edit_status(world, lastSuccessTime=ahead, healthSince=ahead)  # a clock a year ahead
    await world.outage("east", seconds=120)  # probed every 10 s; failAfterSeconds is 45
    assert _health(world) == "Failed", "a time from the future held off the failover"
    status = world.fleet["east"].status
    assert status is not None and status.health_since is not None
    assert status.health_since <= world.clock()


async def test_a_recovery_from_the_future_does_not_hold_the_cluster_recovering() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0)])
    await world.start()
    await world.outage("east", seconds=120)
    assert _health(world) == "Failed"
    world.clock.advance(10)
    await world.probe()
    assert _health(world) == "Recovering"
    ahead = (world.clock() + timedelta(days=365)).isoformat()
    _edit_status(world, healthSince=ahead, recoveredSince=ahead)
    for _ in range(35):  # 350 s of answers; recoverAfterSeconds is 300
        world.clock.advance(10)
        await world.probe()
    assert _health(world) == "Healthy", "a time from the future held the cluster Recovering"


async def test_a_stockout_mark_from_the_future_holds_no_longer_than_the_longest_backoff() -> None:
    """A restarted operator reads its stockout marks back from ``status.stockouts``. A mark
    whose ``until`` is a year ahead (a clock ahead, an edit) skipped the offering for a
    year; no mark this operator writes holds longer than the longest backoff (30 min), so
    it holds at most that long from the restart."""
    cluster = fleet_cluster("east", region="us-east-1", price=10.0)
    body: dict[str, Any] = dump(cluster)
    ahead = (T0 + timedelta(days=365)).isoformat()  # the new world's clock starts at T0
    body["status"] = {
        "stockouts": [
            {
                "gpu": "H100",
                "capacityType": "OnDemand",
                "instanceType": "east-h100",
                "since": ahead,
                "until": ahead,
                "failures": 1,
            }
        ]
    }
    world = World([FleetCluster.model_validate(body)])  # the restarted operator
    await world.start()
    world.add(model_deployment("a"))
    await world.reconcile("a")
    assert world.replicas("east") == 0, "the mark in force was not read back"
    for _ in range(31):  # 31 minutes
        world.clock.advance(60)
        await world.probe()
        await world.reconcile("a")
    assert world.replicas("east") == 2, "a mark from the future held for more than 30 min"
