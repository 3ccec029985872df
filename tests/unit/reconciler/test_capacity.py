"""Faults 3, 4 and 5: shared capacity, capacity errors after an accepted resize, and the
stockout backoff, at the reconciler level on the in-package fakes with a virtual clock.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from reconciler_world import World, fleet_cluster, model_deployment, scaled_in

from modelfleet.api.modeldeployment import ReplicaRange
from modelfleet.reconciler import ReconcilerSettings, StockoutMemory


def _condition(outcome: object, type_: str) -> tuple[str, str]:
    status = outcome.status  # type: ignore[attr-defined]
    found = next(c for c in status.conditions if c.type == type_)
    return found.status, found.reason


# -- fault 3: capacity shared between deployments is never overbooked ---------------------


async def test_concurrent_passes_never_book_the_same_free_nodes() -> None:
    world = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=4),
            fleet_cluster("west", region="us-west-2", price=12.0, max_nodes=8),
        ]
    )
    await world.start()
    for name in ("a", "b"):
        world.add(model_deployment(name, replicas={"min": 3, "max": 3}))
    # Both passes run at once, as kopf runs the handlers of two objects.
    a, b = await asyncio.gather(world.reconcile("a"), world.reconcile("b"))

    asked = [
        int(c.detail.rsplit("=", 1)[1])
        for c in world.clouds["east"].calls
        if c.method == "ensure_pool"
    ]
    assert asked and max(asked) <= 4, f"east asked beyond maxNodes: {asked}"
    assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 4
    placed = {(o.plan.deployment, p.cluster): p.replicas for o in (a, b) for p in o.plan.placements}
    assert sum(n for (_, c), n in placed.items() if c == "east") == 4
    assert a.plan.unplaced == 0 and b.plan.unplaced == 0, "the loser did not fall through"
    assert sum(n for (_, c), n in placed.items() if c == "west") == 2
    assert not [e for o in (a, b) for e in o.events if e.reason == "Stockout"]
    assert not world.stockouts.marks("east"), "our own overbooking became a stockout"


async def test_pool_size_is_the_sum_of_every_plan_and_shrinks_on_delete() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=8)])
    await world.start()
    world.add(model_deployment("a", replicas={"min": 2, "max": 2}))
    world.add(model_deployment("b", replicas={"min": 3, "max": 3}))
    await world.reconcile("a")
    await world.reconcile("b")
    assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 5
    # Re-reconciling one deployment never resizes the pool to its own share.
    await world.reconcile("a")
    assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 5
    gone = world.deployments.pop("a")
    done = await world.reconciler.finalize(
        gone, fleet=list(world.fleet.values()), others=list(world.deployments.values())
    )
    assert done.done
    # A deletion releases at once (the scale-in delay is for the living).
    assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 3


async def test_ready_nodes_stay_warm_for_the_scale_in_delay() -> None:
    world = await scaled_in(held=5, booked=3)
    assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 5
    world.clock.advance(300)
    await world.reconcile("a")
    assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 5
    world.clock.advance(301)
    await world.reconcile("a")
    assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 3


async def test_a_scale_up_within_the_scale_in_delay_finds_its_nodes_warm() -> None:
    world = await scaled_in(held=4, booked=2)
    assert world.replicas("east") == 2
    assert world.pool_sizes("east")[("east-h100", "OnDemand")] == (4, 4)
    world.clock.advance(120)
    world.set_replicas("a", 4)
    await world.reconcile("a")
    grows = world.grow_calls("east", "OnDemand", above=2)
    assert grows == ["east-h100/OnDemand=4"], "the pool was shrunk and grown again"


async def test_a_restarted_operator_books_what_the_others_recorded() -> None:
    """A fresh ledger (operator restart) learns the neighbours' bookings from their status
    before planning, so the first pass after a restart does not overbook either."""
    first = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=4),
            fleet_cluster("west", region="us-west-2", price=12.0),
        ]
    )
    await first.start()
    first.add(model_deployment("a", replicas={"min": 3, "max": 3}))
    await first.reconcile("a")
    recorded = first.deployments["a"]

    second = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=4),
            fleet_cluster("west", region="us-west-2", price=12.0),
        ]
    )
    await second.start()
    second.add(recorded)
    second.add(model_deployment("b", replicas={"min": 3, "max": 3}))
    outcome = await second.reconcile("b")
    east = sum(p.replicas for p in outcome.plan.placements if p.cluster == "east")
    assert east == 1, f"b took {east} of east's 4 nodes while a holds 3"


# -- fault 4: capacity errors reported after an accepted resize ------------------------------


async def test_capacity_issue_after_accepted_resize_falls_through() -> None:
    world = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, provisioning_seconds=120),
            fleet_cluster("west", region="us-west-2", price=12.0),
        ]
    )
    await world.start()
    world.add(model_deployment("llama"))
    await world.reconcile("llama")
    assert world.pool_sizes("east")[("east-h100", "OnDemand")] == (0, 2)  # accepted
    # The cloud then cannot launch the nodes and says so on the pool.
    world.clouds["east"].inject_stockout(
        "east-h100", "OnDemand", until=world.clock() + timedelta(hours=1)
    )
    world.clock.advance(10)
    outcome = await world.reconcile("llama")

    marks = world.stockouts.marks("east")
    assert [(m.gpu, m.capacity_type, m.instance_type) for m in marks] == [
        ("H100", "OnDemand", "east-h100")
    ]
    assert [e for e in outcome.events if e.reason == "Stockout"]
    assert _condition(outcome, "CapacityAvailable") == ("False", "Stockout")
    assert world.replicas("west") == 2, "replicas did not fall through to the next candidate"
    assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 0, "pool kept growing"
    await world.probe()
    assert world.fleet["east"].status is not None
    assert world.fleet["east"].status.stockouts, "mark not published on the FleetCluster"


async def test_nodes_not_ready_within_the_launch_timeout_are_a_stockout() -> None:
    world = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, provisioning_seconds=3600),
            fleet_cluster("west", region="us-west-2", price=12.0),
        ],
        settings=ReconcilerSettings(launch_timeout_seconds=900),
    )
    await world.start()
    world.add(model_deployment("llama"))
    for _ in range(17):  # 14 min 10 s of 50-second passes: inside the timeout
        await world.reconcile("llama")
        world.clock.advance(50)
    assert not world.stockouts.marks("east")
    assert world.replicas("east") == 2
    world.clock.advance(60)  # past 15 minutes since the grow
    outcome = await world.reconcile("llama")
    assert world.stockouts.marks("east"), "launch timeout not turned into a stockout"
    assert "launch timeout" in (world.stockouts.marks("east")[0].message or "")
    assert world.replicas("west") == 2
    assert _condition(outcome, "CapacityAvailable") == ("False", "Stockout")


# -- fault 5: the stockout backoff is kept ----------------------------------------------------


async def test_stockout_mark_survives_calls_that_only_keep_the_size() -> None:
    world = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, spot=4.0),
            fleet_cluster("west", region="us-west-2", price=12.0, spot=5.0),
        ]
    )
    await world.start()
    world.add(
        model_deployment(
            "llama",
            replicas={"min": 2, "max": 8},
            placement={"regions": ["us-east-1"], "capacity": {"spot": "Preferred"}},
        )
    )
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    assert world.pool_sizes("east")[("east-h100", "Spot")] == (2, 2)
    world.clouds["east"].inject_stockout(
        "east-h100", "Spot", until=world.clock() + timedelta(hours=1)
    )

    world.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 4, "max": 8}))
    outcome = await world.reconcile("llama")
    assert len(world.grow_calls("east", "Spot", above=2)) == 1
    mark = world.stockouts.marks("east")[0]
    assert mark.failures == 1
    assert mark.until == world.clock() + timedelta(seconds=180)
    assert [e for e in outcome.events if e.reason == "Stockout"]
    await world.probe()
    assert world.fleet["east"].status.stockouts, "status.stockouts stays empty"

    world.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 6, "max": 8}))
    for _ in range(10):  # a minute of passes inside the backoff
        world.clock.advance(6)
        world.mark_ready("east")
        await world.reconcile("llama")
    assert len(world.grow_calls("east", "Spot", above=2)) == 1, "grew inside the backoff"
    assert world.stockouts.marks("east"), "the mark was erased by a call that kept the size"
    assert world.replicas("east") == 6  # the rest on on-demand meanwhile

    # After expiry the pool may be asked again (here: the next scale-up); a second refusal
    # doubles the backoff.
    world.clock.advance(180)
    await world.reconcile("llama")
    assert len(world.grow_calls("east", "Spot", above=2)) == 1
    assert world.stockouts.marks("east"), "an expired mark was forgotten without a grow"
    world.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 8, "max": 8}))
    await world.reconcile("llama")
    assert len(world.grow_calls("east", "Spot", above=2)) == 2
    mark = world.stockouts.marks("east")[0]
    assert (mark.failures, mark.until) == (2, world.clock() + timedelta(seconds=360))


async def test_mark_is_cleared_only_when_the_pool_obtains_its_grow() -> None:
    world = World(
        [fleet_cluster("east", region="us-east-1", price=10.0, spot=4.0)],
        stockouts=StockoutMemory(initial_seconds=60, max_seconds=600),
    )
    await world.start()
    world.add(
        model_deployment(
            "llama", replicas={"min": 2, "max": 8}, placement={"capacity": {"spot": "Preferred"}}
        )
    )
    await world.reconcile("llama")
    world.mark_ready("east")
    world.clouds["east"].inject_stockout(
        "east-h100", "Spot", until=world.clock() + timedelta(seconds=30)
    )
    world.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 3, "max": 8}))
    await world.reconcile("llama")
    mark = world.stockouts.marks("east")[0]
    assert mark.until == world.clock() + timedelta(seconds=60), "settings' backoff not used"
    world.clock.advance(61)  # the mark expired and the cloud has capacity again
    world.mark_ready("east")
    await world.reconcile("llama")
    assert world.stockouts.marks("east"), "an expired mark was forgotten without a grow"
    world.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 4, "max": 8}))
    await world.reconcile("llama")
    assert world.pool_sizes("east")[("east-h100", "Spot")][0] == 3
    assert not world.stockouts.marks("east"), "obtained the grow but kept the backoff"
