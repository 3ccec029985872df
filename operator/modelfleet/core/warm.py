"""Warm nodes: new replicas go first onto Ready GPU nodes that no deployment books.

A new replica on a new node is ready after the node's provisioning plus the model start
(p50 4-5.5 min + 2.5 min in docs/simulation.md's world); on a node that is already Ready it
is ready after the model start alone. Such nodes exist: a pool keeps Ready nodes that a
scale-in left unbooked for its scale-in delay (10 min, like cluster-autoscaler's
``scale-down-unneeded-time``), and every deployment whose GPU fits shares the pool (chat
scaling in after its peak leaves H100 nodes that code can use). Those nodes are paid for
until the delay ends whether anything runs on them or not, so taking them is both the
fastest and, for those minutes, the cheapest capacity there is.

The placement's ranking is cost per unit of capacity (docs/decisions.md section 2), which
knows nothing of readiness. ``warm_sticky`` runs before it: when the plan needs more
replicas than it holds, it counts the free slots of warm nodes on pools the deployment may
grow on as if replicas already ran there (the placement keeps what runs: "sticky"), the
cheapest such pool first, and only pools of the cheapest growth candidate's GPU model
within ``price_factor`` of its price per unit of capacity, so a warm on-demand node at 2.5x
the spot price is not taken for good to win two minutes, and a warm node of another GPU
model never adds replicas the deployment is not sized for (a warm L40S for a deployment
on A100s holds half the capacity per GPU, and scale-in, dearest per replica first, would
keep the cheaper L40S replicas and remove the A100s). Stickiness keeps a replica where it was placed; a warm
pool dearer than the cheapest is therefore kept after the rush too (at most
``price_factor`` dearer per unit of capacity).

``warm_pools`` says which pools' warm nodes a deployment would take at all: a Ready idle
node on a pool no deployment would take (a dearer on-demand pool after a move back to spot,
a GPU model no deployment grows on first) is never warm capacity, only billed, and the pools
stage releases it without the scale-in delay (docs/decisions.md section 6).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelfleet.core import reasons as R
from modelfleet.core.candidates import Candidate, PoolKey
from modelfleet.core.reasons import Reason


def warm_sticky(
    sticky: Mapping[PoolKey, int],
    *,
    wanted: int,
    idle_nodes: Mapping[PoolKey, int],
    growth: Sequence[Candidate],
    price_factor: float,
) -> tuple[dict[PoolKey, int], tuple[Reason, ...]]:
    """``sticky`` (replicas the placement keeps, per pool) with the shortfall to ``wanted``
    (main + standby replicas) put on warm nodes first, and a reason per pool used.

    - ``idle_nodes``: Ready nodes per pool that no deployment books (the pool's scale-in
      delay keeps them); a node holds ``replicas_per_node`` replicas of this deployment.
    - ``growth``: the pools the deployment may grow on, cheapest per unit of capacity
      first (``Candidate.effective``); warm nodes elsewhere are not used.
    - a pool is used only if it offers the cheapest growth candidate's GPU model and its
      ``effective`` price is at most ``price_factor`` x that candidate's;
      ``price_factor <= 0`` turns warm placement off.
    - never more than the shortfall ``wanted - sum(sticky)``; nothing changes without one.
    """
    kept = dict(sticky)
    short = wanted - sum(kept.values())
    if short <= 0 or not idle_nodes or not growth or price_factor <= 0:
        return kept, ()
    ceiling = growth[0].effective * price_factor
    gpu = growth[0].gpu
    reasons: list[Reason] = []
    for c in growth:
        if short <= 0:
            break
        free = idle_nodes.get(c.key, 0) * c.replicas_per_node
        if free <= 0 or c.gpu != gpu or c.effective > ceiling + 1e-12:
            continue
        take = min(free, short)
        kept[c.key] = kept.get(c.key, 0) + take
        short -= take
        reasons.append(
            Reason(
                R.WARM_NODES,
                f"{take} new replica(s) on Ready idle {c.gpu} node(s) of {c.cluster} "
                f"{c.instance_type} {c.capacity_type.lower()} (model start only, no node "
                "to provision)",
                cluster=c.cluster,
                offering=c.instance_type,
                capacity_type=c.capacity_type,
            )
        )
    return kept, tuple(reasons)


def warm_pools(growth: Sequence[Candidate], *, price_factor: float) -> frozenset[PoolKey]:
    """The pools whose Ready idle nodes this deployment's scale-up could take: those
    ``warm_sticky`` would use with ``price_factor`` (the cheapest growth candidate's GPU
    model, ``effective`` price at most ``price_factor`` x its), plus the cheapest candidate
    itself (a scale-up grows there, taking its idle nodes by size alone).

    ``growth``: as for ``warm_sticky``, cheapest per unit of capacity first; empty: no pool.
    ``price_factor <= 0`` (warm placement off): every growth pool, since a scale-up's
    placement may grow on any of them and take what its pool holds.
    """
    if not growth:
        return frozenset()
    if price_factor <= 0:
        return frozenset(c.key for c in growth)
    ceiling = growth[0].effective * price_factor
    gpu = growth[0].gpu
    taken = {c.key for c in growth if c.gpu == gpu and c.effective <= ceiling + 1e-12}
    return frozenset({growth[0].key, *taken})
