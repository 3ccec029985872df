"""The scale-in delay times each idle node, not the pool.

The delay ran one clock per pool, started by its first idle node: a second node that went
idle 5 minutes later was released with the first, after 5 minutes instead of 10 (in the
default scenario, seed 1: azure-eus H100 spot at 16:46 and 16:54, the second node kept 2
minutes). cluster-autoscaler's scale-down-unneeded-time counts per node; so does the
ledger now (``PoolLedger.idle_clocks``). Reconciler level on the in-package fakes with a
virtual clock (``reconciler_world``), then the clocks' bookkeeping alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.api.modeldeployment import ReplicaRange
from modelfleet.reconciler.ledger import PoolKey, PoolLedger

POOL = ("east-h100", "OnDemand")


def _replicas(world: World, n: int) -> None:
    world.set_spec("a", replicas=ReplicaRange.model_validate({"min": n, "max": n}))


async def _scale_in_twice() -> list[tuple[int, int]]:
    """5 replicas Ready; at minute 0 down to 4, at minute 5 down to 3; a pass a minute.
    Returns (minute, pool size) for minutes 1-17."""
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=8)])
    await world.start()
    world.add(model_deployment("a", replicas={"min": 5, "max": 5}))
    await world.reconcile("a")
    world.clock.advance(900)
    world.mark_ready("east")
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL] == (5, 5)
    _replicas(world, 4)
    await world.reconcile("a")  # the replica goes first, its node on a later pass
    world.mark_ready("east")
    seen = []
    for minute in range(1, 18):
        world.clock.advance(60)
        if minute == 5:
            _replicas(world, 3)
            await world.reconcile("a")
            world.mark_ready("east")
        await world.reconcile("a")
        seen.append((minute, world.pool_sizes("east")[POOL][1]))
    return seen


async def test_a_node_idle_later_gets_its_own_ten_minutes() -> None:
    seen = dict(await _scale_in_twice())
    # Both idle nodes kept while the first is within its 10 minutes.
    assert all(seen[m] == 5 for m in range(1, 10)), seen
    # The first goes at 10 minutes; the second, idle from minute 5, stays to minute 15.
    assert seen[11] == 4 and seen[14] == 4, seen
    assert seen[17] == 3, seen


T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
P: PoolKey = ("c", "g1", "Spot")


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_new_idle_node_starts_its_own_clock() -> None:
    ledger = PoolLedger()
    assert ledger.idle_clocks(P, 1, _at(0), delay_seconds=600) == (_at(0),)
    assert ledger.idle_clocks(P, 3, _at(4), delay_seconds=600) == (_at(0), _at(4), _at(4))
    assert ledger.shrinking(P) == _at(0)  # the oldest is what the status publishes


def test_a_node_taken_again_is_the_one_idle_the_shortest() -> None:
    ledger = PoolLedger()
    ledger.idle_clocks(P, 1, _at(0), delay_seconds=600)
    ledger.idle_clocks(P, 2, _at(4), delay_seconds=600)
    # A replica takes one idle node at minute 6: the older clock runs on.
    assert ledger.idle_clocks(P, 1, _at(6), delay_seconds=600) == (_at(0),)


def test_released_nodes_take_their_clocks_with_them() -> None:
    ledger = PoolLedger()
    ledger.idle_clocks(P, 1, _at(0), delay_seconds=600)
    ledger.idle_clocks(P, 2, _at(4), delay_seconds=600)
    # At minute 10 the first is due (released by that pass); on the next pass one node is
    # idle: the released one's clock goes, the minute-4 clock stays.
    assert ledger.idle_clocks(P, 1, _at(10.5), delay_seconds=600) == (_at(4),)
    assert ledger.shrinking(P) == _at(4)


def test_a_restart_reads_the_recorded_clock_back_for_every_idle_node() -> None:
    ledger = PoolLedger()
    ledger.shrink_since(P, _at(-3))  # what pools._after_scale_in_delay does from the status
    assert ledger.idle_clocks(P, 2, _at(0), delay_seconds=600) == (_at(-3), _at(-3))


def test_no_shrink_forgets_every_clock() -> None:
    ledger = PoolLedger()
    ledger.idle_clocks(P, 2, _at(0), delay_seconds=600)
    ledger.no_shrink(P)
    assert ledger.shrinking(P) is None
    assert ledger.idle_clocks(P, 1, _at(5), delay_seconds=600) == (_at(5),)
