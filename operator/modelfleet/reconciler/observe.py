"""Read back what a ModelDeployment really runs in each member cluster.

The planner's stickiness and make-before-break both depend on the truth in the member
clusters, not on what the status last said: a Deployment may have been scaled by hand,
deleted, or never created. Observation lists the deployment's own Deployments (by the
ownership labels) in every cluster concurrently; a cluster that cannot be read is reported
as unreachable and the reconciler falls back to the last recorded status for it.

At scale, one LIST per deployment per pass per cluster is most of the operator's traffic.
``ObservationCache`` shares it: one LIST of every modelfleet-managed Deployment per (cluster,
namespace), reused by every pass for ``ttl_seconds`` and fetched once however many passes
ask at the same moment; each pass filters its own workloads from it.

With member watches on (``informers``, see ``clusters.informer``) the cache does not list at
all once a (cluster, namespace) informer has synced: passes read its store, which the watch
keeps current. Until it has synced, and whenever its watch is failing, the LIST path above
answers, so no pass ever waits for a watch. The store keeps only the fields observation
reads (``trim_deployment``). A cluster the probe doubts (Suspect, Failed) is always
listed: a watch on a silently hung connection would keep answering from a stale store.

Reading an informer's store may lag a pass's own writes by the watch's delay (milliseconds
on a healthy API server); the stages tolerate that as they tolerated the 2 s LIST cache:
apply is idempotent (a Deployment not seen yet is applied again, a GET and no write),
retire removes a workload only after its replacements are *observed* Ready (a lagging store
delays a retirement, never causes one early), and deleting what is already gone is a no-op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelfleet import labels
from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api.common import CapacityType
from modelfleet.clusters import ClusterClient, ClusterError, ClusterUnreachable
from modelfleet.clusters.informer import (
    InformerSet,
    InformerSettings,
    InformerState,
    OnUpdate,
    WatchClientFor,
)
from modelfleet.clusters.objects import DEPLOYMENT, JsonObject, readiness_of
from modelfleet.clusters.workloads import owner_selector, workload_namespace
from modelfleet.reconciler.limits import gather, within
from modelfleet.reconciler.memory import ClientFor


@dataclass(frozen=True)
class ObservedWorkload:
    """One of the deployment's Deployments in a member cluster."""

    name: str
    instance_type: str
    capacity_type: CapacityType
    replicas: int
    ready: int


@dataclass(frozen=True)
class ClusterObservation:
    """What one member cluster holds for the deployment; ``error`` set when unreadable."""

    cluster: str
    workloads: tuple[ObservedWorkload, ...] = ()
    error: ClusterError | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Observation:
    """Every cluster's observation, by FleetCluster name."""

    clusters: Mapping[str, ClusterObservation] = field(default_factory=dict)

    def ready(self) -> int:
        return sum(w.ready for c in self.clusters.values() for w in c.workloads)

    def unreachable(self) -> list[str]:
        return sorted(name for name, c in self.clusters.items() if not c.reachable)


def _workload_of(obj: Mapping[str, Any]) -> ObservedWorkload | None:
    """Parse a Deployment modelfleet rendered; None when it does not look like one."""
    spec = obj.get("spec") or {}
    selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    instance_type = selector.get(labels.NODE_INSTANCE_TYPE)
    capacity = selector.get(labels.NODE_CAPACITY_TYPE)
    if not instance_type or capacity not in ("spot", "on-demand"):
        return None
    readiness = readiness_of(obj)
    return ObservedWorkload(
        name=str(obj["metadata"]["name"]),
        instance_type=str(instance_type),
        capacity_type="Spot" if capacity == "spot" else "OnDemand",
        replicas=int(spec.get("replicas") or 0),
        ready=readiness.ready,
    )


