"""Wire the operator's long-lived parts together: one place builds what the handlers use.

``OperatorContext`` is the kopf ``memo``: the operator loop (which owns the Reconciler, the
schedules, the pool ledger and the stockout memory), the cluster and provider registries
and the operator's own metrics. Member clusters get two clients each: one for reconciles
and one, with its own connection pool, for health probes, so a probe never queues behind
reconcile traffic; a third client per member cluster carries the member watches (each
watch holds a connection for minutes: they must take none from the other two pools). Building it does I/O (the hub connection), so it lives here and not in
the reconciler; it imports no kopf, so the tests can build one too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from modelfleet.api import FleetCluster
from modelfleet.clusters import ClusterClient, ClusterRegistry, KubernetesClusterClient
from modelfleet.clusters.informer import ListWatchClient
from modelfleet.clusters.registry import ClientFactory, kubernetes_client_factory
from modelfleet.core import DEFAULT_SETTINGS, PlannerSettings
from modelfleet.event_budget import EventBudget, EventRepeats
from modelfleet.labels import RELEASE_ENV
from modelfleet.loop import LoopSettings, OperatorLoop
from modelfleet.loop.demand_leases import DemandLeaseWatch
from modelfleet.loop.lease_sweep import DemandLeaseSweep, SweepSettings
from modelfleet.metrics.operator_metrics import OperatorMetrics
from modelfleet.metrics.prometheus import PrometheusClient, PrometheusMetricsSource
from modelfleet.metrics.queries import QuerySettings
from modelfleet.metrics.source import MetricsSource
from modelfleet.reconciler import (
    FleetSettings,
    ProviderRegistry,
    Reconciler,
    ReconcilerSettings,
    StockoutMemory,
)


def planner_settings(pairs: Sequence[str]) -> PlannerSettings:
    """``PlannerSettings`` from ``KEY=VALUE`` strings (``modelfleet run --planner``, the
    chart's ``planner`` values). Keys are the field names, snake_case or camelCase; values
    are finite numbers in the setting's range (no negatives; fractions at most 1; backoffs,
    the utilisation target and the breach margin above 0; backoffs at most a day; the
    backoff ceiling not below the first backoff). Raises ValueError naming the key for an unknown key or a bad value."""
    fields = {f.name: f for f in dataclasses.fields(PlannerSettings)}
    camel = {_camel(name): name for name in fields}
    changes: dict[str, float | int] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        name = key if key in fields else camel.get(key)
        if not sep or name is None:
            known = ", ".join(sorted(camel))
            raise ValueError(f"unknown planner setting {key!r} (known: {known})")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"planner setting {key}: {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"planner setting {key}: {raw!r} is not a finite number")
        if isinstance(getattr(DEFAULT_SETTINGS, name), int):
            if not value.is_integer():
                raise ValueError(f"planner setting {key}: {raw!r} is not a whole number")
            changes[name] = int(value)
        else:
            changes[name] = value
        _check_range(_camel(name), value)
    settings = dataclasses.replace(DEFAULT_SETTINGS, **changes)  # type: ignore[arg-type]
    if settings.stockout_max_seconds < settings.stockout_initial_seconds:
        raise ValueError(
            f"planner setting stockoutMaxSeconds ({settings.stockout_max_seconds:g}) is below "
            f"stockoutInitialSeconds ({settings.stockout_initial_seconds:g}): the backoff "
            "ceiling cannot be shorter than the first backoff"
        )
    return settings


_POSITIVE = frozenset(
    {
        "stockoutInitialSeconds",  # 0: no backoff at all, the refused pool is asked again at once
        "stockoutMaxSeconds",
        "utilisationTarget",  # divided by
        "capacityBreachMargin",
        "panicRatio",
        "solverMaxNodes",
        "solverTimeLimitSeconds",  # 0: HiGHS stops before its first solution (the chart: > 0)
        "kvCacheThreshold",  # 0: every reading saturates
        "kvCacheTarget",  # divided by
    }
)
_FRACTIONS = frozenset(
    {
        "tolerance",
        "utilisationTarget",
        "scaleDownStep",
        "maxScaleDownFraction",
        "capacityBreachMargin",
        "kvCacheThreshold",
        "kvCacheTarget",
    }
)


_AT_MOST_A_DAY = frozenset(
    {
        # A stockout mark expires at now + backoff: 1e12 s overflowed the datetime
        # (OverflowError on every pass that met a stockout). A day-long backoff is already
        # far past any capacity error's life (Karpenter's ICE cache: 3 minutes).
        "stockoutInitialSeconds",
        "stockoutMaxSeconds",
    }
)
DAY_SECONDS = 86_400.0


def _check_range(key: str, value: float) -> None:
    """Refuse values the planner cannot work with (ValueError naming the key)."""
    if key in _POSITIVE and value <= 0:
        raise ValueError(f"planner setting {key}: must be greater than 0 (got {value:g})")
    if value < 0:
        raise ValueError(f"planner setting {key}: must not be negative (got {value:g})")
    if key in _FRACTIONS and value > 1:
        raise ValueError(f"planner setting {key}: a fraction, at most 1 (got {value:g})")
    if key in _AT_MOST_A_DAY and value > DAY_SECONDS:
        raise ValueError(f"planner setting {key}: at most 86400 s, a day (got {value:g})")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def utcnow() -> datetime:
    """The operator's clock (the only place the shell reads it)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunSettings:
    """Operator settings (``modelfleet run`` flags). The loop's cadences default to
    ``LoopSettings``'s (their one owner; ``loop()`` hands them back)."""

    interval_seconds: float = LoopSettings.interval_seconds
    """Periodic reconcile of every ModelDeployment."""
    probe_interval_seconds: float = LoopSettings.probe_interval_seconds
    """FleetCluster health probe period."""
    discovery_interval_seconds: float = LoopSettings.discovery_interval_seconds
    """How often providers re-discover offerings and prices."""
    pools_interval_seconds: float = LoopSettings.pools_interval_seconds
    """How often node pools are listed into FleetCluster status and orphans collected."""
    max_concurrent_reconciles: int = LoopSettings.max_concurrent_reconciles
    """Deployment passes running at once; the others wait (probes never do)."""
    fleet: FleetSettings = field(default_factory=FleetSettings)
    reconciler: ReconcilerSettings = field(default_factory=ReconcilerSettings)
    activator_namespace: str | None = None
    """Namespace of the gateway's demand Leases (``loop.demand_leases``); None:
    ``$MODELFLEET_POD_NAMESPACE`` (the chart sets it: the release namespace, where the
    gateway runs), and without it no Lease is watched (the annotation and the Prometheus
    demand signal still wake deployments)."""
    release: str | None = None
    """The chart release (``labels.DEMAND_RELEASE``: the sweep deletes only its own
    release's Leases); None: ``$MODELFLEET_RELEASE``, and without it the Leases of a
    gateway run without a release."""
    lease_sweep: SweepSettings = field(default_factory=SweepSettings)
    """When stale demand Leases naming no ModelDeployment are deleted (``loop.lease_sweep``)."""
    queries: QuerySettings = field(default_factory=QuerySettings)
    """How the autoscaler's PromQL selects a deployment's series (``metrics.queries``;
    ``--metrics-namespace-label`` sets ``selector.pod_namespace``)."""

    def loop(self) -> LoopSettings:
        """The operator loop's share of these settings."""
        return LoopSettings(
            interval_seconds=self.interval_seconds,
            probe_interval_seconds=self.probe_interval_seconds,
            discovery_interval_seconds=self.discovery_interval_seconds,
            pools_interval_seconds=self.pools_interval_seconds,
            max_concurrent_reconciles=self.max_concurrent_reconciles,
            fleet=self.fleet,
        )


