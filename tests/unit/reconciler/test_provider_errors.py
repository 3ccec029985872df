"""How the pools stage reads provider errors: ``retryable`` ones are retried soon without
degrading the deployment; the others degrade it with a message naming what to fix. Either
way the pool is asked again on the next pass."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.api import FleetCluster, dump
from modelfleet.providers import PermissionDenied, Throttled

ROOT = Path(__file__).resolve().parents[3]


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


async def test_a_missing_cloud_extra_tells_cluster_users_the_package_not_a_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A FleetCluster switched to ``provider: aws`` on an operator without boto3: the
    Warning Event its probe records (read by cluster users with ``kubectl describe``) names
    ``modelfleet[aws]``; the operator pod's interpreter and source paths stay out of it."""
    monkeypatch.setitem(sys.modules, "boto3", None)
    world = World([fleet_cluster("east", region="us-east-1", price=10.0)])
    await world.start()
    body = dump(world.fleet["east"])
    body["spec"]["provider"] = "aws"
    body["spec"]["aws"] = {"clusterName": "east"}
    body["metadata"]["generation"] = 2
    cluster = FleetCluster.model_validate(body)
    world.clock.advance(600)  # offerings are rediscovered: the provider is built
    outcome = await world.loop.probe(cluster, deployments=[])
    messages = [str(e.message) for e in outcome.events if e.type == "Warning"]
    assert messages, outcome.events
    for message in messages:
        assert "the aws provider needs the aws extra (missing: boto3)" in message, message
        assert '"modelfleet[aws]"' in message, message
        assert sys.executable not in message and str(ROOT) not in message, message
