"""Exact minimum-cost covering with whole nodes: the arithmetic under placement.

Given options "a node of this kind holds ``slots`` replicas, costs ``price`` per hour, and at
most ``max_nodes`` of them can be had", choose node counts that hold at least R replicas at
the least total price. Because nodes are paid whole, per-replica-price greedy is wrong (one
replica on an 8-GPU node at $98 loses to a 1-GPU node at $11), so this is a small bounded
knapsack solved exactly by dynamic programming over the replica count.

It stays fast because options are pruned first without losing optimality: a node holding
``s >= R`` slots is worth exactly R, and among options of equal effective size nodes are
interchangeable, so only the cheapest ones up to ``ceil(R / size)`` nodes can appear in an
optimum. Fleets have few distinct sizes (1, 2, 4, 8 replicas per node), so a few options
survive whatever the fleet size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

INF = float("inf")


@dataclass(frozen=True, slots=True)
class Option:
    """``max_nodes`` nodes (None: unlimited) of ``slots`` replicas each at ``price`` per node."""

    slots: int
    price: float
    max_nodes: int | None


@dataclass(frozen=True, slots=True)
class Cover:
    """Nodes chosen per option (same order as the input) and the replicas they hold."""

    nodes: tuple[int, ...]
    covered: int
    cost: float


def cheapest_cover(replicas: int, options: Sequence[Option]) -> Cover:
    """The cheapest node counts holding ``replicas`` replicas (exact optimum).

    When the options cannot hold them all, the cheapest way to hold as many as possible.
    Ties go to the option listed first, so callers control determinism by ordering.
    Runs in O(R * sum(log nodes)) over the pruned options; R is ``replicas``.
    """
    n_opt = len(options)
    if replicas <= 0 or n_opt == 0:
        return Cover((0,) * n_opt, 0, 0.0)
    target = replicas
    # Prune: per effective size, keep the cheapest options until they can fill the target.
    by_size: dict[int, list[tuple[float, int, int]]] = {}
    for i, opt in enumerate(options):
        size = min(opt.slots, target)
        if size <= 0:
            continue
        need = -(-target // size)
        cap = need if opt.max_nodes is None else min(opt.max_nodes, need)
        if cap > 0:
            by_size.setdefault(size, []).append((opt.price, i, cap))
    items: list[tuple[int, int, int, float]] = []  # (option, nodes, slots, cost)
    for size, group in by_size.items():
        group.sort()
        need = -(-target // size)
        have = 0
        for price, i, cap in group:
            if have >= need:
                break
            take = min(cap, need - have)
            have += take
            chunk = 1
            while take > 0:  # binary splitting of a bounded count into 0/1 items
                k = min(chunk, take)
                items.append((i, k, k * size, k * price))
                take -= k
                chunk *= 2
    items.sort(key=lambda it: (it[3] / it[2], it[0], it[1]))

    dp = [INF] * (target + 1)
    dp[0] = 0.0
    parents: list[list[int]] = []
    for _, _, size, cost in items:
        par = [-1] * (target + 1)
        for r in range(target - 1, -1, -1):
            base = dp[r]
            if base == INF:
                continue
            nr = r + size
            if nr > target:
                nr = target
            val = base + cost
            if val < dp[nr] - 1e-12:
                dp[nr] = val
                par[nr] = r
        parents.append(par)

    best = target
    while best > 0 and dp[best] == INF:
        best -= 1
    nodes = [0] * n_opt
    r = best
    for idx in range(len(items) - 1, -1, -1):
        src = parents[idx][r]
        if src >= 0:
            nodes[items[idx][0]] += items[idx][1]
            r = src
    return Cover(tuple(nodes), best, dp[best] if best else 0.0)


def brute_force_cover(replicas: int, options: Sequence[Option]) -> float:
    """Reference optimum by enumerating every node count (tests only; tiny inputs).

    Returns the least cost holding ``replicas`` replicas, INF when impossible.
    """
    best = INF
    bounds = [
        (o.max_nodes if o.max_nodes is not None else math.ceil(replicas / max(1, o.slots)))
        for o in options
    ]

    def walk(i: int, held: int, cost: float) -> None:
        nonlocal best
        if cost >= best:
            return
        if held >= replicas:
            best = cost
            return
        if i == len(options):
            return
        for k in range(bounds[i] + 1):
            walk(i + 1, held + k * options[i].slots, cost + k * options[i].price)

    walk(0, 0, 0.0)
    return best
