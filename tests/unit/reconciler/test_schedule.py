"""The operator loop's one scheduling implementation: interval, requeue, error backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelfleet.loop import Cadence, Schedule

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_new_keys_are_due_and_take_books_the_next_run() -> None:
    schedule = Schedule(Cadence(interval_seconds=10))
    assert schedule.due("a", T0)
    assert schedule.take("a", T0)
    assert not schedule.take("a", at(5))
    assert schedule.take("a", at(10))


def test_requeue_comes_back_sooner_than_the_interval() -> None:
    schedule = Schedule(Cadence(interval_seconds=15))
    schedule.done("a", T0, requeue_after=5)
    assert not schedule.due("a", at(4.9))
    assert schedule.due("a", at(5))
    schedule.done("a", at(5))
    assert not schedule.due("a", at(19))
    assert schedule.due("a", at(20))


def test_errors_back_off_doubling_up_to_the_ceiling_and_success_resets() -> None:
    schedule = Schedule(Cadence(interval_seconds=15, backoff_seconds=5, max_backoff_seconds=30))
    delays = [schedule.failed("a", T0) for _ in range(5)]
    assert delays == [5, 10, 20, 30, 30]
    schedule.done("a", T0)
    assert schedule.failed("a", T0) == 5
    schedule.forget("a")
    assert schedule.due("a", T0)