def trim_deployment(obj: JsonObject) -> JsonObject:
    """The fields of a Deployment that observation reads (``_workload_of``, the owner
    labels, readiness): what an informer keeps per object, a few hundred bytes instead of
    the whole rendered pod template."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    return {
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "labels", "generation", "resourceVersion")
            if key in meta
        },
        "spec": {
            "replicas": spec.get("replicas"),
            "template": {"spec": {"nodeSelector": pod_spec.get("nodeSelector") or {}}},
        },
        "status": obj.get("status") or {},
    }


def deployment_informers(
    client_for: WatchClientFor,
    settings: InformerSettings | None = None,
    *,
    on_update: OnUpdate | None = None,
) -> InformerSet:
    """Informers of modelfleet-managed Deployments per (member cluster, namespace);
    ``on_update`` gets every stored (trimmed) Deployment before and after each change
    (``reconciler.wakes``)."""
    return InformerSet(
        client_for=client_for,
        kind=DEPLOYMENT,
        selector={labels.MANAGED: "true"},
        settings=settings,
        transform=trim_deployment,
        on_update=on_update,
    )


_DOUBTED = frozenset({"Suspect", "Failed"})
"""Health of a cluster the probe doubts: observed by LIST, never from a watch store that
a silently hung connection could keep stale (a failing LIST reports it unreachable)."""


class ObservationCache:
    """Managed Deployments per (cluster, namespace): from ``informers`` once synced, else
    listed at most once per ``ttl_seconds`` of ``clock`` (monotonic seconds) and once for
    any number of concurrent askers. ``ttl_seconds`` 0 and no informers: every pass lists."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        clock: Callable[[], float],
        informers: InformerSet | None = None,
    ) -> None:
        self.ttl = ttl_seconds
        self.informers = informers
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, asyncio.Future[list[Any]]]] = {}
        self.lists = 0
        """LISTs this cache sent (the fallback path)."""

    @property
    def active(self) -> bool:
        """Whether passes read through this cache (else each lists its own workloads)."""
        return self.ttl > 0 or self.informers is not None

    async def managed(
        self, cluster: FleetCluster, namespace: str, client: ClusterClient
    ) -> list[Any]:
        """Every modelfleet-managed Deployment of ``namespace`` in ``cluster`` (read-only:
        the objects are shared between passes)."""
        doubted = cluster.status is not None and cluster.status.health in _DOUBTED
        if self.informers is not None and not doubted:
            watched = self.informers.read(cluster, namespace)
            if watched is not None:
                return watched
        key = (cluster.metadata.name, namespace)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and (not entry[1].done() or now - entry[0] < self.ttl):
            return await asyncio.shield(entry[1])
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._entries[key] = (now, future)
        self.lists += 1
        try:
            items = await client.list_owned(
                DEPLOYMENT, {labels.MANAGED: "true"}, namespace=namespace
            )
        except BaseException as exc:
            self._entries.pop(key, None)
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters re-raise it
            raise
        future.set_result(items)
        return items

    def forget(self, cluster: str) -> None:
        """FleetCluster ``cluster`` was deleted: drop its entries, stop its informers."""
        for key in [k for k in self._entries if k[0] == cluster]:
            del self._entries[key]
        if self.informers is not None:
            self.informers.forget(cluster)

    def watch_states(self, cluster: str | None = None) -> list[InformerState]:
        """The informers' states (of ``cluster`` when given); empty without informers."""
        return [] if self.informers is None else self.informers.states(cluster)

    async def close(self) -> None:
        """Stop every informer and wait for them (operator shutdown). Idempotent."""
        if self.informers is not None:
            await self.informers.close()


async def observe_cluster(
    md: ModelDeployment,
    cluster: FleetCluster,
    client_for: ClientFor,
    *,
    timeout: float | None,
    cache: ObservationCache | None = None,
) -> ClusterObservation:
    """The deployment's workloads in ``cluster``; never raises (errors are recorded)."""
    name = cluster.metadata.name
    namespace = workload_namespace(md)
    selector = owner_selector(name=md.metadata.name, namespace=namespace)
    try:
        async with within(timeout):
            client = await client_for(cluster)
            if cache is not None and cache.active:
                listed = await cache.managed(cluster, namespace, client)
                # Every selector label present with its value (the values are strings,
                # never None): a subset test of the items, in C.
                wanted = selector.items()
                objects = [
                    o
                    for o in listed
                    if wanted <= (((o.get("metadata") or {}).get("labels") or {}).items())
                ]
            else:
                objects = await client.list_owned(DEPLOYMENT, selector, namespace=namespace)
    except ClusterError as exc:
        return ClusterObservation(name, error=exc)
    except TimeoutError:
        return ClusterObservation(
            name, error=ClusterUnreachable(f"no answer within {timeout or 0:.0f}s", cluster=name)
        )
    workloads = tuple(w for w in (_workload_of(o) for o in objects) if w is not None)
    return ClusterObservation(name, workloads=tuple(sorted(workloads, key=lambda w: w.name)))


async def observe(
    md: ModelDeployment,
    clusters: Sequence[FleetCluster],
    client_for: ClientFor,
    *,
    timeout: float | None = 10.0,
    cache: ObservationCache | None = None,
) -> Observation:
    """Observe ``md`` in every cluster concurrently (one slow cluster delays none other)."""
    results = await gather(
        *(observe_cluster(md, c, client_for, timeout=timeout, cache=cache) for c in clusters)
    )
    return Observation({r.cluster: r for r in results})
