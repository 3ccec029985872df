"""When a pass asks to come back in ``progressing_requeue_seconds`` (5 s) and when at the
regular interval: a cluster the probe marks Failed whose API does not answer is no reason
for a 5 s requeue once every planned replica is Ready elsewhere (only the probe can change
what the planner does there), but a rollout under way or a cluster the probe still calls
Healthy that does not answer is.

At the reconciler level on the in-package fakes with a virtual clock; health moves through
the real probe state machine.
"""

from __future__ import annotations

from reconciler_world import World, east_west, model_deployment

from modelfleet.reconciler import FleetSettings

FLEET = FleetSettings(fail_after_seconds=45.0, recover_after_seconds=300.0)


async def _served_from_east() -> World:
    world = east_west(fleet=FLEET)
    await world.start()
    world.add(model_deployment("llama"))
    await world.reconcile("llama")
    world.mark_ready("east")
    outcome = await world.reconcile("llama")
    assert (world.replicas("east"), world.replicas("west")) == (2, 0)
    assert outcome.requeue_after is None, "steady state: the regular interval"
    return world


async def test_an_outage_requeues_soon_only_while_the_replacements_come_up() -> None:
    world = await _served_from_east()
    world.members["east"].set_unreachable(True)
    for _ in range(6):
        world.clock.advance(10)
        await world.probe()
    status = world.fleet["east"].status
    assert status is not None and status.health == "Failed"

    outcome = await world.reconcile("llama")
    assert world.replicas("west") == 2
    assert outcome.requeue_after == 5.0, "replacements not Ready yet: come back soon"
    warnings = [e.reason for e in outcome.events if e.type == "Warning"]
    assert "ClusterUnreachable" in warnings, "the outage is posted when first met"

    world.mark_ready("west")
    outcome = await world.reconcile("llama")
    warnings = [e.reason for e in outcome.events if e.type == "Warning"]
    assert "ClusterUnreachable" not in warnings, "posted once, not on every pass (warn15)"
    degraded = next(c for c in outcome.status.conditions or [] if c.type == "Degraded")
    assert degraded.status == "True", "still reported"
    assert "cannot read workloads in east" in degraded.message, "still named"
    assert outcome.requeue_after is None, "only the probe can change this: regular interval"


async def test_a_healthy_cluster_that_does_not_answer_is_retried_soon() -> None:
    world = await _served_from_east()
    world.members["west"].set_unreachable(True)
    status = world.fleet["west"].status
    assert status is not None and status.health == "Healthy"
    outcome = await world.reconcile("llama")
    assert "ClusterUnreachable" in [e.reason for e in outcome.events]
    assert outcome.requeue_after == 5.0


async def test_a_suspect_cluster_is_checked_again_when_the_deployment_counts_it_lost() -> None:
    # The probe marks east Suspect; the deployment's own failAfterSeconds (20 s, stricter
    # than the fleet's 45 s) makes its replicas there lost 20 s after the last good probe,
    # with no probe changing anything: only the clock. The pass before must come back by
    # then, not at the regular interval (15 s later), or the failover waits for it.
    world = east_west(fleet=FLEET)
    await world.start()
    world.add(model_deployment("llama", failover={"failAfterSeconds": 20}))
    await world.reconcile("llama")
    world.mark_ready("east")
    assert (await world.reconcile("llama")).requeue_after is None
    world.members["east"].set_unreachable(True)
    world.clock.advance(10)
    await world.probe()
    status = world.fleet["east"].status
    assert status is not None and status.health == "Suspect"

    world.clock.advance(2)  # 12 s since east last answered: not lost yet for llama
    outcome = await world.reconcile("llama")
    assert world.replicas("west") == 0, "not lost yet: nothing moves"
    assert outcome.requeue_after is not None and outcome.requeue_after <= 8.0, (
        f"east is lost for llama in 8 s; next pass in {outcome.requeue_after} "
        "(None: the 15 s interval)"
    )