@dataclass
class OperatorContext:
    """Everything the handlers share (kopf passes shallow copies as ``memo``)."""

    loop: OperatorLoop
    clusters: ClusterRegistry
    probe_clusters: ClusterRegistry
    providers: ProviderRegistry
    metrics: OperatorMetrics
    settings: RunSettings
    clock: Callable[[], datetime] = utcnow
    closers: list[Any] = field(default_factory=list)
    watch_clusters: ClusterRegistry | None = None
    demand_leases: DemandLeaseWatch | None = None
    """The gateway's demand Leases (relay and clean-up); None when none are watched."""
    event_budget: EventBudget = field(default_factory=EventBudget)
    """Per-object budget of the Events the handlers post (shared by kopf's shallow copies)."""
    event_repeats: EventRepeats = field(default_factory=EventRepeats)
    """The Events posted in the last 10 minutes: an identical one is not posted again."""

    @property
    def reconciler(self) -> Reconciler:
        return self.loop.reconciler

    @property
    def stockouts(self) -> StockoutMemory:
        return self.loop.stockouts

    async def forget_cluster(self, name: str) -> None:
        """FleetCluster ``name`` was deleted: drop its clients and everything remembered."""
        self.loop.forget_cluster(name)  # stops its informers before their client closes
        await self.clusters.forget(name)
        await self.probe_clusters.forget(name)
        if self.watch_clusters is not None:
            await self.watch_clusters.forget(name)

    async def close(self) -> None:
        await self.loop.reconciler.observations.close()  # no informer task outlives this
        await self.clusters.close()
        await self.probe_clusters.close()
        if self.watch_clusters is not None:
            await self.watch_clusters.close()
        for closer in self.closers:
            await closer()


