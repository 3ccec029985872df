"""A shrink's read of a member cluster and its cordon, over real HTTP (KMock emulator).

``reconciler.shrink`` reads the pool's Nodes and their pods (by node) with the real
``KubernetesClusterClient``, sorts the nodes into serving and empty, and cordons the
chosen ones with a JSON merge patch; each request must be allowed by the ClusterRole that
docs/member-clusters.md tells users to grant (``rbac_check.member_grants``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kube_emulator import KubeEmulator, kube_emulator
from tests.integration import rbac_check

from modelfleet import labels
from modelfleet.clusters import KubernetesClusterClient
from modelfleet.providers import NodeRef
from modelfleet.reconciler.shrink import cordon, pool_nodes

pytestmark = pytest.mark.integration

POOL_LABELS = labels.node_labels("aws-use1", "p5.48xlarge", "OnDemand")


@pytest.fixture
async def kube() -> AsyncIterator[KubeEmulator]:
    async with kube_emulator() as emulator:
        yield emulator


def _node(name: str, *, pool: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(POOL_LABELS) if pool else {}},
        "spec": {"providerID": f"aws:///us-east-1a/i-{name}"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def _pod(name: str, node: str, *, namespace: str = "serving", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, **meta},
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


async def test_the_shrink_reads_and_cordons_through_the_documented_cluster_role(
    kube: KubeEmulator,
) -> None:
    for name in ("gpu-a", "gpu-b", "gpu-c"):
        kube.put("v1/nodes", _node(name))
    kube.put("v1/nodes", _node("cpu-x", pool=False))  # another pool's node: never listed
    kube.put("v1/pods", _pod("llama-1", "gpu-a"))
    kube.put(
        "v1/pods",
        _pod(
            "device-plugin-b",
            "gpu-b",
            namespace="kube-system",
            ownerReferences=[{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "dp"}],
        ),
    )
    kube.put("v1/pods", _pod("etl", "gpu-c", namespace="batch") | {"status": {"phase": "Pending"}})

    client = await KubernetesClusterClient.from_kubeconfig(kube.kubeconfig(), name="member")
    try:
        nodes = await pool_nodes(client, POOL_LABELS, cluster="aws-use1")
        assert nodes.serving == ("gpu-a",)
        assert nodes.empty == (NodeRef("gpu-b", "aws:///us-east-1a/i-gpu-b"),)  # c holds etl
        assert nodes.registered == 3
        await cordon(client, nodes.empty, cluster="aws-use1")
        await cordon(client, [NodeRef("gone", "aws:///us-east-1a/i-gone")], cluster="aws-use1")
    finally:
        await client.close()

    cordoned = kube.get("v1/nodes", "gpu-b")
    assert cordoned is not None and cordoned["spec"]["unschedulable"] is True
    assert cordoned["spec"]["providerID"] == "aws:///us-east-1a/i-gpu-b"  # a merge, not a put
    for name in ("gpu-a", "gpu-c"):
        node = kube.get("v1/nodes", name)
        assert node is not None and not node["spec"].get("unschedulable")
    sent = kube.authenticated_requests()
    assert ("PATCH", "/api/v1/nodes/gpu-b") in sent
    assert rbac_check.member_grants().denied(sent) == []
    # Pods are listed per node of the pool (the server filters), never every pod.
    pod_lists = [urlsplit(path) for method, path in sent if path.startswith("/api/v1/pods")]
    asked = sorted(parse_qs(u.query).get("fieldSelector", ["<none>"])[0] for u in pod_lists)
    assert asked == [f"spec.nodeName={n}" for n in ("gpu-a", "gpu-b", "gpu-c")]


async def test_pods_are_listed_by_node_not_the_whole_cluster(kube: KubeEmulator) -> None:
    """Thousands of pods elsewhere in the member cluster are not read for one pool."""
    kube.put("v1/nodes", _node("gpu-a"))
    kube.put("v1/nodes", _node("cpu-x", pool=False))
    kube.put("v1/pods", _pod("llama-1", "gpu-a"))
    for i in range(30):
        kube.put("v1/pods", _pod(f"web-{i}", "cpu-x", namespace="web"))
    client = await KubernetesClusterClient.from_kubeconfig(kube.kubeconfig(), name="member")
    try:
        nodes = await pool_nodes(client, POOL_LABELS, cluster="aws-use1")
    finally:
        await client.close()
    assert nodes.serving == ("gpu-a",)
    pod_lists = [p for m, p in kube.authenticated_requests() if p.startswith("/api/v1/pods")]
    assert [parse_qs(urlsplit(p).query).get("fieldSelector") for p in pod_lists] == [
        ["spec.nodeName=gpu-a"]
    ]
