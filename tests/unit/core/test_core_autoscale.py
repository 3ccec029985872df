"""Autoscaling on SLOs (docs/decisions.md §1): proportional scale-up, load-proportional
scale-down on a learned per-replica capacity, tolerance, panic, stabilisation windows, hold on
missing data, scale to and from zero."""

from __future__ import annotations

import pytest
from core_builders import NOW, ago, cluster, existing, offering, run, signals, spec

from modelfleet.core import ClusterSignals, DecisionState
from modelfleet.core.planner import Plan

FLEET = [cluster("a", offering(od=1.0))]
SLO = {"ttft_p95_ms": 200.0, "tpot_p95_ms": 50.0, "max_queue_per_replica": 4.0}


def planned(
    current: int,
    sig: ClusterSignals | None,
    *,
    state: DecisionState | None = None,
    lo: int = 1,
    hi: int = 16,
    **scaling: object,
) -> Plan:
    """The plan for a deployment running ``current`` replicas in cluster a."""
    s = spec(lo, hi, scaling={**SLO, **scaling})
    st = state or DecisionState(last_desired=current)
    placements = (existing("a", replicas=current),) if current else ()
    metrics = signals(a=sig) if sig else None
    return run(s, FLEET, placements=placements, metrics=metrics, state=st)


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
    return planned(current, sig, state=state, lo=lo, hi=hi, **scaling).desired_replicas


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
        (4, sig(ttft=100, tpot=10, queue=0.5), 4, "0.5x, but 5 req/s demonstrably needs 4"),
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
    learned = {"capacity_per_replica": 4.0, "capacity_bounded_at": NOW}
    state = DecisionState(recommendations=history, last_desired=4, **learned)
    # 5 req/s over 4 req/s per replica at 80% needs ceil(1.56) = 2 now. The 8 is older than
    # 300 s; the highest recommendation in the window is 3: stabilised at 3.
    assert desired(4, sig(ttft=100, tpot=10, queue=0.5), state=state) == 3
    fresh = DecisionState(last_desired=4, **learned)
    no_window = desired(4, sig(ttft=100, tpot=10, queue=0.5), state=fresh, **NO_WINDOW)
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


NO_WINDOW = {"down_stabilization_seconds": 0}


def learned(capacity: float, *, current: int, age: float = 0) -> DecisionState:
    """State with a capacity bounded by a breach ``age`` seconds ago."""
    return DecisionState(
        last_desired=current, capacity_per_replica=capacity, capacity_bounded_at=ago(age)
    )


@pytest.mark.parametrize(
    ("current", "signal", "state", "expected", "why"),
    [
        # The simulator's oscillation: TTFT sits at its prefill floor (0.4x) at a load the
        # replicas need. The old rule cut 12 -> ceil(12 x 0.4) = 5 and the rest saturated.
        (12, sig(80, 20, 0.0, 60, 12), None, 10, "learns >= 5 req/s, unbounded: 12 - 2"),
        (12, sig(80, 20, 0.0, 60, 12), learned(6, current=12), 12, "60 / (6 x 0.8) = 13"),
        # Learned capacity sizes the fleet to the load, not to the latency ratio.
        (12, sig(80, 20, 0.0, 30, 12), learned(5, current=12), 8, "30 / (5 x 0.8) = 7.5"),
        (12, sig(80, 20, 0.0, 45, 12), learned(5, current=12), 12, "45 / 4 = 11.25 -> 12"),
        (
            20,
            sig(80, 20, 0.0, 40, 20),
            DecisionState(last_desired=20, capacity_per_replica=10),
            10,
            "unbounded lower bound already says 5: -50% cap",
        ),
        # Without a rate (or a capacity): a bounded step of max(1, 10%).
        (20, ClusterSignals(20, 80, 20, 0.0, None), None, 18, "20 - max(1, 2)"),
        (4, ClusterSignals(4, 80, 20, 0.0, None), learned(5, current=4), 3, "4 - max(1, 1)"),
        (20, sig(80, 20, 0.0, 0.0, 20), None, 18, "zero rate teaches no capacity"),
        # Never more than half in one reconcile, never below ceil(current x worst ratio).
        (16, sig(80, 10, 0.0, 8, 16), learned(10, current=16), 8, "wants 1: capped at -50%"),
        (16, sig(140, 10, 0.0, 8, 16), learned(10, current=16), 12, "ceil(16 x 0.7) = 12"),
        # Missing or stale data still holds, learned capacity or not.
        (16, ClusterSignals(16, 80, None, 0.0, 8), learned(10, current=16), 16, "no TPOT"),
        (
            16,
            ClusterSignals(16, 80, 10, 0.0, 8, observed_at=ago(600)),
            learned(10, current=16),
            16,
            "stale",
        ),
        (16, None, learned(10, current=16), 16, "no metrics"),
    ],
)
def test_load_proportional_scale_down(
    current: int,
    signal: ClusterSignals | None,
    state: DecisionState | None,
    expected: int,
    why: str,
) -> None:
    got = desired(current, signal, state=state, hi=32, **NO_WINDOW)
    assert got == expected, why


