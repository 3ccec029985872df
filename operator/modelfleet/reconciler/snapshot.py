"""Gather stage: the fleet and the signals as the planner sees them for one deployment.

- Clusters: the FleetClusters with their health, and stockout marks from the operator's
  one ``StockoutMemory`` (seeded from ``status.stockouts`` after a restart).
- This deployment's existing replicas: what the member clusters really hold (the truth for
  stickiness and make-before-break); the last recorded status where a cluster cannot be
  read.
- Every other deployment: its bookings in the ``PoolLedger`` (seeded from its status until
  it is planned in this process), so capacity one deployment booked is never offered to
  another in the same pass.
- Signals: per cluster from the MetricsSource; the fleet-wide aggregate is the planner's
  own (``Plan.signals``), which status reports as is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from operator import is_

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api.fleetcluster import FleetClusterSpec, GpuOffering
from modelfleet.clusters.workloads import workload_namespace
from modelfleet.core import ClusterSignals, ExistingPlacement, FleetSnapshot, MetricsSnapshot
from modelfleet.core.from_api import (
    cluster_from_api,
    cluster_view_offerings,
    deployment_key,
    placements_from_status,
)
from modelfleet.core.types import ClusterView, Offering, StockoutMark
from modelfleet.metrics.source import MetricsSource, MetricsTarget, MetricsUnavailable
from modelfleet.reconciler.activator import WAKE_RATE, woken_at
from modelfleet.reconciler.ledger import PoolLedger
from modelfleet.reconciler.limits import gather
from modelfleet.reconciler.memory import StockoutMemory
from modelfleet.reconciler.observe import Observation

log = logging.getLogger(__name__)


def own_placements(md: ModelDeployment, observation: Observation) -> list[ExistingPlacement]:
    """``md``'s replicas as observed (recorded status where a cluster is unreadable)."""
    key = deployment_key(md)
    recorded = md.status.placements if md.status and md.status.placements else []
    mine: list[ExistingPlacement] = []
    for name, obs in observation.clusters.items():
        if obs.reachable:
            mine.extend(
                ExistingPlacement(
                    deployment=key,
                    cluster=name,
                    instance_type=w.instance_type,
                    capacity_type=w.capacity_type,
                    replicas=w.replicas,
                    ready=w.ready,
                )
                for w in obs.workloads
                if w.replicas > 0
            )
        else:
            mine.extend(
                ExistingPlacement(
                    deployment=key,
                    cluster=name,
                    instance_type=p.instance_type,
                    capacity_type=p.capacity_type,
                    replicas=p.replicas,
                    ready=0,
                )
                for p in recorded
                if p.cluster == name and p.replicas > 0
            )
    return mine


def seed_ledger(ledger: PoolLedger, deployments: Sequence[ModelDeployment]) -> None:
    """Book, from their status, the deployments this process has not planned yet."""
    for other in deployments:
        key = deployment_key(other)
        if not ledger.knows(key):
            ledger.seed(key, placements_from_status(other))


