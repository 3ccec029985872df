"""A ``pvc://`` model whose claim does not exist in a member cluster: the pods stay Pending,
and the FleetCluster and the ModelDeployment say which claim is missing, where.

The member cluster is the in-memory fake: it has no scheduler, so the test leaves a pod
exactly as kube-scheduler does when a pod's volume names a claim that does not exist
(``PodScheduled=False``, reason ``Unschedulable``, ``persistentvolumeclaim "<name>" not
found``), and Running+Ready once the claim is there.
"""

from __future__ import annotations

from typing import Any

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet import labels
from modelfleet.api import ModelDeployment
from modelfleet.api.fleetcluster import MISSING_CLAIMS_MAX
from modelfleet.clusters.objects import DEPLOYMENT

CLAIM = "llama-weights"
SCHEDULER_MESSAGE = (
    f'0/2 nodes are available: persistentvolumeclaim "{CLAIM}" not found. preemption: '
    "0/2 nodes are available: 2 Preemption is not helpful for scheduling."
)


def pvc_model(name: str = "llama") -> ModelDeployment:
    return model_deployment(
        name,
        model={"name": "llama-3.1-8b-instruct", "uri": f"pvc://{CLAIM}/meta/llama-3.1-8b"},
        replicas={"min": 1, "max": 1},
    )


def pod(name: str, *, scheduled: bool) -> dict[str, Any]:
    """One inference pod of deployment ``llama`` as the scheduler and kubelet leave it."""
    if scheduled:
        status = {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
        }
    else:
        status = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": SCHEDULER_MESSAGE,
                }
            ],
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {labels.MANAGED: "true", labels.DEPLOYMENT: "llama"},
        },
        "status": status,
    }


def conditions(world: World, name: str) -> dict[str, tuple[str, str, str]]:
    status = world.deployments[name].status
    assert status is not None and status.conditions is not None
    return {c.type: (c.status, c.reason, c.message) for c in status.conditions}


async def test_a_missing_claim_is_named_on_the_fleet_cluster_and_the_deployment() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0)])
    await world.start()
    world.add(pvc_model())
    await world.reconcile("llama")
    deployment = world.members["east"].objects(DEPLOYMENT)[0]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "model-weights",
        "persistentVolumeClaim": {"claimName": CLAIM, "readOnly": True},
    } in volumes

    # The scheduler cannot place the pod: the claim does not exist in east.
    world.members["east"].put(pod("llama-od-1", scheduled=False))
    outcome = await world.loop.probe(world.fleet["east"], deployments=[])
    world.fleet["east"] = world.fleet["east"].model_copy(update={"status": outcome.status})

    assert outcome.status.missing_claims == [f"default/{CLAIM}"]
    assert [(e.type, e.reason) for e in outcome.events] == [("Warning", "ClaimMissing")]
    assert f"default/{CLAIM} not found" in outcome.events[0].message

    passed = await world.reconcile("llama")

    degraded = conditions(world, "llama")["Degraded"]
    assert degraded[0] == "True"
    assert f"PersistentVolumeClaim default/{CLAIM} not found in east" in degraded[2]
    assert "ClaimMissing" in [e.reason for e in passed.events]
    assert conditions(world, "llama")["Ready"][0] == "False"

    # A second probe with the claim still missing posts no second Event.
    again = await world.loop.probe(world.fleet["east"], deployments=[])
    assert again.status.missing_claims == [f"default/{CLAIM}"]
    assert "ClaimMissing" not in [e.reason for e in again.events]

    # The user creates the claim: the pod is scheduled and Ready, the warning clears.
    world.members["east"].put(pod("llama-od-1", scheduled=True))
    world.mark_ready("east")
    await world.probe()
    assert world.fleet["east"].status is not None
    assert world.fleet["east"].status.missing_claims is None
    passed = await world.reconcile("llama")

    assert conditions(world, "llama")["Degraded"][0] == "False"
    assert conditions(world, "llama")["Ready"][0] == "True"
    assert "ClaimMissing" not in [e.reason for e in passed.events]


async def test_a_claim_missing_for_another_deployment_or_namespace_is_not_this_one_s() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0)])
    await world.start()
    world.add(pvc_model())
    world.add(model_deployment("other", replicas={"min": 1, "max": 1}))  # weights not on a PVC
    await world.reconcile("llama")
    await world.reconcile("other")
    elsewhere = pod("x", scheduled=False)
    elsewhere["metadata"]["namespace"] = "team-b"  # the same claim name, another namespace
    world.members["east"].put(elsewhere)
    await world.probe()
    assert world.fleet["east"].status is not None
    assert world.fleet["east"].status.missing_claims == [f"team-b/{CLAIM}"]

    for name in ("llama", "other"):
        passed = await world.reconcile(name)
        assert "ClaimMissing" not in [e.reason for e in passed.events]
        assert "not found" not in conditions(world, name)["Degraded"][2]


async def test_more_missing_claims_than_the_status_holds_keep_the_cluster_probed() -> None:
    # Every tenant's Pending pods count: 1,025 missing claims (the CRD's maxItems is 1,024)
    # failed FleetClusterStatus's validation, so the probe wrote no status at all (health,
    # lastProbeTime, conditions) for as long as they stayed missing.
    world = World([fleet_cluster("east", region="us-east-1", price=10.0)])
    await world.start()
    for i in range(MISSING_CLAIMS_MAX + 1):
        waiting = pod(f"p{i}", scheduled=False)
        waiting["metadata"]["namespace"] = f"team-{i:04d}"
        world.members["east"].put(waiting)
    before = world.fleet["east"].status
    assert before is not None and before.last_probe_time is not None
    world.clock.advance(10)
    outcome = await world.loop.probe(world.fleet["east"], deployments=[])
    assert outcome.status.health == "Healthy"
    assert outcome.status.last_probe_time is not None
    assert outcome.status.last_probe_time > before.last_probe_time
    listed = outcome.status.missing_claims or []
    assert listed == [f"team-{i:04d}/{CLAIM}" for i in range(MISSING_CLAIMS_MAX)]
    [said] = [e.message for e in outcome.events if e.reason == "ClaimMissing"]
    assert said.startswith(
        f"modelfleet pods stay Pending: {MISSING_CLAIMS_MAX + 1} claims "
        f"missing, 1 beyond the {MISSING_CLAIMS_MAX}"
    ), said
