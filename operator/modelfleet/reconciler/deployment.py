"""The Reconciler: one pass for one ModelDeployment, as a sequence of stages.

Framework-free (no kopf import): the operator loop (``modelfleet.loop``) drives it for the
kopf handlers and for the simulator alike. One pass:

1. observe (``observe``): the deployment's workloads in every member cluster;
2. gather (``snapshot``): the fleet with the remembered stockouts, every other
   deployment's pool bookings from the ledger, and the signals;
3. plan with the pure core and book the plan's pools in the ledger, synchronously (no other
   pass can book the same free node in between);
4. size pools (``pools``): resize the pools whose totals changed, read back the ones this
   deployment waits on; a capacity error, refused or reported later, becomes a stockout
   mark and the deployment is re-planned (and re-booked) in the same pass;
5. apply (``apply``) workloads cluster by cluster, then retire (``retire``) what the plan
   no longer wants, make-before-break;
6. build the complete status (``status``) and return it with the Events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api.modeldeployment import Endpoint, ModelDeploymentSpec
from modelfleet.clusters.informer import InformerSet, InformerSettings, WatchClientFor
from modelfleet.clusters.workloads import (
    RenderSettings,
    WorkloadPlacement,
    service_url,
    workload_namespace,
)
from modelfleet.core import DEFAULT_SETTINGS, DeploymentSpec, Plan, PlannerSettings, plan
from modelfleet.core import reasons as R
from modelfleet.core.from_api import deployment_from_api, deployment_key
from modelfleet.metrics.source import MetricsSource
from modelfleet.reconciler.apply import RenderMemo, apply_workloads, placements_by_cluster
from modelfleet.reconciler.claims import warn_missing_claims
from modelfleet.reconciler.finalize import finalize
from modelfleet.reconciler.ledger import PoolKey, PoolLedger
from modelfleet.reconciler.memory import ClientFor, ProviderRegistry, StockoutMemory
from modelfleet.reconciler.observe import (
    Observation,
    ObservationCache,
    deployment_informers,
    observe,
)
from modelfleet.reconciler.outcome import (
    EventRecord,
    EventType,
    FinalizeOutcome,
    PassLog,
    ReconcileOutcome,
    said_before,
)
from modelfleet.reconciler.pools import NO_CHANGES_HEALTH, PoolSettings, health_of, size_pools
from modelfleet.reconciler.retire import RetireDecision, decide_retire, retire
from modelfleet.reconciler.snapshot import (
    fleet_snapshot,
    metrics_snapshot,
    own_placements,
    seed_ledger,
)
from modelfleet.reconciler.status import build_status, decision_from_status
from modelfleet.reconciler.wakes import ReadinessWakes

log = logging.getLogger(__name__)

# Reasons that deserve a Warning event rather than a Normal one.
_WARNING_CHANGES = frozenset({R.CLUSTER_FAILED, R.SPOT_RECLAIMED, R.PANIC_SCALE_UP})
# Deployment-level reasons that are worth an Event of their own.
_TERMINAL = frozenset({R.NO_CANDIDATES, R.BUDGET_EXCEEDED})


@dataclass(frozen=True)
class ReconcilerSettings:
    """Tunables of the shell (the planner has its own: ``planner``)."""

    cluster_timeout_seconds: float | None = 10.0
    """Longest wait for one member cluster's API per call batch (None: no limit, for the
    simulator, whose member clusters answer from memory)."""
    provider_timeout_seconds: float | None = 30.0
    """Longest wait for one node-pool call (None: no limit, as above)."""
    launch_timeout_seconds: float = 900.0
    """Nodes of a grow not Ready this long after it was asked count as a capacity error
    (Karpenter's registration timeout is 15 minutes too)."""
    observe_cache_seconds: float = 2.0
    """Member-cluster Deployments are listed once per (cluster, namespace) per this many
    seconds and shared by every pass (0: every pass lists its own)."""
    watch_member_clusters: bool = True
    """Keep member clusters' managed Deployments in informers (LIST once, then WATCH)
    instead of listing them every ``observe_cache_seconds``; the LIST path stays the
    fallback while a watch is not synced or failing (needs a client that can watch)."""
    informers: InformerSettings = field(default_factory=InformerSettings)
    """Timings of the member-cluster watches."""
    reapply_after_seconds: float = 300.0
    """Workloads unchanged since the last apply, and observed as applied, are re-applied
    (a GET per object) only this often; a changed render or a drifted observation applies
    at once."""
    scale_in_delay_seconds: float = 600.0
    """Ready nodes no deployment books any more are released after this long unneeded."""
    warm_pool_scale_in_delay_seconds: float = 300.0
    """The same on a pool that is no deployment's cheapest growth candidate, only a warm
    pool (``PoolSettings.warm_pool_scale_in_delay_seconds``)."""
    max_replans: int = 3
    """Capacity errors re-planned within one pass before giving up until the next."""
    progressing_requeue_seconds: float = 5.0
    """How soon to come back while a rollout or failover is under way."""
    planner: PlannerSettings = field(default_factory=lambda: DEFAULT_SETTINGS)
    """The decision core's tunables (autoscaling tolerance, stockout backoff, ...)."""

    @property
    def pools(self) -> PoolSettings:
        return PoolSettings(
            provider_timeout_seconds=self.provider_timeout_seconds,
            launch_timeout_seconds=self.launch_timeout_seconds,
            scale_in_delay_seconds=self.scale_in_delay_seconds,
            warm_pool_scale_in_delay_seconds=self.warm_pool_scale_in_delay_seconds,
        )


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
        ledger: PoolLedger | None = None,
        watch_clients: WatchClientFor | None = None,
        readiness_wakes: ReadinessWakes | None = None,
    ) -> None:
        """``watch_clients`` gives each FleetCluster's watch client (its own connection
        pool: a watch holds a connection); with it and ``watch_member_clusters``,
        observation reads informers (see ``reconciler.observe``), whose changes are this
        reconciler's readiness wakes (``reconciler.wakes``). ``readiness_wakes`` gives
        them from elsewhere (the simulator's in-memory clusters); without either there
        are none (``readiness_wakes`` is None) and a pass waiting for replicas to turn
        Ready comes back every ``progressing_requeue_seconds``."""
        self._clusters = clusters
        self._providers = providers
        self._metrics = metrics
        self.stockouts = stockouts
        self.ledger = ledger or PoolLedger()
        self._clock = clock
        self._settings = settings or ReconcilerSettings()
        self._render = render or RenderSettings()
        informers: InformerSet | None = None
        if watch_clients is not None and self._settings.watch_member_clusters:
            if readiness_wakes is None:
                readiness_wakes = ReadinessWakes(
                    serving=lambda cluster, namespace: (
                        informers is not None and informers.serving(cluster, namespace)
                    )
                )
            informers = deployment_informers(
                watch_clients, self._settings.informers, on_update=readiness_wakes.changed
            )
        self.readiness_wakes = readiness_wakes
        """Where readiness changes wake passes from (None: nowhere); the operator loop
        connects its schedule to it."""
        self.observations = ObservationCache(
            ttl_seconds=self._settings.observe_cache_seconds,
            clock=lambda: self._clock().timestamp(),
            informers=informers,
        )
        self._applied: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._renders: RenderMemo = {}
        self._specs = _SpecMemo()

    @property
    def settings(self) -> ReconcilerSettings:
        return self._settings

    async def reconcile(
        self,
        md: ModelDeployment,
        *,
        fleet: Sequence[FleetCluster],
        others: Sequence[ModelDeployment] = (),
    ) -> ReconcileOutcome:
        """One pass for ``md`` over the FleetClusters ``fleet``; ``others`` are the other
        ModelDeployments (until this process has planned them, their recorded placements
        seed the pool ledger).

        Never raises for cluster or provider failures: they become Events, a Degraded
        condition and a sooner requeue.
        """
        settings = self._settings
        now = self._clock()
        work = PassLog(said=said_before(md.status, now))
        key = deployment_key(md)
        if self.readiness_wakes is not None:
            self.readiness_wakes.track(md)  # its workloads' readiness may wake it from now
        observation = await observe(
            md,
            fleet,
            self._clusters,
            timeout=settings.cluster_timeout_seconds,
            cache=self.observations,
        )
        down: set[str] = set()
        for name in observation.unreachable():
            error = observation.clusters[name].error
            work.warn("ClusterUnreachable", f"cannot read workloads in {name}: {error}")
            down.add(name)
        unread_demand: list[str] = []
        metrics = await metrics_snapshot(
            md, fleet, observation, self._metrics, now=now, problems=unread_demand
        )
        for message in unread_demand:
            # A Warning and Degraded, without the problems' fast requeue: the demand query is
            # asked again on the next pass anyway, and a broken one stays broken until edited.
            work.note("Warning", "DemandUnknown", message)
        spec = self._specs.spec(md)
        state = decision_from_status(md.status.decision if md.status else None, now)
        mine = own_placements(md, observation)
        by_name = {c.metadata.name: c for c in fleet}
        seed_ledger(self.ledger, [o for o in others if deployment_key(o) != key])

        def plan_and_book() -> Plan:
            # No await in here: reading the bookings and writing ours is one step.
            snapshot = fleet_snapshot(
                md, fleet, mine, ledger=self.ledger, stockouts=self.stockouts, now=now
            )
            result = plan(
                spec, snapshot, metrics=metrics, state=state, now=now, settings=settings.planner
            )
            self.ledger.book(key, result)
            return result

        result = plan_and_book()
        for attempt in range(settings.max_replans + 1):
            # The ledger's dirty pools: ours whose total changed, and any other whose last
            # call failed (one owner of pool sizes: whoever passes next brings them in line).
            stocked_out = await size_pools(
                {p for p in self.ledger.dirty() if p[0] in by_name},
                waiting=_waiting(result, observation),
                by_name=by_name,
                ledger=self.ledger,
                providers=self._providers,
                stockouts=self.stockouts,
                log=work,
                now=now,
                settings=settings.pools,
                client_for=self._clusters,
            )
            if not stocked_out or attempt == settings.max_replans:
                break
            result = plan_and_book()

        per_cluster = placements_by_cluster(result)
        planned_replicas: dict[PoolKey, int] = {}
        for p in result.placements:
            k: PoolKey = (p.cluster, p.instance_type, p.capacity_type)
            planned_replicas[k] = planned_replicas.get(k, 0) + p.replicas
        decision = decide_retire(
            planned=set(planned_replicas),
            desired=result.desired_replicas,
            observed={n: o for n, o in observation.clusters.items() if n in by_name},
            health={n: health_of(c) for n, c in by_name.items()},
            held={
                (r.cluster, r.instance_type, r.capacity_type)
                for r in result.retiring
                if r.reason.startswith(R.CLUSTER_FAILING_BACK)
            },
            planned_replicas=planned_replicas,
        )
        await apply_workloads(
            md,
            _with_floors(per_cluster, decision.floors),
            by_name=by_name,
            client_for=self._clusters,
            render=self._render,
            log=work,
            timeout=settings.cluster_timeout_seconds,
            applied=self._applied,
            renders=self._renders,
            observation=observation,
            now=now,
            reapply_after=settings.reapply_after_seconds,
        )
        await retire(
            md,
            decision,
            planned_here=per_cluster,
            observation=observation,
            by_name=by_name,
            client_for=self._clusters,
            log=work,
            timeout=settings.cluster_timeout_seconds,
        )

        warn_missing_claims(
            md,
            [*per_cluster, *(n for n, o in observation.clusters.items() if o.workloads)],
            by_name=by_name,
            log=work,
        )
        for change in result.changes:
            kind: EventType = "Warning" if change.code in _WARNING_CHANGES else "Normal"
            work.note(kind, change.code, change.message)
        for reason in result.reasons:
            if reason.code in _TERMINAL:
                work.note("Warning", reason.code, reason.message)

        endpoints = [
            Endpoint(cluster=c, url=service_url(md, _endpoint_template(by_name.get(c))))
            for c in sorted(
                {p.cluster for p in result.placements}
                | {r.cluster for r in result.retiring if not r.lost}
            )
        ]
        status = build_status(
            md,
            result,
            observation,
            endpoints=endpoints,
            problems=[*work.problems, *unread_demand],
            now=now,
            capacity_errors=[f"{e.cluster}: {e.message}" for e in work.capacity_errors],
            regions={n: c.spec.region for n, c in by_name.items()},
        )
        requeue = None
        ready = status.replicas.ready if status.replicas else 0
        under_way = bool(
            result.retiring or decision.held or decision.floors or work.problems or work.retry
        )
        if (
            (under_way or ready < result.placed_replicas)
            and not _waiting_on_probe(result, decision, work, down, by_name, ready)
            and (under_way or not self._woken_when_ready(md, result, observation, by_name))
        ):
            requeue = settings.progressing_requeue_seconds
        return ReconcileOutcome(
            status, tuple(work.events), result, requeue, tuple(work.capacity_errors)
        )

    def _woken_when_ready(
        self,
        md: ModelDeployment,
        result: Plan,
        observation: Observation,
        by_name: Mapping[str, FleetCluster],
    ) -> bool:
        """Whether placed replicas not yet Ready are all that is under way, and their
        becoming Ready (or going) wakes the next pass (``reconciler.wakes``), so the pass
        may come back at the regular interval (a safety net) instead of polling: every
        pool short of Ready replicas is in a cluster whose readiness wakes are served, the
        probe doubts none of them (a doubted cluster is listed, never watched), and none
        is still launching nodes (the cloud may yet report a capacity error, which no pod
        readiness would)."""
        wakes = self.readiness_wakes
        if wakes is None or not wakes.connected:
            return False
        namespace = workload_namespace(md)
        short = _waiting(result, observation)
        if not short:
            return False  # Ready short of the plan, yet no pool to name: keep polling
        for pool in short:
            cluster = by_name.get(pool[0])
            if (
                cluster is None
                or health_of(cluster) in NO_CHANGES_HEALTH
                or self.ledger.launch(pool) is not None
                or not wakes.serves(pool[0], namespace)
            ):
                return False
        return True

    async def finalize(
        self,
        md: ModelDeployment,
        *,
        fleet: Sequence[FleetCluster],
        others: Sequence[ModelDeployment] = (),
    ) -> FinalizeOutcome:
        """Remove ``md``'s workloads from every member cluster and release its node pools
        (see ``reconciler.finalize``)."""
        outcome = await finalize(
            md,
            fleet=fleet,
            others=others,
            client_for=self._clusters,
            providers=self._providers,
            ledger=self.ledger,
            stockouts=self.stockouts,
            now=self._clock(),
            cluster_timeout=self._settings.cluster_timeout_seconds,
            pool_settings=self._settings.pools,
        )
        if outcome.done and self.readiness_wakes is not None and md.metadata.uid:
            self.readiness_wakes.forget(md.metadata.uid)
        return outcome


