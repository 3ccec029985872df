"""Informers: member-cluster objects kept current by one LIST and then a WATCH.

Every reconcile pass reads the deployment's Deployments in every member cluster. Listing
them again for each pass (even shared, once per namespace every couple of seconds) is
traffic that grows with the fleet and never stops. An ``Informer`` does what client-go's
reflector does, with requests every API server since 1.19 serves the same way:

1. LIST the collection (``labelSelector`` = modelfleet's ``managed`` label) and remember the
   list's ``resourceVersion``: the store is *synced*;
2. WATCH from that resourceVersion with ``allowWatchBookmarks=true`` and a server-side
   ``timeoutSeconds``; ADDED/MODIFIED/DELETED change the store, every event and bookmark
   moves the resourceVersion on;
3. when the stream ends (the server's timeout, a proxy, a dropped connection) WATCH again
   from the last resourceVersion: nothing is listed again, unless ``client_for`` now gives
   another client (its kubeconfig changed, maybe to another API server, where the old
   resourceVersion means nothing);
4. a 410 Gone answer or an ``ERROR`` event (the resourceVersion is too old, or the server
   gave up) means events were lost: LIST again, after a backoff (doubling, capped);
5. any other failure (unreachable, forbidden) marks the store not *healthy* and retries
   with the same backoff.

Readers (``InformerSet.read``) get the store only while it is synced and healthy, and None
otherwise, so the caller falls back to a LIST of its own: nothing ever waits for a watch.
The store keeps only what ``transform`` keeps of each object (memory per object small and
bounded). Informers are started on first read, stop when nobody has read them for
``idle_seconds`` (their namespace has no deployment left), when their cluster is forgotten
(``forget``; a late read of the same FleetCluster, by uid, starts nothing) and on ``close``;
no task outlives ``close``.

A client that cannot watch (the in-memory fakes of the simulator and the unit tests) makes
``client_for`` return None: the informer stops at once and reads always fall back.

Each open watch holds one HTTP connection of its client's pool (kubernetes_asyncio: 100 per
client), so the operator gives watches a client of their own per member cluster
(``runtime``); past 100 watched namespaces in one member cluster, further watches wait for
a connection, time out, and those namespaces are served by LIST.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from modelfleet.clusters.errors import ClusterError
from modelfleet.clusters.objects import JsonObject, ResourceKind, matches_selector

log = logging.getLogger(__name__)


class ListWatchClient(Protocol):
    """What an informer needs of a member cluster's client (``KubernetesClusterClient``)."""

    async def list_versioned(
        self, kind: ResourceKind, selector: Mapping[str, str], *, namespace: str | None = None
    ) -> tuple[list[JsonObject], str]:
        """The matching objects and the list's resourceVersion."""
        ...

    async def watch(
        self,
        kind: ResourceKind,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
        resource_version: str,
        timeout_seconds: int,
    ) -> AsyncIterator[JsonObject]:
        """Open a watch from ``resource_version`` (raises when refused); its events until
        the server ends the stream."""
        ...


WatchClientFor = Callable[[Any], Awaitable[ListWatchClient | None]]
"""The watch client of a FleetCluster (the argument); None when its client cannot watch."""

Transform = Callable[[JsonObject], JsonObject]
OnUpdate = Callable[[JsonObject | None, JsonObject | None], None]
"""Called with a stored object before and after one change (None: absent)."""


@dataclass(frozen=True)
class InformerSettings:
    """Timings of the informers (seconds)."""

    watch_timeout_seconds: int = 300
    """Server-side ``timeoutSeconds`` of one watch stream (jittered by up to +10%); a
    silent broken connection is noticed after this plus the client's request timeout."""
    backoff_initial_seconds: float = 1.0
    """First wait after a failure or before a relist; doubles per consecutive failure."""
    backoff_max_seconds: float = 60.0
    idle_seconds: float = 900.0
    """An informer nobody read for this long stops (checked when a stream ends)."""


