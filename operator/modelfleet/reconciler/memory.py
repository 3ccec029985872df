"""Operator-wide memory that outlives one reconcile: stockout marks and provider instances.

Stockouts are remembered per FleetCluster in process (as Karpenter caches insufficient-
capacity offerings in memory), shared by every ModelDeployment so one deployment's capacity
error steers all the others away at once. The FleetCluster timer publishes them to
``status.stockouts`` (for humans and ``modelfleet plan``) and a restarted operator seeds the
memory back from there, so nothing is lost on restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from modelfleet.api import FleetCluster
from modelfleet.api.common import CapacityType
from modelfleet.api.fleetcluster import Stockout
from modelfleet.clusters import ClusterClient, SecretReader
from modelfleet.core import (
    StockoutMark,
    prune,
    record_capacity_error,
    record_capacity_success,
)
from modelfleet.core.from_api import stockout_from_api, stockout_to_api
from modelfleet.providers import NodePoolProvider
from modelfleet.providers.factory import provider_for
from modelfleet.reconciler.node_source import ClusterNodeSource


class StockoutMemory:
    """Stockout marks per cluster name: the one owner of marks in the operator (the planner
    reads them, the pools stage records them, the FleetCluster pass publishes them).

    Backoff timings are the planner settings' ``stockout_initial_seconds`` (3 min) doubling
    up to ``stockout_max_seconds`` (30 min). Not thread-safe; used from the operator's loop.
    """

    def __init__(self, *, initial_seconds: float = 180.0, max_seconds: float = 1800.0) -> None:
        self._marks: dict[str, tuple[StockoutMark, ...]] = {}
        self._initial = initial_seconds
        self._max = max_seconds

    def seed(self, cluster: FleetCluster, now: datetime | None = None) -> None:
        """Adopt marks from a FleetCluster's status unless this process already has some.

        ``now`` reads them as written by a clock no later than ours: a mark never holds
        longer than the longest backoff from ``now`` (``until`` a year ahead, from a clock
        ahead or an edit, skipped the offering for a year) and its ``since`` is no later
        than ``now``; a mark as this operator writes it is unchanged."""
        name = cluster.metadata.name
        if name in self._marks or cluster.status is None:
            return
        marks = tuple(stockout_from_api(s) for s in cluster.status.stockouts or [])
        if now is not None:
            latest = now + timedelta(seconds=self._max)
            marks = tuple(
                replace(
                    m,
                    until=min(m.until, latest),
                    since=None if m.since is None else min(m.since, now),
                )
                if m.until > latest or (m.since is not None and m.since > now)
                else m
                for m in marks
            )
        self._marks[name] = marks

    def marks(self, cluster: str) -> tuple[StockoutMark, ...]:
        return self._marks.get(cluster, ())

    def published(self, cluster: str, now: datetime) -> list[Stockout] | None:
        """The remembered marks as FleetCluster ``status.stockouts`` (None: none): those in
        force at ``now`` and the expired ones still kept for the backoff (``prune`` drops
        them an hour after expiry), so a restarted operator seeded from status keeps
        doubling instead of starting over at the initial backoff. Readers skip a candidate
        only until a mark's ``until``."""
        return [stockout_to_api(m) for m in self.marks(cluster)] or None

    def record_error(
        self,
        cluster: str,
        gpu: str,
        *,
        capacity_type: CapacityType,
        instance_type: str | None,
        message: str,
        now: datetime,
        zone: str | None = None,
    ) -> tuple[StockoutMark, bool]:
        """Record a capacity error (in ``zone`` when the cloud named one); returns the mark
        now in force and whether this error changed anything. An error while a mark for the
        same key is still in force is the same stockout seen again (another deployment, a
        late report): it neither doubles nor extends the backoff."""
        for mark in self.marks(cluster):
            if (
                mark.gpu == gpu
                and mark.capacity_type == capacity_type
                and mark.instance_type == instance_type
                and mark.zone == zone
                and mark.until > now
            ):
                return mark, False
        marks = record_capacity_error(
            self.marks(cluster),
            gpu,
            capacity_type=capacity_type,
            now=now,
            instance_type=instance_type,
            message=message,
            initial_seconds=self._initial,
            max_seconds=self._max,
            zone=zone,
        )
        self._marks[cluster] = marks
        mark = next(
            m
            for m in marks
            if m.gpu == gpu
            and m.capacity_type == capacity_type
            and m.instance_type == instance_type
            and m.zone == zone
        )
        return mark, True

    def obtained(
        self,
        cluster: str,
        gpu: str,
        *,
        capacity_type: CapacityType,
        instance_type: str,
        now: datetime,
        zones: tuple[str, ...] = (),
    ) -> None:
        """A pool obtained the nodes of a grow (in ``zones`` when it was restricted to them):
        forget the backoff of its expired marks (a mark still in force stays: nothing was
        asked of that capacity while it held; marks of other zones stay)."""
        marks = self._marks.get(cluster)
        if not marks:
            return
        expired = tuple(m for m in marks if m.until <= now)
        cleared = record_capacity_success(
            expired, gpu, capacity_type=capacity_type, instance_type=instance_type, zones=zones
        )
        self._marks[cluster] = tuple(m for m in marks if m.until > now or m in cleared)

    def prune(self, now: datetime) -> None:
        """Forget marks that expired long ago."""
        for name, marks in list(self._marks.items()):
            if marks:
                kept = prune(marks, now)
                if len(kept) != len(marks):  # else the same tuple: the views keyed by it stay
                    self._marks[name] = kept

    def forget(self, cluster: str) -> None:
        self._marks.pop(cluster, None)


