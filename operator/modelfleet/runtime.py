"""Wire the operator's long-lived parts together: one place builds what the handlers use.

``OperatorContext`` is the kopf ``memo``: the Reconciler, the cluster and provider
registries, the stockout memory, the operator's own metrics, and the per-object schedule
(when each ModelDeployment is next due). Building it does I/O (the hub connection), so it
lives here and not in the reconciler; it imports no kopf, so the tests can build one too.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from modelfleet.api import FleetCluster
from modelfleet.clusters import ClusterClient, ClusterRegistry, KubernetesClusterClient
from modelfleet.clusters.registry import ClientFactory, kubernetes_client_factory
from modelfleet.metrics.operator_metrics import OperatorMetrics
from modelfleet.metrics.prometheus import PrometheusClient, PrometheusMetricsSource
from modelfleet.metrics.source import MetricsSource
from modelfleet.reconciler import (
    FleetSettings,
    ProviderRegistry,
    Reconciler,
    ReconcilerSettings,
    StockoutMemory,
)


def utcnow() -> datetime:
    """The operator's clock (the only place the shell reads it)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunSettings:
    """Operator settings (``modelfleet run`` flags)."""

    interval_seconds: float = 15.0
    """Periodic reconcile of every ModelDeployment."""
    probe_interval_seconds: float = 10.0
    """FleetCluster health probe period."""
    discovery_interval_seconds: float = 600.0
    """How often providers re-discover offerings and prices."""
    pools_interval_seconds: float = 60.0
    """How often node pools are listed into FleetCluster status and orphans collected."""
    fleet: FleetSettings = field(default_factory=FleetSettings)
    reconciler: ReconcilerSettings = field(default_factory=ReconcilerSettings)


@dataclass
class OperatorContext:
    """Everything the handlers share (kopf passes shallow copies as ``memo``)."""

    reconciler: Reconciler
    clusters: ClusterRegistry
    providers: ProviderRegistry
    stockouts: StockoutMemory
    metrics: OperatorMetrics
    settings: RunSettings
    clock: Callable[[], datetime] = utcnow
    next_due: dict[str, datetime] = field(default_factory=dict)
    next_discovery: dict[str, datetime] = field(default_factory=dict)
    next_probe: dict[str, datetime] = field(default_factory=dict)
    next_pools: dict[str, datetime] = field(default_factory=dict)
    orphan_since: dict[str, dict[str, datetime]] = field(default_factory=dict)
    closers: list[Any] = field(default_factory=list)

    def due(self, uid: str, now: datetime) -> bool:
        """Whether ModelDeployment ``uid`` should be reconciled by the timer now."""
        when = self.next_due.get(uid)
        return when is None or now >= when

    def schedule(self, uid: str, now: datetime, after_seconds: float | None) -> None:
        """Next timer reconcile: ``after_seconds`` (a requeue) or the regular interval."""
        delay = self.settings.interval_seconds if after_seconds is None else after_seconds
        self.next_due[uid] = now + timedelta(seconds=delay)

    def probe_due(self, name: str, now: datetime) -> bool:
        """Whether FleetCluster ``name`` should be probed now (and book the next probe)."""
        when = self.next_probe.get(name)
        if when is not None and now < when:
            return False
        self.next_probe[name] = now + timedelta(seconds=self.settings.probe_interval_seconds)
        return True

    def pools_due(self, name: str, now: datetime) -> bool:
        """Whether FleetCluster ``name``'s pools should be listed and collected now."""
        when = self.next_pools.get(name)
        if when is not None and now < when:
            return False
        self.next_pools[name] = now + timedelta(seconds=self.settings.pools_interval_seconds)
        return True

    def discovery_due(self, name: str, now: datetime) -> bool:
        """Whether FleetCluster ``name`` should re-discover offerings now (and book the next)."""
        when = self.next_discovery.get(name)
        if when is not None and now < when:
            return False
        self.next_discovery[name] = now + timedelta(
            seconds=self.settings.discovery_interval_seconds
        )
        return True

    async def close(self) -> None:
        await self.clusters.close()
        for closer in self.closers:
            await closer()


def _read_text(path: str) -> str:
    return Path(path).expanduser().read_text()


async def hub_client() -> KubernetesClusterClient:
    """The hub cluster's API: in-cluster service account, else ``$KUBECONFIG`` or
    ``~/.kube/config`` (the same resolution kopf's own login uses)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return await KubernetesClusterClient.in_cluster(name="hub")
    location = os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]
    text = await asyncio.to_thread(_read_text, location)
    return await KubernetesClusterClient.from_kubeconfig(yaml.safe_load(text), name="hub")


async def build_context(
    *,
    hub: ClusterClient | None = None,
    settings: RunSettings | None = None,
    metrics_source: MetricsSource | None = None,
    operator_metrics: OperatorMetrics | None = None,
    cluster_factory: ClientFactory = kubernetes_client_factory,
    clock: Callable[[], datetime] = utcnow,
) -> OperatorContext:
    """Build the operator's context; each part can be replaced (tests, the simulator)."""
    settings = settings or RunSettings()
    closers: list[Any] = []
    if hub is None:
        hub = await hub_client()
        closers.append(hub.close)
    if not hasattr(hub, "read_secret"):
        raise TypeError("the hub client must also read Secrets (SecretReader)")
    clusters = ClusterRegistry(hub=hub, secrets=hub, factory=cluster_factory)  # type: ignore[arg-type]

    async def client_for(cluster: FleetCluster) -> ClusterClient:
        return await clusters.client_for(cluster)

    stockouts = StockoutMemory()
    providers = ProviderRegistry(clusters=client_for, secrets=hub, clock=clock)  # type: ignore[arg-type]
    if metrics_source is None:
        prometheus = PrometheusClient()
        closers.append(prometheus.close)
        metrics_source = PrometheusMetricsSource(prometheus)
    reconciler = Reconciler(
        clusters=client_for,
        providers=providers,
        metrics=metrics_source,
        stockouts=stockouts,
        clock=clock,
        settings=settings.reconciler,
    )
    return OperatorContext(
        reconciler=reconciler,
        clusters=clusters,
        providers=providers,
        stockouts=stockouts,
        metrics=operator_metrics or OperatorMetrics(),
        settings=settings,
        clock=clock,
        closers=closers,
    )
