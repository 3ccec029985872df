"""Probe a FleetCluster and move its health through the core's state machine.

Health is fleet-wide (every ModelDeployment reads it): the probe asks the member cluster's
API server for its version, GPU nodes and modelfleet pods, and ``core.next_health`` turns
the result and the timestamps into Healthy -> Suspect -> Failed -> Recovering -> Healthy.
The same pass publishes the in-process stockout memory to ``status.stockouts``, the
PersistentVolumeClaims modelfleet pods stay Pending for to ``status.missingClaims`` (a
``ClaimMissing`` Warning when one appears; ``reconciler.claims`` tells the deployments) and,
from time to time, the provider's discovered offerings to ``status.offerings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelfleet.api import FleetCluster
from modelfleet.api import conditions as C
from modelfleet.api.common import Condition
from modelfleet.api.fleetcluster import MISSING_CLAIMS_MAX, FleetClusterStatus, NodePoolStatus
from modelfleet.clusters import ClusterError, ClusterProbe
from modelfleet.core import HealthRecord, next_health
from modelfleet.core.from_api import offering_to_api
from modelfleet.providers import NodePool, ProviderError
from modelfleet.providers.gc import plan_orphan_gc, zero_size_spec
from modelfleet.reconciler.ledger import PoolKey, PoolLedger
from modelfleet.reconciler.limits import within
from modelfleet.reconciler.memory import ClientFor, ProviderRegistry, StockoutMemory
from modelfleet.reconciler.outcome import EventRecord, EventType
from modelfleet.reconciler.pools import NO_CHANGES_HEALTH
from modelfleet.reconciler.status import next_condition


@dataclass(frozen=True)
class FleetSettings:
    """Fleet-wide failure timing (deployments may be stricter via spec.failover)."""

    fail_after_seconds: float = 45.0
    recover_after_seconds: float = 300.0
    probe_timeout_seconds: float | None = 5.0
    """Longest wait for a probe (None: no limit, for the simulator, whose member clusters
    answer from memory; likewise ``provider_timeout_seconds``)."""
    orphan_settle_seconds: float = 600.0
    """A managed pool must be unneeded this long before it is scaled to zero: the same
    10 minutes as the pools stage's scale-in delay, so a pool no deployment books any more
    stays warm exactly as long as one that lost only some of its bookings."""
    orphan_grace_seconds: float = 1800.0
    """An unneeded managed pool is deleted after this long (scaled to zero before)."""
    provider_timeout_seconds: float | None = 30.0


@dataclass(frozen=True)
class ProbeOutcome:
    """The status to write, Events to post, and whether the cluster just failed.

    ``owned_fields`` are the status fields this pass decided (camelCase): write only those,
    so a pass that did not rediscover offerings never overwrites them from a stale copy.
    """

    status: FleetClusterStatus
    events: tuple[EventRecord, ...]
    became_failed: bool
    owned_fields: frozenset[str] = frozenset()
    leaving_nodes: Mapping[tuple[str, str], int] | None = None
    """The probe's nodes going away per (instance type, capacity type)
    (``ClusterProbe.leaving_nodes``); None when the probe got no answer."""

    def status_patch(self) -> dict[str, object]:
        """The merge patch for ``status``: owned fields only (null clears a field)."""
        full = self.status.model_dump(mode="json", by_alias=True)
        return {key: value for key, value in full.items() if key in self.owned_fields}


def _not_after(at: datetime | None, now: datetime) -> datetime | None:
    """``at``, or ``now`` when ``at`` is later (None stays None)."""
    return now if at is not None and at > now else at


async def probe_fleet_cluster(
    cluster: FleetCluster,
    *,
    clusters: ClientFor,
    providers: ProviderRegistry,
    stockouts: StockoutMemory,
    now: datetime,
    discover: bool = False,
    pools: PoolUpkeep | None = None,
    settings: FleetSettings | None = None,
) -> ProbeOutcome:
    """One probe of ``cluster`` at ``now``. Never raises for cluster or provider failures.

    ``discover``: also refresh ``status.offerings`` from the provider. ``pools``: also
    report the managed node pools and garbage-collect the ones no deployment needs.
    """
    settings = settings or FleetSettings()
    status = cluster.status or FleetClusterStatus()
    stockouts.seed(cluster, now)
    probe: ClusterProbe | None = None
    error: str | None = None
    try:
        async with within(settings.probe_timeout_seconds):
            client = await clusters(cluster)
            probe = await client.probe()
    except ClusterError as exc:
        error = str(exc)
    except TimeoutError:
        error = f"no answer within {settings.probe_timeout_seconds or 0:.0f}s"

    # Read as no later than now: a time from a clock ahead of ours (another replica's, a
    # restore, an edit) kept a dead cluster Suspect, never Failed, until that time plus
    # failAfterSeconds (no failover), and a Recovering one from failing back.
    record = next_health(
        HealthRecord(
            status.health,
            _not_after(status.health_since, now),
            _not_after(status.last_success_time, now),
            _not_after(status.recovered_since, now),
        ),
        probe is not None,
        now,
        fail_after_seconds=settings.fail_after_seconds,
        recover_after_seconds=settings.recover_after_seconds,
    )
    events: list[EventRecord] = []
    if record.state != status.health:
        kind: EventType = "Warning" if record.state in ("Suspect", "Failed") else "Normal"
        why = f": {error}" if error else ""
        events.append(
            EventRecord(
                kind, f"Cluster{record.state}", f"health {status.health} -> {record.state}{why}"
            )
        )

    previous = {c.type: c for c in status.conditions or []}

    def condition(type_: str, ok: bool, reason: str, message: str) -> Condition:
        return next_condition(
            previous,
            type_,
            "True" if ok else "False",
            reason,
            message,
            generation=cluster.metadata.generation,
            now=now,
        )

    if probe is not None:
        reachable = condition(
            C.REACHABLE, True, "APIServerReachable", f"API server {probe.server_version or '?'}"
        )
        ready_message = (
            f"{probe.ready_gpu_nodes}/{probe.gpu_nodes} GPU nodes ready, "
            f"{probe.not_ready_pods}/{probe.managed_pods} modelfleet pods not ready"
        )
    else:
        reachable = condition(C.REACHABLE, False, "APIServerUnreachable", error or "unreachable")
        ready_message = f"cluster is {record.state}"
    ready = condition(C.READY, record.state == "Healthy", f"Cluster{record.state}", ready_message)

    owned = {
        "observedGeneration",
        "conditions",
        "health",
        "healthSince",
        "recoveredSince",
        "lastProbeTime",
        "lastSuccessTime",
        "stockouts",
    }
    offerings = status.offerings
    if discover:
        try:
            provider = await providers.provider_for(cluster)
            found = await provider.discover_offerings()
            # Offerings without an on-demand price are published too (Offering: the planner
            # places only the capacity types it has a price for).
            offerings = [offering_to_api(o) for o in found] or None
            owned.add("offerings")
        except ProviderError as exc:
            events.append(EventRecord("Warning", "DiscoveryFailed", f"offering discovery: {exc}"))
    node_pools = status.node_pools
    if pools is not None:
        try:
            node_pools = await _upkeep_pools(
                cluster,
                providers,
                pools,
                events,
                now=now,
                settings=settings,
                collect=record.state not in NO_CHANGES_HEALTH,
            )
            owned.add("nodePools")
        except ProviderError as exc:
            events.append(EventRecord("Warning", "PoolListFailed", f"node pools: {exc}"))
        except TimeoutError:
            events.append(EventRecord("Warning", "PoolListFailed", "node pools: timed out"))

    missing = status.missing_claims
    if probe is not None:
        # At most MISSING_CLAIMS_MAX (the CRD's maxItems): every modelfleet pod of every
        # tenant Pending for a claim counts, and a longer list failed the whole status
        # (health included) in FleetClusterStatus's validation.
        claims = sorted(probe.missing_claims)
        listed = claims[:MISSING_CLAIMS_MAX]
        missing = listed or None
        owned.add("missingClaims")
        new = sorted(set(listed) - set(status.missing_claims or ()))
        unlisted = len(claims) - len(listed)
        if new:
            # The count first: an Event's message is cut to 1,024 characters (handlers).
            cut = (
                f"{len(claims)} claims missing, {unlisted} beyond the {MISSING_CLAIMS_MAX} "
                "status.missingClaims lists; "
                if unlisted
                else ""
            )
            events.append(
                EventRecord(
                    "Warning",
                    "ClaimMissing",
                    f"modelfleet pods stay Pending: {cut}PersistentVolumeClaim "
                    + ", ".join(new)
                    + " not found in this cluster (a pvc:// model's claim is the user's to "
                    "create; docs/member-clusters.md)",
                )
            )

    stockouts.prune(now)
    new_status = FleetClusterStatus(
        observed_generation=cluster.metadata.generation,
        conditions=[reachable, ready],
        health=record.state,
        health_since=record.since,
        recovered_since=record.recovered_since,
        last_probe_time=now,
        last_success_time=record.last_success,
        stockouts=stockouts.published(cluster.metadata.name, now),
        node_pools=node_pools,
        offerings=offerings,
        missing_claims=missing,
    )
    became_failed = record.state == "Failed" and status.health != "Failed"
    return ProbeOutcome(
        new_status,
        tuple(events),
        became_failed,
        frozenset(owned),
        leaving_nodes=probe.leaving_nodes if probe is not None else None,
    )


@dataclass
class PoolUpkeep:
    """What pool upkeep needs: the pool ledger (which pools some deployment books, and what
    each was last asked for) and the orphan clock (mutated in place)."""

    ledger: PoolLedger
    orphan_since: dict[str, datetime]


async def _upkeep_pools(
    cluster: FleetCluster,
    providers: ProviderRegistry,
    upkeep: PoolUpkeep,
    events: list[EventRecord],
    *,
    now: datetime,
    settings: FleetSettings,
    collect: bool = True,
) -> list[NodePoolStatus] | None:
    """List the managed pools, scale orphans to zero, delete them after the grace period.

    ``collect`` False (the cluster is Failed or Suspect): list only. A pool no deployment
    books while its cluster is down may still carry the replicas that survived the outage
    (the planner books nothing there until it answers again), so nothing is collected and
    the orphan clock starts over once the cluster is back."""
    provider = await providers.provider_for(cluster)
    async with within(settings.provider_timeout_seconds):
        pools = await provider.list_pools()
    booked = upkeep.ledger.needed(cluster.metadata.name)
    needed = {p.name for p in pools if (p.instance_type, p.capacity_type) in booked}
    for p in pools:
        key = (cluster.metadata.name, p.instance_type, p.capacity_type)
        asked = upkeep.ledger.requested(key)
        # The Ready count as the cloud reports it now: a pass calls a pool only when its
        # size changes or replicas wait on it, so during a scale-in delay this listing is
        # what keeps the ledger's warm nodes (core.warm) true after a reclaim or a failure.
        upkeep.ledger.saw(key, p.ready_nodes)
        if asked is not None and asked != p.desired_nodes:
            # Resized behind our back (or our call was lost): the next pass re-asserts it.
            upkeep.ledger.forget_request(key, p.desired_nodes)
    if not collect:
        upkeep.orphan_since.clear()
        return _pool_statuses(pools, upkeep.ledger, cluster)
    actions = plan_orphan_gc(
        pools,
        needed,
        orphan_since=upkeep.orphan_since,
        now=now,
        grace=timedelta(seconds=settings.orphan_grace_seconds),
    )
    upkeep.orphan_since.clear()
    upkeep.orphan_since.update(actions.orphan_since)
    settled = now - timedelta(seconds=settings.orphan_settle_seconds)
    for pool in actions.scale_to_zero:
        if actions.orphan_since.get(pool.name, now) > settled:
            continue
        try:
            async with within(settings.provider_timeout_seconds):
                await provider.ensure_pool(zero_size_spec(pool))
            events.append(
                EventRecord("Normal", "PoolScaledToZero", f"{pool.name}: no deployment needs it")
            )
        except (ProviderError, ValueError, TimeoutError) as exc:
            events.append(EventRecord("Warning", "PoolGcFailed", f"{pool.name}: {exc}"))
    for pool in actions.delete:
        try:
            async with within(settings.provider_timeout_seconds):
                await provider.delete_pool(pool.name)
            events.append(
                EventRecord("Normal", "PoolDeleted", f"{pool.name}: orphaned past the grace period")
            )
        except (ProviderError, TimeoutError) as exc:
            events.append(EventRecord("Warning", "PoolGcFailed", f"{pool.name}: {exc}"))
    return _pool_statuses(pools, upkeep.ledger, cluster)


def _pool_statuses(
    pools: list[NodePool], ledger: PoolLedger, cluster: FleetCluster
) -> list[NodePoolStatus] | None:
    """The pools as ``status.nodePools``, each with the ledger's scale-in clock (what a
    restarted operator reads back: ``pools._after_scale_in_delay``). A pool this process
    has not sized yet keeps the clock its status carries (a listing right after a restart
    must not erase it before the first pass reads it)."""
    name = cluster.metadata.name
    recorded = {
        (p.instance_type, p.capacity_type): p.scale_in_since
        for p in (cluster.status.node_pools if cluster.status is not None else None) or ()
    }

    def clock(p: NodePool) -> datetime | None:
        key: PoolKey = (name, p.instance_type, p.capacity_type)
        if ledger.sized(key):
            return ledger.shrinking(key)
        return recorded.get((p.instance_type, p.capacity_type))

    return [
        NodePoolStatus(
            name=p.name,
            instance_type=p.instance_type,
            gpu=p.gpu,
            capacity_type=p.capacity_type,
            desired_nodes=p.desired_nodes,
            ready_nodes=p.ready_nodes,
            state=p.state,
            issues=[f"{i.code}: {i.message}" for i in p.issues] or None,
            scale_in_since=clock(p),
        )
        for p in pools
    ] or None