class _ViewMemo:
    """``cluster_from_api`` once per FleetCluster object, not once per pass: the same
    object (the operator keeps it until a probe or a watch event replaces it) always
    converts to the same view; and that view with the same stockout marks (the memory
    hands out the same tuple until the marks change) is the same view again. Keyed by
    identity, holding the objects so that their ids are not reused while remembered;
    never edited in place, so a hit is exact. Bounded."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._views: dict[int, tuple[FleetCluster, ClusterView]] = {}
        self._marked: dict[int, tuple[FleetCluster, tuple[StockoutMark, ...], ClusterView]] = {}
        self._offerings: dict[
            str, tuple[FleetClusterSpec, tuple[GpuOffering, ...] | None, tuple[Offering, ...]]
        ] = {}

    def view(self, cluster: FleetCluster) -> ClusterView:
        hit = self._views.get(id(cluster))
        if hit is not None and hit[0] is cluster:
            return hit[1]
        view = cluster_from_api(
            cluster, default_health="Unknown", offerings=self._offerings_of(cluster)
        )
        if len(self._views) >= self._size:
            self._views.clear()
        self._views[id(cluster)] = (cluster, view)
        return view

    def _offerings_of(self, cluster: FleetCluster) -> tuple[Offering, ...]:
        """``cluster_view_offerings(cluster)``, converted once per spec object and list of
        ``status.offerings`` objects (its only inputs): a probe replaces the FleetCluster
        and its status (a new list) every few seconds, but keeps the spec object and the
        offering objects until the spec is edited or the offerings are rediscovered."""
        spec = cluster.spec
        found = tuple(cluster.status.offerings or ()) if cluster.status is not None else None
        hit = self._offerings.get(cluster.metadata.name)
        if (
            hit is not None
            and hit[0] is spec
            and (hit[1] is None) == (found is None)
            and len(hit[1] or ()) == len(found or ())
            and all(map(is_, hit[1] or (), found or ()))
        ):
            return hit[2]
        offerings = cluster_view_offerings(cluster)
        if len(self._offerings) >= self._size:
            self._offerings.clear()
        self._offerings[cluster.metadata.name] = (spec, found, offerings)
        return offerings

    def marked(self, cluster: FleetCluster, marks: tuple[StockoutMark, ...]) -> ClusterView:
        """The view of ``cluster`` with ``marks`` as its stockouts."""
        hit = self._marked.get(id(cluster))
        if hit is not None and hit[0] is cluster and hit[1] is marks:
            return hit[2]
        view = replace(self.view(cluster), stockouts=marks)
        if len(self._marked) >= self._size:
            self._marked.clear()
        self._marked[id(cluster)] = (cluster, marks, view)
        return view


_VIEWS = _ViewMemo()


def fleet_snapshot(
    md: ModelDeployment,
    fleet: Sequence[FleetCluster],
    mine: Sequence[ExistingPlacement],
    *,
    ledger: PoolLedger,
    stockouts: StockoutMemory,
    now: datetime | None = None,
) -> FleetSnapshot:
    """The planner's fleet for ``md``: clusters with the remembered stockouts, everyone
    else's bookings from the ledger, ``md``'s own replicas as observed. Synchronous on
    purpose: the caller plans and books right after, with no ``await`` in between."""
    for cluster in fleet:
        stockouts.seed(cluster, now)  # a restart: marks read back as of ``now``
    views = (_VIEWS.marked(c, stockouts.marks(c.metadata.name)) for c in fleet)
    clusters = tuple(sorted(views, key=lambda v: v.name))  # as fleet_from_api
    others = ledger.placements(exclude=deployment_key(md))
    return FleetSnapshot(clusters, (*others, *mine), ledger.idle_nodes())


async def metrics_snapshot(
    md: ModelDeployment,
    fleet: Sequence[FleetCluster],
    observation: Observation,
    source: MetricsSource,
    *,
    now: datetime,
    problems: list[str] | None = None,
) -> MetricsSnapshot:
    """Signals of ``md`` in every cluster that runs it; missing data stays missing.

    At zero (no cluster holds a workload of ``md``), and while the first replicas start
    (none ready anywhere) if ``md`` names a demand query, there is nothing to measure on
    replicas, so the demand signal is asked instead from every reachable cluster: a
    ``demand_only`` target whose request rate is ``spec.metrics.demand`` (the user's
    PromQL for requests/s arriving at a gateway). The largest answer stands for
    the deployment (one gateway metric may be visible to several Prometheus servers).

    When a named demand query could not be read in any cluster asked (Prometheus
    unreachable or refusing, the query rejected; not "no series", which is how an idle
    gateway's ``sum(...)`` answers), one message saying so, cluster by cluster, is appended
    to ``problems``: at zero nothing else can start the deployment but the gateway's
    wake-up, so the reconciler posts it as a Warning and in Degraded instead of holding
    at zero in silence. The messages hold no credentials (``MetricsUnavailable.reason``).
    """
    key = deployment_key(md)
    namespace = workload_namespace(md)  # where its pods run: what a namespace matcher pins
    placed = any(obs.workloads for obs in observation.clusters.values())
    # While the first replicas start (placed, none ready anywhere) no engine reports yet:
    # a named demand query stands for the load, so the count follows the demand during the
    # lead time instead of holding at its first step until a replica serves. Without one,
    # the engines are asked as before (no series until a replica is ready).
    named = md.spec.metrics is not None and bool(md.spec.metrics.demand)
    starting = placed and not any(
        w.ready for obs in observation.clusters.values() for w in obs.workloads
    )
    at_zero = not placed or (named and starting)
    targets = []
    for cluster in fleet:
        obs = observation.clusters.get(cluster.metadata.name)
        if obs is None or not obs.reachable or (not obs.workloads and not at_zero):
            continue
        targets.append(
            MetricsTarget(
                namespace=namespace,
                deployment=md.metadata.name,
                cluster=cluster.metadata.name,
                engine=md.spec.runtime.engine,
                prometheus=cluster.spec.prometheus,
                ready_replicas=sum(w.ready for w in obs.workloads),
                overrides=md.spec.metrics,
                demand_only=at_zero,
            )
        )

    unread: dict[str, str] = {}  # cluster -> why its demand could not be read

    async def fetch(target: MetricsTarget) -> tuple[str, ClusterSignals] | None:
        try:
            values = await source.fetch(target, now=now)
        except MetricsUnavailable as exc:
            log.info("metrics of %s in %s unavailable: %s", key, target.cluster, exc.reason)
            unread[target.cluster] = exc.reason
            return None
        why = values.errors.get("request_rate")
        if values.request_rate is None and why is not None and why != "no series":
            unread[target.cluster] = why
        return target.cluster, ClusterSignals(
            ready_replicas=target.ready_replicas,
            ttft_p95_ms=values.ttft_p95_ms,
            tpot_p95_ms=values.tpot_p95_ms,
            queue_per_replica=values.queue_per_replica,
            request_rate=values.request_rate,
            tokens_per_second=values.tokens_per_second,
            observed_at=values.observed_at,
            kv_cache_per_replica=values.kv_cache_per_replica,
            running_per_replica=values.running_per_replica,
            reporting_replicas=values.reporting_pods,
        )

    results = [r for r in await gather(*(fetch(t) for t in targets)) if r]
    if at_zero:
        seen = [r for r in results if r[1].request_rate is not None]
        if named and not seen and problems is not None and (unread or not targets):
            asked = "; ".join(f"{c}: {why}" for c, why in sorted(unread.items()))
            problems.append(
                "spec.metrics.demand could not be read at "
                + ("zero replicas" if not placed else "the first replicas' start")
                + f" ({asked or 'no reachable cluster to ask'}): the deployment starts "
                "on demand only once it answers (or on the gateway's wake-up)"
            )
        results = [max(seen, key=lambda r: r[1].request_rate or 0.0)] if seen else []
        woken = woken_at(md, now)  # the gateway's wake-up: demand before any scrape shows it
        if (
            not placed
            and woken is not None
            and targets
            and not any(r[1].request_rate for r in results)
        ):
            results = [
                (
                    targets[0].cluster,
                    ClusterSignals(ready_replicas=0, request_rate=WAKE_RATE, observed_at=woken),
                )
            ]
    return MetricsSnapshot({key: dict(results)}, observed_at=now)
