"""The activator's wake-up annotation (reconciler/activator.py): at zero replicas a fresh
``activator.modelfleet.io/demand-seen-at`` is demand in the very pass it triggers, before
any scrape of the gateway's held requests; a stale, future or malformed one is not."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api.validation import load_objects
from modelfleet.labels import DEMAND_SEEN_AT
from modelfleet.loop.schedule import Cadence, Schedule
from modelfleet.metrics.source import StaticMetricsSource
from modelfleet.reconciler.activator import WAKE_RATE, demand_seen_at, woken_at
from modelfleet.reconciler.observe import ClusterObservation, Observation
from modelfleet.reconciler.snapshot import metrics_snapshot

CASE = Path(__file__).parents[1] / "fixtures" / "cases" / "scale-from-zero"
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def _case(annotation: str | None) -> tuple[ModelDeployment, list[FleetCluster]]:
    mds, fleet = load_objects([CASE / "deployments", CASE / "fleet"])
    md = mds[0]
    if annotation is not None:
        meta = md.metadata.model_copy(update={"annotations": {DEMAND_SEEN_AT: annotation}})
        md = md.model_copy(update={"metadata": meta})
    return md, fleet


def _rate(md: ModelDeployment, fleet: list[FleetCluster]) -> float | None:
    observation = Observation({c.metadata.name: ClusterObservation(c.metadata.name) for c in fleet})
    source = StaticMetricsSource()  # the gateway gauge not scraped yet: no series
    snapshot = asyncio.run(metrics_snapshot(md, fleet, observation, source, now=NOW))
    signals = snapshot.for_deployment("batch/nightly")
    rates = [s.request_rate for s in signals.values() if s.request_rate is not None]
    return max(rates) if rates else None


def test_a_fresh_wake_up_is_demand_before_any_scrape() -> None:
    md, fleet = _case((NOW - timedelta(seconds=1)).isoformat().replace("+00:00", "Z"))
    assert _rate(md, fleet) == pytest.approx(WAKE_RATE)
    assert _rate(_case(None)[0], fleet) is None  # without it: nothing to see at zero


@pytest.mark.parametrize(
    "value",
    [
        (NOW - timedelta(seconds=600)).isoformat(),  # history, not demand
        (NOW + timedelta(seconds=300)).isoformat(),  # far in the future: a wrong clock
        "yesterday",
        "2026-12-01T06:59:59",  # no zone
    ],
)
def test_stale_future_or_malformed_wake_ups_are_ignored(value: str) -> None:
    md, fleet = _case(value)
    assert woken_at(md, NOW) is None
    assert _rate(md, fleet) is None


def test_the_annotation_is_read_with_its_zone() -> None:
    md, _ = _case("2026-12-01T06:59:30Z")
    assert demand_seen_at(md) == datetime(2026, 12, 1, 6, 59, 30, tzinfo=UTC)
    assert woken_at(md, NOW) == datetime(2026, 12, 1, 6, 59, 30, tzinfo=UTC)


def test_wake_makes_a_scheduled_run_due_now_and_never_later() -> None:
    schedule = Schedule(Cadence(15.0))
    schedule.done("md", NOW)
    assert not schedule.due("md", NOW + timedelta(seconds=1))
    schedule.wake("md", NOW + timedelta(seconds=1))
    assert schedule.due("md", NOW + timedelta(seconds=1))
    schedule.done("md", NOW, requeue_after=0.0)
    schedule.wake("md", NOW + timedelta(seconds=5))  # already due earlier: unchanged
    assert schedule.next_due("md") == NOW
