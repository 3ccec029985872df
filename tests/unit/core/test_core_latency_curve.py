"""The latency-vs-load curve of a measured profile and the online correction it drives in
both directions (docs/decisions.md section 1, "The curve's correction"; NVIDIA Dynamo's
planner's correction factor).

The curve in these tests follows a known law, the step time of a continuous-batching
engine ``tpot(lam) = a / (1 - k lam)`` (docs/simulation.md), so the load a latency stands
for is known exactly: ``lam = (1 - a / tpot) / k``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from core_builders import cluster, existing, offering, run, signals, spec

from modelfleet.core import ClusterSignals, DecisionState
from modelfleet.core.autoscale import CORRECTION_BOUNDS, Signals, correct_profile
from modelfleet.core.latency_curve import (
    CurvePoint,
    curve_correction,
    curve_from,
    equivalent_load,
)
from modelfleet.core.profiles import CapacityProfile, Workload
from modelfleet.core.types import GpuNeed, PlannerSettings

A_MS = 20.0
K = 0.05  # per req/s: saturation at 20 req/s
TRUE_CAPACITY = 12.0  # req/s within TPOT <= 50 ms: a / (1 - 0.6) = 50


def tpot_ms(lam: float) -> float:
    return A_MS / (1.0 - K * lam)


def measured_curve(error: float) -> tuple[CurvePoint, ...]:
    """What a load test off by ``error`` writes: true latencies, at rates x (1 + error),
    capacity point TRUE_CAPACITY x (1 + error)."""
    rates = [u * TRUE_CAPACITY for u in (0.25, 0.5, 0.75, 1.0, 1.25)]
    return curve_from(
        ((r * (1 + error), None, tpot_ms(r)) for r in rates), TRUE_CAPACITY * (1 + error)
    )


def test_curve_from_states_loads_relative_to_the_capacity_point_lowest_first() -> None:
    curve = curve_from([(10.0, 300.0, 40.0), (5.0, 200.0, 30.0), (0.0, 1.0, 1.0)], 10.0)
    assert [(p.load, p.ttft_ms, p.tpot_ms) for p in curve] == [
        (0.5, 200.0, 30.0),
        (1.0, 300.0, 40.0),
    ]
    assert curve_from([(1.0, 1.0, 1.0)], 0.0) == ()


def test_equivalent_load_inverts_the_curve_only_on_its_rising_part() -> None:
    curve = measured_curve(0.0)
    # Between measured points: linear interpolation, close to the law's exact inverse.
    lam = 0.6 * TRUE_CAPACITY
    u = equivalent_load(curve, tpot_ms(lam), "tpot")
    assert u == pytest.approx(0.6, abs=0.02)
    # On the floor (within MIN_RISE of the lowest point) or above the top: nothing.
    assert equivalent_load(curve, tpot_ms(0.25 * TRUE_CAPACITY) * 1.05, "tpot") is None
    assert equivalent_load(curve, tpot_ms(1.25 * TRUE_CAPACITY) + 1.0, "tpot") is None
    # A signal the curve does not carry: nothing.
    assert equivalent_load(curve, 500.0, "ttft") is None


@pytest.mark.parametrize("error", [0.12, -0.12])
def test_correction_recovers_the_profile_error_in_both_directions(error: float) -> None:
    """Profile 12% optimistic (capacity point 13.44 for a true 12) or 12% pessimistic
    (10.56): at a true load of 9 req/s the observed TPOT puts the replica at 0.75 of its
    true capacity; the profile says 9 / (12 x (1 + e)), so the factor is 1 / (1 + e)."""
    curve = measured_curve(error)
    profiled = TRUE_CAPACITY * (1 + error)
    lam = 9.0
    factor = curve_correction(curve, load=lam / profiled, tpot_ms=tpot_ms(lam), ttft_ms=None)
    assert factor == pytest.approx(1 / (1 + error), rel=0.02)


def test_a_quiet_replica_says_nothing() -> None:
    curve = measured_curve(0.12)
    assert curve_correction(curve, load=0.2, tpot_ms=tpot_ms(2.0), ttft_ms=None) is None


SETTINGS = PlannerSettings()


def _signals(lam: float, ready: int = 4) -> Signals:
    return Signals(
        tpot_p95_ms=tpot_ms(lam), request_rate=lam * ready, complete=True, ready_replicas=ready
    )


def _worst(lam: float) -> float:
    return tpot_ms(lam) / 50.0  # the TPOT objective


def test_an_optimistic_profile_is_lowered_before_any_breach() -> None:
    """12% optimistic, 9 req/s per replica, TPOT 36 ms (0.73x its 50 ms target: no breach).
    Without the curve the correction only drifts toward max(1, 9 / 13.44) = 1, so the
    fleet stays sized 12% short until a breach; with it the correction moves a fifth of
    the way to 0.89 on every plan."""
    profiled = TRUE_CAPACITY * 1.12
    lam = 9.0
    assert _worst(lam) < 1.0
    without = correct_profile(
        _signals(lam),
        _worst(lam),
        profiled=profiled,
        correction=None,
        current=4,
        settings=SETTINGS,
    )
    assert without == pytest.approx(1.0)
    factor: float | None = None
    for _ in range(30):
        factor = correct_profile(
            _signals(lam),
            _worst(lam),
            profiled=profiled,
            correction=factor,
            current=4,
            settings=SETTINGS,
            curve=measured_curve(0.12),
        )
    assert factor == pytest.approx(1 / 1.12, rel=0.02)


def test_a_lowered_correction_comes_back_up_but_never_above_what_the_load_shows() -> None:
    """12% pessimistic (10.56 req/s), a correction a past breach left at 0.7. At 8 req/s
    per replica the curve reads 1 / 0.88 = 1.14, but the correction rises only to
    max(1, 8 / 10.56) = 1: an upward correction beyond the load carried within the SLO
    cost batch the spare replicas that carried the outage (docs/simulation.md). At 11 req/s
    per replica (1.04x the profile, TPOT within target) it rises to 1.04."""
    profiled = TRUE_CAPACITY * 0.88
    for lam, ceiling in ((8.0, 1.0), (11.0, 11.0 / profiled)):
        assert _worst(lam) <= 1.0
        factor: float | None = 0.7
        for _ in range(40):
            factor = correct_profile(
                _signals(lam),
                _worst(lam),
                profiled=profiled,
                correction=factor,
                current=4,
                settings=SETTINGS,
                curve=measured_curve(-0.12),
            )
        assert factor == pytest.approx(ceiling, rel=0.01)
        assert factor is not None and factor <= CORRECTION_BOUNDS[1]
    # Incomplete data (a cluster's signal missing) never raises it.
    incomplete = Signals(
        tpot_p95_ms=tpot_ms(8.0), request_rate=32.0, complete=False, ready_replicas=4
    )
    held = correct_profile(
        incomplete,
        _worst(8.0),
        profiled=profiled,
        correction=0.7,
        current=4,
        settings=SETTINGS,
        curve=measured_curve(-0.12),
    )
    assert held == pytest.approx(0.7)


def test_the_floor_falls_back_to_the_old_rule_and_a_breach_still_lowers() -> None:
    profiled = TRUE_CAPACITY
    curve = measured_curve(0.0)
    # A quiet replica (load 0.1): the old drift toward 1 applies, so a low correction
    # recovers even when the fleet never gets busy enough for the curve to speak.
    quiet = correct_profile(
        _signals(1.2),
        _worst(1.2),
        profiled=profiled,
        correction=0.6,
        current=4,
        settings=SETTINGS,
        curve=curve,
    )
    assert quiet == pytest.approx(0.64)
    # A breach on a steady fleet at high load lowers as before (x / profiled x margin).
    breach = Signals(tpot_p95_ms=80.0, request_rate=4 * 11.0, complete=True, ready_replicas=4)
    lowered = correct_profile(
        breach,
        1.6,
        profiled=profiled,
        correction=1.0,
        current=4,
        settings=SETTINGS,
        curve=curve,
    )
    assert lowered == pytest.approx(11.0 / 12.0 * SETTINGS.capacity_breach_margin)


# The planner reads the curve of the one GPU type the replicas run on; a fleet on several
# types gets none (its TPOT is the slowest type's at a shared load).


def _law(u: float) -> float:
    return 20.0 / (1.0 - 0.6 * u)  # TPOT (ms) at load u of the capacity point: 50 at u = 1


LAW_CURVE = tuple(CurvePoint(u, None, _law(u)) for u in (0.25, 0.5, 0.75, 1.0, 1.25))


def _plan_correction(placements: tuple[tuple[str, str], ...]) -> float | None:
    profiles = tuple(
        CapacityProfile(gpu, 40_000.0, 4_000.0, source="Measured", curve=LAW_CURVE)
        for gpu in ("H100", "A100")
    )
    s = replace(
        spec(1, 16, gpu=GpuNeed(1), scaling={"tpot_p95_ms": 50.0, "predictor": "constant"}),
        profiles=profiles,
        workload=Workload(600, 250),
    )
    capacity = 1 / 0.0775  # 12.9 req/s per replica at this mix
    clusters = [
        cluster("a", offering("h", gpu="H100", od=10.0)),
        cluster("b", offering("x", gpu="A100", od=6.0)),
    ]
    # 4 ready replicas at 0.7 of the profiled capacity, with the TPOT the curve gives at
    # 0.78: slower than profiled, within the 50 ms objective (no breach).
    by_cluster = {}
    for name, _ in placements:
        by_cluster[name] = ClusterSignals(
            ready_replicas=4 // len(placements),
            tpot_p95_ms=_law(0.78),
            request_rate=0.7 * capacity * 4 / len(placements),
        )
    p = run(
        s,
        clusters,
        placements=tuple(existing(c, it, replicas=4 // len(placements)) for c, it in placements),
        metrics=signals(**by_cluster),
        state=DecisionState(last_desired=4),
    )
    return p.state.capacity_correction


def test_the_planner_reads_the_curve_of_a_fleet_on_one_gpu_type_only() -> None:
    one_type = _plan_correction((("a", "h"),))
    assert one_type is not None
    assert one_type == pytest.approx(1 + 0.2 * (0.7 / 0.78 - 1), rel=0.01)
    two_types = _plan_correction((("a", "h"), ("b", "x")))
    assert two_types == pytest.approx(1.0)
