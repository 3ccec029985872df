"""The scale-in delay holds after a failed node-pool call.

A failed pool call (throttled, timed out, refused) makes the ledger forget what the pool
was last asked for, so the next pass asks again. The scale-in delay read that unknown size
as "nothing to keep": bookings that dropped right after a failure released the Ready nodes
at once, skipping the 10 minutes they are kept warm (nd2's finding; the simulator's
capacity errors take that path). The hold now reads the last size known before the
failure (never above what the failed call asked), so it keeps only nodes the pool had.

Reconciler level on the in-package fakes with a virtual clock (``reconciler_world``).
"""

from __future__ import annotations

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.api.modeldeployment import ReplicaRange
from modelfleet.core.from_api import offering_of
from modelfleet.providers import PoolSpec, Throttled

POOL = ("east-h100", "OnDemand")


def _replicas(world: World, n: int) -> None:
    world.set_spec("a", replicas=ReplicaRange.model_validate({"min": n, "max": n}))


async def _five_ready(world: World) -> None:
    await world.start()
    world.add(model_deployment("a", replicas={"min": 5, "max": 5}))
    await world.reconcile("a")
    world.clock.advance(900)  # every node Ready
    world.mark_ready("east")
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL] == (5, 5)


async def _held_for(world: World, minutes: int) -> list[tuple[float, int, int]]:
    """A pass a minute for ``minutes``: (seconds since the first, nodes booked, pool size)."""
    ledger = world.reconciler.ledger
    first = world.clock()
    seen = []
    for _ in range(minutes):
        world.clock.advance(60)
        await world.reconcile("a")
        booked = ledger.total(("east", *POOL))  # type: ignore[arg-type]
        seen.append(
            ((world.clock() - first).total_seconds(), booked, world.pool_sizes("east")[POOL][1])
        )
    return seen


def _assert_delay_kept(seen: list[tuple[float, int, int]], held: int = 5) -> None:
    """The pool held ``held`` nodes or more until 600 s after the bookings dropped to 3,
    then 3."""
    dropped = next(t for t, booked, _ in seen if booked == 3)
    kept = [size for t, _, size in seen if t - dropped < 600]
    assert kept and min(kept) >= held, f"the delay was skipped: {seen}"
    assert seen[-1][2] == 3, f"the nodes were never released: {seen}"


async def test_a_failed_grow_does_not_skip_the_scale_in_delay() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=8)])
    await _five_ready(world)
    _replicas(world, 6)
    # Throttled: the grow fails, and so does its retry on the next pass.
    world.clouds["east"].fail_next(Throttled("slow down", retry_after=1))
    world.clouds["east"].fail_next(Throttled("slow down", retry_after=1))
    outcome = await world.reconcile("a")
    assert "Throttled" in [e.reason for e in outcome.events], "the grow did not fail"
    assert world.pool_sizes("east")[POOL] == (5, 5)
    _replicas(world, 3)  # the burst is over before a call succeeds
    _assert_delay_kept(await _held_for(world, 14))


async def test_a_pool_resized_behind_our_back_keeps_the_clock_and_never_grows() -> None:
    """During the delay someone else sizes the pool to 4 (a console, another tool): the
    pool upkeep forgets what this process asked, so the next pass asks again. The hold
    keeps what the pool has (4, never the 5 asked before) and the clock that started
    with the drop: the nodes go 10 minutes after the bookings dropped, not at once."""
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=8)])
    await _five_ready(world)
    _replicas(world, 3)
    seen = await _held_for(world, 3)  # booked 3 from the second pass, the pool kept at 5
    assert [size for *_, size in seen] == [5, 5, 5]
    offering = offering_of(world.fleet["east"], POOL[0])
    assert offering is not None
    await world.clouds["east"].ensure_pool(PoolSpec("east", offering, "OnDemand", 4, ()))
    await world.probe()  # the pool upkeep reads the pool: asked 4 by someone else
    assert world.reconciler.ledger.requested(("east", *POOL)) is None  # type: ignore[arg-type]
    later = await _held_for(world, 11)
    seen += [(t + 180, booked, size) for t, booked, size in later]
    assert max(size for *_, size in later) <= 4, f"the hold grew the pool back: {seen}"
    _assert_delay_kept(seen, held=4)


async def test_a_failed_shrink_after_the_delay_is_not_held_again() -> None:
    """The hold never exceeds what the failed call asked: a shrink that failed once the
    delay was over is retried at its size on the next pass, not held 10 more minutes."""
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=8)])
    await _five_ready(world)
    _replicas(world, 3)
    seen = await _held_for(world, 11)  # booked 3 from 120 s: the delay ends at 720 s
    assert [size for *_, size in seen] == [5] * 11
    world.clouds["east"].fail_next(Throttled("slow down", retry_after=1))
    world.clock.advance(60)
    outcome = await world.reconcile("a")  # the shrink fails
    assert "Throttled" in [e.reason for e in outcome.events], "the shrink did not fail"
    assert world.pool_sizes("east")[POOL][1] == 5
    world.clock.advance(5)
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL][1] == 3, "held again after a failed shrink"
