"""The Reconciler: gather -> core.plan -> apply -> status, for one ModelDeployment.

Framework-free (no kopf import): the kopf handlers, the tests and the simulator all drive
this same class. One pass:

1. observe the deployment's workloads in every member cluster (the truth for stickiness);
2. build the FleetSnapshot (FleetClusters, their health, stockout memory, every other
   deployment's placements) and the MetricsSnapshot (Prometheus, per cluster);
3. plan with the pure core, then size node pools through the providers; a capacity error
   becomes a stockout mark and the deployment is re-planned in the same pass, so it falls
   through to the next candidate at once;
4. apply workloads cluster by cluster (a failure in one never stops the others), and only
   then remove what the plan retired, once the replacements are ready (make-before-break);
5. return the complete status and the Events to post.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from modelfleet import labels
from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api.modeldeployment import Endpoint, ModelDeploymentStatus
from modelfleet.clusters import ClusterConflict, ClusterError
from modelfleet.clusters.objects import WORKLOAD_KINDS
from modelfleet.clusters.workloads import (
    RenderSettings,
    WorkloadPlacement,
    owner_selector,
    render_workloads,
    service_url,
    workload_names,
)
from modelfleet.core import (
    ClusterSignals,
    ExistingPlacement,
    FleetSnapshot,
    MetricsSnapshot,
    Plan,
    plan,
)
from modelfleet.core import reasons as R
from modelfleet.core.from_api import deployment_from_api, deployment_key, fleet_from_api
from modelfleet.metrics.source import MetricsSource, MetricsTarget, MetricsUnavailable
from modelfleet.providers import (
    NodePoolProvider,
    Offering,
    PoolSpec,
    ProviderError,
    is_capacity_error,
)
from modelfleet.providers.static import declared_offerings, offering_from_api
from modelfleet.reconciler.memory import ClientFor, ProviderRegistry, StockoutMemory
from modelfleet.reconciler.observe import Observation, observe
from modelfleet.reconciler.status import SloFigures, build_status, decision_from_status

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]

# Reasons that deserve a Warning event rather than a Normal one.
_WARNING_CHANGES = frozenset({R.CLUSTER_FAILED, R.SPOT_RECLAIMED, R.PANIC_SCALE_UP})


@dataclass(frozen=True)
class EventRecord:
    """A Kubernetes Event to post on the ModelDeployment."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class ReconcileOutcome:
    """What one pass produced: the status to write, Events to post, and when to come back
    (``requeue_after`` seconds; None: the periodic timer is soon enough)."""

    status: ModelDeploymentStatus
    events: tuple[EventRecord, ...]
    plan: Plan
    requeue_after: float | None = None
    stockouts: tuple[tuple[str, str, str], ...] = ()
    """(cluster, gpu, capacity type) of every capacity error met in this pass."""


@dataclass(frozen=True)
class FinalizeOutcome:
    """Deletion progress: ``done`` when every cluster is clean (or abandoned)."""

    done: bool
    pending: tuple[str, ...] = ()
    abandoned: tuple[str, ...] = ()
    events: tuple[EventRecord, ...] = ()


@dataclass(frozen=True)
class ReconcilerSettings:
    """Tunables of the shell (the planner has its own)."""

    cluster_timeout_seconds: float = 10.0
    """Longest wait for one member cluster's API per call batch."""
    provider_timeout_seconds: float = 30.0
    """Longest wait for one node-pool call."""
    max_replans: int = 3
    """Capacity errors re-planned within one pass before giving up until the next."""
    progressing_requeue_seconds: float = 5.0
    """How soon to come back while a rollout or failover is under way."""


