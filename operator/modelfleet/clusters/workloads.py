"""Render the Kubernetes objects that serve one ModelDeployment in one member cluster.

Pure functions: (ModelDeployment, placements, settings) -> JSON objects. No I/O, no clock,
so the reconciler, ``modelfleet plan`` and the simulator render byte-identical manifests and
tests can assert on them. What gets created, and why (docs/member-clusters.md has the rest):

- One **Deployment per placement** — per (cluster, instance type, capacity type) — named
  ``<md-name>-<od|spot>-<pool id>``, pinned with a nodeSelector on the node labels every pool
  carries (``labels.NODE_INSTANCE_TYPE``, ``labels.NODE_CAPACITY_TYPE``), tolerating the GPU
  taint (and the spot taints AKS and GKE put on spot nodes), requesting
  ``resources.gpu.count`` ``nvidia.com/gpu``. Rollouts surge one replica and never take one
  down first (make-before-break); startup, readiness and liveness probes hit the engine's
  health endpoint, the startup probe allowing ``startup_timeout_seconds`` for weights to load.
  A ``pvc://<claimName>/<path>`` model adds the claim as a read-only volume mounted at
  ``/models/<claimName>`` (``model_volume``); the engine is given the mounted path. The
  claim is the user's, in the workload namespace: modelfleet neither creates nor deletes it.
- One **Service per ModelDeployment per cluster** (ClusterIP, port named ``http`` = the
  runtime port) selecting the pods of every placement there.
- One **PodDisruptionBudget per Deployment** with ``maxUnavailable: 1``. It is rendered at
  every replica count: at one replica it allows the eviction a missing PDB would (so node
  drains and spot replacements never block), and keeping it means the object set does not
  change when the autoscaler moves between one and two replicas.

Names are deterministic and at most 63 characters; every object carries the ownership labels
(``labels.DEPLOYMENT``, ``labels.NAMESPACE``, ``labels.UID``, ``labels.MANAGED=true``) that
``owner_selector`` selects for listing and garbage collection, and the pods carry the labels
the Prometheus queries select (``modelfleet.io/deployment``, ``modelfleet.io/namespace``)
plus the standard scrape annotations. Objects live in the member-cluster namespace named like
the ModelDeployment's hub namespace, which the ClusterClient creates when missing. Secrets are
never resolved: ``env[].valueFrom`` is passed through untouched.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from modelfleet import __version__, labels
from modelfleet.api.common import CapacityType, dump
from modelfleet.api.modeldeployment import Engine, ModelDeployment, parse_pvc_uri
from modelfleet.clusters.objects import GPU_RESOURCE, JsonObject
from modelfleet.labels import label_value, pool_id

DEFAULT_IMAGES: Final[Mapping[str, str]] = {
    "builtin": f"ghcr.io/modelfleet/modelfleet-server:{__version__}",
    "vllm": "vllm/vllm-openai:v0.11.0",
    "sglang": "lmsysorg/sglang:v0.5.3-cu129",
    "tgi": "ghcr.io/huggingface/text-generation-inference:3.3.4",
}
"""Pinned engine images (``spec.runtime.image`` overrides). ``custom`` has no default."""

HEALTH_PATHS: Final[Mapping[Engine, str]] = {
    "builtin": "/health",  # modelfleet.serving: 200 while the process serves HTTP
    "vllm": "/health",  # vLLM OpenAI server: 200 when the engine is alive
    "sglang": "/health",  # sglang.launch_server: 200 when the scheduler answers
    "tgi": "/health",  # TGI router: 200 once the shards are warmed up
}
"""HTTP health endpoint per engine. A ``custom`` engine is probed with a TCP connect on its
port, because modelfleet cannot know its health path."""

READY_PATHS: Final[Mapping[Engine, str]] = {
    "builtin": "/ready",  # modelfleet.serving: 200 once the model is loaded, 503 before
}
"""Readiness endpoint (startup and readiness probes) where an engine has one apart from its
health endpoint; the liveness probe keeps ``HEALTH_PATHS``, so a replica still loading its
weights is not ready, yet not restarted either."""

METRICS_PATH: Final = "/metrics"
CONTAINER_NAME: Final = "server"
PORT_NAME: Final = "http"
MANAGED_BY: Final = "modelfleet"
COMPONENT: Final = "inference"
SPOT_TOLERATIONS: Final[tuple[Mapping[str, str], ...]] = (
    # AKS always taints spot nodes; GKE taints them when the pool asks for it.
    {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
     "effect": "NoSchedule"},
    {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true",
     "effect": "NoSchedule"},
)  # fmt: skip

_NAME_PREFIX_MAX: Final = 45  # 45 + len("-spot-") + 12-char pool id = 63
_NOT_DNS: Final = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class WorkloadPlacement:
    """Replicas of one ModelDeployment on one (cluster, instance type, capacity type)."""

    cluster: str
    """FleetCluster name."""
    instance_type: str
    capacity_type: CapacityType
    replicas: int

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"replicas must be >= 0, got {self.replicas}")

    @property
    def pool_id(self) -> str:
        """The node pool's id (``labels.pool_id``); part of the Deployment's name."""
        return pool_id(self.cluster, self.instance_type, self.capacity_type)


@dataclass(frozen=True)
class RenderSettings:
    """Operator-wide knobs of the rendered workloads."""

    images: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    """Default image per engine, used when ``spec.runtime.image`` is unset."""
    termination_grace_period_seconds: int = 120
    """Seconds a stopping replica gets to finish streaming responses before SIGKILL."""
    startup_timeout_seconds: int = 1800
    """Longest time a replica may take to download and load weights before it is restarted."""
    image_pull_policy: str = "IfNotPresent"
    """Engine images are large and pinned: pull once per node."""


# -- names and labels -------------------------------------------------------------------


def _digest(text: str, length: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@functools.lru_cache(maxsize=4096)
def dns_label(text: str, *, max_length: int = 63) -> str:
    """``text`` as an RFC 1035 label (what Service names need): lower-case letters, digits and
    dashes, starting with a letter, at most ``max_length`` characters. When ``text`` had to be
    changed, a 6-hex digest of the original is appended so distinct inputs stay distinct.
    Memoised (pure, on strings): every pass names the same workloads and Services."""
    cleaned = _NOT_DNS.sub("-", text.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"m-{cleaned}".rstrip("-")
    if cleaned == text and len(cleaned) <= max_length:
        return cleaned
    suffix = _digest(text)
    head = cleaned[: max_length - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}"


def workload_namespace(md: ModelDeployment) -> str:
    """The member-cluster namespace of every object modelfleet writes for ``md``: the
    ModelDeployment's own (hub) namespace, ``default`` when a manifest read from a file has
    none (kubectl would use it too). The one owner of that mapping (``is_workload_of``)."""
    return md.metadata.namespace or "default"


def capacity_shortname(capacity_type: CapacityType) -> str:
    """``od`` for OnDemand, ``spot`` for Spot: the capacity part of Deployment names."""
    return "spot" if capacity_type == "Spot" else "od"


def workload_name(md_name: str, placement: WorkloadPlacement) -> str:
    """``<md-name>-<od|spot>-<pool id>``, at most 63 characters, deterministic: the name of
    the Deployment and PodDisruptionBudget of one placement."""
    prefix = dns_label(md_name, max_length=_NAME_PREFIX_MAX)
    return f"{prefix}-{capacity_shortname(placement.capacity_type)}-{placement.pool_id}"


_WORKLOAD_SUFFIX: Final = re.compile(
    rf"-(?:{capacity_shortname('OnDemand')}|{capacity_shortname('Spot')})-[0-9a-f]{{12}}"
)
"""What ``workload_name`` puts after the name prefix: the capacity and a 12-hex pool id."""


def is_workload_of(namespace: str, md_name: str, obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` (a member-cluster object) is where and what modelfleet names a
    placement's Deployment (or PDB) of ModelDeployment ``namespace/md_name``: in its
    member namespace (``workload_namespace``: the hub namespace) and named
    ``workload_name(md_name, p)`` for some placement ``p`` (any pool: a placement of the
    past counts too). The labels say nothing here: anyone who may create a Deployment in
    some namespace may write any labels on it, so a label names an owner only on an object
    this check passes."""
    meta = obj.get("metadata") or {}
    if meta.get("namespace") != namespace:
        return False
    name = meta.get("name")
    prefix = dns_label(md_name, max_length=_NAME_PREFIX_MAX)
    return (
        isinstance(name, str)
        and name.startswith(prefix)
        and _WORKLOAD_SUFFIX.fullmatch(name, len(prefix)) is not None
    )


