"""A problem that lasts is posted as a Warning once, not on every pass (warn15).

A Degraded deployment is re-reconciled every ``progressing_requeue_seconds`` (5 s); every
pass used to post the same Warning again (here ApplyFailed: a workload's name is taken by
an object modelfleet does not manage), spending the deployment's Event budget in about two
minutes. The Warning is now posted when the recorded Degraded condition does not carry its
message yet, and again every ``REANNOUNCE_SECONDS`` while it lasts (Events expire after
1 h); the deployment stays Degraded with the problem named on every pass.

At the reconciler level on the in-package fakes (a member's API as ``InMemoryClusterClient``)
with a virtual clock; statuses are stored back as the API server would.
"""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler_world import World, east_west, model_deployment

from modelfleet.api.common import Condition
from modelfleet.clusters.objects import DEPLOYMENT, SERVICE, ResourceKind
from modelfleet.reconciler import ReconcileOutcome
from modelfleet.reconciler.outcome import REANNOUNCE_SECONDS, PassLog, said_before


async def _placed_on_east() -> World:
    world = east_west()
    await world.start()
    world.add(model_deployment("llama"))
    await world.reconcile("llama")
    assert (world.replicas("east"), world.replicas("west")) == (2, 0)
    return world


def _unmanage(world: World, kind: ResourceKind, *, managed: bool = False) -> None:
    """Take the ``modelfleet.io/managed`` label off (or put it back on) east's ``kind``
    object of llama: someone else's object under the name modelfleet applies."""
    member = world.members["east"]
    [obj] = [o for o in member.objects(kind) if o["metadata"]["name"].startswith("llama")]
    labels = dict(obj["metadata"].get("labels") or {})
    if managed:
        labels["modelfleet.io/managed"] = "true"
    else:
        labels.pop("modelfleet.io/managed", None)
    obj["metadata"]["labels"] = labels
    member.put(obj)


def _applied_failed(outcome: ReconcileOutcome) -> list[str]:
    return [e.message for e in outcome.events if e.type == "Warning" and e.reason == "ApplyFailed"]


def _degraded(outcome: ReconcileOutcome) -> Condition:
    return next(c for c in outcome.status.conditions or [] if c.type == "Degraded")


async def test_ten_passes_of_a_lasting_apply_failure_post_one_warning() -> None:
    world = await _placed_on_east()
    _unmanage(world, DEPLOYMENT)
    posted: list[str] = []
    for _ in range(10):
        world.clock.advance(5)
        outcome = await world.reconcile("llama")
        posted += _applied_failed(outcome)
        degraded = _degraded(outcome)
        assert degraded.status == "True", "still Degraded on every pass"
        assert "cannot apply workloads in east" in (degraded.message or ""), "still named"
        assert outcome.requeue_after == 5.0, "still retried soon"
    assert len(posted) == 1, posted  # main 5ade7ce: 10
    assert "is not managed by modelfleet" in posted[0]


async def test_a_lasting_problem_is_posted_again_every_reannounce_interval() -> None:
    world = await _placed_on_east()
    _unmanage(world, DEPLOYMENT)
    step = 30.0
    posted_at: list[int] = []
    since = None
    for k in range(131):  # 65 min of passes, 30 s apart
        outcome = await world.reconcile("llama")
        if _applied_failed(outcome):
            posted_at.append(k)
        degraded = _degraded(outcome)
        assert degraded.status == "True"
        since = since or degraded.last_transition_time
        assert degraded.last_transition_time == since, "one Degraded spell throughout"
        world.clock.advance(step)
    every = int(REANNOUNCE_SECONDS // step)
    assert posted_at == [0, every, 2 * every], posted_at


async def test_a_pass_after_a_longer_gap_posts_the_problem_again() -> None:
    # The operator was down (or the deployment not reconciled) for longer than the interval:
    # the Event posted before may have expired, so the first pass after says it again.
    world = await _placed_on_east()
    _unmanage(world, DEPLOYMENT)
    assert _applied_failed(await world.reconcile("llama"))
    world.clock.advance(5)
    assert not _applied_failed(await world.reconcile("llama"))
    world.clock.advance(REANNOUNCE_SECONDS + 60)
    assert _applied_failed(await world.reconcile("llama"))
    world.clock.advance(5)
    assert not _applied_failed(await world.reconcile("llama"))


async def test_a_changed_message_is_posted_at_once() -> None:
    world = await _placed_on_east()
    _unmanage(world, DEPLOYMENT)
    [first] = _applied_failed(await world.reconcile("llama"))
    world.clock.advance(5)
    assert not _applied_failed(await world.reconcile("llama"))

    # Another object in the way too (the Service is applied first): same reason, another
    # message; posted on the next pass.
    _unmanage(world, SERVICE)
    world.clock.advance(5)
    outcome = await world.reconcile("llama")
    [second] = _applied_failed(outcome)
    assert second != first and "Service llama" in second
    assert second in (_degraded(outcome).message or "")
    world.clock.advance(5)
    assert not _applied_failed(await world.reconcile("llama"))

    # Fixed: no longer Degraded (nothing is carried over to a later spell).
    _unmanage(world, SERVICE, managed=True)
    _unmanage(world, DEPLOYMENT, managed=True)
    world.clock.advance(5)
    outcome = await world.reconcile("llama")
    assert not _applied_failed(outcome) and _degraded(outcome).status == "False"
    assert said_before(outcome.status, world.clock()) == ""


def test_a_problem_counts_as_said_only_as_a_whole_part_of_the_joined_message() -> None:
    said = "cannot apply workloads in east: timed out after 5 s; 1 replica(s) unplaced"
    log = PassLog(said=said)
    log.warn("ApplyFailed", "cannot apply workloads in east: timed out")  # a prefix: new
    log.warn("ApplyFailed", "cannot apply workloads in east: timed out after 5 s")  # said
    log.warn("ClusterUnreachable", "1 replica(s) unplaced")  # said (the last part)
    assert [e.message for e in log.events] == ["cannot apply workloads in east: timed out"]
    assert len(log.problems) == 3, "every problem still makes the deployment Degraded"


def test_nothing_counts_as_said_without_a_recorded_degraded_condition() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert said_before(None, now) == ""
    log = PassLog(said=said_before(None, now))
    log.warn("ApplyFailed", "x")
    assert [e.reason for e in log.events] == ["ApplyFailed"]
