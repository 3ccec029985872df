"""A Kubernetes API emulator on a loopback port, for integration tests of anything that
talks to a Kubernetes API (member-cluster clients, the hub operator, kopf).

It runs KMock's ``KubernetesEmulator`` (PyPI ``kmock``) behind a real aiohttp server, so the
code under test speaks real HTTP with a real client library, and hands the test the base
URL and a kubeconfig dict pointing at it. Several emulators can run at once (a hub and
members): each ``kube_emulator()`` gets its own free port.

Usage::

    from kube_emulator import kube_emulator   # tests/integration is on sys.path

    async def test_something() -> None:
        async with kube_emulator() as kube:
            client = await KubernetesClusterClient.from_kubeconfig(kube.kubeconfig())
            ...
            kube.put("v1/nodes", {"metadata": {"name": "n1", "labels": {...}}})
            assert kube.get("apps/v1/deployments", "web", namespace="ns") is not None

or as a fixture::

    @pytest.fixture
    async def kube() -> AsyncIterator[KubeEmulator]:
        async with kube_emulator() as emulator:
            yield emulator

Resources: ``DEFAULT_RESOURCES`` (core kinds modelfleet uses, apps/v1 deployments,
policy/v1 PDBs, CRDs) plus the modelfleet CRDs (``crds=True``: the two resources are
registered with a status subresource and the CRD objects from ``crds/`` are stored, which
kopf's discovery wants). Register more with ``resources=`` or ``kube.register(...)``.

What the emulator does NOT do — code under test must never depend on it, and a test that
needs it must simulate it explicitly (``kube.patch(...)`` a status, ``kube.put(...)`` a node):
by default it never bumps resourceVersion/generation (it only stamps them on create, with a
uid, a creationTimestamp and a name from generateName, as every real server does) and treats
``/status`` patches as plain merges; it honours only equality ``labelSelector``s and
``fieldSelector``s (added here; KMock alone ignores them), validates nothing, prunes no
field unless told (``kube.prune(resource, "status.x")``: as a CRD's structural schema
without it would), has no server-side apply, no PUT (replace) and no controllers (a
Deployment never becomes ready by itself).

``kube_emulator(versioned=True)`` adds, here (KMock 0.8 does none of it), what a real API
server does for optimistic concurrency: every write through the API (create, merge PATCH)
gets the next resourceVersion of one counter; a PATCH whose body carries
``metadata.resourceVersion`` is applied only when that is the stored one, else answered
``409 Conflict`` (reason ``Conflict``, the server's message) with no effect, as the API
server's update precondition does; a PATCH of ``/status`` changes only ``status`` and a PATCH of
the object keeps its ``status`` when the resource has a status subresource; a PATCH of the
object that changes anything but metadata and status bumps ``metadata.generation``. Two
differences remain: a write that changes nothing still gets a new resourceVersion (a real
server keeps the old one), and a create's resourceVersion is replaced (a real server refuses
a create that sets one).
``kube.put``/``kube.patch`` (a controller's writes, made by the test) bump the resourceVersion
too. JSON patches (a list body) are applied as KMock does, unchecked.

One KMock gap is bridged here: KMock 0.8 cannot parse the paths of the ``namespaces``
resource itself (``/api/v1/namespaces`` and ``/api/v1/namespaces/<name>``: it takes the
``namespaces`` segment for a namespace prefix and fails). The harness rewrites those two
paths to an alias resource ``v1/x-namespaces`` before KMock sees them, so clients use the
real paths; ``kube.get("v1/namespaces", ...)`` and friends read the alias transparently.
The alias shows up in discovery of ``/api/v1``; nothing should rely on that.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"


@dataclass(frozen=True)
class ResourceSpec:
    """Discovery information for one resource (``group/version/plural`` is the key)."""

    kind: str
    namespaced: bool
    subresources: tuple[str, ...] = ()


DEFAULT_RESOURCES: Mapping[str, ResourceSpec] = {
    "v1/namespaces": ResourceSpec("Namespace", namespaced=False),
    "v1/nodes": ResourceSpec("Node", namespaced=False, subresources=("status",)),
    "v1/pods": ResourceSpec("Pod", namespaced=True, subresources=("status",)),
    "v1/secrets": ResourceSpec("Secret", namespaced=True),
    "v1/configmaps": ResourceSpec("ConfigMap", namespaced=True),
    "v1/services": ResourceSpec("Service", namespaced=True, subresources=("status",)),
    "v1/events": ResourceSpec("Event", namespaced=True),
    "apps/v1/deployments": ResourceSpec("Deployment", namespaced=True, subresources=("status",)),
    "policy/v1/poddisruptionbudgets": ResourceSpec(
        "PodDisruptionBudget", namespaced=True, subresources=("status",)
    ),
    "apiextensions.k8s.io/v1/customresourcedefinitions": ResourceSpec(
        "CustomResourceDefinition", namespaced=False, subresources=("status",)
    ),
    "coordination.k8s.io/v1/leases": ResourceSpec("Lease", namespaced=True),
}
"""Resources every emulator serves (Kubernetes built-ins modelfleet reads or writes)."""

MODELFLEET_RESOURCES: Mapping[str, ResourceSpec] = {
    "modelfleet.io/v1alpha1/modeldeployments": ResourceSpec(
        "ModelDeployment", namespaced=True, subresources=("status",)
    ),
    "modelfleet.io/v1alpha1/fleetclusters": ResourceSpec(
        "FleetCluster", namespaced=False, subresources=("status",)
    ),
}
"""modelfleet's custom resources (registered when ``crds=True``)."""

