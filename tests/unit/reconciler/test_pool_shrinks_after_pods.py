"""A pool is never shrunk under a replica that still serves there (make-before-break).

The fault (main, simulator seed 2, 18:48): a re-spread moved one replica of each of two
pools elsewhere; the retire stage kept both serving there (``floors``) until the new
replicas were Ready, but the pools were sized by the plan alone, so once the scale-in
delay had passed a resize took them to one node under two serving pods, and the kubelet
model evicted one on each abruptly. On a real cloud the resize is by count and the cloud
picks the node. Here, at the reconciler level (simulated cloud, in-memory member
clusters, no scale-in delay so nothing hides it): the pool keeps the nodes of every
replica Ready when a pass starts; the replicas go first, their nodes on a later pass.
"""

from __future__ import annotations

from reconciler_world import east_west, model_deployment

from modelfleet.reconciler import ReconcilerSettings

EAST = ("east-h100", "OnDemand")
WEST = ("west-h100", "OnDemand")


async def test_a_replica_kept_by_make_before_break_keeps_its_node() -> None:
    world = east_west(
        settings=ReconcilerSettings(observe_cache_seconds=0, scale_in_delay_seconds=0)
    )
    await world.start()
    world.add(model_deployment("llama", replicas={"min": 2, "max": 2}))
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    assert world.replicas("east") == 2 and world.replicas("west") == 0
    assert world.pool_sizes("east")[EAST] == (2, 2)

    # At most one replica per region: one of east's two moves to west. Until west's is
    # Ready, both of east's keep serving (floors), and so keep their nodes.
    md = world.deployments["llama"]
    spread = md.spec.placement.spread.model_copy(update={"max_replicas_per_region": 1})
    placement = md.spec.placement.model_copy(update={"spread": spread})
    world.set_spec("llama", placement=placement)
    for _ in range(3):
        await world.reconcile("llama")
        assert world.replicas("west") == 1
        assert world.replicas("east") == 2, "a serving replica removed before its replacement"
        assert world.pool_sizes("east")[EAST][1] == 2, "pool shrunk under a serving replica"
        world.clock.advance(5)

    # West's replica is Ready: east is scaled in this pass; its node stays until a pass
    # sees the pod gone, and then goes (no scale-in delay here).
    world.mark_ready("west")
    await world.reconcile("llama")
    assert world.replicas("east") == 1
    assert world.pool_sizes("east")[EAST][1] == 2, "node released in the pass removing its pod"
    world.mark_ready("east")
    world.clock.advance(5)
    await world.reconcile("llama")
    assert world.pool_sizes("east")[EAST] == (1, 1)
    assert world.pool_sizes("west")[WEST] == (1, 1)
