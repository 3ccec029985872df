"""The chart with the gateway enabled: helm lint, every manifest validated against the
Kubernetes schemas, and the gateway's Deployment, Service and least-privilege RBAC as a user
would see them. Uses the helm binary and helpers of test_helm_chart.py."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from test_helm_chart import (  # the session-scoped `helm` fixture and shared helpers
    CHART,
    K8S_VERSIONS,
    NAMESPACE,
    REPO,
    Helm,
    Manifests,
    grants,
    helm,
    of_kind,
    render_with,
)

pytestmark = pytest.mark.integration

GATEWAY_VALUES = REPO / "tests" / "fixtures" / "chart" / "values-gateway.yaml"
__all__ = ["helm"]  # re-exported fixture


def gateway_objects(manifests: Manifests) -> Manifests:
    return [
        m
        for m in manifests
        if m["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "gateway"
    ]


@pytest.fixture(scope="module")
def enabled(helm: Helm) -> Manifests:
    """Only gateway.enabled=true: every other value at its default."""
    return render_with(helm, "--include-crds", "--set", "gateway.enabled=true")


@pytest.fixture(scope="module")
def full(helm: Helm) -> Manifests:
    return render_with(helm, "--include-crds", "--values", str(GATEWAY_VALUES))


def one_of(manifests: Manifests, kind: str) -> dict[str, Any]:
    found = [m for m in gateway_objects(manifests) if m["kind"] == kind]
    assert len(found) == 1, [m["metadata"]["name"] for m in found]
    return found[0]


def container(manifests: Manifests) -> dict[str, Any]:
    (c,) = one_of(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c  # type: ignore[no-any-return]


@pytest.mark.parametrize("values", ["--set=gateway.enabled=true", str(GATEWAY_VALUES)])
def test_helm_lint_strict_passes_with_the_gateway(helm: Helm, values: str) -> None:
    args = [values] if values.startswith("--set") else ["--values", values]
    result = helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout


@pytest.mark.parametrize("which", ["enabled", "full"])
@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
def test_every_manifest_validates_with_the_gateway(
    request: pytest.FixtureRequest, which: str, k8s_version: str
) -> None:
    manifests: Manifests = request.getfixturevalue(which)
    assert gateway_objects(manifests)
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{manifest['kind']} {manifest['metadata']['name']}: {path}: {exc.message}")


def test_gateway_is_off_by_default(helm: Helm) -> None:
    assert gateway_objects(render_with(helm)) == []
    crds = {m["metadata"]["name"] for m in render_with(helm, "--include-crds")}
    assert "modelroutes.modelfleet.io" in crds


def test_gateway_deployment_and_service(enabled: Manifests, full: Manifests) -> None:
    deployment = one_of(enabled, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    c = container(enabled)
    assert c["command"] == ["modelfleet"]
    assert c["args"][:6] == [
        "gateway",
        "--port",
        "8080",
        "--management-port",
        "9090",
        "--log-format",
    ]
    assert "--api-keys-secret" not in c["args"] and "--tls-cert" not in c["args"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one_of(enabled, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http", "management"]
    assert one_of(enabled, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1

    args = container(full)["args"]
    pairs = dict(zip(args[1::2], args[2::2], strict=False))
    assert pairs["--api-keys-secret"] == f"{NAMESPACE}/gateway-api-keys"
    assert pairs["--region"] == "us-east-1"
    assert (pairs["--rate-limit"], pairs["--rate-burst"]) == ("5", "10")
    assert (pairs["--hold-timeout"], pairs["--max-request-bytes"]) == ("30", "1048576")
    assert args[-2:] == ["--max-attempts", "2"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == ["team-a", "team-b"]
    assert pairs["--tls-cert"] == "/var/run/modelfleet/tls/tls.crt"
    volumes = one_of(full, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": "gateway-tls", "defaultMode": 0o440}} in volumes
    service = one_of(full, "Service")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0] == {
        "name": "https",
        "port": 443,
        "targetPort": "http",
        "protocol": "TCP",
    }


def test_operator_objects_do_not_select_gateway_pods(enabled: Manifests) -> None:
    operator_service = next(
        m for m in of_kind(enabled, "Service") if m not in gateway_objects(enabled)
    )
    assert operator_service["spec"]["selector"]["app.kubernetes.io/component"] == "operator"


WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


DEMAND_LEASES = {
    "apiGroups": ["coordination.k8s.io"],
    "resources": ["leases"],
    "verbs": ["create", "patch"],
}
"""The activator's demand Leases (gateway/activator.py), in the release namespace only."""
GATEWAY_WRITES = [
    # ModelRoute status and Events (gateway/route_status.py).
    {"apiGroups": ["modelfleet.io"], "resources": ["modelroutes/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    DEMAND_LEASES,
]
"""The gateway's only writes (docs/gateway.md)."""
GATEWAY_RULES = [
    {  # the watch, and the re-read of a route whose status write was refused 409
        "apiGroups": ["modelfleet.io"],
        "resources": ["modeldeployments", "modelroutes"],
        "verbs": ["get", "list", "watch"],
    },
    *GATEWAY_WRITES[:2],
]
DEMAND_ROLE = (NAMESPACE, "mf-modelfleet-gateway-demand")


def test_gateway_rbac_reads_routes_and_deployments_writes_only_leases_and_route_status(
    enabled: Manifests, full: Manifests
) -> None:
    sa = one_of(enabled, "ServiceAccount")["metadata"]["name"]
    pod = one_of(enabled, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa != "mf-modelfleet"  # not the operator's identity
    role = one_of(enabled, "ClusterRole")
    assert role["rules"] == GATEWAY_RULES
    binding = one_of(enabled, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    # The demand Leases: a Role in the release namespace, nowhere else.
    [demand] = [m for m in gateway_objects(enabled) if m["kind"] == "Role"]
    assert (demand["metadata"]["namespace"], demand["metadata"]["name"]) == DEMAND_ROLE
    assert demand["rules"] == [DEMAND_LEASES]
    [demand_binding] = [m for m in gateway_objects(enabled) if m["kind"] == "RoleBinding"]
    assert demand_binding["roleRef"]["name"] == DEMAND_ROLE[1]
    assert demand_binding["subjects"] == binding["subjects"]

    # Namespaced: Roles in the served namespaces only, and the keys Secret by name.
    assert not [m for m in gateway_objects(full) if m["kind"].startswith("Cluster")]
    roles = {
        (m["metadata"]["namespace"], m["metadata"]["name"]): m
        for m in gateway_objects(full)
        if m["kind"] == "Role"
    }
    assert set(roles) == {
        ("team-a", "mf-modelfleet-gateway"),
        ("team-b", "mf-modelfleet-gateway"),
        (NAMESPACE, "mf-modelfleet-gateway-keys"),
        DEMAND_ROLE,
    }
    assert roles[NAMESPACE, "mf-modelfleet-gateway-keys"]["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["gateway-api-keys"],
            "verbs": ["get"],
        }
    ]
    for manifests in (enabled, full):
        for role in [m for m in gateway_objects(manifests) if m["kind"] in ("Role", "ClusterRole")]:
            for rule in role["rules"]:
                assert rule in GATEWAY_WRITES or not WRITE_VERBS & set(rule["verbs"]), rule
                assert "*" not in rule["resources"] + rule["verbs"] + rule["apiGroups"]
                if rule == DEMAND_LEASES:
                    assert role["metadata"].get("namespace") == NAMESPACE
            # No write to any ModelDeployment (the activator's old patch grant is gone).
            for verb in WRITE_VERBS:
                assert not grants(role["rules"], "modelfleet.io", "modeldeployments", verb)
            if role["kind"] == "ClusterRole":
                assert not grants(role["rules"], "", "secrets", "get")


def test_gateway_rbac_is_left_out_with_rbac_create_false(helm: Helm) -> None:
    rendered = render_with(helm, "--set", "gateway.enabled=true", "--set", "rbac.create=false")
    kinds = {m["kind"] for m in gateway_objects(rendered)}
    assert kinds == {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"}


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ("gateway:\n  enabled: 'yes'\n", "/gateway/enabled"),
        ("gateway:\n  replicas: 0\n", "/gateway/replicas"),
        ("gateway:\n  service:\n    type: Ingress\n", "/gateway/service/type"),
        ("gateway:\n  apiKeys:\n    existingSecret: Bad_Name\n", "/gateway/apiKeys/existingSecret"),
        ("gateway:\n  rateLimit: 5\n", "rateLimit"),
    ],
)
def test_bad_gateway_values_are_rejected(
    helm: Helm, tmp_path: Any, values: str, field: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(values, encoding="utf-8")
    result = helm("template", "mf", str(CHART), "--values", str(path))
    assert result.returncode != 0
    assert field in result.stderr, result.stderr


def test_no_two_objects_share_a_name_with_a_long_release_name(helm: Helm) -> None:
    """A long release name (fullname truncated to 63 characters) with the gateway scoped to
    the release namespace too: the gateway's demand Role must not truncate into the name of
    its per-namespace Role (helm would fail the install on the duplicate, or one Role's
    rules would be lost)."""
    manifests = render_with(
        helm,
        "--set",
        "gateway.enabled=true",
        "--set",
        f"fullnameOverride={'a' * 63}",
        "--set",
        f"gateway.namespaces={{{NAMESPACE},team}}",
    )
    keys = [
        (m["kind"], m["metadata"].get("namespace", NAMESPACE), m["metadata"]["name"])
        for m in manifests
    ]
    assert sorted(k for k in keys if keys.count(k) > 1) == []
    assert all(len(name) <= 63 for kind, _, name in keys if kind in ("Role", "RoleBinding"))