_NAMESPACE_ALIAS = "v1/x-namespaces"
_NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces(?P<rest>/[^/]+)?/?$")
_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@attrs.define(kw_only=True)
class _Emulator(kmock.KubernetesEmulator):
    """KMock's emulator with the namespaces paths rewritten (see the module docstring)."""

    refusals: dict[tuple[str, str], int] = attrs.field(factory=dict)
    """(METHOD, path) -> HTTP status answered with no effect on the stored objects."""
    versioned: bool = False
    """Bump resourceVersion on writes and honour it as a precondition (module doc)."""
    version: int = 1
    """The last resourceVersion given (``versioned``)."""
    status_resources: set[tuple[str, str, str]] = attrs.field(factory=set)
    """(group, version, plural) of the resources with a status subresource (``versioned``:
    their status is written there only)."""
    pruned: dict[tuple[str, str, str], list[tuple[str, ...]]] = attrs.field(factory=dict)
    """(group, version, plural) -> dotted paths dropped from every write (``kube.prune``)."""
    _writes: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    """Held from a write's precondition check to its effect (``versioned``)."""

    def next_version(self) -> str:
        """A new resourceVersion, higher than any given before."""
        self.version += 1
        return str(self.version)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        match = _NAMESPACE_PATH.match(raw_request.path)
        if match:
            url = raw_request.rel_url
            rewritten = url.with_path(f"/api/v1/x-namespaces{match['rest'] or ''}")
            raw_request = raw_request.clone(rel_url=rewritten.with_query(url.query))
        response: aiohttp.web.StreamResponse = await super().__call__(raw_request)
        return response

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        method = str(getattr(request.method, "value", request.method)).upper()
        refused = self.refusals.get((method, request.url.path))
        if refused is not None:  # as a real server does: an error changes nothing
            status = {"kind": "Status", "status": "Failure", "code": refused}
            return aiohttp.web.json_response(status, status=refused)
        writes = (kmock.action.CREATE, kmock.action.UPDATE)
        if request.action in writes and isinstance(request.data, dict) and request.resource:
            resource = request.resource
            which = (resource.group or "", resource.version or "", resource.plural or "")
            for path in self.pruned.get(which, ()):
                _drop(request.data, path)
        if self.versioned and request.action in writes and isinstance(request.data, dict):
            async with self._writes:
                conflict = self._versioned_write(request)
                if conflict is not None:
                    return aiohttp.web.json_response(conflict, status=409)
                return await self._stamped(request)
        return await self._stamped(request)

    def _versioned_write(self, request: kmock.Request) -> dict[str, Any] | None:
        """Check and stamp a write's resourceVersion in its body (``versioned``): the
        Status of a 409 when its precondition fails, else None (the body now carries the next
        resourceVersion, and the generation when the spec changes)."""
        data: dict[str, Any] = request.data
        meta = data.setdefault("metadata", {})
        if not isinstance(meta, dict):
            return None
        if request.action == kmock.action.UPDATE:
            key = (request.resource, request.namespace, request.name)
            stored = self.objects[key] if key in self.objects else None  # noqa: SIM401 (no .get)
            if stored is None or stored.deleted:
                return None  # KMock answers 404
            current = dict(stored.raw).get("metadata") or {}
            wanted = meta.get("resourceVersion")
            if wanted is not None and str(wanted) != str(current.get("resourceVersion")):
                plural = request.resource.plural if request.resource is not None else ""
                group = request.resource.group if request.resource is not None else ""
                return {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "Conflict",
                    "code": 409,
                    "message": f"Operation cannot be fulfilled on {plural}{'.' if group else ''}"
                    f'{group} "{request.name}": the object has been modified; please apply '
                    "your changes to the latest version and try again",
                }
            if request.subresource == "status":
                for field_name in [k for k in data if k not in ("metadata", "status")]:
                    del data[field_name]
                data["metadata"] = meta = {}
            else:
                resource = request.resource
                which = (resource.group or "", resource.version or "", resource.plural or "")
                if which in self.status_resources:
                    data.pop("status", None)
                if any(k not in ("metadata", "status", "apiVersion", "kind") for k in data):
                    meta["generation"] = int(current.get("generation") or 0) + 1
        meta["resourceVersion"] = self.next_version()
        return None

    async def _stamped(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        # What every real API server does on create and KMock does not: name objects from
        # ``generateName`` (kopf's Events rely on it) and stamp the server-owned metadata
        # (kopf's status patches carry a ``test`` of ``resourceVersion``).
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("resourceVersion", "1")  # versioned: the next one, stamped above
            meta.setdefault("generation", 1)
            meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        response: aiohttp.web.StreamResponse = await super()._handle(request)
        return response

    async def _serve_list(self, request: kmock.Request) -> Any:
        # A real API server filters lists by ``labelSelector``; KMock returns everything.
        # Equality selectors (``k=v,k2=v2``, all modelfleet sends) are honoured here so a
        # list costs what it costs against a real server (clients filter again anyway).
        # ``fieldSelector`` likewise: equality on a dotted path (``spec.nodeName`` for pods,
        # which every real server since 1.19 supports).
        payload = await super()._serve_list(request)
        wanted = _equality_selector(request.params.get("labelSelector", ""))
        if wanted and isinstance(payload, dict):
            payload["items"] = [
                item
                for item in payload.get("items", [])
                if all(
                    ((item.get("metadata") or {}).get("labels") or {}).get(k) == v
                    for k, v in wanted.items()
                )
            ]
        fields = _equality_selector(request.params.get("fieldSelector", ""))
        if fields and isinstance(payload, dict):
            payload["items"] = [
                item for item in payload.get("items", []) if _has_fields(item, fields)
            ]
        return payload


def _drop(data: dict[str, Any], path: tuple[str, ...]) -> None:
    """Remove the key at ``path`` from ``data`` (nested dicts), if there."""
    here: Any = data
    for part in path[:-1]:
        here = here.get(part) if isinstance(here, dict) else None
    if isinstance(here, dict):
        here.pop(path[-1], None)


def _has_fields(item: Mapping[str, Any], fields: Mapping[str, str]) -> bool:
    """Every dotted path of ``fields`` holds that value in ``item`` (missing reads as "")."""
    for path, value in fields.items():
        here: Any = item
        for part in path.split("."):
            here = here.get(part) if isinstance(here, Mapping) else None
        if str(here if here is not None else "") != value:
            return False
    return True


def _equality_selector(selector: str) -> dict[str, str]:
    """``a=b,c==d`` as a dict; set-based terms are left to the client (empty result)."""
    out: dict[str, str] = {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, sep, value = term.partition("=")
        if not sep or key.endswith("!"):
            return {}
        out[key.strip()] = value.lstrip("=").strip()
    return out


def _storage(resource: str) -> str:
    return _NAMESPACE_ALIAS if resource == "v1/namespaces" else resource


def _parsed(resource: str) -> tuple[str, str, str]:
    parsed = kmock.resource(_storage(resource))
    return (parsed.group or "", parsed.version or "", parsed.plural or "")


@dataclass
class KubeEmulator:
    """A running emulator: its URL, a kubeconfig for it, and direct access to its objects."""

    handler: kmock.KubernetesEmulator
    url: str
    """Base URL, e.g. http://127.0.0.1:41234 (no trailing slash)."""
    resources: dict[str, ResourceSpec] = field(default_factory=dict)

    def kubeconfig(
        self, *, token: str = "emulator-token", context: str = "emulator"
    ) -> dict[str, Any]:
        """A kubeconfig dict (bearer token auth) whose current context is this emulator."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
        }

    def register(
        self, resource: str, *, kind: str, namespaced: bool, subresources: Iterable[str] = ()
    ) -> None:
        """Serve ``group/version/plural`` (``v1/plural`` for the core group)."""
        self.resources[resource] = ResourceSpec(kind, namespaced, tuple(subresources))
        info = kmock.ResourceInfo(
            kind=kind,
            namespaced=namespaced,
            verbs=set(_VERBS),
            subresources=set(subresources),
        )
        self.handler.resources[resource] = info
        if "status" in info.subresources:
            handler: Any = self.handler
            handler.status_resources.add(_parsed(resource))
        if resource == "v1/namespaces":
            self.handler.resources[_NAMESPACE_ALIAS] = info

    def refuse(self, method: str, path: str, status: int) -> None:
        """Answer ``method path`` with ``status`` from now on, changing nothing (KMock's own
        reactions answer but still apply the request to its objects)."""
        handler: Any = self.handler
        handler.refusals[method.upper(), path] = status

    def prune(self, resource: str, path: str) -> None:
        """Drop the field at dotted ``path`` (e.g. ``status.modelNames``) from every write of
        ``resource`` through the API from now on, as a real API server prunes a field its
        CRD's structural schema does not declare (a CRD from an earlier release)."""
        handler: Any = self.handler
        handler.pruned.setdefault(_parsed(resource), []).append(tuple(path.split(".")))

    def put(self, resource: str, obj: Mapping[str, Any]) -> None:
        """Store ``obj`` as the server's state (replacing any object of that name), as a
        controller or kubelet would: nodes, pods, a Deployment's status."""
        meta = obj.get("metadata") or {}
        key = (_storage(resource), meta.get("namespace"), meta["name"])
        stored = dict(obj)
        handler: Any = self.handler
        if handler.versioned:
            stored["metadata"] = {**meta, "resourceVersion": handler.next_version()}
        self.handler.objects[key] = stored

    def patch(
        self, resource: str, name: str, changes: Mapping[str, Any], *, namespace: str | None = None
    ) -> None:
        """Merge ``changes`` into a stored object (e.g. ``{"status": {"readyReplicas": 2}}``)."""
        merged = dict(changes)
        handler: Any = self.handler
        if handler.versioned:
            meta = dict(merged.get("metadata") or {})
            merged["metadata"] = {**meta, "resourceVersion": handler.next_version()}
        self.handler.objects[_storage(resource), namespace, name].patch(merged)

    def get(
        self, resource: str, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The live object, or None when absent or deleted."""
        for found in self.objects(resource, namespace=namespace):
            if found.get("metadata", {}).get("name") == name:
                return found
        return None

    def objects(self, resource: str, *, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every live object of ``resource`` (in ``namespace`` when given)."""
        wanted = _parsed(resource)
        found = []
        for (res, ns, name), obj in self.handler.objects.items():
            if (res.group or "", res.version or "", res.plural or "") != wanted:
                continue
            if namespace is not None and ns != namespace:
                continue
            if not obj.deleted:
                raw = dict(obj.raw)
                raw.setdefault("metadata", {}).setdefault("name", name)
                found.append(raw)
        return found

    def requests(self) -> list[tuple[str, str]]:
        """(method, path with query) of every request served so far, in order."""
        return [
            (str(getattr(r.method, "value", r.method)).upper(), str(r.url.path_qs))
            for r in self.handler._requests
        ]

    def authenticated_requests(self) -> list[tuple[str, str]]:
        """(method, path with query) of every request that carried credentials (an
        ``Authorization`` header): what the code under test sent, as opposed to the test's
        own unauthenticated ``Kubectl``. Paths are the ones the client used (the namespaces
        alias is undone), ready for ``rbac_check``."""
        found = []
        for r in self.handler._requests:
            if not any(str(key).lower() == "authorization" for key in r.headers):
                continue
            path = str(r.url.path_qs).replace("/api/v1/x-namespaces", "/api/v1/namespaces", 1)
            found.append((str(getattr(r.method, "value", r.method)).upper(), path))
        return found


def free_port() -> int:
    """A loopback TCP port nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def closed_url() -> str:
    """An http URL on a loopback port nobody listens on: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


@contextlib.asynccontextmanager
async def silent_url() -> AsyncIterator[str]:
    """An http URL on a loopback server that accepts connections and never answers: only
    a client's own timeout ends a call to it."""
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        release.set()
        server.close()
        await server.wait_closed()


def _crd_objects() -> list[dict[str, Any]]:
    if not CRD_DIR.is_dir():
        return []
    docs: list[dict[str, Any]] = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


@contextlib.asynccontextmanager
async def kube_emulator(
    *,
    resources: Mapping[str, ResourceSpec] | None = None,
    crds: bool = True,
    host: str = "127.0.0.1",
    versioned: bool = False,
) -> AsyncIterator[KubeEmulator]:
    """Run an emulator on a free port of ``host`` for the duration of the block.

    Serves ``DEFAULT_RESOURCES``, the modelfleet CRDs when ``crds`` (resources plus the CRD
    objects), and ``resources``; ``versioned``: resourceVersion bumped on writes and honoured
    as a precondition (module doc). Yields a ``KubeEmulator``.
    """
    async with (
        _Emulator(versioned=versioned) as handler,
        kmock.Server(handler, host=host) as server,
    ):
        emulator = KubeEmulator(handler=handler, url=str(server.url).rstrip("/"))
        wanted = {
            **DEFAULT_RESOURCES,
            **(MODELFLEET_RESOURCES if crds else {}),
            **(resources or {}),
        }
        for resource, spec in wanted.items():
            emulator.register(
                resource,
                kind=spec.kind,
                namespaced=spec.namespaced,
                subresources=spec.subresources,
            )
        if crds:
            for crd in _crd_objects():
                emulator.put("apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        yield emulator
