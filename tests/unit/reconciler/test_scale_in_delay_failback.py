"""Idle nodes on a cluster back from Failed keep the scale-in delay.

idle9 releases at once an idle node no deployment's scale-up would take
(``PoolLedger.wanted``: the pools of ``Plan.warm_pools``). A cluster back from Failed is in
no deployment's growth candidates until its failback window ends (``core.health``:
``accepts_new_replicas``), so its pools are in no ``warm_pools``; and a deployment that
planned while the cluster was down booked nothing there (its replicas there were lost).
The first pass after the return, of any deployment, sizes every pool whose bookings
changed: seen through those plans, the nodes the survivors run on were idle and unwanted,
and went at once; the owner's next pass books its survivors (held for failback) and the
pool grew again, from new nodes. In the default scenario (seed 1, the eastus outage ends
16:00): chat's first pass released batch's two A100 spot nodes and code's H100 on-demand
node, which batch's pass in the same second and code's 5 s later asked back
(docs/simulation.md, "Nodes of a cluster back from Failed").

Reconciler level on the in-package fakes with a virtual clock (``reconciler_world``).
"""

from __future__ import annotations

from reconciler_world import World, east_west, model_deployment

from modelfleet.reconciler import FleetSettings

FLEET = FleetSettings(fail_after_seconds=45.0, recover_after_seconds=300.0)
EAST = ("east-h100", "OnDemand")


async def _returned() -> World:
    """b's two replicas ran in east (a, pinned to west, runs one there); east was down for
    60 s, b replaced its replicas in west, and east answers again (Recovering). b's plan,
    made while east was down, books nothing in east."""
    world = east_west(fleet=FLEET)
    await world.start()
    world.add(model_deployment("b", failover={"failbackAfterSeconds": 300}))
    world.add(
        model_deployment("a", replicas={"min": 1, "max": 1}, placement={"regions": ["us-west-2"]})
    )
    await world.reconcile("b")
    await world.reconcile("a")
    world.mark_ready("east")
    world.mark_ready("west")
    await world.reconcile("b")
    await world.reconcile("a")
    assert (world.replicas("east", "b"), world.replicas("west", "b")) == (2, 0)
    assert world.pool_sizes("east")[EAST] == (2, 2)

    await world.outage("east", seconds=60)
    await world.reconcile("b")  # b replaces its lost east replicas in west
    assert world.replicas("west", "b") == 2
    world.mark_ready("west")
    await world.probe()
    assert world.fleet["east"].status is not None
    assert world.fleet["east"].status.health == "Recovering"
    return world


async def test_the_first_pass_after_a_return_keeps_the_survivors_nodes() -> None:
    world = await _returned()
    grows_before = len(world.grow_calls("east", "OnDemand", above=0))

    # a's pass comes first: b's plan (made while east was down) books nothing in east.
    await world.reconcile("a")
    assert world.pool_sizes("east")[EAST] == (2, 2), "released the survivors' nodes"
    await world.reconcile("b")  # b's survivors, held for failback, book east again
    assert world.replicas("east", "b") == 2
    assert world.pool_sizes("east")[EAST] == (2, 2)
    assert len(world.grow_calls("east", "OnDemand", above=0)) == grows_before, (
        "east's pool grew back from new nodes"
    )


async def test_nodes_nobody_books_after_a_return_go_when_the_delay_runs_out() -> None:
    """The hold is the scale-in delay (10 minutes from the pass that found the nodes idle),
    not a pin: with b never booking east again (its passes stall), only a's passes size
    east's pool, and the two nodes go once the delay has run."""
    world = await _returned()
    sizes = []
    for _ in range(12):
        await world.reconcile("a")
        sizes.append(world.pool_sizes("east")[EAST][1])
        world.clock.advance(60)
        await world.probe()
    assert sizes[:10] == [2] * 10, sizes
    assert sizes[10:] == [0, 0], sizes
