"""Saturation (docs/decisions.md, "Saturation"): the engines' KV-cache use, queue and running
batch raise the replica count before latency breaks, count replicas on their way, never
scale down, and do nothing on missing data. First the pure rule, table-driven, then the
rule inside ``core.plan`` (aggregation over clusters, staleness, the other rules)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from core_builders import NOW, cluster, existing, offering, run, signals, spec

from modelfleet.core import ClusterSignals, DecisionState
from modelfleet.core.planner import Plan
from modelfleet.core.saturation import saturation_floor
from modelfleet.core.types import DEFAULT_SETTINGS

S = DEFAULT_SETTINGS  # threshold 0.85, target 0.75, queue 2 per replica


@pytest.mark.parametrize(
    ("kv", "queue", "running", "ready", "current", "expected", "why"),
    [
        (0.80, 0.0, 100.0, 4, 4, None, "under the 0.85 threshold: not saturated"),
        (0.85, 0.0, 100.0, 4, 4, None, "at the threshold: not above it"),
        (0.90, 0.0, 100.0, 4, 4, 5, "ceil(4 x 0.90 / 0.75) = ceil(4.8)"),
        (1.00, 0.0, 100.0, 4, 4, 6, "ceil(4 x 1.0 / 0.75) = ceil(5.33)"),
        (0.90, 0.0, 100.0, 4, 6, 6, "5 needed, 2 on their way: 6 cover it, hold"),
        (0.90, 0.0, 100.0, 4, 5, 5, "5 needed, 1 on its way: hold (no compounding)"),
        (0.99, 0.0, 100.0, 4, 5, 6, "ceil(5.28) = 6 > 5 even with the one on its way"),
        (0.90, 1.0, 100.0, 4, 4, 5, "1 waiting per replica is under the queue threshold"),
        (0.90, 25.0, 100.0, 4, 4, 6, "KV x 1.25 growth: ceil(4 x 1.125 / 0.75) = 6"),
        (0.50, 50.0, 100.0, 4, 4, 6, "KV fine, queue: ceil(4 x 150/100) = 6 (batch limit)"),
        (0.50, 3.0, 256.0, 10, 10, 11, "ceil(10 x 259/256) = 11"),
        (None, 50.0, 100.0, 4, 4, 6, "no KV data (TGI): the queue rule alone"),
        (0.50, 50.0, None, 4, 4, None, "queue without running data: cannot size it"),
        (0.50, 50.0, 0.0, 4, 4, None, "nothing running: cannot size it"),
        (None, None, None, 4, 4, None, "missing data: no opinion"),
        (0.95, 0.0, 100.0, 0, 2, None, "no ready replica: nothing measured"),
        (0.95, 0.0, 100.0, None, 2, None, "ready count unknown"),
        (0.95, 0.0, 100.0, 2, 0, None, "at zero replicas: scale from zero's business"),
        (0.05, 0.0, 1.0, 8, 8, None, "idle: never a reason to scale down"),
    ],
)
def test_saturation_rule(
    kv: float | None,
    queue: float | None,
    running: float | None,
    ready: int | None,
    current: int,
    expected: int | None,
    why: str,
) -> None:
    got = saturation_floor(
        kv_cache=kv, queue=queue, running=running, ready=ready, current=current, settings=S
    )
    assert (got.replicas if got else None) == expected, why
    if got is not None:
        assert got.replicas >= current, "the floor is never a scale-down"
        assert got.why.startswith("saturated: ")


def test_thresholds_are_settings() -> None:
    strict = replace(S, kv_cache_threshold=0.6, kv_cache_target=0.5)
    got = saturation_floor(
        kv_cache=0.7, queue=0.0, running=10.0, ready=3, current=3, settings=strict
    )
    assert got is not None and got.replicas == 5  # ceil(3 x 0.7 / 0.5) = ceil(4.2)
    assert (
        saturation_floor(kv_cache=0.7, queue=0.0, running=10.0, ready=3, current=3, settings=S)
        is None
    )


# --- Inside core.plan ----------------------------------------------------------------------

FLEET = [cluster("a", offering(od=1.0)), cluster("b", offering(od=1.0))]
SLO = {"ttft_p95_ms": 200.0, "tpot_p95_ms": 50.0, "max_queue_per_replica": 4.0}


def calm(
    ready: int, *, kv: float | None, running: float | None = 50.0, at_ago: float = 0.0
) -> ClusterSignals:
    """Latency well inside its targets (TTFT 0.75x, TPOT 0.6x), no queue."""
    return ClusterSignals(
        ready_replicas=ready,
        ttft_p95_ms=150.0,
        tpot_p95_ms=30.0,
        queue_per_replica=0.0,
        request_rate=10.0,
        observed_at=NOW - timedelta(seconds=at_ago),
        kv_cache_per_replica=kv,
        running_per_replica=running,
    )


def plan_for(
    current: int,
    placed: dict[str, tuple[int, int]],
    by_cluster: dict[str, ClusterSignals],
    *,
    state: DecisionState | None = None,
    **scaling: object,
) -> Plan:
    """Plan with ``placed`` = cluster -> (replicas, ready) and ``current`` desired."""
    s = spec(1, 16, scaling={**SLO, **scaling})
    placements = tuple(existing(c, replicas=n, ready=r) for c, (n, r) in placed.items())
    return run(
        s,
        FLEET,
        placements=placements,
        metrics=signals(**by_cluster),
        state=state or DecisionState(last_desired=current),
    )


def test_kv_saturation_scales_up_while_latency_is_still_within_target() -> None:
    p = plan_for(4, {"a": (4, 4)}, {"a": calm(4, kv=0.95)})
    assert p.desired_replicas == 6  # ceil(4 x 0.95 / 0.75) = ceil(5.07)
    assert p.changes and "KV cache 95%" in p.changes[0].message
    assert p.signals is not None and p.signals.kv_cache_per_replica == pytest.approx(0.95)
    # The same latency without the KV signal: no scale-up.
    assert plan_for(4, {"a": (4, 4)}, {"a": calm(4, kv=None)}).desired_replicas <= 4


def test_kv_use_is_averaged_over_ready_replicas_across_clusters() -> None:
    # 3 ready at 0.95 and 1 ready at 0.55: weighted mean 0.85, not above the threshold.
    p = plan_for(4, {"a": (3, 3), "b": (1, 1)}, {"a": calm(3, kv=0.95), "b": calm(1, kv=0.55)})
    assert p.signals is not None
    assert p.signals.kv_cache_per_replica == pytest.approx(0.85)
    assert p.desired_replicas <= 4
    # 3 ready at 0.95 and 1 at 0.75: mean 0.90 -> ceil(4 x 0.9 / 0.75) = ceil(4.8) = 5.
    p = plan_for(4, {"a": (3, 3), "b": (1, 1)}, {"a": calm(3, kv=0.95), "b": calm(1, kv=0.75)})
    assert p.desired_replicas == 5


def test_replicas_on_their_way_count_toward_the_need_and_nothing_compounds() -> None:
    # Desired 6: 4 ready, 2 starting. Need ceil(4 x 0.9 / 0.75) = 5 <= 6: hold at 6 over
    # several passes while the starting ones stay not ready.
    state = DecisionState(last_desired=6)
    for step in range(5):
        p = plan_for(6, {"a": (6, 4)}, {"a": calm(4, kv=0.9)}, state=state)
        assert p.desired_replicas == 6, step
        state = replace(p.state, last_desired=p.desired_replicas)
    # Fuller still on the same 4 ready: ceil(4 x 1.0 / 0.75) = 6 is still covered; the
    # queue on top (running 50, 50 waiting) doubles the need: ceil(4 x 2) = 8.
    full = replace(calm(4, kv=1.0), queue_per_replica=50.0)
    assert plan_for(6, {"a": (6, 4)}, {"a": calm(4, kv=1.0)}, state=state).desired_replicas == 6
    assert plan_for(6, {"a": (6, 4)}, {"a": full}, state=state).desired_replicas >= 8


def test_saturation_blocks_a_scale_down_the_other_rules_would_make() -> None:
    # Latency far under target and a learned capacity saying 1 replica suffices, but the
    # engines report 90% KV use on the 4 ready: no scale-down; with low KV use it goes down.
    state = DecisionState(last_desired=4, capacity_per_replica=50.0, capacity_bounded_at=NOW)
    low = ClusterSignals(
        4,
        50.0,
        10.0,
        0.0,
        10.0,
        observed_at=NOW,
        kv_cache_per_replica=0.2,
        running_per_replica=5.0,
    )
    sat = replace(low, kv_cache_per_replica=0.9)
    down = plan_for(4, {"a": (4, 4)}, {"a": low}, state=state, down_stabilization_seconds=0)
    held = plan_for(4, {"a": (4, 4)}, {"a": sat}, state=state, down_stabilization_seconds=0)
    assert down.desired_replicas < 4
    assert held.desired_replicas >= 4


def test_stale_or_missing_saturation_data_changes_nothing() -> None:
    stale = plan_for(4, {"a": (4, 4)}, {"a": calm(4, kv=0.99, at_ago=600.0)})
    assert stale.desired_replicas == 4
    assert stale.signals is not None and stale.signals.kv_cache_per_replica is None
    # A cluster without KV data does not dilute the mean of those with it.
    p = plan_for(4, {"a": (4, 4), "b": (2, 2)}, {"a": calm(4, kv=0.95), "b": calm(2, kv=None)})
    assert p.signals is not None and p.signals.kv_cache_per_replica == pytest.approx(0.95)
