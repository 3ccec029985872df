"""Node pool sizing: how many nodes each (cluster, instance type, capacity type) needs.

Placement says how many replicas go where; providers resize pools in nodes. A pool needs
``ceil(replicas / replicas_per_node)`` nodes for its planned replicas, and never fewer than
the replicas still running there need (make-before-break: a retiring replica keeps its node
until its replacement is ready and the reconciler removes it).

Nor fewer than the deployment's replicas serving there now (Ready when the pass observed
them) need, whatever the plan says of them: a pool is resized by count, and the cloud
picks which node goes, so shrinking it while a serving pod still runs can kill that pod
(and the requests the router still sends it). A replica the plan drops (scale-in, moved
elsewhere, held by make-before-break until its replacement is Ready) is removed first, by
the reconciler's apply and retire stages; only a later pass, which no longer observes it,
lets its node go. The nodes of a pool are therefore only ever released after the pods on
them are gone (then after the reconciler's scale-in delay).
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
    serving: Mapping[PoolKey, int] | None = None,
) -> tuple[NodePoolSize, ...]:
    """Node pool sizes, sorted by pool key.

    ``planned``: replicas the plan puts on each pool; ``running``: replicas that keep running
    there meanwhile (retiring but not lost); ``serving``: the deployment's replicas Ready
    there now (on clusters not lost), which keep their nodes until they are removed. Size =
    ceil(max(planned + running, serving) / replicas_per_node). Pools with none of them get
    no entry (the reconciler scales those to 0). Pools missing from ``info`` are skipped:
    their offering no longer exists.
    """
    now_serving = serving or {}
    out: list[NodePoolSize] = []
    for key in sorted(set(planned) | set(running) | set(now_serving)):
        pool = info.get(key)
        if pool is None:
            continue
        replicas = max(planned.get(key, 0) + running.get(key, 0), now_serving.get(key, 0))
        if replicas <= 0:
            continue
        nodes = -(-replicas // pool.replicas_per_node)
        capacity_type: CapacityType = "Spot" if key[2] == "Spot" else "OnDemand"
        out.append(NodePoolSize(key[0], key[1], pool.gpu, capacity_type, nodes, pool.price))
    return tuple(out)
