"""Node pool sizing: how many nodes each (cluster, instance type, capacity type) needs.

Placement says how many replicas go where; providers resize pools in nodes. A pool needs
``ceil(replicas / replicas_per_node)`` nodes for its planned replicas, and never fewer than
the replicas still running there need (make-before-break: a retiring replica keeps its node
until its replacement is ready and the reconciler removes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelfleet.core.candidates import PoolKey
from modelfleet.core.result import NodePoolSize
from modelfleet.core.types import CapacityType


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """What sizing needs to know about a pool: its GPU, node price and packing."""

    gpu: str
    price: float
    replicas_per_node: int


def size_node_pools(
    planned: Mapping[PoolKey, int],
    running: Mapping[PoolKey, int],
    *,
    info: Mapping[PoolKey, PoolInfo],
) -> tuple[NodePoolSize, ...]:
    """Node pool sizes, sorted by pool key.

    ``planned``: replicas the plan puts on each pool; ``running``: replicas that keep running
    there meanwhile (retiring but not lost). Size = ceil(max(planned, planned + running) /
    replicas_per_node). Pools with neither get no entry (the reconciler scales those to 0).
    Pools missing from ``info`` are skipped: their offering no longer exists.
    """
    out: list[NodePoolSize] = []
    for key in sorted(set(planned) | set(running)):
        pool = info.get(key)
        if pool is None:
            continue
        replicas = planned.get(key, 0) + running.get(key, 0)
        if replicas <= 0:
            continue
        nodes = -(-replicas // pool.replicas_per_node)
        capacity_type: CapacityType = "Spot" if key[2] == "Spot" else "OnDemand"
        out.append(NodePoolSize(key[0], key[1], pool.gpu, capacity_type, nodes, pool.price))
    return tuple(out)
