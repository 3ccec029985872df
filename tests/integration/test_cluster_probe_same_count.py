"""The in-memory cluster (the simulator's and the unit tests' member cluster) and the real
client over HTTP count a probe the same way for the same objects: GPU nodes (allocatable
GPUs or modelfleet's instance-type label), the ready ones, nodes leaving per pool, and
modelfleet's pods, of which a pod being deleted is never "not ready"."""

from __future__ import annotations

from typing import Any

from kube_emulator import kube_emulator

from modelfleet import labels
from modelfleet.clusters import KubernetesClusterClient
from modelfleet.clusters.fake import InMemoryClusterClient

NS = "team-a"


def _node(name: str, *, ready: bool, gpus: int, **extra: Any) -> dict[str, Any]:
    node_labels = extra.pop("labels", {})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels, **extra.pop("metadata", {})},
        "spec": extra.pop("spec", {}),
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def _pod(name: str, *, ready: bool, managed: bool = True, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "labels": {labels.MANAGED: "true"} if managed else {},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T12:00:00Z"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


POOL = {labels.NODE_INSTANCE_TYPE: "g5.xlarge", labels.NODE_CAPACITY_TYPE: "spot"}
NODES = [
    _node("gpu-1", ready=True, gpus=8),
    _node("gpu-2", ready=False, gpus=8),
    _node("cpu-1", ready=True, gpus=0),
    _node("labelled", ready=True, gpus=0, labels=POOL),  # no GPUs yet: counted by its label
    _node("cordoned", ready=True, gpus=1, labels=POOL, spec={"unschedulable": True}),
]
PODS = [
    _pod("a", ready=True),
    _pod("b", ready=False),
    _pod("going", ready=False, deleting=True),  # managed, but not "not ready"
    _pod("other", ready=False, managed=False),
]


async def test_the_fake_and_the_real_client_count_a_probe_alike() -> None:
    fake = InMemoryClusterClient("member")
    for obj in [*NODES, *PODS]:
        fake.put(obj)
    async with kube_emulator() as kube:
        for node in NODES:
            kube.put("v1/nodes", node)
        for pod in PODS:
            kube.put("v1/pods", pod)
        real = await KubernetesClusterClient.from_kubeconfig(kube.kubeconfig(), name="member")
        try:
            over_http = await real.probe()
        finally:
            await real.close()
    in_memory = await fake.probe()

    counts = (
        over_http.gpu_nodes,
        over_http.ready_gpu_nodes,
        over_http.managed_pods,
        over_http.not_ready_pods,
        dict(over_http.leaving_nodes),
    )
    assert counts == (4, 2, 3, 1, {("g5.xlarge", "Spot"): 1})
    assert (
        in_memory.gpu_nodes,
        in_memory.ready_gpu_nodes,
        in_memory.managed_pods,
        in_memory.not_ready_pods,
        dict(in_memory.leaving_nodes),
    ) == counts
