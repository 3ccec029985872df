"""The operator's RBAC: the chart (hub) and docs/member-clusters.md (members) allow every
request the operator sends.

Every operator test built on ``operator_harness.fleet_of`` checks its recorded requests
against those rules when it ends (``assert_rbac_allows``). This file checks the checker
(HTTP request -> RBAC attributes as the API server derives them; a missing rule is caught)
and runs the case that broke a real install (issue 14): a ModelDeployment placed on the
hub itself, in a namespace the hub does not have yet, becomes Ready and is deleted cleanly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration import rbac_check
from tests.integration.operator_harness import (
    MD_PATH,
    Fleet,
    assert_rbac_allows,
    eventually,
    fleet_cluster,
    fleet_of,
    mark_ready,
    model_deployment,
    operator,
)
from tests.integration.rbac_check import RequestAttributes, attributes

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        (
            "GET",
            "/api/v1/namespaces/team-a",
            RequestAttributes(
                "get", "/api/v1/namespaces/team-a", "", "namespaces", "", "team-a", "team-a"
            ),
        ),
        (
            "POST",
            "/api/v1/namespaces",
            RequestAttributes("create", "/api/v1/namespaces", "", "namespaces"),
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/default/deployments?labelSelector=a%3Db",
            RequestAttributes(
                "list",
                "/apis/apps/v1/namespaces/default/deployments",
                "apps",
                "deployments",
                "",
                "default",
            ),
        ),
        (
            "GET",
            "/apis/modelfleet.io/v1alpha1/modeldeployments?watch=true&resourceVersion=1",
            RequestAttributes(
                "watch",
                "/apis/modelfleet.io/v1alpha1/modeldeployments",
                "modelfleet.io",
                "modeldeployments",
            ),
        ),
        (
            "PATCH",
            "/apis/modelfleet.io/v1alpha1/namespaces/default/modeldeployments/llama/status",
            RequestAttributes(
                "patch",
                "/apis/modelfleet.io/v1alpha1/namespaces/default/modeldeployments/llama/status",
                "modelfleet.io",
                "modeldeployments",
                "status",
                "default",
                "llama",
            ),
        ),
        (
            "PUT",
            "/apis/modelfleet.io/v1alpha1/fleetclusters/east",
            RequestAttributes(
                "update",
                "/apis/modelfleet.io/v1alpha1/fleetclusters/east",
                "modelfleet.io",
                "fleetclusters",
                "",
                "",
                "east",
            ),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/services/web?propagationPolicy=Background",
            RequestAttributes(
                "delete",
                "/api/v1/namespaces/default/services/web",
                "",
                "services",
                "",
                "default",
                "web",
            ),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/pods",
            RequestAttributes(
                "deletecollection", "/api/v1/namespaces/default/pods", "", "pods", "", "default"
            ),
        ),
        ("GET", "/version", RequestAttributes("get", "/version")),
        ("GET", "/apis/apps/v1", RequestAttributes("get", "/apis/apps/v1")),
    ],
)
def test_requests_map_to_rbac_attributes_like_the_api_server(
    method: str, url: str, expected: RequestAttributes
) -> None:
    assert attributes(method, url) == expected


def _without(grants: rbac_check.Grants, resource: str, verb: str) -> rbac_check.Grants:
    """``grants`` with ``verb`` on ``resource`` taken out of every rule."""
    rules: list[dict[str, Any]] = []
    for rule in grants.cluster:
        copy = dict(rule)
        if resource in (rule.get("resources") or []):
            copy["verbs"] = [v for v in rule["verbs"] if v != verb]
        rules.append(copy)
    return rbac_check.Grants(tuple(rules), grants.namespaced)


def test_the_chart_lets_the_operator_manage_hub_namespaces_and_the_check_catches_a_gap() -> None:
    requests = [("GET", "/api/v1/namespaces/team-a"), ("POST", "/api/v1/namespaces")]
    assert rbac_check.hub_grants().denied(requests) == []
    narrowed = _without(rbac_check.hub_grants(), "namespaces", "get")
    assert narrowed.denied(requests) == [
        "get namespaces (core, namespace team-a) <- /api/v1/namespaces/team-a"
    ]


def test_secrets_are_readable_only_in_the_release_namespace() -> None:
    grants = rbac_check.hub_grants()
    here = f"/api/v1/namespaces/{rbac_check.CHART_NAMESPACE}/secrets/aws-use1"
    elsewhere = "/api/v1/namespaces/kube-system/secrets/aws-use1"
    assert grants.denied([("GET", here), ("GET", elsewhere)]) == [
        f"get secrets (core, namespace kube-system) <- {elsewhere}"
    ]


def test_member_rules_come_from_the_documented_cluster_role() -> None:
    grants = rbac_check.member_grants()
    allowed = [
        ("GET", "/version"),
        ("POST", "/api/v1/namespaces"),
        ("GET", "/api/v1/nodes?labelSelector=x%3Dy"),
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/llama"),
        ("DELETE", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/llama"),
        # observation's informer (clusters.informer): a watch per workload namespace
        ("GET", "/apis/apps/v1/namespaces/default/deployments?watch=true&resourceVersion=7"),
        # a shrink by name (reconciler.shrink): every pod, then cordon the emptied node
        ("GET", "/api/v1/pods"),
        ("PATCH", "/api/v1/nodes/gpu-node-1"),
    ]
    assert grants.denied(allowed) == []
    assert grants.denied([("DELETE", "/api/v1/nodes/gpu-node-1")]) != []
    assert grants.denied([("GET", "/api/v1/namespaces/default/secrets/x")]) != []


@pytest.fixture
async def hub_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fleet]:
    clusters = {
        "hub": fleet_cluster("hub", region="us-east-1", cloud="aws", price=10.0, on_hub=True)
    }
    async with fleet_of(tmp_path, monkeypatch, clusters) as running:
        yield running


async def test_a_deployment_placed_on_the_hub_is_ready_within_the_charts_rbac(
    hub_fleet: Fleet,
) -> None:
    fleet = hub_fleet
    path = MD_PATH.format(ns="team-a")
    async with operator(fleet):
        md = model_deployment("llama", replicas={"min": 1, "max": 1})
        md["metadata"]["namespace"] = "team-a"
        await fleet.kubectl.create(path, md)
        [deployment] = await eventually(
            lambda: fleet.hub.objects("apps/v1/deployments", namespace="team-a"),
            what="the Deployment on the hub",
        )
        assert fleet.hub.get("v1/namespaces", "team-a") is not None  # created by the operator
        mark_ready(fleet.hub, deployment)

        async def ready() -> bool:
            body = await fleet.kubectl.get(f"{path}/llama")
            conditions = {
                c["type"]: c for c in ((body or {}).get("status") or {}).get("conditions", [])
            }
            return conditions.get("Ready", {}).get("status") == "True"

        await eventually(ready, what="Ready=True")
        await fleet.kubectl.delete(f"{path}/llama")
        await eventually(
            lambda: not fleet.hub.objects("apps/v1/deployments", namespace="team-a"),
            what="the hub's Deployment removed",
        )
    # Checked again here (fleet_of checks at its end too) so this test states its point.
    assert_rbac_allows(fleet.hub, fleet.members)
    verbs = {
        rbac_check.attributes(method, url).verb
        for method, url in fleet.hub.authenticated_requests()
        if rbac_check.attributes(method, url).resource == "namespaces"
    }
    assert {"get", "create"} <= verbs
