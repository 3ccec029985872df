"""Finalize stage: a deleted ModelDeployment leaves nothing behind.

Its workloads are removed from every member cluster by ownership labels (restart-safe),
its bookings leave the ledger and the pools it used are resized to what the others still
book (maybe zero; orphan GC deletes empty pools later). An unreachable cluster keeps
deletion pending unless the ``modelfleet.io/abandon-clusters`` annotation names it (or is
``*``): then its leftovers are abandoned and reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from modelfleet import labels
from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.clusters import ClusterError
from modelfleet.clusters.objects import WORKLOAD_KINDS
from modelfleet.clusters.workloads import owner_selector, workload_namespace
from modelfleet.core.from_api import deployment_key, placements_from_status
from modelfleet.reconciler.ledger import PoolLedger
from modelfleet.reconciler.limits import gather, within
from modelfleet.reconciler.memory import ClientFor, ProviderRegistry, StockoutMemory
from modelfleet.reconciler.outcome import EventRecord, FinalizeOutcome, PassLog
from modelfleet.reconciler.pools import PoolSettings, size_pools
from modelfleet.reconciler.snapshot import seed_ledger


async def finalize(
    md: ModelDeployment,
    *,
    fleet: Sequence[FleetCluster],
    others: Sequence[ModelDeployment],
    client_for: ClientFor,
    providers: ProviderRegistry,
    ledger: PoolLedger,
    stockouts: StockoutMemory,
    now: datetime,
    cluster_timeout: float | None,
    pool_settings: PoolSettings,
) -> FinalizeOutcome:
    """Remove ``md``'s workloads everywhere and release its pools. Idempotent."""
    namespace = workload_namespace(md)
    selector = owner_selector(name=md.metadata.name, namespace=namespace)
    abandon_raw = md.metadata.annotations.get(labels.ABANDON_CLUSTERS, "")
    abandon = {a.strip() for a in abandon_raw.split(",") if a.strip()}
    pending: list[str] = []
    abandoned: list[str] = []
    events: list[EventRecord] = []

    async def clean(cluster: FleetCluster) -> None:
        name = cluster.metadata.name
        try:
            async with within(cluster_timeout):
                client = await client_for(cluster)
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

    await gather(*(clean(c) for c in fleet))
    # Release: the pools it booked shrink to what every other deployment books, at once
    # (the scale-in delay keeps nodes warm for the living; a deletion stops the bill).
    key = deployment_key(md)
    seed_ledger(ledger, [o for o in others if deployment_key(o) != key])
    ledger.seed(key, placements_from_status(md))
    released = ledger.release(key)
    if released:
        log = PassLog()
        await size_pools(
            released,
            waiting=set(),
            by_name={c.metadata.name: c for c in fleet},
            ledger=ledger,
            providers=providers,
            stockouts=stockouts,
            log=log,
            now=now,
            settings=replace(pool_settings, scale_in_delay_seconds=0.0),
            client_for=client_for,
        )
        # Pools are garbage-collected later anyway; never block deletion on them.
        events.extend(
            EventRecord("Warning", "PoolReleaseFailed", e.message)
            for e in log.events
            if e.type == "Warning"
        )
    return FinalizeOutcome(
        done=not pending,
        pending=tuple(sorted(pending)),
        abandoned=tuple(sorted(abandoned)),
        events=tuple(events),
    )