def service_name(md_name: str) -> str:
    """The Service's name: the ModelDeployment's name made a DNS label (63 characters)."""
    return dns_label(md_name)


IN_CLUSTER_ENDPOINT = "http://{name}.{namespace}.svc.cluster.local:{port}"
"""The Service's in-cluster URL: the default of FleetCluster ``spec.endpointTemplate``."""


def service_url(md: ModelDeployment, template: str | None = None) -> str:
    """URL of ``md``'s Service in a member cluster (for ``status.endpoints``): ``template``
    (the FleetCluster's ``spec.endpointTemplate``, its placeholders checked by the API
    model) with ``{name}``, ``{namespace}`` and ``{port}`` filled in; the in-cluster URL
    when None."""
    return (template or IN_CLUSTER_ENDPOINT).format(
        name=service_name(md.metadata.name),
        namespace=workload_namespace(md),
        port=md.spec.runtime.port,
    )


def owner_selector(*, name: str, namespace: str) -> dict[str, str]:
    """Labels selecting every object modelfleet made for ModelDeployment ``namespace/name``
    in a member cluster (pass it to ``ClusterClient.list_owned``/``delete_owned``)."""
    return {
        labels.DEPLOYMENT: label_value(name),
        labels.NAMESPACE: namespace,
        labels.MANAGED: "true",
    }