@dataclass
class _Pass:
    """Mutable scratch state of one reconcile pass."""

    events: list[EventRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stockouts: list[tuple[str, str, str]] = field(default_factory=list)

    def warn(self, reason: str, message: str) -> None:
        self.events.append(EventRecord("Warning", reason, message))
        self.problems.append(message)


class Reconciler:
    """Keeps ModelDeployments served. Safe to call repeatedly: every step is idempotent."""

    def __init__(
        self,
        *,
        clusters: ClientFor,
        providers: ProviderRegistry,
        metrics: MetricsSource,
        stockouts: StockoutMemory,
        clock: Callable[[], datetime],
        settings: ReconcilerSettings | None = None,
        render: RenderSettings | None = None,
    ) -> None:
        self._clusters = clusters
        self._providers = providers
        self._metrics = metrics
        self.stockouts = stockouts
        self._clock = clock
        self._settings = settings or ReconcilerSettings()
        self._render = render or RenderSettings()

    # -- the reconcile pass ---------------------------------------------------------------

    async def reconcile(
        self,
        md: ModelDeployment,
        *,
        fleet: Sequence[FleetCluster],
        others: Sequence[ModelDeployment] = (),
    ) -> ReconcileOutcome:
        """One pass for ``md`` over the FleetClusters ``fleet``; ``others`` are the other
        ModelDeployments (their recorded placements share node pools and quota).

        Never raises for cluster or provider failures: they become Events, a Degraded
        condition and a sooner requeue.
        """
        now = self._clock()
        work = _Pass()
        for cluster in fleet:
            self.stockouts.seed(cluster)
        observation = await observe(
            md, fleet, self._clusters, timeout=self._settings.cluster_timeout_seconds
        )
        for name in observation.unreachable():
            error = observation.clusters[name].error
            work.warn("ClusterUnreachable", f"cannot read workloads in {name}: {error}")
        spec = deployment_from_api(md)
        snapshot = self._snapshot(md, fleet, others, observation)
        metrics, slo = await self._metrics_snapshot(md, fleet, observation, now=now)
        state = decision_from_status(md.status.decision if md.status else None)
        by_name = {c.metadata.name: c for c in fleet}

        result = plan(spec, snapshot, metrics=metrics, state=state, now=now)
        for _ in range(self._settings.max_replans):
            stocked_out = await self._size_pools(md, result, snapshot, by_name, work, now=now)
            if not stocked_out:
                break
            snapshot = self._with_stockouts(snapshot)
            result = plan(spec, snapshot, metrics=metrics, state=state, now=now)

        await self._apply_workloads(md, result, by_name, work)
        await self._retire(md, result, observation, by_name, work)

        for change in result.changes:
            kind: EventType = "Warning" if change.code in _WARNING_CHANGES else "Normal"
            work.events.append(EventRecord(kind, change.code, change.message))
        terminal = [r for r in result.reasons if r.code in (R.NO_CANDIDATES, R.BUDGET_EXCEEDED)]
        for reason in terminal:
            work.events.append(EventRecord("Warning", reason.code, reason.message))

        endpoints = [
            Endpoint(cluster=c, url=service_url(md))
            for c in sorted({p.cluster for p in result.placements})
        ]
        status = build_status(
            md,
            result,
            observation,
            slo=slo,
            endpoints=endpoints,
            problems=work.problems,
            now=now,
        )
        requeue = None
        if result.retiring or (status.replicas and status.replicas.ready < result.placed_replicas):
            requeue = self._settings.progressing_requeue_seconds
        if work.problems:
            requeue = self._settings.progressing_requeue_seconds
        return ReconcileOutcome(status, tuple(work.events), result, requeue, tuple(work.stockouts))

    # -- gather ---------------------------------------------------------------------------

    def _snapshot(
        self,
        md: ModelDeployment,
        fleet: Sequence[FleetCluster],
        others: Sequence[ModelDeployment],
        observation: Observation,
    ) -> FleetSnapshot:
        """The fleet as the planner sees it: other deployments from their status, this one
        from what the member clusters really hold (last status where unreachable)."""
        me = md.metadata.uid or deployment_key(md)
        peers = [o for o in others if (o.metadata.uid or deployment_key(o)) != me]
        base = fleet_from_api(fleet, peers, default_health="Unknown")
        key = deployment_key(md)
        mine: list[ExistingPlacement] = []
        recorded = md.status.placements if md.status and md.status.placements else []
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
        snapshot = FleetSnapshot(base.clusters, (*base.placements, *mine))
        return self._with_stockouts(snapshot)

    def _with_stockouts(self, snapshot: FleetSnapshot) -> FleetSnapshot:
        """The snapshot with every cluster's marks taken from the stockout memory."""
        clusters = tuple(
            replace(c, stockouts=self.stockouts.marks(c.name) or c.stockouts)
            for c in snapshot.clusters
        )
        return FleetSnapshot(clusters, snapshot.placements)

    async def _metrics_snapshot(
        self,
        md: ModelDeployment,
        fleet: Sequence[FleetCluster],
        observation: Observation,
        *,
        now: datetime,
    ) -> tuple[MetricsSnapshot, SloFigures]:
        """Signals of ``md`` in every cluster that runs it; missing data stays missing.

        At zero (no cluster holds a workload of ``md``) there is nothing to measure on
        replicas, so the demand signal is asked instead from every reachable cluster: a
        ``demand_only`` target whose request rate is ``spec.metrics.demand`` (the user's
        PromQL for requests held or arriving at a gateway). The largest answer stands for
        the deployment (one gateway metric may be visible to several Prometheus servers).
        """
        key = deployment_key(md)
        namespace = md.metadata.namespace or "default"
        at_zero = not any(obs.workloads for obs in observation.clusters.values())
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

        async def fetch(target: MetricsTarget) -> tuple[str, ClusterSignals] | None:
            try:
                values = await self._metrics.fetch(target, now=now)
            except MetricsUnavailable as exc:
                log.info("metrics of %s in %s unavailable: %s", key, target.cluster, exc.reason)
                return None
            return target.cluster, ClusterSignals(
                ready_replicas=target.ready_replicas,
                ttft_p95_ms=values.ttft_p95_ms,
                tpot_p95_ms=values.tpot_p95_ms,
                queue_per_replica=values.queue_per_replica,
                request_rate=values.request_rate,
                tokens_per_second=values.tokens_per_second,
                observed_at=values.observed_at,
            )

        results = [r for r in await asyncio.gather(*(fetch(t) for t in targets)) if r]
        if at_zero:
            seen = [r for r in results if r[1].request_rate is not None]
            results = [max(seen, key=lambda r: r[1].request_rate or 0.0)] if seen else []
        signals = dict(results)
        values = list(signals.values())

        def worst(field_: str) -> float | None:
            seen = [getattr(v, field_) for v in values if getattr(v, field_) is not None]
            return max(seen) if seen else None

        rates = [v.request_rate for v in values if v.request_rate is not None]
        slo = SloFigures(
            ttft_p95_ms=worst("ttft_p95_ms"),
            tpot_p95_ms=worst("tpot_p95_ms"),
            queue_per_replica=worst("queue_per_replica"),
            request_rate=sum(rates) if rates else None,
        )
        return MetricsSnapshot({key: signals}, observed_at=now), slo

    # -- apply ----------------------------------------------------------------------------

    async def _size_pools(
        self,
        md: ModelDeployment,
        result: Plan,
        snapshot: FleetSnapshot,
        by_name: Mapping[str, FleetCluster],
        work: _Pass,
        *,
        now: datetime,
    ) -> bool:
        """Ensure every pool of the plan holds this deployment's nodes plus its neighbours'.

        Returns True when a capacity error was recorded (the caller re-plans).
        """
        key = deployment_key(md)
        neighbours: dict[tuple[str, str, str], int] = defaultdict(int)
        for p in snapshot.placements:
            if p.deployment != key:
                neighbours[(p.cluster, p.instance_type, p.capacity_type)] += _nodes_of(
                    by_name.get(p.cluster), p.instance_type, replicas=p.replicas, nodes=p.nodes
                )

        async def ensure(pool: Any) -> bool:
            cluster = by_name[pool.cluster]
            offering = _provider_offering(cluster, pool.instance_type)
            if offering is None:
                work.warn("UnknownOffering", f"{pool.cluster} has no offering {pool.instance_type}")
                return False
            total = pool.nodes + neighbours.get(
                (pool.cluster, pool.instance_type, pool.capacity_type), 0
            )
            spec = PoolSpec(
                cluster=pool.cluster,
                offering=offering,
                capacity_type=pool.capacity_type,
                nodes=total,
                # The plan's open zones when some are stocked out (zone fall-through).
                zones=tuple(pool.zones) or tuple(cluster.spec.zones or ()),
            )
            try:
                provider: NodePoolProvider = await self._providers.provider_for(cluster)
                async with asyncio.timeout(self._settings.provider_timeout_seconds):
                    await provider.ensure_pool(spec)
            except ProviderError as exc:
                if is_capacity_error(exc):
                    mark = self.stockouts.record_error(
                        pool.cluster,
                        pool.gpu,
                        capacity_type=pool.capacity_type,
                        instance_type=pool.instance_type,
                        message=str(exc),
                        now=now,
                        zone=getattr(exc, "zone", None),
                    )
                    work.stockouts.append((pool.cluster, pool.gpu, pool.capacity_type))
                    work.events.append(
                        EventRecord(
                            "Warning",
                            "Stockout",
                            f"{pool.cluster}: no {pool.capacity_type} {pool.instance_type} "
                            f"({pool.gpu}) capacity: {exc}; skipped until "
                            f"{mark.until.isoformat(timespec='seconds')}, re-planning",
                        )
                    )
                    return True
                work.warn(exc.code, f"{pool.cluster}: node pool {pool.instance_type}: {exc}")
            except TimeoutError:
                work.warn("ProviderTimeout", f"{pool.cluster}: node pool call timed out")
            else:
                self.stockouts.record_success(
                    pool.cluster,
                    pool.gpu,
                    capacity_type=pool.capacity_type,
                    instance_type=pool.instance_type,
                    zones=tuple(pool.zones),
                )
            return False

        outcomes = await asyncio.gather(
            *(ensure(p) for p in result.node_pools if p.cluster in by_name)
        )
        return any(outcomes)

    async def _apply_workloads(
        self,
        md: ModelDeployment,
        result: Plan,
        by_name: Mapping[str, FleetCluster],
        work: _Pass,
    ) -> None:
        """Create or update the workloads of every placement, cluster by cluster."""
        per_cluster: dict[str, list[WorkloadPlacement]] = defaultdict(list)
        for p in result.placements:
            per_cluster[p.cluster].append(
                WorkloadPlacement(
                    cluster=p.cluster,
                    instance_type=p.instance_type,
                    capacity_type=p.capacity_type,
                    replicas=p.replicas,
                )
            )

        async def apply(name: str, placements: list[WorkloadPlacement]) -> None:
            try:
                async with asyncio.timeout(self._settings.cluster_timeout_seconds):
                    client = await self._clusters(by_name[name])
                    await _ensure_namespace(client, md.metadata.namespace or "default")
                    await client.apply(render_workloads(md, placements, settings=self._render))
            except ClusterError as exc:
                work.warn("ApplyFailed", f"cannot apply workloads in {name}: {exc}")
            except TimeoutError:
                work.warn("ApplyFailed", f"cannot apply workloads in {name}: timed out")

        await asyncio.gather(
            *(apply(n, ps) for n, ps in sorted(per_cluster.items()) if n in by_name)
        )

    async def _retire(
        self,
        md: ModelDeployment,
        result: Plan,
        observation: Observation,
        by_name: Mapping[str, FleetCluster],
        work: _Pass,
    ) -> None:
        """Remove workloads the plan no longer wants — only once replacements are ready.

        Make-before-break: while the replicas the plan placed are not yet ready (counted from
        the observation), retired workloads that still serve are kept. Lost ones (a failed
        cluster) are removed whenever the cluster answers again.
        """
        planned = {(p.cluster, p.instance_type, p.capacity_type) for p in result.placements}
        ready_new = sum(
            w.ready
            for name, obs in observation.clusters.items()
            for w in obs.workloads
            if (name, w.instance_type, w.capacity_type) in planned
        )
        safe = ready_new >= min(result.desired_replicas, result.placed_replicas)
        lost = {(r.cluster, r.instance_type, r.capacity_type) for r in result.retiring if r.lost}
        namespace = md.metadata.namespace or "default"
        selector = owner_selector(name=md.metadata.name, namespace=namespace)

        async def retire(name: str) -> None:
            obs = observation.clusters.get(name)
            if obs is None or not obs.reachable:
                return
            keep_placements = [
                WorkloadPlacement(
                    cluster=name,
                    instance_type=w.instance_type,
                    capacity_type=w.capacity_type,
                    replicas=w.replicas,
                )
                for w in obs.workloads
                if (name, w.instance_type, w.capacity_type) in planned
                or (not safe and (name, w.instance_type, w.capacity_type) not in lost)
            ]
            planned_here = [
                WorkloadPlacement(
                    cluster=p.cluster,
                    instance_type=p.instance_type,
                    capacity_type=p.capacity_type,
                    replicas=p.replicas,
                )
                for p in result.placements
                if p.cluster == name
            ]
            keep = workload_names(md.metadata.name, [*keep_placements, *planned_here])
            try:
                async with asyncio.timeout(self._settings.cluster_timeout_seconds):
                    client = await self._clusters(by_name[name])
                    removed: list[str] = []
                    for kind in WORKLOAD_KINDS:
                        if kind.kind == "Service":
                            if keep:
                                continue
                            removed += await client.delete_owned(
                                kind, selector, namespace=namespace
                            )
                        else:
                            removed += await client.delete_owned(
                                kind, selector, namespace=namespace, keep=keep
                            )
            except (ClusterError, TimeoutError) as exc:
                work.warn("RetireFailed", f"cannot remove retired workloads in {name}: {exc}")
                return
            if removed:
                work.events.append(
                    EventRecord(
                        "Normal",
                        "Retired",
                        f"removed {', '.join(sorted(set(removed)))} from {name}",
                    )
                )

        await asyncio.gather(*(retire(n) for n in sorted(observation.clusters) if n in by_name))

    # -- deletion -------------------------------------------------------------------------

    async def finalize(
        self,
        md: ModelDeployment,
        *,
        fleet: Sequence[FleetCluster],
        others: Sequence[ModelDeployment] = (),
    ) -> FinalizeOutcome:
        """Remove ``md``'s workloads from every member cluster and shrink its node pools.

        Idempotent and restart-safe (it only deletes by ownership labels and re-sizes pools
        from the neighbours' recorded placements). An unreachable cluster keeps deletion
        pending, unless the ``modelfleet.io/abandon-clusters`` annotation names it (or is
        ``*``): then its leftovers are abandoned and reported.
        """
        namespace = md.metadata.namespace or "default"
        selector = owner_selector(name=md.metadata.name, namespace=namespace)
        abandon_raw = md.metadata.annotations.get(labels.ABANDON_CLUSTERS, "")
        abandon = {a.strip() for a in abandon_raw.split(",") if a.strip()}
        pending: list[str] = []
        abandoned: list[str] = []
        events: list[EventRecord] = []

        async def clean(cluster: FleetCluster) -> None:
            name = cluster.metadata.name
            try:
                async with asyncio.timeout(self._settings.cluster_timeout_seconds):
                    client = await self._clusters(cluster)
                    for kind in WORKLOAD_KINDS:
                        await client.delete_owned(kind, selector, namespace=namespace)
            except (ClusterError, TimeoutError) as exc:
                if "*" in abandon or name in abandon:
                    abandoned.append(name)
                    events.append(
                        EventRecord(
                            "Warning",
                            "CleanupAbandoned",
                            f"{name} is unreachable ({exc}); its workloads are abandoned as "
                            f"the {labels.ABANDON_CLUSTERS} annotation asks",
                        )
                    )
                else:
                    pending.append(name)
                    events.append(
                        EventRecord(
                            "Warning",
                            "CleanupPending",
                            f"cannot remove workloads from {name}: {exc}; retrying. To give "
                            f"up on this cluster, annotate {labels.ABANDON_CLUSTERS}={name}",
                        )
                    )

        await asyncio.gather(*(clean(c) for c in fleet))
        await self._release_pools(md, fleet, others, events)
        return FinalizeOutcome(
            done=not pending,
            pending=tuple(sorted(pending)),
            abandoned=tuple(sorted(abandoned)),
            events=tuple(events),
        )

    async def _release_pools(
        self,
        md: ModelDeployment,
        fleet: Sequence[FleetCluster],
        others: Sequence[ModelDeployment],
        events: list[EventRecord],
    ) -> None:
        """Shrink the pools ``md`` used to what its neighbours still need (maybe zero)."""
        if md.status is None or not md.status.placements:
            return
        by_name = {c.metadata.name: c for c in fleet}
        me = md.metadata.uid or deployment_key(md)
        neighbours: dict[tuple[str, str, str], int] = defaultdict(int)
        for other in others:
            if (other.metadata.uid or deployment_key(other)) == me or other.status is None:
                continue
            for p in other.status.placements or []:
                neighbours[(p.cluster, p.instance_type, p.capacity_type)] += _nodes_of(
                    by_name.get(p.cluster), p.instance_type, replicas=p.replicas, nodes=p.nodes
                )
        for p in md.status.placements:
            cluster = by_name.get(p.cluster)
            offering = _provider_offering(cluster, p.instance_type) if cluster else None
            if cluster is None or offering is None:
                continue
            spec = PoolSpec(
                cluster=p.cluster,
                offering=offering,
                capacity_type=p.capacity_type,
                nodes=neighbours.get((p.cluster, p.instance_type, p.capacity_type), 0),
                zones=tuple(cluster.spec.zones or ()),
            )
            try:
                provider = await self._providers.provider_for(cluster)
                async with asyncio.timeout(self._settings.provider_timeout_seconds):
                    await provider.ensure_pool(spec)
            except (ProviderError, TimeoutError) as exc:
                # Pools are garbage-collected later anyway; never block deletion on them.
                events.append(EventRecord("Warning", "PoolReleaseFailed", f"{p.cluster}: {exc}"))


def _provider_offering(cluster: FleetCluster | None, instance_type: str) -> Offering | None:
    """The provider-level Offering for ``instance_type`` in ``cluster`` (declared first)."""
    if cluster is None:
        return None
    for offering in declared_offerings(cluster):
        if offering.instance_type == instance_type:
            return offering
    for discovered in (cluster.status.offerings if cluster.status else None) or []:
        if discovered.instance_type == instance_type:
            return offering_from_api(discovered)
    return None


def _nodes_of(
    cluster: FleetCluster | None, instance_type: str, *, replicas: int, nodes: int | None
) -> int:
    """Nodes a neighbour's placement holds: as recorded, else packed one GPU per replica
    (an older status without ``nodes``; over-counting only delays a scale-in)."""
    if nodes is not None:
        return nodes
    offering = _provider_offering(cluster, instance_type)
    per_node = offering.gpus_per_node if offering is not None else 1
    return math.ceil(replicas / max(1, per_node))


async def _ensure_namespace(client: Any, namespace: str) -> None:
    """Create the workloads' namespace in a member cluster when it is missing."""
    # A conflict means it exists and is not ours: fine, we only need it to exist.
    with contextlib.suppress(ClusterConflict):
        await client.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace, "labels": {labels.MANAGED: "true"}},
                }
            ]
        )
