"""Saturation: scale up on the engines' own load signals before latency breaks.

Latency percentiles move late: an engine's time to first token stays flat until its running
batch or its KV cache is nearly full, then climbs steeply. The engines report how full they
are directly (vLLM ``kv_cache_usage_perc``, ``num_requests_running``,
``num_requests_waiting``; the other engines' equivalents in docs/metrics.md), so this rule
reads those and raises the replica count while the latency signals still look fine. It is
the reactive half of the autoscaler (docs/decisions.md, "Saturation"); the predictive half
and the latency ratios live in ``core.autoscale``, which calls ``saturation_floor``.

Sources for the rule: llm-d's workload-variant autoscaler, whose saturation analyzer
judges replicas by KV-cache utilisation and queue length (defaults: a replica is saturated
at KV use >= 0.80 or 5 queued requests, scale-up when the average spare KV capacity drops
below 0.1) and does not scale a variant up again while its new replicas are pending; and
NVIDIA Dynamo's load-based planner, which scales decode workers on the average KV-cache
utilisation of the workers and prefill workers on their queue, and blocks further
adjustment while workers are being added. This rule differs in two ways: it sizes the
step (proportional, like the HPA) instead of adding one replica per interval, and it
counts replicas on their way toward the capacity (HPA semantics) instead of blocking.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelfleet.core.types import PlannerSettings


@dataclass(frozen=True, slots=True)
class Saturation:
    """The saturation rule's answer: at least ``replicas`` replicas, and why."""

    replicas: int
    """Floor on the desired replicas (>= the current desired count: never a scale-down)."""
    why: str
    """One line for the decision's reason."""


def saturation_floor(
    *,
    kv_cache: float | None,
    queue: float | None,
    running: float | None,
    ready: int | None,
    current: int,
    settings: PlannerSettings,
) -> Saturation | None:
    """The replicas the engines' saturation signals ask for, or None when not saturated.

    Inputs are fleet-wide means over the **ready** replicas (``core.autoscale.Signals``):
    ``kv_cache`` KV-cache use 0..1, ``queue`` waiting requests, ``running`` requests in
    the running batch; ``ready`` ready replicas; ``current`` the desired count now
    (ready plus placed-but-not-ready replicas). ``None`` means missing or stale.

    Rule (settings ``kv_cache_threshold`` T, ``kv_cache_target`` K,
    ``saturation_queue_per_replica`` Q):

    - queue growth ``g = (running + queue) / running`` when ``queue > Q`` and ``running``
      is known and > 0 (the batch the waiting requests would need on top of the running
      one), else 1;
    - KV-saturated when ``kv_cache > T``: need ``ceil(ready x kv_cache x g / K)``, the
      replicas over which the same load (running plus waiting) projects to at most K;
    - queue-saturated when ``g > 1``: need ``ceil(ready x g)``, the replicas whose batches
      at today's size hold the waiting requests too (the case where the engine's
      concurrency limit, not its KV cache, is full);
    - saturated: ``Saturation(max(current, need))``. Replicas on their way count toward
      the need: a need already covered by ``current`` holds (no compounding while new
      replicas start). The floor is never below ``current``, so a saturated fleet is not
      scaled down by the other rules either.
    - not saturated, no ready replica, or missing data: None. Low KV use is never a
      reason to scale down, and missing data never changes anything.

    The projection is proportional, the safe side for scale-up: spreading the load over
    more replicas shortens each step, so the batch (and its KV use) falls more than
    proportionally.
    """
    if not ready or ready <= 0 or current <= 0:
        return None
    growth = 1.0
    if (
        queue is not None
        and running is not None
        and running > 0
        and queue > settings.saturation_queue_per_replica
    ):
        growth = (running + queue) / running
    needs: list[tuple[int, str]] = []
    if kv_cache is not None and kv_cache > settings.kv_cache_threshold:
        projected = kv_cache * growth
        need = math.ceil(ready * projected / settings.kv_cache_target - 1e-9)
        extra = f" with {queue:.3g} waiting per replica" if growth > 1.0 else ""
        needs.append(
            (
                need,
                f"KV cache {kv_cache:.0%} used{extra} on {ready} ready replica(s) "
                f"(saturation above {settings.kv_cache_threshold:.0%}): {need} keep it "
                f"at or below {settings.kv_cache_target:.0%}",
            )
        )
    if growth > 1.0 and queue is not None and running is not None:
        need = math.ceil(ready * growth - 1e-9)
        needs.append(
            (
                need,
                f"{queue:.3g} requests waiting per ready replica beside {running:.3g} "
                f"running (saturation above {settings.saturation_queue_per_replica:g} "
                f"waiting) on {ready} ready replica(s): {need} hold them",
            )
        )
    if not needs:
        return None
    need, why = max(needs, key=lambda n: n[0])
    if need <= current:
        on_way = max(0, current - ready)
        return Saturation(
            current, f"saturated: {why}; {current} desired ({on_way} on their way) cover it"
        )
    return Saturation(need, f"saturated: {why}")
