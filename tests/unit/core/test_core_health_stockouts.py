"""The cluster health state machine and the stockout memory (docs/decisions.md §4-5)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from core_builders import NOW, ago

from modelfleet.core import (
    DecisionState,
    HealthRecord,
    active_stockout,
    backoff_seconds,
    next_health,
    prune,
    record_capacity_error,
    record_capacity_success,
)


@pytest.mark.parametrize(
    ("state", "since_s", "last_ok_s", "ok", "expected", "changed"),
    [
        ("Unknown", None, None, True, "Healthy", True),
        ("Unknown", None, None, False, "Suspect", True),
        ("Healthy", 100, 5, True, "Healthy", False),
        ("Healthy", 100, 5, False, "Suspect", True),
        ("Suspect", 20, 20, True, "Healthy", True),
        ("Suspect", 20, 20, False, "Suspect", False),  # 20 s < 45 s
        ("Suspect", 50, 50, False, "Failed", True),  # 50 s >= 45 s since last success
        ("Failed", 100, 100, False, "Failed", False),
        ("Failed", 100, 100, True, "Recovering", True),
        ("Recovering", 100, 10, True, "Recovering", False),  # 100 s < 300 s
        ("Recovering", 100, 10, False, "Failed", True),  # hysteresis: one failure -> Failed
        ("Recovering", 300, 10, True, "Healthy", True),
    ],
)
def test_next_health_transitions(
    state: str,
    since_s: int | None,
    last_ok_s: int | None,
    ok: bool,
    expected: str,
    changed: bool,
) -> None:
    current = HealthRecord(
        state,  # type: ignore[arg-type]
        None if since_s is None else ago(since_s),
        None if last_ok_s is None else ago(last_ok_s),
    )
    after = next_health(current, ok, NOW, fail_after_seconds=45, recover_after_seconds=300)
    assert after.state == expected
    assert (after.since == NOW) is changed
    assert after.last_success == (NOW if ok else current.last_success)


def test_outage_timeline_fails_after_45s_and_fails_back_after_300s() -> None:
    rec = HealthRecord("Healthy", ago(1000), ago(10))
    timeline = []
    for t, ok in [
        (0, False),
        (15, False),
        (30, False),
        (45, False),
        (60, True),
        (200, True),
        (360, True),
    ]:
        rec = next_health(rec, ok, NOW + timedelta(seconds=t))
        timeline.append(rec.state)
    # Last success 10 s before the outage: Failed once 45 s have passed since it (t=45).
    assert timeline == [
        "Suspect",
        "Suspect",
        "Suspect",
        "Failed",
        "Recovering",
        "Recovering",
        "Healthy",
    ]


def test_backoff_doubles_from_three_minutes_to_thirty() -> None:
    assert [backoff_seconds(n) for n in range(1, 7)] == [180, 360, 720, 1440, 1800, 1800]
    with pytest.raises(ValueError, match="failures"):
        backoff_seconds(0)


def test_capacity_errors_extend_and_success_resets() -> None:
    marks = record_capacity_error((), "H100", capacity_type="Spot", now=NOW, instance_type="p5")
    assert marks[0].until == NOW + timedelta(minutes=3) and marks[0].failures == 1
    later = NOW + timedelta(minutes=4)
    marks = record_capacity_error(
        marks, "H100", capacity_type="Spot", now=later, instance_type="p5"
    )
    assert len(marks) == 1 and marks[0].failures == 2
    assert marks[0].until == later + timedelta(minutes=6) and marks[0].since == NOW
    assert active_stockout(marks, "H100", capacity_type="Spot", instance_type="p5", now=later)
    assert (
        active_stockout(marks, "H100", capacity_type="OnDemand", instance_type="p5", now=later)
        is None
    )
    assert (
        active_stockout(
            marks,
            "H100",
            capacity_type="Spot",
            instance_type="p5",
            now=later + timedelta(minutes=6),
        )
        is None
    )
    cleared = record_capacity_success(marks, "H100", capacity_type="Spot", instance_type="p5")
    assert cleared == ()
    again = record_capacity_error(
        cleared, "H100", capacity_type="Spot", now=later, instance_type="p5"
    )
    assert again[0].failures == 1


def test_gpu_wide_mark_covers_every_instance_type_and_prune_forgets_old_marks() -> None:
    marks = record_capacity_error((), "H100", capacity_type="OnDemand", now=NOW)
    assert active_stockout(marks, "H100", capacity_type="OnDemand", instance_type="any", now=NOW)
    assert prune(marks, NOW + timedelta(hours=2)) == ()
    assert prune(marks, NOW + timedelta(minutes=10)) == marks


def test_decision_state_round_trips_through_json_types() -> None:
    import json

    state = DecisionState(((ago(60), 3), (NOW, 4)), 4, ago(30), 2, ago(10))
    data = json.loads(json.dumps(state.to_dict()))
    assert DecisionState.from_dict(data) == state
    learned = DecisionState(last_desired=4, capacity_per_replica=2.5, capacity_bounded_at=NOW)
    assert DecisionState.from_dict(json.loads(json.dumps(learned.to_dict()))) == learned
    with pytest.raises(ValueError, match="capacityPerReplica"):
        DecisionState.from_dict({"capacityPerReplica": -1})
    assert DecisionState.from_dict(None) == DecisionState()
    with pytest.raises(ValueError, match="lastDesired"):
        DecisionState.from_dict({"lastDesired": "four"})
    with pytest.raises(ValueError, match="timezone"):
        DecisionState.from_dict({"idleSince": "2025-01-01T00:00:00"})


def test_failback_window_counts_from_the_return_not_from_healthy() -> None:
    """The cluster answers again at t=60 (Recovering), turns Healthy at t=360 (the fleet's
    300 s), and a deployment with failbackAfterSeconds 900 still waits until t=960; one with
    120 s may move back at t=180, while the cluster is still Recovering. A new failure
    clears the mark (break-9.md: the window used to end when the cluster turned Healthy)."""
    from modelfleet.core import ClusterView, FailoverPolicy
    from modelfleet.core.health import accepts_new_replicas, failing_back

    long, short = (
        FailoverPolicy(failback_after_seconds=900),
        FailoverPolicy(failback_after_seconds=120),
    )
    rec = HealthRecord("Failed", ago(1000), ago(1000))
    views: dict[int, ClusterView] = {}
    for t in (60, 180, 360, 959, 960):
        now = NOW + timedelta(seconds=t)
        rec = next_health(rec, True, now, recover_after_seconds=300)
        views[t] = ClusterView(
            "east",
            "aws",
            "us-east-1",
            health=rec.state,
            health_since=rec.since,
            recovered_since=rec.recovered_since,
        )
        assert rec.recovered_since == NOW + timedelta(seconds=60)
    at = {t: NOW + timedelta(seconds=t) for t in views}
    assert views[360].health == "Healthy"
    assert failing_back(views[180], short, at[180]) is None
    assert failing_back(views[60], short, at[60]) is not None
    for t in (180, 360, 959):
        assert accepts_new_replicas(views[t], long, at[t]) is not None, t
    assert accepts_new_replicas(views[960], long, at[960]) is None
    failed_again = next_health(rec, False, at[960] + timedelta(seconds=60), fail_after_seconds=45)
    assert failed_again.state == "Suspect" and failed_again.recovered_since is not None
    failed_again = next_health(
        failed_again, False, at[960] + timedelta(seconds=120), fail_after_seconds=45
    )
    assert failed_again.state == "Failed" and failed_again.recovered_since is None
    # A cluster that never failed has no window.
    assert failing_back(ClusterView("west", "aws", "us-west-2"), long, NOW) is None
