"""The operator loop: what runs when, bounded, and what each pass leads to.

``OperatorLoop`` is framework-free. It owns

- scheduling (``Schedule``): when each ModelDeployment is next reconciled (the regular
  interval, a requeue while something is under way, a backoff after an error, at once when
  a member cluster's readiness wakes it: ``reconciler.wakes``), when each
  FleetCluster is probed, when its pools are upkept and its offerings rediscovered;
- bounded concurrency: at most ``max_concurrent_reconciles`` deployment passes at once, so
  a thousand deployments applied together queue here instead of flooding the member
  clusters' API servers; probes never wait behind them (they take no slot and use their own
  cluster clients, see ``runtime``);
- the FleetCluster pass (probe -> health, stockouts published, offerings, pool upkeep and
  orphan GC, with the pool ledger saying which pools are needed);
- the outcome of each pass: the operator's own metrics; the caller writes the returned
  status and posts the returned Events.

The kopf handlers only feed it (an object changed, a timer ticked); the simulator drives
the very same object on its virtual clock. Nothing here reads the wall clock except
through the ``clock`` it is given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.core import reasons as R
from modelfleet.loop.schedule import Cadence, Schedule
from modelfleet.reconciler import (
    FinalizeOutcome,
    FleetSettings,
    PoolUpkeep,
    ProbeOutcome,
    ProviderRegistry,
    ReconcileOutcome,
    Reconciler,
    StockoutMemory,
    probe_fleet_cluster,
)
from modelfleet.reconciler.memory import ClientFor
from modelfleet.reconciler.snapshot import seed_ledger

if TYPE_CHECKING:  # prometheus_client is the operator extra's; the simulator runs this loop
    from modelfleet.metrics.operator_metrics import OperatorMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopSettings:
    """Cadences of the operator's jobs (``modelfleet run`` flags)."""

    interval_seconds: float = 15.0
    """Periodic reconcile of every ModelDeployment."""
    probe_interval_seconds: float = 10.0
    """FleetCluster health probe period."""
    discovery_interval_seconds: float = 600.0
    """How often providers re-discover offerings and prices."""
    pools_interval_seconds: float = 60.0
    """How often node pools are listed into FleetCluster status and orphans collected."""
    error_backoff_seconds: float = 5.0
    """First retry after a pass raised; doubles per consecutive error."""
    max_error_backoff_seconds: float = 300.0
    max_concurrent_reconciles: int = 16
    """Deployment passes running at once (the rest wait their turn; probes never do)."""
    fleet: FleetSettings = field(default_factory=FleetSettings)