@pytest.mark.parametrize(
    ("signal", "state", "capacity", "why"),
    [
        (sig(80, 20, 0.0, 60, 12), None, 5.0, "first healthy look: R/n"),
        (sig(80, 20, 0.0, 84, 12), learned(6, current=12), 7.0, "healthy above it: raised"),
        (sig(80, 20, 0.0, 57.6, 12), learned(6, current=12, age=3600), 6.0, "sized by it"),
        (sig(80, 20, 0.0, 24, 12), learned(10, current=12), 10.0, "held above it: kept"),
        (sig(300, 20, 0.0, 60, 12), learned(8, current=12), 4.5, "breach: 0.9 x R/n"),
        (sig(300, 20, 0.0, 60, 12), learned(4, current=12), 4.0, "breach above it: kept"),
        (sig(300, 20, 0.0, 60, 12), None, 4.5, "breach with nothing learned"),
        (sig(210, 20, 0.0, 90, 12), learned(6, current=12), 6.0, "inside tolerance: kept"),
        (ClusterSignals(12, 80, None, 0, 90), learned(6, current=12), 6.0, "incomplete: kept"),
        (sig(80, 20, 0.0, None, 12), learned(6, current=12), 6.0, "no rate: kept"),
    ],
)
def test_capacity_learning(
    signal: ClusterSignals, state: DecisionState | None, capacity: float, why: str
) -> None:
    p = planned(12, signal, state=state, hi=32, **NO_WINDOW)
    assert p.state.capacity_per_replica == pytest.approx(capacity), why
    breach = signal.ttft_p95_ms is not None and signal.ttft_p95_ms > 220
    if breach:
        assert p.state.capacity_bounded_at == NOW, why
    else:
        assert p.state.capacity_bounded_at == (state.capacity_bounded_at if state else None)


def test_breach_lowers_capacity_then_scale_down_respects_it() -> None:
    # A slower image: 12 replicas breach TTFT (1.5x) at 60 req/s; the learned 8 drops to 4.5.
    p = planned(12, sig(300, 20, 0.0, 60, 12), state=learned(8, current=12), hi=32)
    assert p.desired_replicas == 18
    assert p.state.capacity_per_replica == pytest.approx(4.5)
    # Back within target on 18 at 60 req/s: 60 / (4.5 x 0.8) = 16.7 -> 17, not 60 / 6.4 = 10.
    after = DecisionState(last_desired=18, capacity_per_replica=4.5, capacity_bounded_at=NOW)
    assert desired(18, sig(80, 20, 0.0, 60, 18), state=after, hi=32, **NO_WINDOW) == 17


def test_a_cluster_without_metrics_never_reads_as_idle_for_scale_to_zero() -> None:
    """Replicas in clusters a and b; b's Prometheus is down (no signals), a carries no
    traffic. The summed rate of the clusters that answered is 0, but b may carry all the
    traffic: no scale to zero, and the idle timer neither starts nor finishes. It used to
    scale both clusters' replicas to 0 (docs/decisions.md, scale to zero)."""
    fleet = [cluster("a", offering(od=1.0)), cluster("b", offering(od=1.0))]
    s = spec(0, 8, scaling={**SLO, "scale_to_zero_after_seconds": 600})
    both = (existing("a", replicas=2), existing("b", replicas=2))
    idle_a = ClusterSignals(2, None, None, 0.0, 0.0)
    waited = DecisionState(last_desired=4, idle_since=ago(700))
    p = run(s, fleet, placements=both, metrics=signals(a=idle_a), state=waited)
    assert p.desired_replicas == 4
    assert p.state.idle_since == ago(700)  # kept: missing data does not stop it either
    new = DecisionState(last_desired=4)
    fresh = run(s, fleet, placements=both, metrics=signals(a=idle_a), state=new)
    assert fresh.state.idle_since is None  # not started on half the fleet's silence
    # Both clusters idle: the timer runs out and the deployment goes to zero.
    idle_b = ClusterSignals(2, None, None, 0.0, 0.0)
    p = run(s, fleet, placements=both, metrics=signals(a=idle_a, b=idle_b), state=waited)
    assert p.desired_replicas == 0
    # A request seen in a while b is silent still stops the timer.
    busy_a = ClusterSignals(2, None, None, 0.0, 0.3)
    p = run(s, fleet, placements=both, metrics=signals(a=busy_a), state=waited)
    assert p.desired_replicas == 4 and p.state.idle_since is None
