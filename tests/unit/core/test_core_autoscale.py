"""Autoscaling on SLOs (docs/decisions.md §1): proportional rule, tolerance, panic,
stabilisation windows, hold on missing data, scale to and from zero."""

from __future__ import annotations

import pytest
from core_builders import NOW, ago, cluster, existing, offering, run, signals, spec

from modelfleet.core import ClusterSignals, DecisionState

FLEET = [cluster("a", offering(od=1.0))]
SLO = {"ttft_p95_ms": 200.0, "tpot_p95_ms": 50.0, "max_queue_per_replica": 4.0}


def desired(
    current: int,
    sig: ClusterSignals | None,
    *,
    state: DecisionState | None = None,
    lo: int = 1,
    hi: int = 16,
    **scaling: object,
) -> int:
    """Desired replicas for a deployment running ``current`` replicas in cluster a."""
    s = spec(lo, hi, scaling={**SLO, **scaling})
    st = state or DecisionState(last_desired=current)
    placements = (existing("a", replicas=current),) if current else ()
    metrics = signals(a=sig) if sig else None
    return run(s, FLEET, placements=placements, metrics=metrics, state=st).desired_replicas


def sig(
    ttft: float = 100, tpot: float = 20, queue: float = 1, rate: float = 5, ready: int = 4
) -> ClusterSignals:
    return ClusterSignals(ready, ttft, tpot, queue, rate)


@pytest.mark.parametrize(
    ("current", "signal", "expected", "why"),
    [
        (4, sig(ttft=210), 4, "5% over target: inside the 10% tolerance"),
        (4, sig(ttft=300), 6, "1.5x TTFT target -> ceil(4 * 1.5)"),
        (4, sig(tpot=65), 6, "worst signal wins: TPOT at 1.3x -> ceil(5.2)"),
        (4, sig(queue=6), 6, "queue per replica 1.5x"),
        (4, sig(ttft=900), 16, "panic at 4.5x: ceil(18) clamped to max 16"),
        (4, sig(ttft=100, tpot=10, queue=0.5), 4, "scale-down held by the 300 s window"),
        (4, None, 4, "no metrics: hold"),
        (2, sig(ttft=100), 2, "at the minimum already"),
    ],
)
def test_proportional_rule(
    current: int, signal: ClusterSignals | None, expected: int, why: str
) -> None:
    assert desired(current, signal, lo=2) == expected, why


def test_scale_down_after_the_window_to_highest_recent_recommendation() -> None:
    history = ((ago(400), 8), (ago(200), 3), (ago(100), 2))
    state = DecisionState(recommendations=history, last_desired=4)
    # The 8 is older than 300 s; the highest recommendation in the window is now the new one
    # (ceil(4 * 0.5) = 2) or 3: stabilised at 3.
    assert desired(4, sig(ttft=100, tpot=10, queue=0.5), state=state) == 3
    no_window = desired(4, sig(ttft=100, tpot=10, queue=0.5), down_stabilization_seconds=0)
    assert no_window == 2


def test_missing_signal_never_scales_down() -> None:
    partial = ClusterSignals(4, ttft_p95_ms=50, tpot_p95_ms=None, queue_per_replica=0.1)
    state = DecisionState(last_desired=4)
    assert desired(4, partial, state=state, down_stabilization_seconds=0) == 4
    # ... but may scale up.
    assert desired(4, ClusterSignals(4, ttft_p95_ms=320), state=state) == 7


def test_stale_metrics_count_as_missing() -> None:
    stale = ClusterSignals(4, 50, 10, 0.1, 1.0, observed_at=ago(600))
    assert desired(4, stale, down_stabilization_seconds=0) == 4
    assert desired(4, ClusterSignals(4, 900, 10, 0.1, 1.0, observed_at=ago(600))) == 4


def test_up_stabilisation_takes_lowest_recent_recommendation_unless_panic() -> None:
    state = DecisionState(recommendations=((ago(30), 4),), last_desired=4)
    assert desired(4, sig(ttft=300), state=state, up_stabilization_seconds=60) == 4
    assert desired(4, sig(ttft=500), state=state, up_stabilization_seconds=60) == 10


def test_scale_to_zero_after_idle_and_back_on_any_request() -> None:
    idle = ClusterSignals(1, None, None, 0.0, 0.0)
    s_kw = {"scale_to_zero_after_seconds": 600}
    first = DecisionState(last_desired=1)
    assert desired(1, idle, state=first, lo=0, **s_kw) == 1  # idle timer starts now
    waited = DecisionState(last_desired=1, idle_since=ago(700))
    assert desired(1, idle, state=waited, lo=0, **s_kw) == 0
    busy = ClusterSignals(None, None, None, None, 0.5)
    zero = DecisionState(last_desired=0, idle_since=ago(900))
    assert desired(0, busy, state=zero, lo=0, **s_kw) == 1
    assert desired(0, idle, state=zero, lo=0, **s_kw) == 0
    # Missing request rate neither starts nor finishes the idle timer.
    assert desired(1, ClusterSignals(1, 10, 5, 0.0, None), state=waited, lo=0, **s_kw) == 1


def test_new_deployment_starts_at_min_and_state_records_history() -> None:
    p = run(spec(3, 8, scaling=SLO), FLEET)
    assert p.desired_replicas == 3
    assert p.state.last_desired == 3
    assert p.state.recommendations == ((NOW, 3),)
