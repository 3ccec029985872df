"""Idle nodes no deployment would take are released without the scale-in delay.

The scale-in delay (10 minutes, cluster-autoscaler's scale-down-unneeded-time) keeps a
pool's Ready nodes that no deployment books any more, so that a scale-up meanwhile finds
them warm. A scale-up takes idle nodes only on its warm pools (``core.warm``: the
cheapest growth candidate's GPU model within the price factor, and the cheapest itself);
on any other pool a kept idle node is only billed. In the default scenario every hold of
an on-demand pool after the move back to spot, and of an L40S pool, ended in a release
at 10 minutes with no reuse (docs/simulation.md, "Idle nodes nobody would take").

A pool a scale-up would take idle nodes from only by warm placement (within the price
factor, but no deployment's cheapest candidate, where scale-ups grow first) keeps them
about as long as a new node takes to come up (``warm_pool_scale_in_delay_seconds``, 5
minutes; ski rental), the cheapest pool the full 10 minutes
(``test_scale_in_delay_after_failure.py``).

Reconciler level on the in-package fakes with a virtual clock (``reconciler_world``):
``cheap`` (maxNodes 3) fills first, two replicas overflow to ``dear``; the deployment then
scales to 3, its dearest replicas go, and ``dear``'s two nodes are idle.
"""

from __future__ import annotations

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.api.modeldeployment import ReplicaRange
from modelfleet.reconciler.deployment import ReconcilerSettings

CHEAP = ("cheap-h100", "OnDemand")
DEAR = ("dear-h100", "OnDemand")


async def _after_scale_in(
    dear_price: float, minutes: int = 12, *, settings: ReconcilerSettings | None = None
) -> list[int]:
    """The ``dear`` pool's requested size a minute apart after the scale-in to 3 (the
    first entry: the pass that scaled in)."""
    world = World(
        [
            fleet_cluster("cheap", region="us-east-1", price=10.0, max_nodes=3),
            fleet_cluster("dear", region="us-west-2", price=dear_price, max_nodes=8),
        ],
        settings=settings,
    )
    await world.start()
    world.add(model_deployment("a", replicas={"min": 5, "max": 5}))
    await world.reconcile("a")
    world.clock.advance(900)  # every node Ready
    world.mark_ready("cheap")
    world.mark_ready("dear")
    await world.reconcile("a")
    assert world.pool_sizes("cheap")[CHEAP] == (3, 3)
    assert world.pool_sizes("dear")[DEAR] == (2, 2)
    world.set_spec("a", replicas=ReplicaRange.model_validate({"min": 3, "max": 3}))
    await world.reconcile("a")  # the dear replicas go first, their nodes on a later pass
    world.mark_ready("dear")
    assert world.replicas("dear") == 0 and world.replicas("cheap") == 3
    sizes = []
    for _ in range(minutes):
        world.clock.advance(60)
        await world.reconcile("a")
        sizes.append(world.pool_sizes("dear")[DEAR][1])
    return sizes


async def test_idle_nodes_on_a_warm_pool_are_kept_as_long_as_a_node_start() -> None:
    # dear at $12.00 is (12 + 1) / (10 + 1) = 1.18x the cheapest per unit of capacity:
    # a scale-up would take its idle nodes warm, but it grows on cheap first, so they are
    # kept for warm_pool_scale_in_delay_seconds (5 minutes), not the full 10.
    sizes = await _after_scale_in(12.0)
    assert sizes[:4] == [2] * 4, sizes
    assert sizes[5:] == [0] * (len(sizes) - 5), sizes


async def test_the_warm_pool_delay_is_a_setting() -> None:
    # The same world with the warm pools' delay at the full 10 minutes: kept 10 minutes.
    settings = ReconcilerSettings(observe_cache_seconds=0, warm_pool_scale_in_delay_seconds=600)
    sizes = await _after_scale_in(12.0, settings=settings)
    assert sizes[:9] == [2] * 9, sizes
    assert sizes[-1] == 0, sizes


async def test_idle_nodes_no_scale_up_would_take_go_at_once() -> None:
    # dear at $20.00 is 1.91x: above the warm factor 1.5, and the deployment grows on
    # cheap (regained: its own nodes there) first. Nobody would take the idle nodes.
    sizes = await _after_scale_in(20.0)
    assert sizes[0] == 0, sizes
    assert set(sizes) == {0}, sizes
