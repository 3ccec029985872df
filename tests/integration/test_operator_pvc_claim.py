"""A ``pvc://`` model with the real operator (kopf + handlers) against KMock emulators: the
member Deployment mounts the claim read-only and gives the engine the mounted path, and a
claim missing in the member cluster is named on the FleetCluster (``status.missingClaims``,
a ``ClaimMissing`` Event) and on the ModelDeployment (``Degraded``, a ``ClaimMissing``
Event) until the pods are scheduled.

The emulator has no scheduler or kubelet: the test leaves the pod as kube-scheduler does
when a volume names a claim that does not exist, then as it is once the claim is there."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.integration.operator_harness import (
    EAST,
    MD_PATH,
    Fleet,
    eventually,
    fleet_fixture,
    model_deployment,
    operator,
)

from modelfleet import labels

pytestmark = pytest.mark.integration

CLAIM = "llama-weights"


fleet = fleet_fixture(EAST)


def _pod(*, scheduled: bool) -> dict[str, Any]:
    condition: dict[str, Any] = (
        {"type": "PodScheduled", "status": "True"}
        if scheduled
        else {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": f'0/1 nodes are available: persistentvolumeclaim "{CLAIM}" not found. '
            "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
        }
    )
    return {
        "metadata": {
            "name": "llama-od-0",
            "namespace": "default",
            "labels": {labels.MANAGED: "true", labels.DEPLOYMENT: "llama"},
        },
        "status": {"phase": "Running" if scheduled else "Pending", "conditions": [condition]},
    }


def _conditions(body: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in ((body or {}).get("status") or {}).get("conditions") or []}


async def test_a_pvc_model_mounts_its_claim_and_a_missing_claim_is_reported(
    fleet: Fleet,
) -> None:
    async with operator(fleet):
        await fleet.until_healthy("east")
        md = model_deployment(
            "llama",
            model={"name": "llama-3.1-8b-instruct", "uri": f"pvc://{CLAIM}/meta/8b"},
            replicas={"min": 1, "max": 1},
        )
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)
        await eventually(lambda: fleet.replicas("east") == 1, what="one replica in east")

        [deployment] = fleet.deployments("east")
        pod = deployment["spec"]["template"]["spec"]
        [server] = pod["containers"]
        assert server["args"][:2] == ["--model", f"/models/{CLAIM}/meta/8b"]
        assert {
            "name": "model-weights",
            "persistentVolumeClaim": {"claimName": CLAIM, "readOnly": True},
        } in pod["volumes"]
        assert {
            "name": "model-weights",
            "mountPath": f"/models/{CLAIM}",
            "readOnly": True,
        } in server["volumeMounts"]

        fleet.members["east"].put("v1/pods", _pod(scheduled=False))

        async def missing_on_cluster() -> list[str] | None:
            status = ((await fleet.fc("east")) or {}).get("status") or {}
            return status.get("missingClaims")

        assert await eventually(missing_on_cluster, what="missingClaims on east") == [
            f"default/{CLAIM}"
        ]

        async def degraded() -> dict[str, Any] | None:
            condition = _conditions(await fleet.md("llama")).get("Degraded") or {}
            return condition if condition.get("status") == "True" else None

        condition = await eventually(degraded, what="Degraded=True on llama")
        assert f"PersistentVolumeClaim default/{CLAIM} not found in east" in condition["message"]
        kinds = {e["involvedObject"]["kind"] for e in fleet.events("ClaimMissing")}
        assert kinds == {"FleetCluster", "ModelDeployment"}

        # The claim is created: the pod is scheduled and Ready, and both clear.
        fleet.members["east"].put("v1/pods", _pod(scheduled=True))
        fleet.mark_ready("east")

        async def cleared() -> bool:
            return await missing_on_cluster() is None

        await eventually(cleared, what="missingClaims cleared on east")

        async def healthy() -> bool:
            conditions = _conditions(await fleet.md("llama"))
            return (conditions.get("Degraded") or {}).get("status") == "False" and (
                conditions.get("Ready") or {}
            ).get("status") == "True"

        await eventually(healthy, what="llama Ready and not Degraded")


async def test_a_missing_claim_is_said_once_not_every_pass(fleet: Fleet) -> None:
    # While it is Degraded the deployment is reconciled every requeue (0.5 s here, 5 s in
    # production); a ClaimMissing Warning each pass spent its Event budget (25) in about
    # two minutes, and every other Event of the deployment was dropped from then on.
    async with operator(fleet):
        await fleet.until_healthy("east")
        md = model_deployment(
            "llama",
            model={"name": "llama-3.1-8b-instruct", "uri": f"pvc://{CLAIM}/meta/8b"},
            replicas={"min": 1, "max": 1},
        )
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)
        await eventually(lambda: fleet.replicas("east") == 1, what="one replica in east")
        fleet.members["east"].put("v1/pods", _pod(scheduled=False))

        async def degraded() -> dict[str, Any] | None:
            condition = _conditions(await fleet.md("llama")).get("Degraded") or {}
            return condition if condition.get("status") == "True" else None

        await eventually(degraded, what="Degraded=True on llama")
        generation = ((await fleet.md("llama")) or {})["status"]["observedGeneration"]

        def on_llama() -> list[dict[str, Any]]:
            return [
                e
                for e in fleet.events("ClaimMissing")
                if e["involvedObject"]["kind"] == "ModelDeployment"
            ]

        await eventually(on_llama, what="a ClaimMissing Event on llama")
        await asyncio.sleep(5.0)  # ~10 more passes at the test's 0.5 s requeue
        assert await degraded(), "the deployment must stay Degraded while the claim is missing"
        assert ((await fleet.md("llama")) or {})["status"]["observedGeneration"] == generation
        assert len(on_llama()) == 1, [e["message"][:80] for e in on_llama()]