def describe_demand_watch(context: OperatorContext, namespaces: Sequence[str]) -> str:
    """The line the operator logs at its start about the gateway's demand Leases: the one
    namespace it reads them in and the namespaces it serves, or that it reads none. A
    gateway writing its Leases anywhere else wakes nothing, and nothing else says so."""
    served = ", ".join(namespaces) if namespaces else "all namespaces"
    leases = context.demand_leases
    if leases is None:
        return (
            "demand Leases: not watched ($MODELFLEET_POD_NAMESPACE is not set): a gateway's "
            "held requests wake ModelDeployments at "
            "zero only through the Prometheus demand signal; set $MODELFLEET_POD_NAMESPACE "
            "to the namespace the gateway writes its Leases in (its --activator-namespace)"
        )
    release = leases.sweep.release if leases.sweep is not None else None
    return (
        f"demand Leases: watching namespace {leases.namespace} (release "
        f"{release or '<none>'}) for ModelDeployments in {served}; a gateway wakes them only "
        f"if it writes its Leases in {leases.namespace} (the gateway logs its "
        "--activator-namespace at start)"
    )


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
    probe_hub: ClusterClient | None = None
    watch_hub: ClusterClient | None = None
    watching = settings.reconciler.watch_member_clusters
    if hub is None:
        hub = await hub_client()
        probe_hub = await hub_client()  # its own connection pool: probes never queue
        closers.extend([hub.close, probe_hub.close])
        if watching:
            watch_hub = await hub_client()  # watches hold connections: their own pool
            closers.append(watch_hub.close)
    if not hasattr(hub, "read_secret"):
        raise TypeError("the hub client must also read Secrets (SecretReader)")
    clusters = ClusterRegistry(hub=hub, secrets=hub, factory=cluster_factory)  # type: ignore[arg-type]
    probe_clusters = ClusterRegistry(
        hub=probe_hub or hub,
        secrets=probe_hub or hub,  # type: ignore[arg-type]
        factory=cluster_factory,
    )

    watch_clusters = (
        ClusterRegistry(
            hub=watch_hub or hub,
            secrets=hub,  # type: ignore[arg-type]
            factory=cluster_factory,
        )
        if watching
        else None
    )

    async def client_for(cluster: FleetCluster) -> ClusterClient:
        return await clusters.client_for(cluster)

    async def watch_client_for(cluster: FleetCluster) -> ListWatchClient | None:
        assert watch_clusters is not None
        client = await watch_clusters.client_for(cluster)
        # Only the HTTP client can watch; in-memory fakes are observed by LIST.
        return client if isinstance(client, KubernetesClusterClient) else None

    async def probe_client_for(cluster: FleetCluster) -> ClusterClient:
        return await probe_clusters.client_for(cluster)

    planner = settings.reconciler.planner
    stockouts = StockoutMemory(
        initial_seconds=planner.stockout_initial_seconds,
        max_seconds=planner.stockout_max_seconds,
    )
    providers = ProviderRegistry(clusters=client_for, secrets=hub, clock=clock)  # type: ignore[arg-type]
    if metrics_source is None:
        prometheus = PrometheusClient()
        closers.append(prometheus.close)
        metrics_source = PrometheusMetricsSource(prometheus, settings=settings.queries)
    reconciler = Reconciler(
        clusters=client_for,
        providers=providers,
        metrics=metrics_source,
        stockouts=stockouts,
        clock=clock,
        settings=settings.reconciler,
        watch_clients=watch_client_for if watching else None,
    )
    metrics = operator_metrics or OperatorMetrics()
    loop = OperatorLoop(
        reconciler=reconciler,
        providers=providers,
        probe_clients=probe_client_for,
        settings=settings.loop(),
        metrics=metrics,
        clock=clock,
    )
    lease_namespace = settings.activator_namespace or os.environ.get("MODELFLEET_POD_NAMESPACE")
    leases: DemandLeaseWatch | None = None
    if lease_namespace and isinstance(hub, KubernetesClusterClient):
        # The gateway's demand Leases: a watch of its own (it holds a connection).
        lease_hub = await hub_client() if probe_hub is not None else hub
        if lease_hub is not hub:
            closers.append(lease_hub.close)
        release = settings.release or os.environ.get(RELEASE_ENV) or None
        leases = DemandLeaseWatch(
            namespace=lease_namespace,
            watch_client=lease_hub,
            patcher=hub,
            clock=clock,
            at_zero=lambda namespace, name: (namespace, name) in loop.idle,
            deleter=hub,
            sweep=DemandLeaseSweep(
                namespace=lease_namespace,
                client=hub,
                clock=clock,
                release=release,
                settings=settings.lease_sweep,
            ),
        )
        leases.start()
        closers.insert(0, leases.close)  # stopped before the clients close
    return OperatorContext(
        loop=loop,
        clusters=clusters,
        probe_clusters=probe_clusters,
        providers=providers,
        metrics=metrics,
        settings=settings,
        clock=clock,
        closers=closers,
        watch_clusters=watch_clusters,
        demand_leases=leases,
    )