ClientFor = Callable[[FleetCluster], Awaitable[ClusterClient]]
"""How the reconciler reaches a FleetCluster's member cluster: its client (the one
definition; observe, apply, retire, finalize and the loop take one of these)."""


class ProviderRegistry:
    """One NodePoolProvider per FleetCluster, rebuilt when the cluster's spec changes.

    Providers hold state (SDK clients, the simulated cloud), so they are cached; the cloud
    credentials Secret, when referenced, is read through the hub's SecretReader and handed
    to the provider without being logged.
    """

    def __init__(
        self,
        *,
        clusters: ClientFor,
        secrets: SecretReader | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._clusters = clusters
        self._secrets = secrets
        self._clock = clock
        self._cache: dict[str, tuple[object, NodePoolProvider]] = {}
        self._lock = asyncio.Lock()

    async def provider_for(self, cluster: FleetCluster) -> NodePoolProvider:
        """The provider of ``cluster``; raises ProviderError subclasses (e.g. missing extra)."""
        name = cluster.metadata.name
        identity = _identity(cluster)
        async with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == identity:
                return cached[1]
            credentials = await self._credentials(cluster)
            nodes = ClusterNodeSource(await self._clusters(cluster), cluster=name)
            # Cloud providers import and configure heavy SDKs: not on the event loop.
            provider = await asyncio.to_thread(
                provider_for,
                cluster,
                nodes=nodes,
                clock=self._clock,
                credentials=credentials,
            )
            self._cache[name] = (identity, provider)
            return provider

    async def install(self, cluster: FleetCluster, provider: NodePoolProvider) -> None:
        """Use ``provider`` for ``cluster`` instead of building one, until the cluster's spec
        changes (then a provider is built as usual). For embedding and tests: a provider made
        with its own seams (an SDK session, a credential, injected faults)."""
        async with self._lock:
            self._cache[cluster.metadata.name] = (_identity(cluster), provider)

    def cached(self, name: str) -> NodePoolProvider | None:
        """The provider already built for cluster ``name`` (tests and the simulator)."""
        entry = self._cache.get(name)
        return entry[1] if entry else None

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)

    async def _credentials(self, cluster: FleetCluster) -> Mapping[str, str] | None:
        ref = cluster.spec.credentials_secret_ref
        if ref is None or self._secrets is None:
            return None
        secret = await self._secrets.read_secret(ref.namespace, ref.name)
        return {key: value.decode() for key, value in secret.data.items()}


def _identity(cluster: FleetCluster) -> object:
    """What a cached provider is valid for: this object (uid) with this spec."""
    return (cluster.metadata.uid, cluster.metadata.generation, cluster.spec)
