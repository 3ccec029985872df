"""Which Nodes the operator takes for going away (``clusters.objects.node_info``,
``leaving_by_pool``): what an interruption handler leaves on a Node at a spot notice, as
the member cluster's API returns it."""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet.clusters.objects import leaving_by_pool, node_info
from modelfleet.labels import NODE_CAPACITY_TYPE, NODE_INSTANCE_TYPE


def _node(name: str = "n", *, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {NODE_INSTANCE_TYPE: "a3-highgpu-1g", NODE_CAPACITY_TYPE: "spot"},
            **meta,
        },
        "spec": spec or {},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def _taint(key: str, effect: str = "NoSchedule") -> dict[str, Any]:
    return {"taints": [{"key": key, "effect": effect}]}


@pytest.mark.parametrize(
    ("node", "leaving"),
    [
        (_node(), False),
        (_node(spec=_taint("nvidia.com/gpu")), False),  # every GPU pool's own taint
        (_node(spec=_taint("cloud.google.com/impending-node-termination")), True),
        (_node(spec=_taint("aws-node-termination-handler/spot-itn")), True),
        (_node(spec=_taint("karpenter.sh/disrupted")), True),
        (_node(spec=_taint("ToBeDeletedByClusterAutoscaler", "NoSchedule")), True),
        (_node(spec=_taint("node.kubernetes.io/out-of-service", "NoExecute")), True),
        # A soft preference is no notice (cluster-autoscaler's DeletionCandidate... is one).
        (_node(spec=_taint("karpenter.sh/disrupted", "PreferNoSchedule")), False),
        (_node(spec={"unschedulable": True}), True),  # cordoned: kubectl drain, NTH
        (_node(deletionTimestamp="2026-12-01T12:00:00Z"), True),
    ],
)
def test_what_counts_as_leaving(node: dict[str, Any], leaving: bool) -> None:
    info = node_info(node)
    assert info.leaving is leaving
    assert info.usable is not leaving  # all of them are Ready


def test_leaving_nodes_are_counted_per_pool_of_modelfleets_labels() -> None:
    notice = _taint("cloud.google.com/impending-node-termination")
    unlabelled = _node("x", spec=notice)
    unlabelled["metadata"]["labels"] = {}
    on_demand = _node("d", spec=notice)
    on_demand["metadata"]["labels"][NODE_CAPACITY_TYPE] = "on-demand"
    nodes = [_node("a", spec=notice), _node("b", spec=notice), _node("c"), on_demand, unlabelled]
    assert leaving_by_pool(node_info(n) for n in nodes) == {
        ("a3-highgpu-1g", "Spot"): 2,
        ("a3-highgpu-1g", "OnDemand"): 1,
    }
