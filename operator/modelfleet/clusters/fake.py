"""InMemoryClusterClient: a member cluster kept in memory, for the simulator and unit tests.

It implements ``ClusterClient`` (and ``SecretReader``) with the same contracts as the HTTP
client and behaves as an API server does where modelfleet can tell: uids, a resourceVersion
bumped on every write, metadata.generation bumped when the spec changes, JSON merge patch
(``clusters.objects.merge_patch``), namespaces created on demand, label filtering. What a
controller would do (Deployments becoming ready, pods appearing) happens only when the test
or simulator says so, through ``complete_rollouts``, ``set_deployment_status`` and ``put``.

Reads copy by default, as the HTTP client hands out fresh objects. With ``share_reads``
(the simulator, which lists constantly and never edits what it reads) they hand out the
stored objects themselves: every write replaces a stored object instead of editing it, so
what a caller holds stays the snapshot it read, but the caller must not edit it.

Faults are injected the way Karpenter's fake provider does it: ``set_unreachable`` makes
every call raise ``ClusterUnreachable`` until switched off, ``fail_next`` queues one error
for the next call, and ``calls`` records every call so tests can assert on what was asked.
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelfleet import labels
from modelfleet.clusters.client import ClusterProbe, SecretData, namespace_manifest, probe_of
from modelfleet.clusters.errors import (
    ClusterConflict,
    ClusterError,
    ClusterNotFound,
    ClusterUnreachable,
)
from modelfleet.clusters.objects import (
    DEPLOYMENT,
    GPU_RESOURCE,
    NAMESPACE,
    NODE,
    POD,
    SECRET,
    DeploymentReadiness,
    JsonObject,
    NodeInfo,
    ResourceKind,
    is_managed,
    kind_of,
    matches_fields,
    matches_selector,
    merge_patch,
    node_info,
    readiness_of,
)

_Key = tuple[str, str, str | None, str]  # (apiVersion, kind, namespace, name)


@dataclass(frozen=True)
class ClusterCall:
    """One recorded call: the method name and a short description of its argument."""

    method: str
    detail: str = ""


class InMemoryClusterClient:
    """ClusterClient and SecretReader in memory; see the module docstring."""

    def __init__(self, name: str | None = None, *, share_reads: bool = False) -> None:
        self.name = name
        self._copy: Callable[[Any], Any] = _same if share_reads else _clone
        self.calls: list[ClusterCall] = []
        self.closed = False
        self._unreachable = False
        self._next_errors: list[ClusterError] = []
        self._objects: dict[_Key, JsonObject] = {}
        self._by_kind: dict[tuple[str, str], dict[_Key, JsonObject]] = {}
        """``_objects`` per (apiVersion, kind), in the same relative order (every write
        goes through ``_store`` and ``_drop``): a list of one kind reads only that kind."""
        self._resource_version = 0
        self.on_deployment_change: Callable[[JsonObject | None, JsonObject | None], None] | None
        self.on_deployment_change = None
        """Called with a Deployment as stored before and after every write that changes it
        (None: absent; created or deleted), as a watch of Deployments would report it (the
        simulator's readiness wakes, ``reconciler.wakes``). The objects are the stored
        ones: read them, never edit."""

    # -- fault injection ---------------------------------------------------------------

    def set_unreachable(self, unreachable: bool = True) -> None:
        """While on, every ClusterClient call raises ClusterUnreachable (an outage)."""
        self._unreachable = unreachable

    @property
    def revision(self) -> int:
        """Bumped on every write (the last resourceVersion handed out): lets the simulator
        skip re-reading a cluster nothing was written to."""
        return self._resource_version

    @property
    def unreachable(self) -> bool:
        """Whether the simulated API server is down."""
        return self._unreachable

    def fail_next(self, error: ClusterError) -> None:
        """Make the next ClusterClient call raise ``error`` (queued, first in first out)."""
        self._next_errors.append(error)

    # -- state for tests and the simulator ----------------------------------------------

    def put(self, obj: Mapping[str, Any]) -> JsonObject:
        """Store ``obj`` as is (status included), as a controller or an admin would; any
        kind in ``clusters.objects.KINDS``. Replaces an existing object of that name."""
        kind = kind_of(obj)
        stored = _clone(dict(obj))
        meta = stored.setdefault("metadata", {})
        key = self._key(kind, meta["name"], meta.get("namespace"))
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = self._bump()
        before = self._objects.get(key)
        self._store(key, stored)
        self._changed(kind, before, stored)
        copied: JsonObject = self._copy(stored)
        return copied

    def get(self, kind: ResourceKind, name: str, namespace: str | None = None) -> JsonObject | None:
        """A copy of the stored object, or None."""
        obj = self._objects.get(self._key(kind, name, namespace))
        return self._copy(obj) if obj is not None else None

    def objects(self, kind: ResourceKind, namespace: str | None = None) -> list[JsonObject]:
        """Copies of every stored object of ``kind`` (in ``namespace`` when given)."""
        return [self._copy(obj) for obj in self._live(kind, namespace)]

    def add_node(
        self,
        name: str,
        *,
        instance_type: str,
        capacity_type: str = "OnDemand",
        gpus: int = 8,
        ready: bool = True,
        extra_labels: Mapping[str, str] | None = None,
        taints: Sequence[Mapping[str, str]] = (),
    ) -> JsonObject:
        """Add a GPU node labelled as modelfleet's node selector expects (``taints``: its
        ``spec.taints``, e.g. a spot interruption notice's)."""
        return self.put(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "spec": {"taints": [dict(t) for t in taints]} if taints else {},
                "metadata": {
                    "name": name,
                    "labels": {
                        labels.NODE_INSTANCE_TYPE: instance_type,
                        labels.NODE_CAPACITY_TYPE: labels.capacity_label(capacity_type),
                        **(extra_labels or {}),
                    },
                },
                "status": {
                    "allocatable": {GPU_RESOURCE: str(gpus)},
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                },
            }
        )

    def remove(self, kind: ResourceKind, name: str, namespace: str | None = None) -> None:
        """Remove an object without recording a call (a node reclaimed, a pod evicted)."""
        before = self._drop(self._key(kind, name, namespace))
        if before is not None:
            self._changed(kind, before, None)

    def add_secret(self, namespace: str, name: str, data: Mapping[str, str | bytes]) -> JsonObject:
        """Store a Secret (values are base64-encoded as the API stores them)."""
        encoded = {
            key: base64.b64encode(value.encode() if isinstance(value, str) else value).decode()
            for key, value in data.items()
        }
        return self.put(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "data": encoded,
            }
        )

    def set_deployment_status(
        self,
        namespace: str,
        name: str,
        *,
        ready: int | None = None,
        updated: int | None = None,
    ) -> None:
        """Report a Deployment's progress as its controller would: ``ready`` and ``updated``
        replicas (default: all of spec.replicas), observedGeneration caught up."""
        key = self._key(DEPLOYMENT, name, namespace)
        obj = self._objects.get(key)
        if obj is None:
            raise KeyError(f"no Deployment {namespace}/{name}")
        desired = int(obj.get("spec", {}).get("replicas", 1))
        status = {
            "observedGeneration": obj["metadata"].get("generation", 1),
            "replicas": desired,
            "readyReplicas": desired if ready is None else ready,
            "availableReplicas": desired if ready is None else ready,
            "updatedReplicas": desired if updated is None else updated,
        }
        # Replaced, not edited: a reader holding the old object keeps its snapshot.
        metadata = {**obj["metadata"], "resourceVersion": self._bump()}
        self._store(key, {**obj, "metadata": metadata, "status": status})
        self._changed(DEPLOYMENT, obj, self._objects[key])

    def complete_rollouts(self) -> list[str]:
        """Mark every Deployment fully rolled out and ready; returns their names."""
        names = []
        for (_, _, namespace, name), _obj in list(self._deployments()):
            assert namespace is not None
            self.set_deployment_status(namespace, name)
            names.append(name)
        return names

    # -- ClusterClient -----------------------------------------------------------------

    async def apply(self, objects: Sequence[Mapping[str, Any]]) -> list[JsonObject]:
        self._enter("apply", ", ".join(_describe(obj) for obj in objects))
        kinds = [kind_of(obj) for obj in objects]
        results = []
        for kind, obj in zip(kinds, objects, strict=True):
            meta = obj.get("metadata") or {}
            name = meta.get("name")
            namespace = meta.get("namespace") if kind.namespaced else None
            if not name or (kind.namespaced and not namespace):
                raise ValueError(f"{kind.kind} needs metadata.name and, if namespaced, a namespace")
            if namespace and self._key(NAMESPACE, namespace, None) not in self._objects:
                self.put(namespace_manifest(namespace))
            body = {key: value for key, value in obj.items() if key != "status"}
            key = self._key(kind, name, namespace)
            live = self._objects.get(key)
            if live is None:
                results.append(self.put(body))
                continue
            if not is_managed(live):
                raise ClusterConflict(
                    f"{kind.kind} {name} exists and is not managed by modelfleet", cluster=self.name
                )
            if _unchanged_by(live, body):
                results.append(self._copy(live))
                continue
            patched = merge_patch(live, body)
            if patched != live:
                if patched.get("spec") != live.get("spec"):
                    patched["metadata"]["generation"] = int(live["metadata"]["generation"]) + 1
                patched["metadata"]["resourceVersion"] = self._bump()
                self._store(key, patched)
                self._changed(kind, live, patched)
            results.append(self._copy(self._objects[key]))
        return results

    async def list_owned(
        self,
        kind: ResourceKind,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> list[JsonObject]:
        where = f" fields {dict(fields)}" if fields else ""
        self._enter("list_owned", f"{kind.plural} {dict(selector)}{where}")
        return [
            self._copy(obj)
            for obj in self._live(kind, namespace)
            if matches_selector(obj, selector) and matches_fields(obj, fields or {})
        ]

    async def delete_owned(
        self,
        kind: ResourceKind,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
        keep: Collection[str] = (),
    ) -> list[str]:
        self._enter("delete_owned", f"{kind.plural} {dict(selector)}")
        deleted = []
        for obj in self._live(kind, namespace):
            meta = obj["metadata"]
            if meta["name"] in keep or not is_managed(obj) or not matches_selector(obj, selector):
                continue
            self._drop(self._key(kind, meta["name"], meta.get("namespace")))
            self._changed(kind, obj, None)
            deleted.append(meta["name"])
        if deleted:
            self._bump()  # a deletion is a write: the collection's resourceVersion moves on
        return deleted

    async def merge_patch(
        self,
        kind: ResourceKind,
        name: str,
        body: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> JsonObject:
        """A JSON merge patch of one stored object (as ``KubernetesClusterClient``'s);
        ``ClusterNotFound`` when it is absent."""
        self._enter("merge_patch", f"{kind.plural} {name}")
        key = self._key(kind, name, namespace)
        live = self._objects.get(key)
        if live is None:
            raise ClusterNotFound(f"{kind.kind} {name} not found", cluster=self.name)
        patched: JsonObject = merge_patch(live, body)
        if patched != live:
            patched["metadata"]["resourceVersion"] = self._bump()
            self._store(key, patched)
            self._changed(kind, live, patched)
        stored: JsonObject = self._copy(self._objects[key])
        return stored

    async def deployment_readiness(self, namespace: str, name: str) -> DeploymentReadiness:
        self._enter("deployment_readiness", f"{namespace}/{name}")
        obj = self._objects.get(self._key(DEPLOYMENT, name, namespace))
        if obj is None:
            raise ClusterNotFound(f"Deployment {namespace}/{name} not found", cluster=self.name)
        return readiness_of(obj)

    async def probe(self) -> ClusterProbe:
        self._enter("probe")
        # Read in place: node_info copies what it keeps, and the pods are only counted.
        nodes = [node_info(obj) for obj in self._live(NODE, None)]
        pods = [p for p in self._live(POD, None) if is_managed(p)]
        return probe_of("v1.30.0-fake", nodes, pods)

    async def list_nodes(self, selector: Mapping[str, str] | None = None) -> list[NodeInfo]:
        self._enter("list_nodes", str(dict(selector or {})))
        return [
            node_info(obj)
            for obj in self._live(NODE, None)
            if matches_selector(obj, selector or {})
        ]

    async def close(self) -> None:
        self.calls.append(ClusterCall("close"))
        self.closed = True

    # -- SecretReader ------------------------------------------------------------------

    async def read_secret(self, namespace: str, name: str) -> SecretData:
        self._enter("read_secret", f"{namespace}/{name}")
        obj = self._objects.get(self._key(SECRET, name, namespace))
        if obj is None:
            raise ClusterNotFound(f"Secret {namespace}/{name} not found", cluster=self.name)
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        return SecretData(data=data, resource_version=obj["metadata"].get("resourceVersion"))

    # -- internals ---------------------------------------------------------------------

    def _enter(self, method: str, detail: str = "") -> None:
        self.calls.append(ClusterCall(method, detail))
        if self._unreachable:
            raise ClusterUnreachable("simulated outage: API server unreachable", cluster=self.name)
        if self._next_errors:
            raise self._next_errors.pop(0)

    def _store(self, key: _Key, obj: JsonObject) -> None:
        """Store ``obj`` under ``key`` (a new key last, an existing one in its place)."""
        self._objects[key] = obj
        self._by_kind.setdefault(key[:2], {})[key] = obj

    def _drop(self, key: _Key) -> JsonObject | None:
        """Remove the object under ``key``; the object, or None if there was none."""
        self._by_kind.get(key[:2], {}).pop(key, None)
        return self._objects.pop(key, None)

    def _live(self, kind: ResourceKind, namespace: str | None) -> list[JsonObject]:
        """The stored objects of ``kind`` themselves (not copies: callers copy what they
        hand out, so listing stays cheap in the simulator's hot loop), in the order
        ``_objects`` holds them (read from the kind's own index, not a scan of every
        object)."""
        stored = self._by_kind.get((kind.api_version, kind.kind))
        if not stored:
            return []
        if namespace is None:
            return list(stored.values())
        return [obj for (_, _, ns, _), obj in stored.items() if ns == namespace]

    def _changed(
        self, kind: ResourceKind, before: JsonObject | None, after: JsonObject | None
    ) -> None:
        if self.on_deployment_change is not None and kind == DEPLOYMENT:
            self.on_deployment_change(before, after)

    def _bump(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def _deployments(self) -> list[tuple[_Key, JsonObject]]:
        return list(self._by_kind.get((DEPLOYMENT.api_version, DEPLOYMENT.kind), {}).items())

    @staticmethod
    def _key(kind: ResourceKind, name: str, namespace: str | None) -> _Key:
        return (kind.api_version, kind.kind, namespace if kind.namespaced else None, name)


def _clone(value: Any) -> Any:
    """A deep copy of a JSON-like value (dicts, lists, scalars): what ``copy.deepcopy``
    does for API objects, several times faster (the simulator lists objects constantly)."""
    kind = type(value)
    if kind is dict:
        return {key: _clone(item) for key, item in value.items()}
    if kind is list:
        return [_clone(item) for item in value]
    if kind in _ATOMS:
        return value
    return copy.deepcopy(value)


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _same(value: Any) -> Any:
    """No copy (``share_reads``)."""
    return value


def _unchanged_by(live: Any, patch: Any) -> bool:
    """True when JSON-merge-patching ``patch`` onto ``live`` would change nothing (a
    re-apply of the same manifest: the common case, checked without copying)."""
    if live == patch:
        return True
    if isinstance(patch, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(
            value is not None and key in live and _unchanged_by(live[key], value)
            for key, value in patch.items()
        )
    return bool(live == patch)


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('name')}"
