"""Rendering of the member-cluster workloads: what a user finds with kubectl for each engine.

Every rendered object is validated (strictly: unknown fields fail) against the Kubernetes
OpenAPI schemas of the oldest and newest versions kubernetes-validate ships.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest

from modelfleet import labels
from modelfleet.api import ModelDeployment
from modelfleet.clusters.objects import matches_selector
from modelfleet.clusters.workloads import (
    DEFAULT_IMAGES,
    RenderSettings,
    WorkloadPlacement,
    is_workload_of,
    owner_selector,
    render_deployment,
    render_workloads,
    service_url,
    workload_name,
    workload_namespace,
)
from modelfleet.metrics.queries import SelectorLabels

_VERSIONS = sorted(
    set(kubernetes_validate.utils.all_versions()),
    key=lambda v: tuple(int(part) for part in v.split(".")),
)
K8S_VERSIONS = sorted({_VERSIONS[0], kubernetes_validate.utils.latest_version()})

ON_DEMAND = WorkloadPlacement("aws-use1", "p5.48xlarge", "OnDemand", 3)
SPOT = WorkloadPlacement("aws-use1", "p5.48xlarge", "Spot", 1)


def md(
    *,
    name: str = "llama",
    engine: str = "vllm",
    gpus: int = 1,
    uri: str | None = "hf://meta-llama/Llama-3.1-8B-Instruct",
    **runtime: Any,
) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": name, "namespace": "team-a", "uid": "0b6d-uid"},
            "spec": {
                "model": {"name": "llama-3.1-8b-instruct", **({"uri": uri} if uri else {})},
                "runtime": {"engine": engine, **runtime},
                "resources": {"gpu": {"count": gpus}, "cpu": "8", "memory": "64Gi"},
                "replicas": {"min": 1, "max": 8},
            },
        }
    )


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


ENGINE_CASES = [
    pytest.param(
        {"engine": "vllm"},
        DEFAULT_IMAGES["vllm"],
        None,
        [
            "--model", "meta-llama/Llama-3.1-8B-Instruct",
            "--served-model-name", "llama-3.1-8b-instruct",
            "--port", "8000",
        ],
        "/health",
        id="vllm",
    ),
    pytest.param(
        {"engine": "sglang"},
        DEFAULT_IMAGES["sglang"],
        ["python3", "-m", "sglang.launch_server"],
        [
            "--model-path", "meta-llama/Llama-3.1-8B-Instruct",
            "--served-model-name", "llama-3.1-8b-instruct",
            "--host", "0.0.0.0",
            "--port", "8000",
            "--enable-metrics",
        ],
        "/health",
        id="sglang",
    ),
    pytest.param(
        {"engine": "tgi"},
        DEFAULT_IMAGES["tgi"],
        None,
        ["--model-id", "meta-llama/Llama-3.1-8B-Instruct", "--hostname", "0.0.0.0", "--port", "8000"],
        "/health",
        id="tgi",
    ),
    pytest.param(
        {"engine": "builtin"},
        DEFAULT_IMAGES["builtin"],
        ["python", "-m", "modelfleet.serving"],
        [
            "--model", "meta-llama/Llama-3.1-8B-Instruct",
            "--served-model-name", "llama-3.1-8b-instruct",
            "--host", "0.0.0.0",
            "--port", "8000",
        ],
        # Not ready (nor started) until the model is loaded; alive while it loads.
        {"startupProbe": "/ready", "readinessProbe": "/ready", "livenessProbe": "/health"},
        id="builtin",
    ),
    pytest.param(
        {"engine": "custom", "image": "registry.example/my-server:1.2", "args": ["serve", "-p", "9000"], "port": 9000},
        "registry.example/my-server:1.2",
        None,
        ["serve", "-p", "9000"],
        None,  # TCP probe
        id="custom",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("runtime", "image", "command", "args", "health"), ENGINE_CASES)
def test_engine_container(
    runtime: dict[str, Any],
    image: str,
    command: list[str] | None,
    args: list[str],
    health: str | dict[str, str] | None,
) -> None:
    deployment = of_kind(render_workloads(md(**runtime), [ON_DEMAND]), "Deployment")[0]
    c = container(deployment)
    port = runtime.get("port", 8000)

    assert c["image"] == image
    assert c.get("command") == command
    assert c["args"] == args
    assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if health is None:
            assert c[probe]["tcpSocket"] == {"port": "http"}
        else:
            path = health if isinstance(health, str) else health[probe]
            assert c[probe]["httpGet"] == {"path": path, "port": "http"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }


@pytest.mark.parametrize(
    ("engine", "flag"),
    [("vllm", "--tensor-parallel-size"), ("sglang", "--tp"), ("tgi", "--num-shard")],
)
def test_multi_gpu_replicas_shard_the_model_across_their_gpus(engine: str, flag: str) -> None:
    deployment = of_kind(render_workloads(md(engine=engine, gpus=4), [ON_DEMAND]), "Deployment")[0]
    c = container(deployment)

    assert c["args"][c["args"].index(flag) + 1] == "4"
    assert c["resources"]["requests"]["nvidia.com/gpu"] == "4"
    assert c["resources"]["limits"] == {"nvidia.com/gpu": "4"}


def test_user_args_replace_the_default_of_the_same_flag_and_come_last() -> None:
    c = container(
        render_workloads(
            md(engine="tgi", args=["--port=8000", "--max-total-tokens", "8192"]), [ON_DEMAND]
        )[1]
    )

    assert c["args"] == [
        "--model-id", "meta-llama/Llama-3.1-8B-Instruct", "--hostname", "0.0.0.0",
        "--port=8000", "--max-total-tokens", "8192",
    ]  # fmt: skip


def test_model_without_uri_is_loaded_by_name_and_s3_uris_pass_through() -> None:
    by_name = container(render_workloads(md(uri=None), [ON_DEMAND])[1])
    s3 = container(render_workloads(md(uri="s3://weights/llama/"), [ON_DEMAND])[1])

    assert by_name["args"][:2] == ["--model", "llama-3.1-8b-instruct"]
    assert s3["args"][:2] == ["--model", "s3://weights/llama/"]


PVC_VOLUME = {
    "name": "model-weights",
    "persistentVolumeClaim": {"claimName": "llama-weights", "readOnly": True},
}
PVC_MOUNT = {"name": "model-weights", "mountPath": "/models/llama-weights", "readOnly": True}
DSHM_VOLUME = {"name": "dshm", "emptyDir": {"medium": "Memory"}}
DSHM_MOUNT = {"name": "dshm", "mountPath": "/dev/shm"}


@pytest.mark.parametrize(
    ("engine", "flag"),
    [("vllm", "--model"), ("sglang", "--model-path"), ("tgi", "--model-id"),
     ("builtin", "--model")],
)  # fmt: skip
@pytest.mark.parametrize(
    ("uri", "model_path"),
    [
        ("pvc://llama-weights/meta/llama-3.1-8b", "/models/llama-weights/meta/llama-3.1-8b"),
        ("pvc://llama-weights/meta/llama-3.1-8b/", "/models/llama-weights/meta/llama-3.1-8b"),
        ("pvc://llama-weights", "/models/llama-weights"),
        ("pvc://llama-weights/", "/models/llama-weights"),
    ],
)
def test_a_pvc_model_is_mounted_read_only_and_the_engine_loads_the_mounted_path(
    engine: str, flag: str, uri: str, model_path: str
) -> None:
    deployment = of_kind(render_workloads(md(engine=engine, uri=uri), [ON_DEMAND]), "Deployment")[0]
    pod = deployment["spec"]["template"]["spec"]
    c = container(deployment)

    assert c["args"][c["args"].index(flag) + 1] == model_path
    assert not any(arg.startswith("pvc:") for arg in c["args"])
    assert pod["volumes"] == [DSHM_VOLUME, PVC_VOLUME]
    assert c["volumeMounts"] == [DSHM_MOUNT, PVC_MOUNT]


def test_a_custom_engine_gets_the_pvc_mounted_and_its_own_arguments_untouched() -> None:
    custom = md(
        engine="custom",
        image="registry.example/my-server:1.2",
        args=["serve", "--weights", "/models/llama-weights/v2"],
        uri="pvc://llama-weights/v2",
    )
    deployment = of_kind(render_workloads(custom, [ON_DEMAND]), "Deployment")[0]

    assert container(deployment)["args"] == ["serve", "--weights", "/models/llama-weights/v2"]
    assert deployment["spec"]["template"]["spec"]["volumes"] == [DSHM_VOLUME, PVC_VOLUME]
    assert container(deployment)["volumeMounts"] == [DSHM_MOUNT, PVC_MOUNT]


@pytest.mark.parametrize("uri", [None, "s3://weights/llama/", "/mnt/llama", "file:///mnt/llama"])
def test_only_a_pvc_model_adds_a_volume(uri: str | None) -> None:
    deployment = of_kind(render_workloads(md(uri=uri), [ON_DEMAND]), "Deployment")[0]

    assert deployment["spec"]["template"]["spec"]["volumes"] == [DSHM_VOLUME]
    assert container(deployment)["volumeMounts"] == [DSHM_MOUNT]


def test_pods_are_pinned_to_their_pool_and_tolerate_gpu_and_spot_taints() -> None:
    objects = render_workloads(md(), [ON_DEMAND, SPOT])
    by_capacity = {
        d["metadata"]["labels"][labels.NODE_CAPACITY_TYPE]: d["spec"]["template"]["spec"]
        for d in of_kind(objects, "Deployment")
    }

    assert by_capacity["on-demand"]["nodeSelector"] == {
        labels.NODE_INSTANCE_TYPE: "p5.48xlarge",
        labels.NODE_CAPACITY_TYPE: "on-demand",
    }
    assert by_capacity["spot"]["nodeSelector"][labels.NODE_CAPACITY_TYPE] == "spot"
    gpu_taint = {
        "key": "nvidia.com/gpu",
        "operator": "Equal",
        "value": "present",
        "effect": "NoSchedule",
    }
    for pod in by_capacity.values():
        assert gpu_taint in pod["tolerations"]
    spot_keys = {t["key"] for t in by_capacity["spot"]["tolerations"]}
    assert "kubernetes.azure.com/scalesetpriority" in spot_keys
    assert len(by_capacity["on-demand"]["tolerations"]) == 1


def test_every_object_is_labelled_for_ownership_and_found_by_the_owner_selector() -> None:
    objects = render_workloads(md(), [ON_DEMAND, SPOT])
    selector = owner_selector(name="llama", namespace="team-a")

    assert [o["kind"] for o in objects] == [
        "Service", "Deployment", "Deployment", "PodDisruptionBudget", "PodDisruptionBudget",
    ]  # fmt: skip
    for obj in objects:
        assert matches_selector(obj, selector)
        assert obj["metadata"]["namespace"] == "team-a"
        assert obj["metadata"]["labels"][labels.UID] == "0b6d-uid"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelfleet"


def test_service_selects_the_pods_of_every_placement_and_each_deployment_only_its_own() -> None:
    objects = render_workloads(md(), [ON_DEMAND, SPOT])
    service = of_kind(objects, "Service")[0]
    deployments = of_kind(objects, "Deployment")
    pods = [d["spec"]["template"] for d in deployments]

    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    for pod in pods:
        assert matches_selector(pod, service["spec"]["selector"])
        # What the Prometheus queries select on (after labelmap: modelfleet_io_deployment).
        assert pod["metadata"]["labels"][labels.DEPLOYMENT] == "llama"
        assert pod["metadata"]["labels"][labels.NAMESPACE] == "team-a"
    for deployment, pod in zip(deployments, pods, strict=True):
        own = deployment["spec"]["selector"]["matchLabels"]
        assert [matches_selector(p, own) for p in pods].count(True) == 1
        assert matches_selector(pod, own)
    assert service_url(md()) == "http://llama.team-a.svc.cluster.local:8000"


def test_pdb_lets_voluntary_evictions_take_one_replica_at_a_time() -> None:
    objects = render_workloads(md(), [ON_DEMAND, SPOT])
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}

    for pdb in of_kind(objects, "PodDisruptionBudget"):
        assert pdb["spec"]["maxUnavailable"] == 1
        target = deployments[pdb["metadata"]["name"]]
        assert pdb["spec"]["selector"] == target["spec"]["selector"]


def test_rollouts_surge_before_taking_a_replica_down() -> None:
    deployment = of_kind(render_workloads(md(), [ON_DEMAND]), "Deployment")[0]

    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == RenderSettings().termination_grace_period_seconds


def test_env_is_passed_through_and_secrets_are_never_resolved() -> None:
    env = [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
        {"name": "VLLM_LOGGING_LEVEL", "value": "INFO"},
    ]
    c = container(render_workloads(md(env=env), [ON_DEMAND])[1])

    assert c["env"] == env


def test_names_are_deterministic_distinct_and_fit_63_characters() -> None:
    long_name = "a" * 60 + ".v2"
    first = workload_name(long_name, SPOT)
    again = workload_name(long_name, SPOT)
    other_md = workload_name("a" * 60 + ".v3", SPOT)
    other_pool = workload_name(long_name, ON_DEMAND)

    assert first == again
    assert len({first, other_md, other_pool}) == 3
    assert all(len(n) <= 63 for n in (first, other_md, other_pool))
    assert workload_name("llama", SPOT) == f"llama-spot-{SPOT.pool_id}"
    assert workload_name("llama", ON_DEMAND) == f"llama-od-{ON_DEMAND.pool_id}"
    objects = render_workloads(md(name=long_name), [SPOT])
    assert all(len(o["metadata"]["name"]) <= 63 for o in objects)
    assert all(len(v) <= 63 for o in objects for v in o["metadata"]["labels"].values())


def test_runtime_image_overrides_the_engine_default() -> None:
    c = container(render_workloads(md(image="mirror.example/vllm:pinned"), [ON_DEMAND])[1])

    assert c["image"] == "mirror.example/vllm:pinned"
    assert c["resources"]["requests"] == {"nvidia.com/gpu": "1", "cpu": "8", "memory": "64Gi"}


def test_placements_of_one_cluster_only_and_each_pool_once() -> None:
    elsewhere = WorkloadPlacement("gcp-usc1", "a3-highgpu-8g", "OnDemand", 1)

    with pytest.raises(ValueError, match="several clusters"):
        render_workloads(md(), [ON_DEMAND, elsewhere])
    with pytest.raises(ValueError, match="share"):
        render_workloads(md(), [ON_DEMAND, ON_DEMAND])
    assert [o["kind"] for o in render_workloads(md(), [])] == ["Service"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("engine", ["builtin", "vllm", "sglang", "tgi", "custom"])
@pytest.mark.parametrize("uri", ["hf://meta-llama/Llama-3.1-8B-Instruct", "pvc://weights.v2/llama"])
def test_rendered_objects_are_valid_kubernetes(engine: str, version: str, uri: str) -> None:
    extra = {"image": "registry.example/x:1"} if engine == "custom" else {}
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    objects = render_workloads(
        md(engine=engine, gpus=2, env=env, uri=uri, **extra), [ON_DEMAND, SPOT]
    )

    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


# -- which member-cluster objects are a ModelDeployment's (``is_workload_of``) ------------


@pytest.mark.parametrize("name", ["llama", "Llama_3.1-8B", "m" * 63, "9b-" + "x" * 80])
def test_every_rendered_deployment_and_pdb_is_its_owner_s_workload(name: str) -> None:
    owner = md(name=name)
    objects = render_workloads(owner, [ON_DEMAND, SPOT])
    for obj in of_kind(objects, "Deployment") + of_kind(objects, "PodDisruptionBudget"):
        assert is_workload_of(workload_namespace(owner), name, obj)
        assert not is_workload_of("team-b", name, obj), "another namespace"
        assert not is_workload_of(workload_namespace(owner), name + "x", obj), "another name"
    (service,) = of_kind(objects, "Service")
    assert not is_workload_of(workload_namespace(owner), name, service)


@pytest.mark.parametrize(
    "meta",
    [
        {"namespace": "team-a"},
        {"namespace": "team-a", "name": 7},
        {"name": "llama-od-0123456789ab"},
        {"namespace": "team-a", "name": "llama-od-0123456789a"},
        {"namespace": "team-a", "name": "llama-x-od-0123456789ab"},
    ],
)
def test_other_names_and_places_are_not_a_workload(meta: dict[str, Any]) -> None:
    assert not is_workload_of("team-a", "llama", {"metadata": meta})


def test_a_manifest_without_a_namespace_writes_to_default() -> None:
    owner = ModelDeployment.model_validate(
        {**md().model_dump(mode="json", by_alias=True), "metadata": {"name": "llama"}}
    )
    assert workload_namespace(owner) == "default"
    (deployment,) = of_kind(render_workloads(owner, [ON_DEMAND]), "Deployment")
    assert deployment["metadata"]["namespace"] == "default"
    assert is_workload_of("default", "llama", deployment)


@pytest.mark.parametrize(
    "name",
    [
        "llama",
        "a" * 63,
        # A ModelDeployment name may have 253 characters (an RFC 1123 subdomain).
        "team-a-llama-3.1-8b-instruct.canary.eu-west-4.blue-green.rollout-2026-12-01",
        "x" * 253,
    ],
)
def test_the_metrics_selector_matches_the_labels_the_pods_carry(name: str) -> None:
    """Found on main 8be971f (br11): a ModelDeployment name over 63 characters reached the
    pods shortened (``label_value``), but the PromQL selector asked for the whole name, so
    no engine series ever matched and the deployment never scaled on its signals."""
    deployment = render_deployment(md(name=name), ON_DEMAND, settings=RenderSettings())
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    # A PodMonitor's podTargetLabels and a kubernetes_sd labelmap write '.' and '/' as '_'.
    series = {k.replace(".", "_").replace("/", "_"): v for k, v in pod_labels.items()}
    selector = SelectorLabels().render(deployment=name, namespace="team-a", cluster=None)
    matchers = dict(m.split("=", 1) for m in selector.split(","))
    assert matchers, selector
    for label, quoted in matchers.items():
        assert series.get(label) == json.loads(quoted), (label, quoted, series)
