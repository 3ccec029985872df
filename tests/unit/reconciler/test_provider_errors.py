"""How the pools stage reads provider errors: ``retryable`` ones are retried soon without
degrading the deployment; the others degrade it with a message naming what to fix. Either
way the pool is asked again on the next pass."""

from __future__ import annotations

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.providers import PermissionDenied, Throttled


def _degraded(outcome: object) -> str:
    conditions = {c.type: c for c in outcome.status.conditions}  # type: ignore[attr-defined]
    return conditions["Degraded"].status


async def test_throttling_is_retried_without_degrading() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0)])
    await world.start()
    world.add(model_deployment("llama"))
    world.clouds["east"].fail_next(Throttled("slow down", retry_after=1))
    outcome = await world.reconcile("llama")
    assert [e.reason for e in outcome.events if e.type == "Warning"] == ["Throttled"]
    assert _degraded(outcome) == "False"
    assert outcome.requeue_after is not None
    assert world.pool_sizes("east") == {}
    world.clock.advance(5)
    await world.reconcile("llama")
    assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 2, "not asked again"


async def test_a_permission_problem_degrades_and_names_the_permission() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0)])
    await world.start()
    world.add(model_deployment("llama"))
    world.clouds["east"].fail_next(
        PermissionDenied("not allowed", permission="eks:UpdateNodegroupConfig")
    )
    outcome = await world.reconcile("llama")
    assert _degraded(outcome) == "True"
    degraded = next(c for c in outcome.status.conditions or [] if c.type == "Degraded")
    assert "not allowed" in degraded.message
    world.clock.advance(5)
    await world.reconcile("llama")
    assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 2, "not asked again"
