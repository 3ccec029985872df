"""After a restart, the scale-in hold read back from the status keeps nodes, never adds.

On its first sizing after a restart the operator takes the pool's last request and Ready
nodes from the FleetCluster's ``status.nodePools`` (nd2: the scale-in delay survives a
restart). That status is the last probe's listing: stale by up to a probe period (the
pool shrank since, a spot reclaim took nodes, a human scaled it) or edited. The hold
``min(desiredNodes, readyNodes)`` was sent to the cloud as the pool's new size, so a pool
of 3 nodes booked for 3 whose status said 8 was grown to 8: five new nodes no deployment
books, paid for the whole delay. The hold is now capped by what the cloud says the pool
holds (one read, on that first sizing only).
"""

from __future__ import annotations

from typing import Any

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.api import FleetCluster, dump
from modelfleet.reconciler.ledger import PoolLedger

POOL = ("east-h100", "OnDemand")


async def test_a_stale_status_does_not_grow_the_pool_after_a_restart() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=8)])
    await world.start()
    world.add(model_deployment("a", replicas={"min": 3, "max": 3}))
    await world.reconcile("a")
    world.clock.advance(120)
    await world.probe()
    assert world.pool_sizes("east")[POOL] == (3, 3)
    body: dict[str, Any] = dump(world.fleet["east"])
    (pool,) = body["status"]["nodePools"]
    pool["desiredNodes"] = pool["readyNodes"] = 8  # what the status says, not the cloud
    world.fleet["east"] = FleetCluster.model_validate(body)

    world.reconciler.ledger = PoolLedger()  # the operator restarts
    world.clock.advance(5)
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL] == (3, 3), "the restart grew the pool to the status"
    world.clock.advance(700)
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL] == (3, 3)
