"""Pools stage: size every node pool a pass touched to the ledger's total, and read back
what the cloud did with the request.

A pool's size is the sum of every deployment's booking (``ledger.PoolLedger``), capped so
that the offering's on-demand and spot pools together stay within its ``maxNodes``
(``PoolLedger.within_quota``): modelfleet never asks a pool for more than its limit, so its
own bookkeeping can never surface as a stockout. Calls are made only where needed: a pool
whose total changed is resized (``ensure_pool``); a pool this deployment is waiting on is
read back (``get_pool``). Capacity problems become stockout marks whichever way the cloud
reports them:

- refused at once (``InsufficientCapacity``/``QuotaExceeded`` from ``ensure_pool``);
- reported after an accepted resize, as a pool health issue the provider classified as
  capacity (EKS ``AsgInstanceLaunchFailures``/``InsufficientInstanceCapacity``, GKE
  stockout/quota conditions, AKS allocation failures);
- nodes not Ready within ``launch_timeout_seconds`` of the grow (as Karpenter's
  registration timeout): whatever the cause, the replicas go elsewhere.

A mark is cleared only when the pool obtained the nodes of a grow asked after the mark
expired: a call that merely kept the size proves nothing. Nothing is resized on a cluster
whose health is Failed or Suspect (no destructive action there, even if its API answers).

A shrink never lets the cloud pick a node that serves: when a node of the pool holds a
Ready pod, the pool loses only the empty nodes the operator names and cordons
(``reconciler.shrink``, ``RemovesNodes.remove_nodes``), and what cannot be named waits.
Nodes are named only among those the cloud lists as the pool's (``KnowsNodes``): a Node
that merely carries the pool's labels is ignored, said once (``NodeNotInPool``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from modelfleet.api import FleetCluster
from modelfleet.api.fleetcluster import NodePoolStatus
from modelfleet.core.from_api import offering_of
from modelfleet.core.stockouts import pool_stockout
from modelfleet.providers import (
    KnowsNodes,
    NodePool,
    NodePoolProvider,
    NodeRef,
    NotFound,
    PermissionDenied,
    PoolSpec,
    ProviderError,
    RemovesNodes,
    capacity_issue,
    is_capacity_error,
)
from modelfleet.reconciler.ledger import PoolKey, PoolLedger
from modelfleet.reconciler.limits import gather, within
from modelfleet.reconciler.memory import ProviderRegistry, StockoutMemory
from modelfleet.reconciler.outcome import CapacityError, PassLog
from modelfleet.reconciler.shrink import NodeReader, PoolNodes, cordon, pool_nodes, uncordon

ReaderFor = Callable[[FleetCluster], Awaitable[object]]
"""The member-cluster client of a FleetCluster (``memory.ClientFor``); a client that cannot
list and patch (``shrink.NodeReader``) reads as one that sees no node."""

NO_CHANGES_HEALTH = frozenset({"Failed", "Suspect"})
"""Cluster health in which nothing is resized or removed there."""


@dataclass(frozen=True)
class PoolSettings:
    """Timing of pool calls."""

    provider_timeout_seconds: float | None = 30.0
    """Longest wait for one node-pool call (None: no limit, for the simulator)."""
    launch_timeout_seconds: float = 900.0
    """Nodes of a grow not Ready this long after it was asked count as a capacity error."""
    scale_in_delay_seconds: float = 600.0
    """Ready nodes no deployment books any more are released only after they have been
    unneeded this long (cluster-autoscaler's scale-down-unneeded-time is 10 minutes): a
    replica re-placed or scaled up meanwhile finds its node warm. Nodes that never became
    Ready are released at once."""
    warm_pool_scale_in_delay_seconds: float = 300.0
    """The same on a pool that is only a warm pool (``PoolLedger.wanted``), no deployment's
    cheapest growth candidate (``PoolLedger.first_choice``): a scale-up takes its idle
    nodes only by warm placement, at a price above the cheapest, so they are kept about as
    long as a new node takes to come up (ski rental; the default scenario's p50 node start
    is 4-5.5 minutes). Never longer than ``scale_in_delay_seconds``."""


def health_of(cluster: FleetCluster) -> str:
    return cluster.status.health if cluster.status is not None else "Unknown"


async def size_pools(
    pools: set[PoolKey],
    *,
    waiting: set[PoolKey],
    by_name: Mapping[str, FleetCluster],
    ledger: PoolLedger,
    providers: ProviderRegistry,
    stockouts: StockoutMemory,
    log: PassLog,
    now: datetime,
    settings: PoolSettings,
    client_for: ReaderFor | None = None,
) -> bool:
    """Bring ``pools`` (totals changed) to their ledger totals and read back ``waiting``
    pools. Returns True when a capacity error was recorded (the caller re-plans). Never
    raises for provider failures: they become Events and problems in ``log``.
    ``client_for`` gives the member cluster's client for a shrink's choice of nodes; without
    it (or a node list) a shrink goes by count, as when no node of the pool serves."""
    outcomes = await gather(
        *(
            _one(
                pool,
                waiting=pool in waiting,
                by_name=by_name,
                ledger=ledger,
                providers=providers,
                stockouts=stockouts,
                log=log,
                now=now,
                settings=settings,
                client_for=client_for,
            )
            for pool in sorted(pools | waiting)
        )
    )
    return any(outcomes)


async def _one(
    pool: PoolKey,
    *,
    waiting: bool,
    by_name: Mapping[str, FleetCluster],
    ledger: PoolLedger,
    providers: ProviderRegistry,
    stockouts: StockoutMemory,
    log: PassLog,
    now: datetime,
    settings: PoolSettings,
    client_for: ReaderFor | None,
) -> bool:
    name, instance_type, capacity_type = pool
    cluster = by_name.get(name)
    if cluster is None or health_of(cluster) in NO_CHANGES_HEALTH:
        return False
    offering = offering_of(cluster, instance_type)
    if offering is None:
        log.note("Warning", "UnknownOffering", f"{name} has no offering {instance_type}")
        return False
    total = ledger.total(pool)
    allowed = ledger.within_quota(pool, offering.max_nodes)
    if allowed < total:
        log.note(
            "Warning",
            "PoolOverbooked",
            f"{name}: {total} {capacity_type} {instance_type} node(s) booked, maxNodes "
            f"{offering.max_nodes} (on-demand and spot together) leaves {allowed}; "
            f"asking for {allowed}",
        )
        total = allowed
    before = ledger.requested(pool)
    recorded = _recorded(cluster, pool) if ledger.first_sizing(pool) else None
    booked = total
    # A pool that cannot grow now (an active stockout mark): its idle Ready nodes are the
    # only ones of it to be had until the mark ends, so they keep the full delay even
    # where no deployment's scale-up would take them now (its growth leaves the pool out
    # while marked).
    scarce = (
        pool_stockout(
            stockouts.marks(name),
            offering.gpu,
            capacity_type=capacity_type,
            instance_type=instance_type,
            zones=offering.zones or tuple(cluster.spec.zones or ()),
            now=now,
        )
        is not None
    )
    # A cluster back from Failed less than the delay ago: the replicas held there for
    # failback start over on its Ready nodes, and a deployment that planned while the
    # cluster was down has not booked them yet (the first pass after the return sizes its
    # pools on those plans), nor does any deployment's growth name the cluster until its
    # failback window ends. Released at once, they come back as new nodes a few seconds
    # later (docs/decisions.md section 6, "Nodes of a cluster back from Failed").
    back = cluster.status.recovered_since if cluster.status is not None else None
    returning = back is not None and (now - back).total_seconds() < settings.scale_in_delay_seconds
    total = _after_scale_in_delay(
        pool,
        total,
        before,
        ledger,
        now=now,
        settings=settings,
        recorded=recorded,
        scarce=scarce or returning,
    )
    if recorded is not None and before is None and total > booked:
        # A hold read back from the status (a restart): the status is the last probe's
        # listing, stale or edited, so the pool keeps what the cloud says it holds, never
        # more (the hold was sent as the new size: a pool of 3 whose status said 8 grew).
        total = await _held_nodes(pool, total, booked, cluster, providers, log, settings)
    if before == total and not waiting:
        return False  # nothing to change, and nobody waits on it
    zones = ledger.zones(pool)
    spec = PoolSpec(
        cluster=name,
        offering=offering,
        capacity_type=capacity_type,
        nodes=total,
        # The plan's open zones when some are stocked out (zone fall-through).
        zones=zones or tuple(cluster.spec.zones or ()),
    )
    grow = before is not None and total > before
    try:
        provider: NodePoolProvider = await providers.provider_for(cluster)
        async with within(settings.provider_timeout_seconds):
            chosen: tuple[NodeRef, ...] = ()
            hold = False
            # A shrink: below the last request, or, that unknown (a failed call), below
            # the Ready nodes last read back. A pool this process never asked nor read
            # back (its first sizing, or the first after an operator restart) may be a
            # shrink too: its Nodes are read (an empty list for a new pool), and a member
            # API that cannot be read leaves the call as it was. A pool with nodes cordoned
            # for a removal that may not have happened is read too, to uncordon them.
            last = before if before is not None else ledger.ready(pool)
            shrinking = last is not None and total < last
            if client_for is not None and (last is None or shrinking or ledger.cordoned(pool)):
                total, chosen, hold = await _shrink(
                    pool,
                    spec,
                    before,
                    provider,
                    await client_for(cluster),
                    log,
                    ledger=ledger,
                    shrinking=shrinking or last is None,
                )
                spec = PoolSpec(spec.cluster, offering, capacity_type, total, spec.zones)
            if chosen and isinstance(provider, RemovesNodes):
                result = await provider.remove_nodes(spec, chosen)
                ledger.asked(pool, total)
                ledger.set_cordoned(pool, False)
                ledger.set_removed(pool, ledger.removed(pool) | set(chosen))
            elif hold:
                result = await provider.get_pool(spec)  # no resize by count: it waits
            elif before != total:
                result = await provider.ensure_pool(spec)
                ledger.asked(pool, total)
            else:
                result = await provider.get_pool(spec)
    except NotFound:
        ledger.forget_request(pool)
        return False
    except ProviderError as exc:
        ledger.forget_request(pool, total)
        if is_capacity_error(exc):
            zone = getattr(exc, "zone", None)
            _capacity_error(
                pool, offering.gpu, str(exc), stockouts, log, now=now, late=False, zone=zone
            )
            return True
        message = f"{name}: node pool {instance_type}: {exc}"
        if exc.retryable:
            # Transient (throttled, unreachable): the pool stays dirty and the next pass,
            # requeued within seconds, asks again. Not a problem for a human yet.
            log.note("Warning", exc.code, message)
            log.retry = True
        else:
            log.warn(exc.code, message)  # names what to fix (permission, setting)
        return False
    except TimeoutError:
        ledger.forget_request(pool, total)
        log.note("Warning", "ProviderTimeout", f"{name}: node pool call timed out")
        log.retry = True
        return False
    return _read_back(
        pool, result, total, grow, offering.gpu, ledger, stockouts, log, now, settings
    )


async def _shrink(
    pool: PoolKey,
    spec: PoolSpec,
    before: int | None,
    provider: NodePoolProvider,
    client: object,
    log: PassLog,
    *,
    ledger: PoolLedger,
    shrinking: bool = True,
) -> tuple[int, tuple[NodeRef, ...], bool]:
    """(size, nodes to remove by name, hold) for a shrink from ``before`` to
    ``spec.nodes`` (see ``reconciler.shrink``). When no node of the pool serves, a resize
    by count is safe: (``spec.nodes``, none, False). Otherwise the empty nodes, cordoned,
    and the size after removing just them; the rest waits (``hold``: no resize by count
    this pass), said in a ``PoolShrinkWaiting`` Event.

    ``before`` None (the last request is unknown after a failed call) takes the pool's
    registered Nodes as its size; a cluster that cannot be read then
    leaves the call as it was (a resize to ``spec.nodes``), since a grow must not wait on
    the member API. With ``before`` known, an unreadable cluster holds the pool as it is
    (a Warning, retried).

    Nodes the operator cordoned earlier for a removal (``shrink.CORDON_ANNOTATION``) that
    are not chosen now are uncordoned (best effort: a failure is a Warning, retried while
    ``ledger.cordoned(pool)``); ``shrinking`` False (read only for that) never holds."""
    if not isinstance(client, NodeReader):
        return spec.nodes, (), False
    name, instance_type, capacity_type = pool
    try:
        # Unknown size: the pods are read only if the Nodes outnumber the request (a
        # grow after a restart must not wait on a list of every pod of the cluster).
        above = spec.nodes if before is None else None
        nodes = await pool_nodes(client, spec.node_labels(), cluster=name, pods_above=above)
    except ProviderError as exc:
        if before is None or not shrinking:
            return spec.nodes, (), False
        log.note("Warning", exc.code, f"{name}: node pool {instance_type} not shrunk: {exc}")
        log.retry = True
        return before, (), True
    nodes = _without_removed(nodes, pool, ledger)
    current = before if before is not None else nodes.registered
    if nodes.serving and spec.nodes < current and isinstance(provider, KnowsNodes):
        # Nodes will be named: only among the pool's own instances, as the cloud lists
        # them (a Node with the pool's labels may be another group's, or gone).
        named = [r for r in nodes.refs if r.provider_id]
        try:
            owned = await provider.owned_nodes(spec, named)
        except PermissionDenied as exc:
            # A role granted before this read existed: name nodes as before (the removal
            # itself still refuses another pool's instance), and say what to grant.
            grant = f" (grant {exc.permission})" if exc.permission else ""
            log.note(
                "Warning",
                exc.code,
                f"{name}: node pool {instance_type}: cannot list its instances{grant}: {exc}; "
                "naming nodes by their labels",
            )
            owned = frozenset(r.name for r in named)
        nodes = _without_foreign(nodes, owned, pool, ledger, log)
        current = before if before is not None else nodes.registered
    if not nodes.serving or spec.nodes >= current:
        await _uncordon_kept(client, nodes.ours, (), pool, ledger, log)
        return spec.nodes, (), False
    excess = current - spec.nodes
    removable = isinstance(provider, RemovesNodes)
    chosen = nodes.empty[:excess] if removable else ()
    await _uncordon_kept(client, nodes.ours, chosen, pool, ledger, log)
    if chosen:
        ledger.set_cordoned(pool, True)
        await cordon(client, chosen, cluster=name, held=nodes.held)
    left = excess - len(chosen)
    if left > 0:
        why = (
            "its provider cannot remove a chosen node"
            if not removable
            else f"{len(nodes.empty)} empty node(s) with a providerID"
            + (f" ({len(nodes.unnamed)} more without one)" if nodes.unnamed else "")
        )
        log.note(
            "Normal",
            "PoolShrinkWaiting",
            f"{name}: {capacity_type} {instance_type} pool keeps {left} node(s) above its "
            f"{spec.nodes}: {why}, and a resize by count could take a node serving a pod "
            f"({', '.join(nodes.serving)}); retrying when a node is empty",
        )
    return current - len(chosen), chosen, left > 0


def _without_removed(nodes: PoolNodes, pool: PoolKey, ledger: PoolLedger) -> PoolNodes:
    """``nodes`` less those this process already had removed: a removed instance's Node
    lingers until the cloud controller deletes it, and naming it again removes nothing
    (the pool would keep a node it no longer needs, the request counted as done). Known
    by name and providerID (an EKS node name, from the private IP, can come back on a new
    instance); the memory keeps only nodes still listed."""
    gone = ledger.removed(pool)
    if not gone:
        return nodes
    still = gone & nodes.refs
    ledger.set_removed(pool, still)
    names = {r.name for r in still}
    return replace(
        nodes,
        empty=tuple(n for n in nodes.empty if n not in still),
        ours=tuple(n for n in nodes.ours if n not in names),
        registered=nodes.registered - len(still),
        refs=nodes.refs - still,
    )


def _without_foreign(
    nodes: PoolNodes, owned: frozenset[str], pool: PoolKey, ledger: PoolLedger, log: PassLog
) -> PoolNodes:
    """``nodes`` less those with a providerID its provider does not list as the pool's
    (``KnowsNodes.owned_nodes``): never chosen, not counted, not serving the pool. Each
    such node is said once per process (a ``NodeNotInPool`` Warning), not every pass."""
    foreign = {r.name for r in nodes.refs if r.provider_id and r.name not in owned}
    if not foreign:
        return nodes
    new = sorted(foreign - ledger.foreign(pool))
    ledger.set_foreign(pool, ledger.foreign(pool) | foreign)
    if new:
        log.note(
            "Warning",
            "NodeNotInPool",
            f"{pool[0]}: node(s) {', '.join(new)} carry the labels of the {pool[2]} "
            f"{pool[1]} pool but its cloud does not list their instance in it (another "
            "group's, or gone): ignored when the pool shrinks",
        )
    return replace(
        nodes,
        empty=tuple(n for n in nodes.empty if n.name not in foreign),
        serving=tuple(n for n in nodes.serving if n not in foreign),
        ours=tuple(n for n in nodes.ours if n not in foreign),  # going: left cordoned
        registered=nodes.registered - len(foreign),
        refs=frozenset(r for r in nodes.refs if r.name not in foreign),
    )


async def _uncordon_kept(
    client: NodeReader,
    ours: tuple[str, ...],
    chosen: tuple[NodeRef, ...],
    pool: PoolKey,
    ledger: PoolLedger,
    log: PassLog,
) -> None:
    """Uncordon the nodes of ``ours`` (cordoned by the operator) that are not ``chosen``;
    the pool's cordon mark is cleared once none is left. Never raises a provider error: a
    grow must not fail on the member API (a Warning, and the next pass tries again)."""
    names = {n.name for n in chosen}
    kept = [n for n in ours if n not in names]
    try:
        await uncordon(client, kept, cluster=pool[0])
    except ProviderError as exc:
        log.note("Warning", exc.code, f"{pool[0]}: node pool {pool[1]}: {exc}")
        log.retry = True
        ledger.set_cordoned(pool, True)
        return
    if kept:
        log.note(
            "Normal",
            "NodeUncordoned",
            f"{pool[0]}: {', '.join(kept)} kept in the {pool[2]} {pool[1]} pool: "
            "cordoned for a removal that did not happen, schedulable again",
        )
    ledger.set_cordoned(pool, False)


async def _held_nodes(
    pool: PoolKey,
    hold: int,
    booked: int,
    cluster: FleetCluster,
    providers: ProviderRegistry,
    log: PassLog,
    settings: PoolSettings,
) -> int:
    """``hold`` (the scale-in hold read back from the status after a restart) capped by
    the Ready nodes the cloud reports for the pool now, never below ``booked``; ``booked``
    when the pool cannot be read (no hold rather than a grow on a stale figure)."""
    name, instance_type, capacity_type = pool
    offering = offering_of(cluster, instance_type)
    if offering is None:
        return booked
    spec = PoolSpec(name, offering, capacity_type, hold, tuple(cluster.spec.zones or ()))
    try:
        provider: NodePoolProvider = await providers.provider_for(cluster)
        async with within(settings.provider_timeout_seconds):
            live = await provider.get_pool(spec)
    except NotFound:
        return booked  # gone: nothing to keep
    except (ProviderError, TimeoutError) as exc:
        log.note(
            "Warning",
            "ScaleInHoldUnread",
            f"{name}: node pool {instance_type}: cannot read what it holds ({exc}); "
            "the scale-in delay is not kept after the restart",
        )
        return booked
    return max(booked, min(hold, live.ready_nodes))


def _recorded(cluster: FleetCluster, pool: PoolKey) -> NodePoolStatus | None:
    """``pool`` as the FleetCluster's status last reported it (None: not reported)."""
    for p in (cluster.status.node_pools if cluster.status is not None else None) or ():
        if (p.instance_type, p.capacity_type) == pool[1:]:
            return p
    return None


def _after_scale_in_delay(
    pool: PoolKey,
    total: int,
    before: int | None,
    ledger: PoolLedger,
    *,
    now: datetime,
    settings: PoolSettings,
    recorded: NodePoolStatus | None = None,
    scarce: bool = False,
) -> int:
    """The size to ask for: ``total``, except that Ready nodes above it are kept until they
    have been unneeded for ``scale_in_delay_seconds`` on some deployment's cheapest growth
    candidate (``PoolLedger.first_choice``) or on a ``scarce`` pool (stocked out: no new
    node there until its mark ends, and no deployment's growth names it meanwhile; or on a
    cluster back from Failed less than the delay ago, whose nodes the replicas held for
    failback start over on), for
    ``warm_pool_scale_in_delay_seconds`` on a pool some deployment's scale-up could take
    them from only by warm placement (``PoolLedger.wanted``); on any other pool they go at
    once. One clock per pool: it
    starts when the bookings first drop below the Ready nodes, and every node still idle
    goes when it runs out (docs/decisions.md section 6).

    ``recorded`` (the pool in the FleetCluster's status, given on the pool's first sizing
    in this process): after an operator restart the last request is unknown, so the
    status's desired and Ready nodes stand for it, and its ``scaleInSince`` for the clock
    (none recorded, or one later than ``now``: the clock starts now). Without it a restart
    skipped the delay once. After a failed call in this process the last request is
    unknown too (the next pass asks again): what the pool may hold of what was asked
    (``PoolLedger.held``) stands for it, so a failure does not skip the delay either."""
    ready = ledger.ready(pool)
    if before is None:
        before = ledger.held(pool)
    if before is None and recorded is not None:
        before = recorded.desired_nodes
        ready = recorded.ready_nodes if ready is None else ready
        if recorded.scale_in_since is not None and ledger.shrinking(pool) is None:
            # Never later than now: a clock ahead of ours (another replica's, a hand
            # edit) would hold the warm nodes until that time plus the delay.
            ledger.shrink_since(pool, min(recorded.scale_in_since, now))
    if before is None or total >= before or ready is None or settings.scale_in_delay_seconds <= 0:
        ledger.no_shrink(pool)
        return total
    keep = min(before, ready)  # never keep nodes that did not come up
    if keep <= total or not (scarce or ledger.wanted(pool)):
        # Nothing idle; or idle nodes no deployment's scale-up would take (a dearer pool
        # left for a cheaper one, a GPU model nobody grows on first): kept, they are only
        # billed, so the delay would buy nothing.
        ledger.no_shrink(pool)
        return total
    delay = settings.scale_in_delay_seconds
    if not scarce and not ledger.first_choice(pool):
        delay = min(delay, settings.warm_pool_scale_in_delay_seconds)
    since = ledger.shrink_since(pool, now)
    if (now - since).total_seconds() >= delay:
        ledger.no_shrink(pool)
        return total
    return keep


def _read_back(
    pool: PoolKey,
    result: NodePool,
    total: int,
    grow: bool,
    gpu: str,
    ledger: PoolLedger,
    stockouts: StockoutMemory,
    log: PassLog,
    now: datetime,
    settings: PoolSettings,
) -> bool:
    """Judge what the pool holds against what it was asked for; True on a capacity error."""
    name, instance_type, capacity_type = pool
    ledger.saw(pool, result.ready_nodes)
    if result.ready_nodes >= total:
        launched = ledger.end_launch(pool)
        if total > 0 and (grow or launched is not None):
            stockouts.obtained(
                name,
                gpu,
                capacity_type=capacity_type,
                instance_type=instance_type,
                now=now,
                zones=ledger.zones(pool),
            )
        return False
    issue = capacity_issue(result)
    if issue is not None:
        ledger.end_launch(pool)
        message = f"{issue.code}: {issue.message} (after an accepted resize)"
        return _capacity_error(pool, gpu, message, stockouts, log, now=now, late=True)
    launch = ledger.start_launch(pool, total, now)
    waited = (now - launch.since).total_seconds()
    if waited >= settings.launch_timeout_seconds:
        ledger.end_launch(pool)
        message = (
            f"{total - result.ready_nodes} of {total} node(s) not Ready {waited:.0f}s after "
            f"the resize (launch timeout {settings.launch_timeout_seconds:.0f}s)"
        )
        return _capacity_error(pool, gpu, message, stockouts, log, now=now, late=True)
    return False


def _capacity_error(
    pool: PoolKey,
    gpu: str,
    message: str,
    stockouts: StockoutMemory,
    log: PassLog,
    *,
    now: datetime,
    late: bool,
    zone: str | None = None,
) -> bool:
    """Record a stockout mark (unless one is already in force) and say so in an Event."""
    name, instance_type, capacity_type = pool
    mark, new = stockouts.record_error(
        name,
        gpu,
        capacity_type=capacity_type,
        instance_type=instance_type,
        message=message,
        now=now,
        zone=zone,
    )
    if not new:
        return True
    log.capacity_errors.append(
        CapacityError(name, gpu, capacity_type, instance_type, message, late=late)
    )
    log.note(
        "Warning",
        "Stockout",
        f"{name}: no {capacity_type} {instance_type} ({gpu}) capacity: {message}; skipped "
        f"until {mark.until.isoformat(timespec='seconds')} (capacity error "
        f"#{mark.failures}), re-planning",
    )
    return True
