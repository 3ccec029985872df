"""ClusterClient: the narrow interface to a member cluster's API, and its HTTP implementation.

The reconciler needs only a handful of things from a member cluster: put its workloads
there, find and delete what it put there, see whether they are ready, and probe the
cluster's health. ``ClusterClient`` is exactly that, with the contracts in the docstrings
and only the typed errors of ``clusters.errors``; ``clusters.fake.InMemoryClusterClient``
implements it for the simulator and unit tests.

``KubernetesClusterClient`` talks HTTP through ``kubernetes_asyncio``'s ``ApiClient``: it
loads kubeconfigs from a dict (``load_kube_config_from_dict``: client certificates, bearer
tokens, exec plugins, CA data) and in-cluster service-account config, and runs on aiohttp.
It uses the generic ``call_api`` rather than the generated typed APIs so that one code path
serves every kind and returns plain JSON (no model round-trip that would drop fields the
generated models do not know). It sends only requests every API server since 1.19 treats
the same way — create (POST), get, list with ``labelSelector``, JSON merge patch
(``application/merge-patch+json``), delete, and (``list_versioned``/``watch``, used only by
``clusters.informer``) a LIST's resourceVersion and a ``?watch=true`` stream with bookmarks —
never server-side apply or strategic merge patch. Two consequences are deliberate:

- Listing by labels also filters client-side. A real server has already filtered, so this
  costs nothing there; it keeps the contract true against servers or proxies that ignore
  ``labelSelector`` (KMock's emulator in our integration tests does).
- Apply is get -> create or merge-patch, and refuses to patch an object that lacks the
  ``modelfleet.io/managed=true`` label, so an object someone else created under the same
  name is never taken over.

Every request has a timeout (``timeout`` seconds, total); a timeout, a refused connection,
a TLS failure or a 5xx answer raise ``ClusterUnreachable``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from modelfleet import labels
from modelfleet.clusters.errors import (
    ClusterConfigError,
    ClusterConflict,
    ClusterError,
    ClusterForbidden,
    ClusterNotFound,
    ClusterRejected,
    ClusterThrottled,
    ClusterUnreachable,
)
from modelfleet.clusters.objects import DEPLOYMENT as DEPLOYMENT_KIND
from modelfleet.clusters.objects import (
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
    leaving_by_pool,
    matches_fields,
    matches_selector,
    merge_patch,
    missing_claims,
    node_info,
    pod_ready,
    readiness_of,
    selector_string,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
"""Seconds one API request may take, connection included."""


@dataclass(frozen=True)
class ClusterProbe:
    """One health observation of a member cluster (the reconciler decides what it means)."""

    server_version: str | None
    """gitVersion the API server reports, e.g. v1.30.2."""
    gpu_nodes: int
    """Nodes with allocatable nvidia.com/gpu or modelfleet's instance-type label."""
    ready_gpu_nodes: int
    """Of those, Ready and schedulable."""
    managed_pods: int
    """Pods labelled modelfleet.io/managed=true, in every namespace."""
    not_ready_pods: int
    """Of those, not Running+Ready and not being deleted."""
    leaving_nodes: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Nodes going away per pool, (instance type, ``OnDemand``/``Spot``) -> count: a spot
    interruption notice's taint, a cordon, a deletion (``objects.leaving_by_pool``)."""
    missing_claims: tuple[str, ...] = ()
    """PersistentVolumeClaims (``namespace/name``, sorted) that modelfleet pods stay Pending
    for because they do not exist (``objects.missing_claim``): a ``pvc://`` model whose claim
    the user has not created in this cluster."""


def probe_of(
    server_version: str | None, nodes: Sequence[NodeInfo], pods: Sequence[Mapping[str, Any]]
) -> ClusterProbe:
    """The ClusterProbe of a member cluster's ``nodes`` (all of them) and ``pods`` (those
    labelled managed): the one count, for the real client and the in-memory one. GPU nodes
    have allocatable nvidia.com/gpu or modelfleet's instance-type label, ready ones are
    usable (``NodeInfo.usable``); a pod being deleted counts as managed but never as not
    ready; the claims Pending pods wait for are read from them (``missing_claim``). Raises
    nothing."""
    gpu_nodes = [n for n in nodes if n.gpus > 0 or labels.NODE_INSTANCE_TYPE in n.labels]
    live_pods = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    return ClusterProbe(
        server_version=server_version,
        gpu_nodes=len(gpu_nodes),
        ready_gpu_nodes=sum(1 for n in gpu_nodes if n.usable),
        managed_pods=len(pods),
        not_ready_pods=sum(1 for p in live_pods if not pod_ready(p)),
        leaving_nodes=leaving_by_pool(nodes),
        missing_claims=missing_claims(live_pods),
    )