@dataclass
class InformerState:
    """How one informer stands (for metrics, logs and tests)."""

    cluster: str
    namespace: str | None
    synced: bool = False
    """A LIST has filled the store."""
    healthy: bool = False
    """The watch is open or resuming without an error: the store is current."""
    unsupported: bool = False
    """The cluster's client cannot watch: reads always fall back to LIST."""
    resource_version: str = ""
    lists: int = 0
    """LISTs sent (1 at start, then one per 410/ERROR relist)."""
    watches: int = 0
    """Watch requests sent (one per stream: start, resume, reconnect)."""
    events: int = 0
    """ADDED/MODIFIED/DELETED events applied."""
    errors: int = 0
    last_error: str | None = None

    @property
    def serving(self) -> bool:
        """Reads are answered from the store."""
        return self.synced and self.healthy


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


class _Relist(Exception):
    """The watch lost events (410 Gone or an ERROR event): LIST again."""


class Informer:
    """LIST then WATCH of one collection (``kind`` in ``namespace``, or every namespace
    when None, filtered by ``selector``); see the module docstring."""

    def __init__(
        self,
        *,
        cluster: str,
        namespace: str | None,
        kind: ResourceKind,
        selector: Mapping[str, str],
        client_for: Callable[[], Awaitable[ListWatchClient | None]],
        settings: InformerSettings | None = None,
        transform: Transform | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        on_change: Callable[[JsonObject], None] | None = None,
        on_update: OnUpdate | None = None,
    ) -> None:
        """``on_change``, when given, is called with every selected object as listed or
        as a watch event brings it (added or modified; not deleted), before ``transform``:
        for readers that act on changes rather than read the store. ``on_update``, when
        given, is called with the stored object before and after each change (both as
        ``transform`` keeps them; None: absent), after the store holds the new one: for
        every event, and for every object of a LIST (the first sync, and a relist that
        may have missed events: ``before`` is what the store held). It must not raise."""
        self.kind = kind
        self._on_change = on_change
        self._on_update = on_update
        self.namespace = namespace
        self.selector = dict(selector)
        self.settings = settings or InformerSettings()
        self.state = InformerState(cluster=cluster, namespace=namespace)
        self._client_for = client_for
        self._transform = transform or (lambda obj: obj)
        self._monotonic = monotonic
        self._store: dict[str, JsonObject] = {}
        self._listed_with: ListWatchClient | None = None
        self._last_read = monotonic()

    def items(self) -> list[JsonObject] | None:
        """The store's objects (shared, read-only) while it is synced and healthy; else None
        (the caller lists for itself). Counts as a read for the idle timeout."""
        self._last_read = self._monotonic()
        return list(self._store.values()) if self.state.serving else None

    async def run(self) -> None:
        """LIST and WATCH until cancelled, idle, or the client cannot watch. Never raises
        for API errors (they are counted and retried with backoff)."""
        s = self.settings
        backoff = s.backoff_initial_seconds
        relist = True
        while True:
            if self._monotonic() - self._last_read > s.idle_seconds:
                log.debug("informer %s/%s idle: stopped", self.state.cluster, self.namespace)
                self.state.healthy = False  # no watch keeps the store current any more
                return
            opened = self._monotonic()
            events_before = self.state.events
            try:
                client = await self._client_for()
                if client is None:
                    self.state.unsupported = True
                    return
                if client is not self._listed_with:
                    # A new client (its kubeconfig Secret changed, maybe to another API
                    # server): a resourceVersion means something only to the server that
                    # issued it, so the store is listed again rather than resumed.
                    relist = True
                if relist:
                    await self._list(client)
                    relist = False
                    self.state.healthy = True  # current as of the list
                await self._watch(client)
            except _Relist as why:
                relist = True
                self._failed(str(why))
            except ClusterError as error:
                if error.status == 410:
                    relist = True
                self._failed(str(error))
            except ValueError as error:  # a line that is not JSON: the stream is not trusted
                relist = True
                self._failed(f"bad watch event: {error}")
            else:
                if self.state.events > events_before or self._monotonic() - opened >= 1.0:
                    backoff = s.backoff_initial_seconds
                    continue  # the server ended the stream: resume from the last version
                # An empty stream closed at once (a proxy?): do not spin, but stay healthy.
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, s.backoff_max_seconds)

    async def _list(self, client: ListWatchClient) -> None:
        self.state.lists += 1
        items, version = await client.list_versioned(
            self.kind, self.selector, namespace=self.namespace
        )
        if self._on_change is not None:
            for obj in items:
                self._on_change(obj)
        before = self._store
        self._store = {_key(o): self._transform(o) for o in items}
        if self._on_update is not None:
            for key, obj in self._store.items():
                self._on_update(before.get(key), obj)
            for key, obj in before.items():
                if key not in self._store:
                    self._on_update(obj, None)
        self._listed_with = client
        self.state.resource_version = version
        self.state.synced = True

    async def _watch(self, client: ListWatchClient) -> None:
        s = self.settings
        self.state.watches += 1
        timeout = int(s.watch_timeout_seconds * random.uniform(1.0, 1.1))
        stream = await client.watch(
            self.kind,
            self.selector,
            namespace=self.namespace,
            resource_version=self.state.resource_version,
            timeout_seconds=max(1, timeout),
        )
        self.state.healthy = True  # open: the store is current and will stay so
        try:
            async for event in stream:
                self._apply(event)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            raise _Relist(
                f"watch ERROR {obj.get('code', '?')} {obj.get('reason', '')}: "
                f"{obj.get('message', '')}".strip()
            )
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if kind == "BOOKMARK":
            if version:
                self.state.resource_version = version
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        namespace = (obj.get("metadata") or {}).get("namespace")
        if self.namespace is not None and namespace != self.namespace:
            return  # not this collection's object (a namespaced watch never sends one)
        key = _key(obj)
        if kind != "DELETED" and matches_selector(obj, self.selector):
            obj.setdefault("apiVersion", self.kind.api_version)
            obj.setdefault("kind", self.kind.kind)
            if self._on_change is not None:
                self._on_change(dict(obj))
            stored = self._transform(dict(obj))
            old = self._store.get(key)
            self._store[key] = stored
            if self._on_update is not None:
                self._on_update(old, stored)
        else:  # deleted, or no longer selected
            old = self._store.pop(key, None)
            if self._on_update is not None and old is not None:
                self._on_update(old, None)
        self.state.events += 1
        if version:
            self.state.resource_version = version

    def _failed(self, message: str) -> None:
        self.state.healthy = False
        self.state.errors += 1
        self.state.last_error = message
        log.info(
            "informer %s/%s: %s (reads fall back to LIST meanwhile)",
            self.state.cluster,
            self.namespace or "*",
            message,
        )