def _waiting_on_probe(
    result: Plan,
    decision: RetireDecision,
    work: PassLog,
    unreachable: set[str],
    by_name: Mapping[str, FleetCluster],
    ready: int,
) -> bool:
    """Whether the only things under way are clusters the probe already marks Failed or
    Suspect: their workloads are kept (nothing destructive there) and reading them may
    fail (a ClusterUnreachable problem for each that does, and no other problem).
    A pass sooner than the regular interval cannot change that: the planner acts on the
    cluster's health, which only its probe changes, and every planned replica is Ready.
    Such a pass comes back at the regular interval, not every few seconds for the whole
    outage (one pass in fourteen of the bundled 24 h scenario)."""
    if result.retiring or decision.floors or work.retry or ready < result.placed_replicas:
        return False
    unhealthy = {n for n, c in by_name.items() if health_of(c) in NO_CHANGES_HEALTH}
    if not unreachable <= unhealthy or len(work.problems) != len(unreachable):
        return False  # a healthy cluster that does not answer, or another problem
    return all(n in unhealthy for n in decision.held)


def _endpoint_template(cluster: FleetCluster | None) -> str | None:
    return cluster.spec.endpoint_template if cluster is not None else None


class _SpecMemo:
    """``deployment_from_api`` once per ModelDeployment spec object, not once per pass:
    writing status keeps the (immutable) spec object, so the same object with the same
    key always converts to the same DeploymentSpec. Keyed by identity, holding the object
    so that its id is not reused while remembered; bounded."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._specs: dict[int, tuple[ModelDeploymentSpec, str, DeploymentSpec]] = {}

    def spec(self, md: ModelDeployment) -> DeploymentSpec:
        key = deployment_key(md)
        hit = self._specs.get(id(md.spec))
        if hit is not None and hit[0] is md.spec and hit[1] == key:
            return hit[2]
        spec = deployment_from_api(md)
        if len(self._specs) >= self._size:
            self._specs.clear()
        self._specs[id(md.spec)] = (md.spec, key, spec)
        return spec


def _with_floors(
    per_cluster: dict[str, list[WorkloadPlacement]], floors: Mapping[PoolKey, int]
) -> dict[str, list[WorkloadPlacement]]:
    """``per_cluster`` with the replicas of scaled-in keys raised to their floors (the
    replicas serving there until the plan's replacements are Ready)."""
    if not floors:
        return per_cluster
    return {
        name: [
            replace(
                w, replicas=max(w.replicas, floors.get((name, w.instance_type, w.capacity_type), 0))
            )
            for w in placements
        ]
        for name, placements in per_cluster.items()
    }


def _waiting(result: Plan, observation: Observation) -> set[PoolKey]:
    """Pools where the plan has more replicas than are Ready: read them back each pass
    (their nodes may be launching, or the cloud may report it cannot launch them)."""
    ready: dict[PoolKey, int] = {}
    for name, obs in observation.clusters.items():
        for w in obs.workloads:
            k: PoolKey = (name, w.instance_type, w.capacity_type)
            ready[k] = ready.get(k, 0) + w.ready
    return {
        (p.cluster, p.instance_type, p.capacity_type)
        for p in result.placements
        if ready.get((p.cluster, p.instance_type, p.capacity_type), 0) < p.replicas
    }


__all__ = ["EventRecord", "FinalizeOutcome", "ReconcileOutcome", "Reconciler", "ReconcilerSettings"]