def owner_labels(md: ModelDeployment) -> dict[str, str]:
    """Ownership and recommended labels every rendered object carries."""
    result = {
        **owner_selector(name=md.metadata.name, namespace=workload_namespace(md)),
        "app.kubernetes.io/name": label_value(md.metadata.name),
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    if md.metadata.uid:
        result[labels.UID] = md.metadata.uid
    return result


def readiness_wake(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str | None:
    """The uid of the ModelDeployment whose next pass a change of one of its Deployments
    in a member cluster should bring forward, or None.

    ``before`` and ``after`` are the Deployment as a watch (or the in-memory API) held it
    before and after one change (None: absent, i.e. added or deleted). A wake is due when
    the object is deleted, or when ``status.readyReplicas`` or ``status.availableReplicas``
    differ (a missing status counts as 0 of each): a replica became Ready or went.
    Anything else (a resourceVersion-only update, the spec a pass wrote itself, the
    controller's ``observedGeneration``, ``replicas``, ``updatedReplicas``) wakes nothing,
    so a pass's own writes never loop back into passes. The owner is read from the
    ``labels.UID`` label ``owner_labels`` puts on every rendered object (the key of the
    operator's schedule); an object without it (not rendered by modelfleet, or for a
    ModelDeployment without a uid) wakes nothing."""
    if before is None and after is None:
        return None
    if after is not None and before is not None and _ready_counts(before) == _ready_counts(after):
        return None
    if before is None and after is not None and _ready_counts(after) == (0, 0):
        return None  # created without ready replicas: the pass that wrote it knows
    for obj in (after, before):
        if obj is not None:
            uid = ((obj.get("metadata") or {}).get("labels") or {}).get(labels.UID)
            if uid:
                return str(uid)
    return None


def _ready_counts(obj: Mapping[str, Any]) -> tuple[int, int]:
    status = obj.get("status") or {}
    return int(status.get("readyReplicas") or 0), int(status.get("availableReplicas") or 0)


def placement_selector(md: ModelDeployment, placement: WorkloadPlacement) -> dict[str, str]:
    """The pod selector of one placement's Deployment and PDB (immutable once created, so
    it holds only what the name already fixes)."""
    return {
        labels.DEPLOYMENT: label_value(md.metadata.name),
        labels.NAMESPACE: workload_namespace(md),
        labels.NODE_POOL: placement.pool_id,
    }


def _placement_labels(md: ModelDeployment, placement: WorkloadPlacement) -> dict[str, str]:
    return {
        **owner_labels(md),
        **placement_selector(md, placement),
        labels.NODE_INSTANCE_TYPE: label_value(placement.instance_type),
        labels.NODE_CAPACITY_TYPE: labels.capacity_label(placement.capacity_type),
    }


# -- the engine container ---------------------------------------------------------------


MODEL_MOUNT_ROOT: Final = "/models"
"""Where a ``pvc://<claimName>/<path>`` model's volume is mounted in the engine container:
``/models/<claimName>`` (read-only), the engine given ``/models/<claimName>/<path>``."""
MODEL_VOLUME: Final = "model-weights"
"""The pod volume name of a ``pvc://`` model's PersistentVolumeClaim."""


@dataclass(frozen=True)
class ModelVolume:
    """The PersistentVolumeClaim a ``pvc://`` model is read from, and where."""

    claim_name: str
    """The claim, in the member cluster's workload namespace (``workload_namespace``)."""
    mount_path: str
    """``/models/<claimName>``: the volume root in the container."""
    model_path: str
    """What the engine loads: ``mount_path`` plus the URI's path."""


def model_volume(md: ModelDeployment) -> ModelVolume | None:
    """The volume of ``md``'s model when ``spec.model.uri`` is ``pvc://``, else None. The
    URI was validated with the API model (``parse_pvc_uri`` raises ValueError otherwise)."""
    uri = md.spec.model.uri
    parsed = parse_pvc_uri(uri) if uri else None
    if parsed is None:
        return None
    claim, path = parsed
    mount = f"{MODEL_MOUNT_ROOT}/{claim}"
    return ModelVolume(claim, mount, f"{mount}/{path}" if path else mount)


def _model_ref(md: ModelDeployment) -> str:
    """What the engine loads: the URI (``hf://org/m`` becomes the repo id ``org/m``,
    ``file:///p`` the path ``/p``, ``pvc://c/p`` the mounted path ``/models/c/p``), or the
    model name when there is no URI."""
    uri = md.spec.model.uri
    if not uri:
        return md.spec.model.name
    volume = model_volume(md)
    if volume is not None:
        return volume.model_path
    for scheme in ("hf://", "file://"):
        if uri.startswith(scheme):
            return uri[len(scheme) :]
    return uri


def _has_flag(args: Sequence[str], flag: str) -> bool:
    return any(arg == flag or arg.startswith(f"{flag}=") for arg in args)


def _defaults(user_args: Sequence[str], defaults: Sequence[tuple[str, str | None]]) -> list[str]:
    """Default flags the user did not set themselves, then the user's arguments (a flag
    given twice is an error for TGI's launcher, so the user's one replaces ours)."""
    args: list[str] = []
    for flag, value in defaults:
        if not _has_flag(user_args, flag):
            args.extend([flag] if value is None else [flag, value])
    return args + list(user_args)


def engine_command(md: ModelDeployment) -> tuple[list[str] | None, list[str]]:
    """(command, args) of the inference container; command None keeps the image's
    entrypoint. User ``runtime.args`` come last and replace a default flag of the same name."""
    runtime = md.spec.runtime
    user = list(runtime.args or [])
    model, served, port = _model_ref(md), md.spec.model.name, str(runtime.port)
    gpus = md.spec.resources.gpu.count
    if runtime.engine == "vllm":  # image entrypoint: vllm serve
        tp = [("--tensor-parallel-size", str(gpus))] if gpus > 1 else []
        return None, _defaults(
            user, [("--model", model), ("--served-model-name", served), ("--port", port), *tp]
        )
    if runtime.engine == "sglang":
        tp = [("--tp", str(gpus))] if gpus > 1 else []
        return ["python3", "-m", "sglang.launch_server"], _defaults(
            user,
            [
                ("--model-path", model),
                ("--served-model-name", served),
                ("--host", "0.0.0.0"),
                ("--port", port),
                ("--enable-metrics", None),
                *tp,
            ],
        )
    if runtime.engine == "tgi":  # image entrypoint: text-generation-launcher
        shards = [("--num-shard", str(gpus))] if gpus > 1 else []
        return None, _defaults(
            user, [("--model-id", model), ("--hostname", "0.0.0.0"), ("--port", port), *shards]
        )
    if runtime.engine == "builtin":
        return ["python", "-m", "modelfleet.serving"], _defaults(
            user,
            [
                ("--model", model),
                ("--served-model-name", served),
                ("--host", "0.0.0.0"),
                ("--port", port),
            ],
        )
    return None, user  # custom: the user's image and arguments, untouched


def _probe(md: ModelDeployment, *, ready: bool, **timing: int) -> JsonObject:
    engine = md.spec.runtime.engine
    path = READY_PATHS.get(engine) if ready else None
    action: JsonObject = (
        {"tcpSocket": {"port": PORT_NAME}}
        if engine == "custom"
        else {"httpGet": {"path": path or HEALTH_PATHS[engine], "port": PORT_NAME}}
    )
    return {**action, **timing}


def _volume_mounts(md: ModelDeployment) -> list[JsonObject]:
    # Tensor-parallel engines exchange tensors through shared memory; Docker's 64 MiB
    # /dev/shm default is far too small.
    mounts: list[JsonObject] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    volume = model_volume(md)
    if volume is not None:
        mounts.append({"name": MODEL_VOLUME, "mountPath": volume.mount_path, "readOnly": True})
    return mounts


def _volumes(md: ModelDeployment) -> list[JsonObject]:
    volumes: list[JsonObject] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    volume = model_volume(md)
    if volume is not None:
        # readOnly here too: the kubelet then mounts the claim read-only on the node, so a
        # ReadOnlyMany volume is shared by every replica and no engine can alter the weights.
        volumes.append(
            {
                "name": MODEL_VOLUME,
                "persistentVolumeClaim": {"claimName": volume.claim_name, "readOnly": True},
            }
        )
    return volumes


def _container(md: ModelDeployment, settings: RenderSettings) -> JsonObject:
    runtime = md.spec.runtime
    resources = md.spec.resources
    image = runtime.image or settings.images.get(runtime.engine)
    if not image:
        raise ValueError(f"no image for engine {runtime.engine!r}: set spec.runtime.image")
    command, args = engine_command(md)
    gpus = str(resources.gpu.count)
    requests: dict[str, str] = {GPU_RESOURCE: gpus}
    if resources.cpu:
        requests["cpu"] = resources.cpu
    if resources.memory:
        requests["memory"] = resources.memory
    container: JsonObject = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy,
    }
    if command is not None:
        container["command"] = command
    if args:
        container["args"] = args
    container.update(
        {
            "ports": [{"name": PORT_NAME, "containerPort": runtime.port, "protocol": "TCP"}],
            # Extended resources need requests == limits; cpu/memory are requests only so a
            # replica may burst while loading weights.
            "resources": {"requests": requests, "limits": {GPU_RESOURCE: gpus}},
            "startupProbe": _probe(
                md,
                ready=True,
                periodSeconds=10,
                timeoutSeconds=5,
                failureThreshold=max(1, math.ceil(settings.startup_timeout_seconds / 10)),
            ),
            "readinessProbe": _probe(
                md, ready=True, periodSeconds=5, timeoutSeconds=3, failureThreshold=3
            ),
            "livenessProbe": _probe(
                md, ready=False, periodSeconds=15, timeoutSeconds=5, failureThreshold=4
            ),
            "volumeMounts": _volume_mounts(md),
        }
    )
    if runtime.env:
        # valueFrom (secretKeyRef, ...) is passed through: secrets stay in the member cluster.
        container["env"] = [dump(var) for var in runtime.env]
    return container


# -- the objects ------------------------------------------------------------------------


def render_deployment(
    md: ModelDeployment, placement: WorkloadPlacement, *, settings: RenderSettings
) -> JsonObject:
    """The Deployment running ``placement.replicas`` replicas on the placement's pool."""
    object_labels = _placement_labels(md, placement)
    tolerations: list[Mapping[str, str]] = [
        {
            "key": labels.GPU_TAINT_KEY,
            "operator": "Equal",
            "value": labels.GPU_TAINT_VALUE,
            "effect": labels.GPU_TAINT_EFFECT,
        }
    ]
    if placement.capacity_type == "Spot":
        tolerations.extend(SPOT_TOLERATIONS)
    port = md.spec.runtime.port
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": workload_name(md.metadata.name, placement),
            "namespace": workload_namespace(md),
            "labels": object_labels,
            "annotations": {labels.CLUSTER: placement.cluster},
        },
        "spec": {
            "replicas": placement.replicas,
            "selector": {"matchLabels": placement_selector(md, placement)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": settings.startup_timeout_seconds + 600,
            "template": {
                "metadata": {
                    "labels": object_labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": METRICS_PATH,
                    },
                },
                "spec": {
                    "nodeSelector": {
                        labels.NODE_INSTANCE_TYPE: placement.instance_type,
                        labels.NODE_CAPACITY_TYPE: labels.capacity_label(placement.capacity_type),
                    },
                    "tolerations": tolerations,
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": placement_selector(md, placement)},
                        }
                    ],
                    "terminationGracePeriodSeconds": settings.termination_grace_period_seconds,
                    "containers": [_container(md, settings)],
                    "volumes": _volumes(md),
                },
            },
        },
    }