@dataclass(frozen=True)
class SecretData:
    """A Secret's decoded data and the resourceVersion it was read at."""

    data: Mapping[str, bytes]
    resource_version: str | None


@runtime_checkable
class ClusterClient(Protocol):
    """Access to one member cluster's Kubernetes API, limited to what modelfleet needs.

    Every method may raise ``ClusterUnreachable`` or ``ClusterThrottled`` (retryable),
    ``ClusterForbidden`` (naming the missing RBAC verb and resource) and returns within the
    client's timeout per request. Objects are plain JSON dicts.
    """

    async def apply(self, objects: Sequence[Mapping[str, Any]]) -> list[JsonObject]:
        """Create each object, or JSON-merge-patch it when it exists; in order.

        Idempotent: applying the same objects twice changes nothing and duplicates nothing.
        The namespace of a namespaced object is created first when missing. ``status`` is
        never written. Returns the objects as the server stored them. Raises
        ``ClusterConflict`` when an object of that name exists without the
        ``modelfleet.io/managed=true`` label (it is left untouched), ``ClusterRejected``
        when the server refuses an object as invalid, and ``ValueError`` for a kind
        modelfleet does not manage (see ``clusters.objects.KINDS``).
        """
        ...

    async def list_owned(
        self,
        kind: ResourceKind,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> list[JsonObject]:
        """Objects of ``kind`` whose labels include every pair of ``selector``, in
        ``namespace`` or (None) in every namespace. Each item carries apiVersion and kind.
        ``fields``: an equality ``fieldSelector`` too (``{"spec.nodeName": node}`` for
        pods: every API server since 1.19 filters pods by it). An empty list, never
        ``ClusterNotFound``, when there are none."""
        ...

    async def delete_owned(
        self,
        kind: ResourceKind,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
        keep: Collection[str] = (),
    ) -> list[str]:
        """Delete the objects of ``kind`` matching ``selector`` that also carry
        ``modelfleet.io/managed=true``, except those named in ``keep``; returns the names
        deleted. Idempotent: objects already gone are skipped silently. Dependents (a
        Deployment's ReplicaSets and pods) are deleted in the background."""
        ...

    async def deployment_readiness(self, namespace: str, name: str) -> DeploymentReadiness:
        """Replica counts of one Deployment. Raises ``ClusterNotFound`` when it is absent."""
        ...

    async def probe(self) -> ClusterProbe:
        """Check the API answers and count ready GPU nodes and not-ready modelfleet pods.
        Raises ``ClusterUnreachable`` when the API server does not answer in time."""
        ...

    async def list_nodes(self, selector: Mapping[str, str] | None = None) -> list[NodeInfo]:
        """Nodes whose labels include every pair of ``selector`` (all nodes when None)."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent; the client is unusable afterwards."""
        ...


@runtime_checkable
class SecretReader(Protocol):
    """Reads Secrets; the hub's client implements it so the registry can load kubeconfigs."""

    async def read_secret(self, namespace: str, name: str) -> SecretData:
        """The Secret's data, base64-decoded. Raises ``ClusterNotFound`` when absent."""
        ...


def namespace_manifest(name: str) -> JsonObject:
    """The Namespace modelfleet creates when a workload's namespace is missing. It is never
    labelled managed, so it is never deleted by modelfleet (it may hold other things)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "modelfleet"}},
    }


class KubernetesClusterClient:
    """ClusterClient (and SecretReader) over the Kubernetes REST API; see the module doc.

    Build it with ``from_kubeconfig`` or ``in_cluster`` inside a running event loop; close
    it with ``close``. ``name`` (the FleetCluster) only labels errors and logs.
    """

    def __init__(
        self, api_client: Any, *, name: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        # kubernetes_asyncio's ApiClient is untyped; every use goes through _request.
        self._api = api_client
        self.name = name
        self.timeout = timeout
        self._namespaces: set[str] = set()  # namespaces known to exist
        self._closed = False
        self._watches: set[Any] = set()
        """Open watch responses: ``close`` ends them (closing the session alone leaves a
        reader blocked in ``readline`` forever, past its read timeout)."""

    @classmethod
    async def from_kubeconfig(
        cls,
        kubeconfig: Mapping[str, Any],
        *,
        name: str | None = None,
        context: str | None = None,
        request_timeout: float = DEFAULT_TIMEOUT,
    ) -> KubernetesClusterClient:
        """A client for the cluster a kubeconfig (parsed, as a dict) points at.

        Raises ``ClusterConfigError`` (without the kubeconfig's content) when it is unusable.
        """
        from kubernetes_asyncio import client as k8s_client
        from kubernetes_asyncio import config as k8s_config

        configuration = type.__call__(k8s_client.Configuration)
        try:
            await k8s_config.load_kube_config_from_dict(
                dict(kubeconfig), context=context, client_configuration=configuration
            )
        except Exception as error:  # ConfigException, KeyError, TypeError, exec failures
            raise ClusterConfigError(
                f"kubeconfig is unusable ({type(error).__name__}): it needs clusters, users, "
                "contexts and a current-context (or the named context)",
                cluster=name,
            ) from None
        return cls(k8s_client.ApiClient(configuration), name=name, timeout=request_timeout)

    @classmethod
    async def in_cluster(
        cls, *, name: str | None = None, request_timeout: float = DEFAULT_TIMEOUT
    ) -> KubernetesClusterClient:
        """A client for the cluster this process runs in (service-account token, refreshed
        as the kubelet rotates it). Raises ``ClusterConfigError`` outside a pod."""
        from kubernetes_asyncio import client as k8s_client
        from kubernetes_asyncio import config as k8s_config

        configuration = type.__call__(k8s_client.Configuration)
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except Exception as error:
            raise ClusterConfigError(
                f"no in-cluster configuration ({type(error).__name__}): not running in a pod?",
                cluster=name,
            ) from None
        return cls(k8s_client.ApiClient(configuration), name=name, timeout=request_timeout)

    # -- ClusterClient -----------------------------------------------------------------

    async def apply(self, objects: Sequence[Mapping[str, Any]]) -> list[JsonObject]:
        kinds = [kind_of(obj) for obj in objects]  # reject unknown kinds before any write
        return [await self._apply_one(kind, obj) for kind, obj in zip(kinds, objects, strict=True)]

    async def list_owned(
        self,
        kind: ResourceKind,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> list[JsonObject]:
        query = [("labelSelector", selector_string(selector))] if selector else []
        if fields:
            query.append(("fieldSelector", selector_string(fields)))
        result = await self._request(
            "GET", kind.collection_path(namespace), verb="list", resource=kind.plural, query=query
        )
        items: list[JsonObject] = []
        for item in result.get("items") or []:
            # See the module docstring (fields too: a server ignoring them costs more).
            if matches_selector(item, selector) and matches_fields(item, fields or {}):
                # List items omit apiVersion/kind on a real server; callers want them.
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
                items.append(item)
        return items

    async def delete_owned(
        self,
        kind: ResourceKind,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
        keep: Collection[str] = (),
    ) -> list[str]:
        owned = await self.list_owned(
            kind, {**selector, labels.MANAGED: "true"}, namespace=namespace
        )
        deleted: list[str] = []
        for item in owned:
            meta = item.get("metadata") or {}
            name = str(meta.get("name", ""))
            if not name or name in keep:
                continue
            item_namespace = meta.get("namespace") or namespace
            try:
                await self._request(
                    "DELETE",
                    kind.object_path(name, item_namespace),
                    verb="delete",
                    resource=kind.plural,
                    query=[("propagationPolicy", "Background")],
                )
            except ClusterNotFound:
                continue  # deleted meanwhile: the goal is reached
            deleted.append(name)
        return deleted

    async def deployment_readiness(self, namespace: str, name: str) -> DeploymentReadiness:
        obj = await self._request(
            "GET", DEPLOYMENT_KIND.object_path(name, namespace), verb="get", resource="deployments"
        )
        return readiness_of(obj)

    async def server_version(self) -> JsonObject:
        """The API server's ``/version`` document (``gitVersion``, ...): the cheapest call
        every identity may make (the built-in ``system:public-info-viewer`` role). Raises
        the typed errors of ``_request`` (``ClusterUnreachable``, ``ClusterForbidden``...)."""
        return await self._request("GET", "/version", verb="get", resource="version")

    async def probe(self) -> ClusterProbe:
        version = await self.server_version()
        nodes = await self.list_nodes()
        pods = await self.list_owned(POD, {labels.MANAGED: "true"})
        return probe_of(version.get("gitVersion"), nodes, pods)

    async def list_nodes(self, selector: Mapping[str, str] | None = None) -> list[NodeInfo]:
        return [node_info(obj) for obj in await self.list_owned(NODE, selector or {})]

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            for response in list(self._watches):
                response.close()  # wakes its reader: the stream raises ClusterUnreachable
            await self._api.close()

    # -- list + watch (clusters.informer) --------------------------------------------------

    async def list_versioned(
        self,
        kind: ResourceKind,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
    ) -> tuple[list[JsonObject], str]:
        """``list_owned`` plus the list's ``metadata.resourceVersion`` (where a watch of the
        same collection starts). Raises what ``list_owned`` raises."""
        query = [("labelSelector", selector_string(selector))] if selector else []
        result = await self._request(
            "GET", kind.collection_path(namespace), verb="list", resource=kind.plural, query=query
        )
        items: list[JsonObject] = []
        for item in result.get("items") or []:
            if matches_selector(item, selector):
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
                items.append(item)
        version = (result.get("metadata") or {}).get("resourceVersion")
        return items, "" if version is None else str(version)

    async def watch(
        self,
        kind: ResourceKind,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
        resource_version: str,
        timeout_seconds: int,
    ) -> AsyncIterator[JsonObject]:
        """Open a watch of the collection from ``resource_version`` on, with bookmarks asked
        for; returns once the server accepted it. The iterator gives the events
        (``{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}``) until the server
        ends the stream (after about ``timeout_seconds``); close it (``aclose``) when
        stopping early. Raises the typed errors of a request for a refused watch (a 410 Gone
        answer is ``ClusterNotFound`` with ``status`` 410); the iterator raises
        ``ClusterUnreachable`` when the connection breaks or stays silent
        ``timeout_seconds`` + the request timeout."""
        import aiohttp
        from kubernetes_asyncio.client.exceptions import ApiException

        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if selector:
            query.append(("labelSelector", selector_string(selector)))
        path = kind.collection_path(namespace)
        read_timeout = timeout_seconds + self.timeout
        self._check_open(f"watch {kind.plural}")
        with self._transport_errors(f"watch {kind.plural}", name_timeout=False):
            async with asyncio.timeout(self.timeout):
                response = await self._api.call_api(
                    path,
                    "GET",
                    query_params=query,
                    header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"],
                    _return_http_data_only=True,
                    _preload_content=False,
                    _request_timeout=aiohttp.ClientTimeout(
                        total=None, connect=self.timeout, sock_read=read_timeout
                    ),
                )
        if self._closed:  # closed while the answer came: ``close`` could not end this one
            response.close()
            self._check_open(f"watch {kind.plural}")
        if not 200 <= response.status <= 299:
            try:
                refused = ApiException(status=response.status, reason=response.reason)
                refused.body = (await response.read()).decode("utf-8", "replace")
                refused.headers = response.headers
            finally:
                response.close()
            raise _classify(refused, verb="watch", resource=kind.plural, cluster=self.name)
        self._watches.add(response)
        return self._events(response, kind)

    @contextlib.contextmanager
    def _transport_errors(self, what: str, *, name_timeout: bool = True) -> Iterator[None]:
        """The one translation of a failed exchange with the API server (a request, or the
        opening of a watch), ``what`` naming it in messages: a timeout, ours or aiohttp's,
        is ``ClusterUnreachable`` "did not answer within" the client's timeout (with the
        error's class when ``name_timeout``); a refused connection, no route, DNS or TLS
        failure is ``ClusterUnreachable`` "cannot connect" (it failed at once); a typed
        ``ClusterError`` passes unchanged; any other error is re-raised, unless the client
        was closed on the way (then ``_check_open``'s ``ClusterUnreachable``)."""
        import aiohttp  # with kubernetes_asyncio: only the real client needs it

        try:
            yield
        except ClusterError:
            raise
        except TimeoutError as error:  # aiohttp's ServerTimeoutError is one too
            named = f" ({type(error).__name__})" if name_timeout else ""
            raise ClusterUnreachable(
                f"{what}: API server did not answer within {self.timeout:g}s{named}",
                cluster=self.name,
            ) from None
        except (aiohttp.ClientError, ssl.SSLError, OSError) as error:
            # Refused, no route, DNS, TLS: it failed at once, it did not time out.
            raise ClusterUnreachable(
                f"{what}: cannot connect to the API server ({type(error).__name__})",
                cluster=self.name,
            ) from None
        except Exception:
            self._check_open(what)  # closed on the way (see _check_open)
            raise

    def _check_open(self, what: str) -> None:
        """A closed client (the registry replaced it: its kubeconfig Secret changed) is
        unreachable, a typed error callers retry, not aiohttp's RuntimeError. Checked
        before a request and again when one fails: a request already on its way when the
        client was closed fails inside aiohttp with an AssertionError (no connector) or a
        RuntimeError, which used to end an informer's task (seen on a busy machine)."""
        if self._closed:
            raise ClusterUnreachable(f"{what}: client closed (replaced)", cluster=self.name)

    async def _events(self, response: Any, kind: ResourceKind) -> AsyncIterator[JsonObject]:
        """The events of an accepted watch response, one JSON object per line."""
        import aiohttp

        try:
            while True:
                try:
                    line = await response.content.readline()
                except (TimeoutError, aiohttp.ClientError, OSError) as error:
                    raise ClusterUnreachable(
                        f"watch {kind.plural}: stream broken ({type(error).__name__})",
                        cluster=self.name,
                    ) from None
                if not line:
                    return  # the server ended the stream (its timeout): resume from here
                if not line.strip():
                    continue
                event = json.loads(line)
                if isinstance(event, dict):
                    yield event
        finally:
            self._watches.discard(response)
            response.close()  # a watch connection is not worth keeping for reuse

    # -- merge patch (the operator's wake-up annotation) -------------------------------------

    async def merge_patch(
        self,
        kind: ResourceKind,
        name: str,
        body: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> JsonObject:
        """A JSON merge patch (RFC 7386) of one object; the object as the server returns
        it. Raises the typed errors of a request (``ClusterNotFound`` when it is gone)."""
        return await self._request(
            "PATCH",
            kind.object_path(name, namespace),
            verb="patch",
            resource=kind.plural,
            body=body,
            content_type="application/merge-patch+json",
        )

    async def get(
        self, kind: ResourceKind, name: str, *, namespace: str | None = None
    ) -> JsonObject:
        """One object as the server returns it. Raises ``ClusterNotFound`` when it does not
        exist, and the other typed errors of a request."""
        return await self._request(
            "GET", kind.object_path(name, namespace), verb="get", resource=kind.plural
        )

    async def delete(
        self,
        kind: ResourceKind,
        name: str,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
    ) -> bool:
        """Delete one object (dependents in the background); False when it was gone already.
        ``resource_version``: delete only the object as it was read at that version (a
        ``preconditions`` DeleteOptions; a newer write makes the server answer 409, raised as
        ``ClusterConflict``). Raises the other typed errors of a request."""
        body: dict[str, Any] | None = None
        if resource_version:
            body = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "propagationPolicy": "Background",
                "preconditions": {"resourceVersion": resource_version},
            }
        try:
            await self._request(
                "DELETE",
                kind.object_path(name, namespace),
                verb="delete",
                resource=kind.plural,
                query=[("propagationPolicy", "Background")],
                body=body,
            )
        except ClusterNotFound:
            return False
        return True

    # -- SecretReader ------------------------------------------------------------------

    async def read_secret(self, namespace: str, name: str) -> SecretData:
        obj = await self._request(
            "GET", SECRET.object_path(name, namespace), verb="get", resource="secrets"
        )
        data: dict[str, bytes] = {}
        for key, value in (obj.get("data") or {}).items():
            try:
                data[key] = base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                raise ClusterConfigError(
                    f"Secret {namespace}/{name} key {key!r} is not valid base64", cluster=self.name
                ) from None
        version = (obj.get("metadata") or {}).get("resourceVersion")
        return SecretData(data=data, resource_version=None if version is None else str(version))

    # -- internals ---------------------------------------------------------------------

    async def _apply_one(self, kind: ResourceKind, obj: Mapping[str, Any]) -> JsonObject:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        namespace = meta.get("namespace") if kind.namespaced else None
        if not name or (kind.namespaced and not namespace):
            raise ValueError(f"{kind.kind} needs metadata.name and, if namespaced, a namespace")
        path = kind.object_path(name, namespace)
        body = {key: value for key, value in obj.items() if key != "status"}
        if namespace:
            await self._ensure_namespace(namespace)
        try:
            live = await self._request("GET", path, verb="get", resource=kind.plural)
        except ClusterNotFound:
            try:
                return await self._create(kind, body, namespace)
            except ClusterConflict:  # created concurrently: patch it below
                live = await self._request("GET", path, verb="get", resource=kind.plural)
        if not is_managed(live):
            raise ClusterConflict(
                f"{kind.kind} {namespace + '/' if namespace else ''}{name} exists and is not "
                f"managed by modelfleet (no {labels.MANAGED}=true label); rename or delete it",
                cluster=self.name,
            )
        if merge_patch(live, body) == live:
            return live  # nothing to change: spare the API server a write
        return await self._request(
            "PATCH",
            path,
            verb="patch",
            resource=kind.plural,
            body=body,
            content_type="application/merge-patch+json",
        )

    async def _create(
        self, kind: ResourceKind, body: Mapping[str, Any], namespace: str | None
    ) -> JsonObject:
        collection = kind.collection_path(namespace)
        try:
            return await self._request(
                "POST", collection, verb="create", resource=kind.plural, body=body
            )
        except ClusterNotFound:
            if namespace is None:
                raise
            # The namespace went away since we last saw it: recreate it and retry once.
            self._namespaces.discard(namespace)
            await self._ensure_namespace(namespace)
            return await self._request(
                "POST", collection, verb="create", resource=kind.plural, body=body
            )

    async def _ensure_namespace(self, namespace: str) -> None:
        if namespace in self._namespaces:
            return
        try:
            await self._request(
                "GET", NAMESPACE.object_path(namespace), verb="get", resource="namespaces"
            )
        except ClusterNotFound:
            with contextlib.suppress(ClusterConflict):  # created concurrently
                await self._request(
                    "POST",
                    NAMESPACE.collection_path(),
                    verb="create",
                    resource="namespaces",
                    body=namespace_manifest(namespace),
                )
        self._namespaces.add(namespace)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        resource: str,
        query: Sequence[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        """One API call with the timeout; every transport and HTTP error is translated here."""
        import aiohttp  # with kubernetes_asyncio: only the real client needs them
        from kubernetes_asyncio.client.exceptions import ApiException

        self._check_open(f"{verb} {resource}")

        with self._transport_errors(f"{verb} {resource}"):
            try:
                async with asyncio.timeout(self.timeout):
                    result = await self._api.call_api(
                        path,
                        method,
                        query_params=list(query),
                        header_params={
                            "Accept": "application/json",
                            "Content-Type": content_type,
                        },
                        body=dict(body) if body is not None else None,
                        response_types_map={200: "object", 201: "object", 202: "object"},
                        auth_settings=["BearerToken"],
                        _return_http_data_only=True,
                        _preload_content=True,
                        _request_timeout=aiohttp.ClientTimeout(total=self.timeout),
                    )
            except ApiException as error:
                raise _classify(error, verb=verb, resource=resource, cluster=self.name) from None
        return result if isinstance(result, dict) else {}


def _classify(error: Any, *, verb: str, resource: str, cluster: str | None) -> ClusterError:
    """Translate a kubernetes_asyncio ApiException into our typed error (the one place)."""
    status = int(getattr(error, "status", 0) or 0)
    message = str(getattr(error, "reason", "") or "")
    try:
        payload = json.loads(getattr(error, "body", "") or "{}")
        if isinstance(payload, dict) and payload.get("message"):
            message = str(payload["message"])
    except (TypeError, ValueError):
        pass
    what = f"{verb} {resource}: {message}".rstrip(": ")
    if status == 401:
        return ClusterForbidden(
            f"{what}: credentials rejected (expired token or certificate?)",
            verb=verb,
            resource=resource,
            cluster=cluster,
            status=401,
        )
    if status == 403:
        return ClusterForbidden(what, verb=verb, resource=resource, cluster=cluster, status=403)
    if status in (404, 410):
        return ClusterNotFound(what, cluster=cluster, status=status)
    if status == 409:
        return ClusterConflict(what, cluster=cluster, status=status)
    if status in (400, 422):
        return ClusterRejected(what, cluster=cluster, status=status)
    if status == 429:
        headers = getattr(error, "headers", None) or {}
        retry_after = str(headers.get("Retry-After", "1"))
        return ClusterThrottled(
            what,
            retry_after=float(retry_after) if retry_after.isdigit() else 1.0,
            cluster=cluster,
        )
    if status == 0 or status >= 500:
        return ClusterUnreachable(what, cluster=cluster, status=status or None)
    return ClusterError(what, cluster=cluster, status=status)
