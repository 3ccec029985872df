"""Idle nodes on a stocked-out pool keep the scale-in delay.

idle9 releases at once an idle node no deployment's scale-up would take
(``PoolLedger.wanted``: the pools of ``Plan.warm_pools``). A pool under an active
stockout mark is in no deployment's growth candidates (``core.candidates``: transient),
so it is in no ``warm_pools`` either, and its idle Ready nodes went at once: the one
time a GPU node cannot be had again (the cloud refused the last grow) is when it was
given up soonest. Before idle9 they were kept the full delay, and the warm rule took them
once the mark ended. Found by br10 (QA); reconciler level on the in-package fakes
(``reconciler_world``).
"""

from __future__ import annotations

from datetime import timedelta

from reconciler_world import east_west, model_deployment

EAST = ("east-h100", "OnDemand")


async def test_an_idle_node_of_a_stocked_out_pool_is_kept_the_scale_in_delay() -> None:
    world = east_west()
    await world.start()
    world.add(model_deployment("llama", replicas={"min": 3, "max": 3}))
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    assert world.pool_sizes("east")[EAST] == (3, 3)
    world.clouds["east"].inject_stockout(
        "east-h100", "OnDemand", until=world.clock() + timedelta(hours=1)
    )
    world.set_replicas("llama", 4)
    await world.reconcile("llama")  # east refuses to grow: the 4th replica goes west
    assert world.stockouts.marks("east")
    for _ in range(4):
        world.clock.advance(5)
        world.mark_ready("west")
        await world.reconcile("llama")
    assert (world.replicas("east"), world.replicas("west")) == (3, 1)
    world.set_replicas("llama", 2)  # west's replica and one of east's go
    await world.reconcile("llama")
    sizes = []
    for _ in range(5):
        world.clock.advance(30)
        world.mark_ready("east")
        await world.reconcile("llama")
        assert world.replicas("east") == 2
        sizes.append(world.pool_sizes("east")[EAST][0])
    # Within the stockout mark (3 minutes), the idle east node is kept.
    assert sizes == [3] * 5, sizes