class OperatorLoop:
    """See the module docstring. One per operator process (or simulation run)."""

    def __init__(
        self,
        *,
        reconciler: Reconciler,
        providers: ProviderRegistry,
        probe_clients: ClientFor,
        settings: LoopSettings | None = None,
        metrics: OperatorMetrics | None = None,
        clock: Callable[[], datetime],
    ) -> None:
        self.reconciler = reconciler
        self.providers = providers
        self.settings = settings or LoopSettings()
        self.metrics = metrics
        self.clock = clock
        self._probe_clients = probe_clients
        s = self.settings
        backoff = {
            "backoff_seconds": s.error_backoff_seconds,
            "max_backoff_seconds": s.max_error_backoff_seconds,
        }
        self.deployments = Schedule(Cadence(s.interval_seconds, **backoff))
        self.probes = Schedule(Cadence(s.probe_interval_seconds, **backoff))
        self.pools = Schedule(Cadence(s.pools_interval_seconds, **backoff))
        self.discovery = Schedule(Cadence(s.discovery_interval_seconds, **backoff))
        self.orphan_since: dict[str, dict[str, datetime]] = {}
        self._slots = asyncio.Semaphore(max(1, s.max_concurrent_reconciles))
        self.reconciles = 0
        self.probe_count = 0
        self.wanting: set[tuple[str, str]] = set()
        """(namespace, name) of the deployments whose last pass wanted replicas."""
        self.idle: set[tuple[str, str]] = set()
        """(namespace, name) of the deployments whose last pass here wanted no replica:
        the only ones demand seen at the gateway is news for (``demand_leases``); a
        deployment this operator does not serve (another namespace) is in neither set."""
        self._in_pass: set[str] = set()
        self._woken_in_pass: set[str] = set()
        if reconciler.readiness_wakes is not None:
            # A member-cluster Deployment's readiness changed (or it went): its
            # ModelDeployment is due at once (``reconciler.wakes``).
            reconciler.readiness_wakes.connect(self.wake_deployment)

    @property
    def stockouts(self) -> StockoutMemory:
        return self.reconciler.stockouts

    # -- ModelDeployments -----------------------------------------------------------------

    def deployment_due(self, uid: str, now: datetime | None = None) -> bool:
        return self.deployments.due(uid, now or self.clock())

    def wake_deployment(self, uid: str) -> None:
        """Make the ModelDeployment ``uid`` due now (an event asks for a pass). During its
        own pass the wake is kept for when the pass ends: the pass may have read the
        member clusters before the change, and its end books the next pass. A deployment
        whose last pass raised keeps its error backoff: a Deployment flapping readiness (a
        crash-looping server, when passes fail most) would otherwise run the failing pass
        on every tick; the pass after the backoff reads the clusters as they are then."""
        if self.deployments.failing(uid):
            return
        if uid in self._in_pass:
            self._woken_in_pass.add(uid)
        self.deployments.wake(uid, self.clock())

    async def reconcile(
        self,
        uid: str,
        md: ModelDeployment,
        *,
        fleet: Sequence[FleetCluster],
        others: Sequence[ModelDeployment],
    ) -> ReconcileOutcome | None:
        """One bounded pass for ``md``; None when it raised (logged, counted, backed off).
        Schedules the next pass either way."""
        async with self._slots:
            now = self.clock()
            self._in_pass.add(uid)
            try:
                if self.metrics is not None:
                    with self.metrics.time_reconcile("ModelDeployment"):
                        outcome = await self.reconciler.reconcile(md, fleet=fleet, others=others)
                else:
                    outcome = await self.reconciler.reconcile(md, fleet=fleet, others=others)
            except Exception as exc:
                self._pass_ended(uid)
                delay = self.deployments.failed(uid, now)
                log.exception("reconcile of %s failed; retrying in %.0fs", uid, delay)
                if self.metrics is not None:
                    self.metrics.count_reconcile_error("ModelDeployment", type(exc).__name__)
                return None
            except BaseException:
                self._pass_ended(uid)
                raise
        self.reconciles += 1
        woken = self._pass_ended(uid)
        self.deployments.done(uid, now, requeue_after=outcome.requeue_after)
        if woken:
            self.deployments.wake(uid, self.clock())
        key = (md.metadata.namespace or "default", md.metadata.name)
        if outcome.plan.desired_replicas > 0:
            self.wanting.add(key)
            self.idle.discard(key)
        else:
            self.wanting.discard(key)
            self.idle.add(key)
        self._record(md, outcome)
        return outcome

    def _pass_ended(self, uid: str) -> bool:
        """``uid``'s pass ended; whether a wake came while it ran."""
        self._in_pass.discard(uid)
        if uid in self._woken_in_pass:
            self._woken_in_pass.discard(uid)
            return True
        return False

    def _record(self, md: ModelDeployment, outcome: ReconcileOutcome) -> None:
        if self.metrics is None:
            return
        for cluster, gpu, capacity_type in outcome.stockouts:
            self.metrics.count_stockout(cluster, gpu, capacity_type=capacity_type)
        for change in outcome.plan.changes:
            if change.code in (R.CLUSTER_FAILED, R.SPOT_RECLAIMED):
                self.metrics.count_failover(change.cluster or "unknown", reason=change.code)
        if outcome.status.replicas is not None:
            self.metrics.set_deployment(
                md.metadata.namespace or "default",
                md.metadata.name,
                desired=outcome.status.replicas.desired,
                ready=outcome.status.replicas.ready,
                cost_per_hour=outcome.status.cost_per_hour,
            )

    def invalid(self, uid: str) -> None:
        """A spec the models refuse: come back only at the regular interval."""
        self.deployments.done(uid, self.clock())
        if self.metrics is not None:
            self.metrics.count_reconcile_error("ModelDeployment", "InvalidSpec")

    async def finalize(
        self,
        uid: str,
        md: ModelDeployment,
        *,
        fleet: Sequence[FleetCluster],
        others: Sequence[ModelDeployment],
    ) -> FinalizeOutcome:
        """Delete ``md``'s workloads and release its pools (bounded like a reconcile)."""
        async with self._slots:
            outcome = await self.reconciler.finalize(md, fleet=fleet, others=others)
        if outcome.done:
            self.deployments.forget(uid)
            key = (md.metadata.namespace or "default", md.metadata.name)
            self.wanting.discard(key)
            self.idle.discard(key)
            if self.metrics is not None:
                self.metrics.forget_deployment(md.metadata.namespace or "default", md.metadata.name)
        return outcome

    # -- FleetClusters --------------------------------------------------------------------

    def probe_due(self, name: str, now: datetime | None = None) -> bool:
        """Whether FleetCluster ``name`` is due a probe (and book the next one)."""
        return self.probes.take(name, now or self.clock())

    async def probe(
        self,
        cluster: FleetCluster,
        *,
        deployments: Sequence[ModelDeployment] | None = None,
    ) -> ProbeOutcome:
        """Probe ``cluster`` now; rediscover offerings when due, and upkeep its pools when
        due and ``deployments`` (every ModelDeployment, to seed the pool ledger with the
        ones not planned yet) are known."""
        now = self.clock()
        name = cluster.metadata.name
        pools = None
        if deployments is not None and self.pools.take(name, now):
            seed_ledger(self.reconciler.ledger, deployments)
            pools = PoolUpkeep(
                ledger=self.reconciler.ledger, orphan_since=self.orphan_since.setdefault(name, {})
            )
        outcome = await probe_fleet_cluster(
            cluster,
            clusters=self._probe_clients,
            providers=self.providers,
            stockouts=self.stockouts,
            now=now,
            discover=self.discovery.take(name, now),
            pools=pools,
            settings=self.settings.fleet,
        )
        self.probe_count += 1
        if outcome.leaving_nodes is not None:
            # Nodes under an interruption notice are no warm nodes (core/warm.py).
            self.reconciler.ledger.leaving(name, outcome.leaving_nodes)
        if self.metrics is not None:
            self.metrics.set_member_watches(
                name,
                [
                    (st.namespace or "", st.serving, st.lists)
                    for st in self.reconciler.observations.watch_states(name)
                ],
            )
        return outcome

    def forget_cluster(self, name: str) -> None:
        """FleetCluster ``name`` was deleted."""
        for schedule in (self.probes, self.pools, self.discovery):
            schedule.forget(name)
        self.orphan_since.pop(name, None)
        self.providers.forget(name)
        self.stockouts.forget(name)
        self.reconciler.ledger.forget_cluster(name)
        self.reconciler.observations.forget(name)
        if self.metrics is not None:
            self.metrics.set_member_watches(name, [])
