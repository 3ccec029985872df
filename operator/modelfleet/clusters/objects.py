"""The Kubernetes kinds modelfleet touches in member clusters, and pure readers of them.

Both ClusterClient implementations (the HTTP one and the in-memory fake) and the reconciler
need the same small facts about objects: where a kind lives in the API, whether a label
selector matches, what a JSON merge patch does, how ready a Deployment is, whether a Node
can take GPU pods. Keeping them here, free of I/O, means the fake and the real client cannot
disagree about them, and the reconciler can read listed objects without a client.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from modelfleet import labels
from modelfleet.labels import (
    INTERRUPTION_TAINTS,
    NODE_CAPACITY_TYPE,
    NODE_INSTANCE_TYPE,
    capacity_type_of,
)

JsonObject = dict[str, Any]
"""A Kubernetes object as JSON (``apiVersion``, ``kind``, ``metadata``, ...)."""

GPU_RESOURCE: Final = "nvidia.com/gpu"
"""The extended resource the NVIDIA device plugin advertises and inference pods request."""


@dataclass(frozen=True)
class ResourceKind:
    """Where a kind lives in the Kubernetes REST API."""

    api_version: str
    """``v1`` for the core group, else ``<group>/<version>``."""
    kind: str
    plural: str
    namespaced: bool

    def collection_path(self, namespace: str | None = None) -> str:
        """Path of the collection: all namespaces when ``namespace`` is None."""
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace is not None:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, name: str, namespace: str | None = None) -> str:
        """Path of one object; ``namespace`` is required for namespaced kinds."""
        if self.namespaced and not namespace:
            raise ValueError(f"{self.kind} {name!r} needs a namespace")
        return f"{self.collection_path(namespace)}/{name}"


NAMESPACE: Final = ResourceKind("v1", "Namespace", "namespaces", namespaced=False)
NODE: Final = ResourceKind("v1", "Node", "nodes", namespaced=False)
POD: Final = ResourceKind("v1", "Pod", "pods", namespaced=True)
SECRET: Final = ResourceKind("v1", "Secret", "secrets", namespaced=True)
SERVICE: Final = ResourceKind("v1", "Service", "services", namespaced=True)
EVENT: Final = ResourceKind("v1", "Event", "events", namespaced=True)
DEPLOYMENT: Final = ResourceKind("apps/v1", "Deployment", "deployments", namespaced=True)
PDB: Final = ResourceKind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True)

KINDS: Final[Mapping[tuple[str, str], ResourceKind]] = {
    (k.api_version, k.kind): k
    for k in (NAMESPACE, NODE, POD, SECRET, SERVICE, EVENT, DEPLOYMENT, PDB)
}
WORKLOAD_KINDS: Final = (DEPLOYMENT, SERVICE, PDB)
"""The kinds modelfleet creates per ModelDeployment in a member cluster."""


def kind_of(obj: Mapping[str, Any]) -> ResourceKind:
    """The ResourceKind of ``obj`` from its apiVersion and kind; ValueError for others."""
    key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    try:
        return KINDS[key]
    except KeyError:
        raise ValueError(f"modelfleet does not manage {key[1] or '?'} ({key[0] or '?'})") from None


def selector_string(selector: Mapping[str, str]) -> str:
    """An equality-based ``labelSelector`` query value: ``k1=v1,k2=v2`` (sorted)."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


def matches_selector(obj: Mapping[str, Any], selector: Mapping[str, str]) -> bool:
    """True when ``obj`` carries every label of ``selector`` with the same value."""
    obj_labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(obj_labels.get(key) == value for key, value in selector.items())


def matches_fields(obj: Mapping[str, Any], fields: Mapping[str, str]) -> bool:
    """True when every dotted path of ``fields`` (``spec.nodeName``) holds that value in
    ``obj`` (a missing field reads as ""): an equality ``fieldSelector``, as the API
    server applies it."""
    for path, value in fields.items():
        here: Any = obj
        for part in path.split("."):
            here = here.get(part) if isinstance(here, Mapping) else None
        if str(here if here is not None else "") != value:
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of ``patch`` onto ``target``; returns a new value.

    Maps merge recursively, ``None`` deletes a key, and anything else (lists included)
    replaces the old value — exactly what the API server does for
    ``application/merge-patch+json``. ``target`` is not modified.
    """
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def is_managed(obj: Mapping[str, Any]) -> bool:
    """True when ``obj`` carries modelfleet's ownership label ``modelfleet.io/managed=true``."""
    return matches_selector(obj, {labels.MANAGED: "true"})


