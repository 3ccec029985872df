"""Undoing the shrink's cordon over real HTTP (KMock emulator).

A node cordoned for a removal that did not happen is made schedulable again by a JSON
merge patch whose nulls delete ``spec.unschedulable`` and the operator's annotation; a node
someone else cordoned is read as theirs (``PoolNodes.held``) and never counted as ours.
Every request must be allowed by the documented member ClusterRole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kube_emulator import KubeEmulator, kube_emulator
from tests.integration import rbac_check

from modelfleet import labels
from modelfleet.clusters import KubernetesClusterClient
from modelfleet.providers import NodeRef
from modelfleet.reconciler.shrink import CORDON_ANNOTATION, cordon, pool_nodes, uncordon

pytestmark = pytest.mark.integration

POOL_LABELS = labels.node_labels("aws-use1", "p5.48xlarge", "OnDemand")


@pytest.fixture
async def kube() -> AsyncIterator[KubeEmulator]:
    async with kube_emulator() as emulator:
        yield emulator


def _node(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(POOL_LABELS)},
        "spec": {"providerID": f"aws:///us-east-1a/i-{name}", **spec},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


async def test_the_operator_undoes_its_own_cordon_only(kube: KubeEmulator) -> None:
    kube.put("v1/nodes", _node("gpu-a"))
    kube.put("v1/nodes", _node("gpu-b", unschedulable=True))  # an administrator's cordon
    client = await KubernetesClusterClient.from_kubeconfig(kube.kubeconfig(), name="member")
    try:
        before = await pool_nodes(client, POOL_LABELS, cluster="aws-use1")
        assert before.held == frozenset({"gpu-b"}) and before.ours == ()
        await cordon(
            client,
            [NodeRef("gpu-a", "aws:///us-east-1a/i-gpu-a"), NodeRef("gpu-b", "x")],
            cluster="aws-use1",
            held=before.held,
        )
        cordoned = await pool_nodes(client, POOL_LABELS, cluster="aws-use1")
        assert cordoned.ours == ("gpu-a",) and cordoned.held == frozenset({"gpu-b"})
        await uncordon(client, cordoned.ours, cluster="aws-use1")
        await uncordon(client, ["gone"], cluster="aws-use1")  # a node already deleted
        after = await pool_nodes(client, POOL_LABELS, cluster="aws-use1")
        assert after.ours == () and after.held == frozenset({"gpu-b"})
    finally:
        await client.close()

    node = kube.get("v1/nodes", "gpu-a")
    assert node is not None
    assert "unschedulable" not in node["spec"]
    assert CORDON_ANNOTATION not in (node["metadata"].get("annotations") or {})
    assert node["spec"]["providerID"] == "aws:///us-east-1a/i-gpu-a"  # a merge, not a put
    admin = kube.get("v1/nodes", "gpu-b")
    assert admin is not None and admin["spec"]["unschedulable"] is True
    assert CORDON_ANNOTATION not in (admin["metadata"].get("annotations") or {})
    sent = kube.authenticated_requests()
    assert ("PATCH", "/api/v1/nodes/gpu-a") in sent
    assert ("PATCH", "/api/v1/nodes/gpu-b") not in sent
    assert rbac_check.member_grants().denied(sent) == []
