"""Capacity profiles (docs/decisions.md §1 and §2): the capacity arithmetic, the order of
trust, the online correction, the predictive count and placement per unit of capacity."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from core_builders import ago, cluster, existing, offering, placed, run, signals, spec

from modelfleet.core import ClusterSignals, DecisionState
from modelfleet.core.forecast import constant, trend
from modelfleet.core.profiles import (
    CapacityProfile,
    Workload,
    best_profile,
    capacity_for,
    profiles_digest,
    replica_capacity,
)
from modelfleet.core.types import GpuNeed

H100 = CapacityProfile("H100", 40_000.0, 4_000.0, source="Measured")


def test_requests_per_second_follow_the_mix() -> None:
    # 600 prompt tokens at 40k/s + 250 output tokens at 4k/s = 0.015 + 0.0625 s per request.
    assert H100.requests_per_second(600, 250) == pytest.approx(1 / 0.0775)
    # Twice the output: decode dominates, capacity nearly halves.
    assert H100.requests_per_second(600, 500) == pytest.approx(1 / 0.14)
    assert CapacityProfile("L4", 0.0, 100.0).requests_per_second(600, 250) == 0.0


def test_measured_beats_declared_and_an_exact_count_beats_any_count() -> None:
    declared = CapacityProfile("H100", 50_000.0, 5_000.0, source="Declared", gpu_count=1)
    anycount = CapacityProfile("H100", 30_000.0, 3_000.0, source="Measured")
    exact = CapacityProfile("H100", 35_000.0, 3_500.0, source="Measured", gpu_count=1)
    assert best_profile([declared, anycount], "H100", 1) is anycount
    assert best_profile([declared, anycount, exact], "H100", 1) is exact
    assert best_profile([declared], "H100", 2) is None
    assert capacity_for([declared], Workload(), "A100", 1) is None


def test_replica_capacity_for_placement() -> None:
    s = replace(spec(), profiles=(H100,), workload=Workload(600, 250))
    assert replica_capacity(s, offering(gpu="H100")) == pytest.approx(1 / 0.0775)
    # An unprofiled GPU: the H100 profile scaled by the slower data-sheet ratio (BF16
    # 181/989 below bandwidth 0.864/3.35; test_core_capacity_estimate.py has the rest).
    assert replica_capacity(s, offering(gpu="L40S")) == pytest.approx(1 / 0.0775 * 181 / 989)
    assert replica_capacity(spec(), offering(gpu="L40S")) == 1.0  # no profiles: per replica


def test_predictors_see_only_the_past() -> None:
    rising = [(600.0 - 30 * i, 10.0 + i) for i in range(21)]  # 10 -> 30 req/s over 10 min
    assert constant(rising, 480.0) == 30.0
    ahead = trend(rising, 480.0)
    assert ahead is not None and 40.0 < ahead < 50.0  # ~+16 over 8 minutes
    falling = [(age, 40.0 - r) for age, r in rising]
    down = trend(falling, 480.0)
    assert down is not None and 0.0 <= down < 11.0
    assert trend([], 480.0) is None


SLO = {"ttft_p95_ms": 200.0, "tpot_p95_ms": 50.0}


def _profiled(profiles: tuple[CapacityProfile, ...], **scaling: object):  # type: ignore[no-untyped-def]
    return replace(
        spec(1, 40, gpu=GpuNeed(1), scaling={**SLO, "headroom": 0.2, **scaling}),
        profiles=profiles,
        workload=Workload(600, 250),
    )


def test_predictive_count_sizes_for_the_forecast_with_headroom() -> None:
    s = _profiled((H100,), predictor="constant")
    fleet = [cluster("a", offering(gpu="H100", od=10.0))]
    cap = 1 / 0.0775  # 12.9 req/s per replica
    sig = ClusterSignals(ready_replicas=4, ttft_p95_ms=120, tpot_p95_ms=30, request_rate=50.0)
    p = run(
        s,
        fleet,
        placements=(existing("a", replicas=4),),
        metrics=signals(a=sig),
        state=DecisionState(last_desired=4),
    )
    assert p.desired_replicas == math.ceil(50.0 * 1.2 / cap)  # 5


def test_a_load_breach_corrects_the_profile_down_and_a_cold_start_does_not() -> None:
    s = _profiled((H100,))
    fleet = [cluster("a", offering(gpu="H100", od=10.0))]
    state = DecisionState(last_desired=4)
    # 4 replicas at 40 req/s (10 each, below the profiled 12.9) breach the TTFT objective:
    # the profile over-states this GPU; correction = 10 / 12.9 x 0.9.
    hot = ClusterSignals(ready_replicas=4, ttft_p95_ms=300, tpot_p95_ms=30, request_rate=40.0)
    p = run(s, fleet, placements=(existing("a", replicas=4),), metrics=signals(a=hot), state=state)
    assert p.state.capacity_correction == pytest.approx(10 / (1 / 0.0775) * 0.9)
    # A breach at a tenth of the capacity is a cold start, not capacity: no correction.
    cold = ClusterSignals(ready_replicas=4, ttft_p95_ms=300, tpot_p95_ms=30, request_rate=4.0)
    q = run(s, fleet, placements=(existing("a", replicas=4),), metrics=signals(a=cold), state=state)
    assert q.state.capacity_correction is None


def test_correction_is_bounded() -> None:
    s = _profiled((H100,))
    fleet = [cluster("a", offering(gpu="H100", od=10.0))]
    state = DecisionState(last_desired=4)
    fine = ClusterSignals(ready_replicas=1, ttft_p95_ms=100, tpot_p95_ms=20, request_rate=100.0)
    p = run(s, fleet, placements=(existing("a", replicas=1),), metrics=signals(a=fine), state=state)
    assert p.state.capacity_correction == 1.5


def test_missing_data_never_scales_down_in_predictive_mode() -> None:
    s = _profiled((H100,))
    fleet = [cluster("a", offering(gpu="H100", od=10.0))]
    stale = ClusterSignals(ready_replicas=8, request_rate=1.0, observed_at=ago(60))
    p = run(
        s,
        fleet,
        placements=(existing("a", replicas=8),),
        metrics=signals(a=stale),  # TTFT and TPOT configured but not reported
        state=DecisionState(last_desired=8),
    )
    assert p.desired_replicas == 8


def test_placement_prices_per_unit_of_capacity() -> None:
    """A cheap slow GPU is not "cheapest" per unit of capacity; one that cannot meet the SLO
    is not a candidate at all."""
    slow = CapacityProfile("L40S", 8_000.0, 700.0, source="Measured")  # 2.3 req/s: $2/h
    fast = H100  # 12.9 req/s: $10/h -> $0.78 per req/s vs $0.87
    s = _profiled((slow, fast))
    fleet = [
        cluster("a", offering("l40s", gpu="L40S", od=2.0), offering("h100", gpu="H100", od=10.0))
    ]
    p = run(s, fleet, state=DecisionState(last_desired=1))
    assert set(k[1] for k in placed(p)) == {"h100"}
    never = CapacityProfile("H100", 0.0, 0.0, source="Measured")
    q = run(_profiled((slow, never)), fleet, state=DecisionState(last_desired=1))
    assert set(k[1] for k in placed(q)) == {"l40s"}


def test_the_predictive_memory_round_trips_through_status_json() -> None:
    import json

    from modelfleet.api.modeldeployment import DecisionStatus
    from modelfleet.reconciler.status import decision_from_status, decision_to_status

    state = DecisionState(
        last_desired=5,
        capacity_correction=0.83,
        rate_history=((ago(60), 12.5), (ago(30), 14.0)),
        lead_time_seconds=412.0,
        short_since=ago(20),
        corrected_profile="0123456789abcdef",
    )
    assert DecisionState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    status = decision_to_status(state)
    again = DecisionStatus.model_validate(json.loads(status.model_dump_json(by_alias=True)))
    assert decision_from_status(again) == state
    with pytest.raises(ValueError, match="capacityCorrection"):
        DecisionState.from_dict({"capacityCorrection": 0})
    with pytest.raises(ValueError, match="rateHistory"):
        DecisionState.from_dict({"rateHistory": [{"at": "2025-01-01T00:00:00Z", "rate": -1}]})


def test_an_edited_profile_drops_the_correction_learned_against_the_old_one() -> None:
    """The correction scales the profile it was learned against. A profile 2x optimistic
    drove it to 0.5; the user fixes the profile (halves it): carried over, the old 0.5
    would halve the fixed profile again and hold twice the replicas needed (drifting back
    only 10% a pass). The edit (profiles or mix) starts again at 1; a
    state without a digest (written by an older release) keeps its correction."""
    optimistic = _profiled((H100,), predictor="constant")
    fixed = _profiled((CapacityProfile("H100", 20_000.0, 2_000.0, source="Measured"),))
    fixed = replace(fixed, scaling=optimistic.scaling)
    fleet = [cluster("a", offering(gpu="H100", od=10.0))]
    # At 60 req/s, 12 ready replicas within the SLO (5 req/s each): no breach, no curve.
    sig = ClusterSignals(ready_replicas=12, ttft_p95_ms=150, tpot_p95_ms=40, request_rate=60.0)
    learned = DecisionState(
        last_desired=12,
        capacity_correction=0.5,
        corrected_profile=profiles_digest(optimistic.profiles, optimistic.workload),
    )

    def plan_for(s, state):  # type: ignore[no-untyped-def]
        place = (existing("a", replicas=12),)
        return run(s, fleet, placements=place, metrics=signals(a=sig), state=state)

    same = plan_for(optimistic, learned)
    assert same.state.capacity_correction == pytest.approx(0.5 + 0.1 * (1 - 0.5))
    edited = plan_for(fixed, learned)
    # Fresh at 1, moved a tenth of the way toward max(1, 5 / 6.45) = 1: exactly 1.
    assert edited.state.capacity_correction == pytest.approx(1.0)
    assert edited.state.corrected_profile == profiles_digest(fixed.profiles, fixed.workload)
    assert edited.state.corrected_profile != learned.corrected_profile
    # The mix is part of what is corrected: a new workload drops it too.
    remixed = replace(optimistic, workload=Workload(1200, 250))
    assert plan_for(remixed, learned).state.capacity_correction == pytest.approx(1.0)
    legacy = replace(learned, corrected_profile=None)
    assert plan_for(fixed, legacy).state.capacity_correction == pytest.approx(0.55)


def test_the_reason_names_the_online_correction_that_sized_the_fleet() -> None:
    """The ScaleUp Event says why the fleet is larger than the profile asks for: a breach
    at 10 req/s per replica (below the profiled 12.9) corrected the profile to 0.70, and
    the count it gives (6 for 40 req/s, not 4) is explained by it. Without a correction the
    reason does not mention one."""
    s = _profiled((H100,), predictor="constant")
    fleet = [cluster("a", offering(gpu="H100", od=10.0))]
    hot = ClusterSignals(ready_replicas=4, ttft_p95_ms=300, tpot_p95_ms=30, request_rate=40.0)
    p = run(
        s,
        fleet,
        placements=(existing("a", replicas=4),),
        metrics=signals(a=hot),
        state=DecisionState(last_desired=4),
    )
    assert p.desired_replicas == 6
    assert "(profile 12.9 x online correction 0.70) needs 6" in p.changes[0].message
    calm = ClusterSignals(ready_replicas=4, ttft_p95_ms=150, tpot_p95_ms=30, request_rate=50.0)
    q = run(
        s,
        fleet,
        placements=(existing("a", replicas=4),),
        metrics=signals(a=calm),
        state=DecisionState(last_desired=4),
    )
    assert q.desired_replicas == 5  # ceil(50 x 1.2 / 12.9)
    assert "correction" not in q.changes[0].message


@pytest.mark.parametrize("predictor", ["constant", "trend"])
def test_predictive_mode_never_scales_down_without_a_current_request_rate(
    predictor: str,
) -> None:
    """The request rate query fails or times out while the latency queries answer (a
    rejected spec.metrics.requestRate loses only its signal: test_prometheus_metrics): the
    SLO signals are complete, and the forecast read only the rates of the last 10 minutes.
    It used to halve the fleet (10 -> 5) on them; it holds now. It may still raise it."""
    s = _profiled((H100,), predictor=predictor, down_stabilization_seconds=0)
    fleet = [cluster("a", offering(gpu="H100", od=10.0))]
    history = tuple((ago(300 - 30 * i), 20.0) for i in range(10))
    state = DecisionState(last_desired=10, rate_history=history)
    no_rate = ClusterSignals(ready_replicas=10, ttft_p95_ms=150, tpot_p95_ms=40)
    p = run(
        s,
        fleet,
        placements=(existing("a", replicas=10),),
        metrics=signals(a=no_rate),
        state=state,
    )
    assert p.desired_replicas == 10
    assert p.changes[0].code == "MetricsMissing"
    # With the rate, the same forecast scales down (to the 50% step).
    with_rate = replace(no_rate, request_rate=20.0)
    q = run(
        s,
        fleet,
        placements=(existing("a", replicas=10),),
        metrics=signals(a=with_rate),
        state=state,
    )
    assert q.desired_replicas == 5