@dataclass(frozen=True)
class DeploymentReadiness:
    """How far a Deployment is from serving all its replicas."""

    name: str
    desired: int
    """spec.replicas."""
    ready: int
    """status.readyReplicas: pods passing their readiness probe."""
    updated: int
    """status.updatedReplicas: pods of the current template."""
    available: int
    """status.availableReplicas."""
    observed: bool
    """The controller has seen the latest spec (observedGeneration >= generation). True when
    the server reports no generation at all, as there is then nothing to wait for."""

    @property
    def complete(self) -> bool:
        """Every desired replica is of the current template and ready."""
        return self.observed and self.updated >= self.desired and self.ready >= self.desired


def readiness_of(deployment: Mapping[str, Any]) -> DeploymentReadiness:
    """Read a Deployment object's readiness. Missing status counts as nothing ready."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    generation = meta.get("generation")
    observed_generation = status.get("observedGeneration")
    observed = generation is None or (
        observed_generation is not None and int(observed_generation) >= int(generation)
    )
    desired = spec.get("replicas")
    return DeploymentReadiness(
        name=str(meta.get("name", "")),
        desired=1 if desired is None else int(desired),  # the API server's default
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        observed=observed,
    )


@dataclass(frozen=True)
class NodeInfo:
    """What modelfleet reads from a Node: its labels, whether it can take pods, its GPUs."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = False
    """The kubelet reports condition Ready=True."""
    schedulable: bool = True
    """Not cordoned (spec.unschedulable unset) and not being deleted."""
    gpus: int = 0
    """Allocatable ``nvidia.com/gpu`` (0 until the device plugin registers)."""
    leaving: bool = False
    """Going away: cordoned, being deleted, or carrying a NoSchedule/NoExecute taint of
    ``labels.INTERRUPTION_TAINTS`` (a spot interruption notice and its drain)."""

    @property
    def usable(self) -> bool:
        """Ready, schedulable and not leaving: new pods can start here."""
        return self.ready and self.schedulable and not self.leaving


def node_info(node: Mapping[str, Any]) -> NodeInfo:
    """Read a Node object."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    gpus = str((status.get("allocatable") or {}).get(GPU_RESOURCE, "0"))
    schedulable = not spec.get("unschedulable") and not meta.get("deletionTimestamp")
    noticed = any(
        isinstance(taint, Mapping)
        and taint.get("key") in INTERRUPTION_TAINTS
        and taint.get("effect") in ("NoSchedule", "NoExecute")
        for taint in spec.get("taints") or []
    )
    return NodeInfo(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        ready=ready,
        schedulable=schedulable,
        gpus=int(gpus) if gpus.isdigit() else 0,
        leaving=noticed or not schedulable,
    )


def leaving_by_pool(nodes: Iterable[NodeInfo]) -> dict[tuple[str, str], int]:
    """Nodes going away (``NodeInfo.leaving``) per pool of modelfleet's node labels:
    (instance type, capacity type ``OnDemand``/``Spot``) -> count. Nodes without both
    labels belong to no pool modelfleet sizes and are left out."""
    out: dict[tuple[str, str], int] = {}
    for node in nodes:
        instance_type = node.labels.get(NODE_INSTANCE_TYPE)
        capacity = capacity_type_of(node.labels.get(NODE_CAPACITY_TYPE, ""))
        if node.leaving and instance_type and capacity:
            out[instance_type, capacity] = out.get((instance_type, capacity), 0) + 1
    return out


_CLAIM_NOT_FOUND: Final = re.compile(r'persistentvolumeclaim "([^"]+)" not found')
"""What kube-scheduler's VolumeBinding plugin writes into a pod's PodScheduled condition
(reason Unschedulable) when a volume names a claim that does not exist, e.g. ``0/3 nodes
are available: persistentvolumeclaim "llama-weights" not found. preemption: ...``: the
claim lister's NotFound error, whose text is that of every API NotFound error."""


def missing_claim(pod: Mapping[str, Any]) -> str | None:
    """The PersistentVolumeClaim (``namespace/name``) a Pending pod cannot be scheduled
    without because it does not exist, read from its ``PodScheduled=False`` condition with
    reason ``Unschedulable``; None for any other pod (scheduled, waiting for anything else,
    being deleted)."""
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    if status.get("phase", "Pending") != "Pending" or meta.get("deletionTimestamp"):
        return None
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            found = _CLAIM_NOT_FOUND.search(str(condition.get("message") or ""))
            if found:
                return f"{meta.get('namespace') or 'default'}/{found.group(1)}"
    return None


def missing_claims(pods: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Every distinct ``missing_claim`` of ``pods``, sorted."""
    return tuple(sorted({c for c in (missing_claim(p) for p in pods) if c is not None}))


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """True when the pod is Running with condition Ready=True."""
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
