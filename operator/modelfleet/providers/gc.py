"""Orphan node pool garbage collection, the same for every provider (pure).

A GPU pool that no deployment needs any more still costs money per node-hour, so it must
go; but a pool can look unneeded for a moment (a deployment being re-planned, a reconcile
that failed half-way), and deleting and re-creating a pool takes minutes. So, like
Karpenter's GC of untracked instances but gentler: an unneeded managed pool is first scaled
to zero nodes (cheap, instantly reversible), and deleted only once it has been unneeded for
a grace period. Pools without modelfleet's ownership tag are never touched. The caller (the
operator loop's pool upkeep, which knows the needed pools from the pool ledger) keeps
``orphan_since`` in memory between runs and passes ``now``; after a restart the clock starts
over, which only delays a collection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelfleet import labels
from modelfleet.core.types import Offering
from modelfleet.providers.base import NodePool, PoolSpec


@dataclass(frozen=True)
class GcActions:
    """What to do with orphan pools this run, and the orphan clock to keep for the next."""

    scale_to_zero: tuple[NodePool, ...] = ()
    """Orphans within the grace period that still have desired nodes."""
    delete: tuple[NodePool, ...] = ()
    """Orphans past the grace period (not already Deleting)."""
    orphan_since: Mapping[str, datetime] = field(default_factory=dict)
    """Pool name -> when it was first seen unneeded, for every current orphan (only)."""


def is_managed(pool: NodePool) -> bool:
    """True for pools modelfleet created: ``managed`` and tagged ``modelfleet.io/managed``."""
    return pool.managed and pool.tags.get(labels.MANAGED) == "true"


def plan_orphan_gc(
    pools: Iterable[NodePool],
    needed_pool_names: set[str],
    *,
    orphan_since: Mapping[str, datetime],
    now: datetime,
    grace: timedelta,
) -> GcActions:
    """Decide which unneeded managed pools to scale to zero and which to delete.

    ``pools``: what ``list_pools`` returned; ``needed_pool_names``: names of pools the plan
    uses (the ``name`` of what ``ensure_pool`` returned this run). A managed pool not in
    ``needed_pool_names`` is an orphan since ``orphan_since[name]`` (or ``now`` when first
    seen). It is deleted once ``now - since >= grace``; before that it is scaled to zero
    if it has desired nodes. Pools already Deleting get no action but keep their clock.
    A pool that is needed again, or gone, leaves the returned ``orphan_since``.
    Unmanaged pools are ignored entirely.
    """
    scale: list[NodePool] = []
    delete: list[NodePool] = []
    since_map: dict[str, datetime] = {}
    for pool in sorted(pools, key=lambda p: p.name):
        if not is_managed(pool) or pool.name in needed_pool_names:
            continue
        since = min(orphan_since.get(pool.name, now), now)
        since_map[pool.name] = since
        if pool.state == "Deleting":
            continue
        if now - since >= grace:
            delete.append(pool)
        elif pool.desired_nodes > 0:
            scale.append(pool)
    return GcActions(scale_to_zero=tuple(scale), delete=tuple(delete), orphan_since=since_map)


def zero_size_spec(pool: NodePool) -> PoolSpec:
    """A PoolSpec that scales ``pool`` to zero through ``ensure_pool``.

    Every provider names pools from ``pool_id(cluster, instance type, capacity type)``, so
    the spec rebuilt from the pool's tags addresses the same pool. Raises ``ValueError``
    for a pool without the ``modelfleet.io/cluster`` tag (not one modelfleet created).
    """
    cluster = pool.tags.get(labels.CLUSTER)
    if not cluster:
        raise ValueError(f"pool {pool.name} has no {labels.CLUSTER} tag")
    offering = Offering(
        gpu=pool.gpu or "unknown",
        gpu_memory_gib=0.0,
        gpus_per_node=1,
        instance_type=pool.instance_type,
        on_demand_per_hour=None,
    )
    return PoolSpec(cluster=cluster, offering=offering, capacity_type=pool.capacity_type, nodes=0)
