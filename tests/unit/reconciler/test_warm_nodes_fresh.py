"""Warm nodes (``core.warm``) are what the cloud reports Ready now, not what it reported at
the pool's last resize. During a pool's scale-in delay the pass does not call the pool
(nothing to change), so the Ready count the ledger holds comes only from the fleet's pool
upkeep (every ``pools_interval_seconds``): a spot node reclaimed meanwhile must stop
counting as warm there, or a scale-up takes a "warm" node that is gone and waits a whole
node lead on a pool it chose for being ready."""

from __future__ import annotations

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.api.modeldeployment import ReplicaRange

POOL = ("east", "east-h100", "Spot")


async def test_a_reclaimed_idle_node_is_no_longer_warm() -> None:
    world = World(
        [fleet_cluster("east", region="us-east-1", price=None, spot=3.0, provisioning_seconds=300)]
    )
    await world.start()
    world.add(
        model_deployment(
            "a",
            replicas={"min": 2, "max": 2},
            placement={"capacity": {"spot": "Preferred", "onDemandBase": 0}},
        )
    )
    await world.reconcile("a")
    world.clock.advance(300)
    await world.reconcile("a")  # reads the pool back: 2 Ready
    world.mark_ready("east")
    world.set_spec("a", replicas=ReplicaRange.model_validate({"min": 1, "max": 1}))
    await world.reconcile("a")
    # The scaled-in replica's node is booked until a pass sees the pod gone
    # (core.nodepools: a pool never shrinks under a serving replica).
    world.mark_ready("east")
    await world.reconcile("a")
    ledger = world.reconciler.ledger
    # One node left unbooked, kept Ready by the scale-in delay: warm.
    assert ledger.idle_nodes() == ((POOL, 1),)

    # The cloud reclaims one spot node (its replacement needs a whole node lead); the pool
    # upkeep lists the pool a minute later.
    assert world.clouds["east"].reclaim_spot(nodes=1) == 1
    world.clock.advance(60)
    await world.probe()
    assert world.pool_sizes("east")[("east-h100", "Spot")] == (1, 2)
    assert ledger.idle_nodes() == (), "a reclaimed node still counted as warm"