def render_pdb(md: ModelDeployment, placement: WorkloadPlacement) -> JsonObject:
    """The PodDisruptionBudget of one placement: voluntary evictions one replica at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": workload_name(md.metadata.name, placement),
            "namespace": workload_namespace(md),
            "labels": _placement_labels(md, placement),
        },
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": placement_selector(md, placement)},
        },
    }


def render_service(md: ModelDeployment) -> JsonObject:
    """The ClusterIP Service in front of every replica of ``md`` in one cluster."""
    port = md.spec.runtime.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(md.metadata.name),
            "namespace": workload_namespace(md),
            "labels": owner_labels(md),
        },
        "spec": {
            "type": "ClusterIP",
            "selector": owner_selector(name=md.metadata.name, namespace=workload_namespace(md)),
            "ports": [
                {"name": PORT_NAME, "port": port, "targetPort": PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def render_workloads(
    md: ModelDeployment,
    placements: Sequence[WorkloadPlacement],
    *,
    settings: RenderSettings | None = None,
) -> list[JsonObject]:
    """Every object for ``md`` in one member cluster, in apply order: the Service, then one
    Deployment and one PDB per placement (sorted by name, so the output is stable).

    ``placements`` must all name the same cluster and distinct (instance type, capacity
    type) pairs (ValueError otherwise). No placements: just the Service.
    """
    settings = settings or RenderSettings()
    clusters = {p.cluster for p in placements}
    if len(clusters) > 1:
        raise ValueError(f"placements span several clusters: {sorted(clusters)}")
    keys = [(p.instance_type, p.capacity_type) for p in placements]
    if len(set(keys)) != len(keys):
        raise ValueError("two placements share an (instance type, capacity type)")
    ordered = sorted(placements, key=lambda p: workload_name(md.metadata.name, p))
    deployments = [render_deployment(md, p, settings=settings) for p in ordered]
    pdbs = [render_pdb(md, p) for p in ordered]
    return [render_service(md), *deployments, *pdbs]


def workload_names(md_name: str, placements: Sequence[WorkloadPlacement]) -> set[str]:
    """Names of the Deployments/PDBs ``render_workloads`` makes (the ``keep`` set for
    garbage-collecting the others with ``ClusterClient.delete_owned``)."""
    return {workload_name(md_name, p) for p in placements}