class InformerSet:
    """One informer per (FleetCluster, namespace), started on first read; see the module
    docstring. ``client_for(cluster)`` gives the watch client of a FleetCluster."""

    def __init__(
        self,
        *,
        client_for: WatchClientFor,
        kind: ResourceKind,
        selector: Mapping[str, str],
        settings: InformerSettings | None = None,
        transform: Transform | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        on_update: OnUpdate | None = None,
    ) -> None:
        """``on_update`` is given to every informer (see ``Informer``): each stored object
        before and after each change, whichever (cluster, namespace) it is in."""
        self._client_for = client_for
        self._on_update = on_update
        self.kind = kind
        self.selector = dict(selector)
        self.settings = settings or InformerSettings()
        self._transform = transform
        self._monotonic = monotonic
        self._informers: dict[tuple[str, str], tuple[Informer, asyncio.Task[None]]] = {}
        self._clusters: dict[str, Any] = {}  # the latest FleetCluster object per name
        self._stopping: set[asyncio.Task[None]] = set()
        self._forgotten: dict[str, str] = {}  # name -> uid of a deleted FleetCluster
        self._closed = False

    def read(self, cluster: Any, namespace: str) -> list[JsonObject] | None:
        """The objects of ``namespace`` in FleetCluster ``cluster`` from its informer, or None
        while it is not serving (not synced yet, failing, or unable to watch): list then.
        Starts the informer when there is none (or it stopped). Call inside the event loop."""
        name = str(cluster.metadata.name)
        uid = cluster.metadata.uid
        if name in self._forgotten:
            if uid is not None and self._forgotten[name] == uid:
                return None  # a pass that began before the cluster was deleted: it lists
            del self._forgotten[name]  # created again under the same name
        self._clusters[name] = cluster
        key = (name, namespace)
        entry = self._informers.get(key)
        if entry is not None and entry[1].done() and not entry[0].state.unsupported:
            entry = None  # stopped idle, or crashed (logged): start afresh
        if entry is None:
            if self._closed:
                return None
            entry = self._start(name, namespace)
        return entry[0].items()

    def states(self, cluster: str | None = None) -> list[InformerState]:
        """Every running informer's state (of ``cluster`` when given; an informer stopped
        idle is left out until a read starts it again), sorted by cluster, namespace."""
        found = [
            informer.state
            for (name, _), (informer, task) in self._informers.items()
            if (cluster is None or name == cluster)
            and (not task.done() or informer.state.unsupported)  # stopped idle: gone
        ]
        return sorted(found, key=lambda st: (st.cluster, st.namespace or ""))

    def serving(self, cluster: str, namespace: str) -> bool:
        """Whether the informer of ``namespace`` in FleetCluster ``cluster`` runs and is
        serving (synced, its watch healthy): a change there reaches ``on_update`` as it
        happens. Starts nothing (False when there is none, or it stopped)."""
        entry = self._informers.get((cluster, namespace))
        return entry is not None and not entry[1].done() and entry[0].state.serving

    def forget(self, cluster: str) -> None:
        """Stop the informers of FleetCluster ``cluster`` (deleted); ``close`` awaits them.
        A later read of the same FleetCluster (same uid: a pass that began before the
        deletion) starts nothing and gets None; one created again (new uid) is watched."""
        known = self._clusters.pop(cluster, None)
        uid = None if known is None else known.metadata.uid
        if uid is not None:
            self._forgotten[cluster] = str(uid)
        for key in [k for k in self._informers if k[0] == cluster]:
            _, task = self._informers.pop(key)
            self._stop(task)

    async def close(self) -> None:
        """Stop every informer and wait for their tasks to end. Idempotent."""
        self._closed = True
        for key in list(self._informers):
            _, task = self._informers.pop(key)
            self._stop(task)
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)

    def _start(self, cluster: str, namespace: str) -> tuple[Informer, asyncio.Task[None]]:
        async def client() -> ListWatchClient | None:
            fleet_cluster = self._clusters.get(cluster)
            return None if fleet_cluster is None else await self._client_for(fleet_cluster)

        informer = Informer(
            cluster=cluster,
            namespace=namespace,
            kind=self.kind,
            selector=self.selector,
            client_for=client,
            settings=self.settings,
            transform=self._transform,
            monotonic=self._monotonic,
            on_update=self._on_update,
        )
        task = asyncio.get_running_loop().create_task(
            informer.run(), name=f"informer {cluster}/{namespace}"
        )
        task.add_done_callback(_log_crash)
        entry = (informer, task)
        self._informers[(cluster, namespace)] = entry
        return entry

    def _stop(self, task: asyncio.Task[None]) -> None:
        if task.done():
            return
        task.cancel()
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "%s crashed; restarted on the next read", task.get_name(), exc_info=task.exception()
        )
