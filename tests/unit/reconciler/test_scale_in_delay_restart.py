"""The scale-in delay survives an operator restart.

Ready nodes no deployment books any more are kept warm for ``scale_in_delay_seconds``
(10 minutes) before the pool shrinks. The clock lived only in the process: a restarted
operator did not know what it last asked of the pool, and sized it down at once, skipping
the delay (a replica re-placed a minute later found no warm node: a cost, not a safety
problem). The FleetCluster's ``status.nodePools[].scaleInSince`` now carries the clock and
the restarted operator reads it back, with the pool's recorded size, on its first sizing.

Reconciler level on the in-package fakes with a virtual clock; the restart is a fresh
``PoolLedger`` (what a new process starts with), the FleetCluster status as last probed.
"""

from __future__ import annotations

from reconciler_world import World, fleet_cluster, model_deployment, scaled_in

from modelfleet.reconciler.ledger import PoolLedger

POOL = ("east-h100", "OnDemand")


async def test_a_restart_during_the_scale_in_delay_keeps_the_warm_nodes() -> None:
    world = await scaled_in(held=5, booked=3)  # the pool keeps 5 while the clock runs
    assert world.pool_sizes("east")[POOL][1] == 5
    started = world.clock()
    world.clock.advance(300)
    await world.probe()  # the pool listing publishes the clock
    status = world.fleet["east"].status
    assert status is not None and status.node_pools
    (pool,) = status.node_pools
    assert pool.scale_in_since == started

    world.reconciler.ledger = PoolLedger()  # the operator restarts
    world.clock.advance(60)
    await world.probe()  # the new process lists the pools before any pass sizes them
    status = world.fleet["east"].status
    assert status is not None and status.node_pools
    assert status.node_pools[0].scale_in_since == started, "the listing erased the clock"
    world.clock.advance(5)
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL][1] == 5, "the restart skipped the scale-in delay"
    world.clock.advance(200)
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL][1] == 5
    world.clock.advance(40)  # 605 s after the bookings dropped: not 10 more minutes
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL][1] == 3


async def test_a_restart_with_no_clock_recorded_starts_it_then() -> None:
    """The bookings dropped after the last pool listing: no ``scaleInSince`` recorded, so
    the restarted operator starts the clock at its first sizing (later, never sooner)."""
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=8)])
    await world.start()
    world.add(model_deployment("a", replicas={"min": 5, "max": 5}))
    await world.reconcile("a")
    world.clock.advance(120)
    await world.probe()  # lists the pool (5 Ready), no clock yet
    world.set_replicas("a", 3)
    await world.reconcile("a")
    world.reconciler.ledger = PoolLedger()  # restarts before the next listing
    world.clock.advance(5)
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL][1] == 5, "the restart skipped the scale-in delay"
    world.clock.advance(601)
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL][1] == 3
