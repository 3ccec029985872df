"""The wake-up annotation matters only at zero (QA of the activator): the gateway writes it
whenever it holds a request, which also happens while replicas start after a wake-up and
while every replica of a ``replicas.min > 0`` deployment is down. Then the operator must not
read it as demand: the replicas' own signals (or their absence: hold, never scale down on
missing data) speak for the deployment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelfleet.api.validation import load_objects
from modelfleet.labels import DEMAND_SEEN_AT
from modelfleet.metrics.source import StaticMetricsSource
from modelfleet.reconciler.activator import WAKE_RATE, woken_at
from modelfleet.reconciler.observe import ClusterObservation, Observation, ObservedWorkload
from modelfleet.reconciler.snapshot import metrics_snapshot

CASE = Path(__file__).parents[1] / "fixtures" / "cases" / "scale-from-zero"
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def test_a_fresh_annotation_is_not_demand_once_a_workload_exists() -> None:
    mds, fleet = load_objects([CASE / "deployments", CASE / "fleet"])
    stamp = (NOW - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    meta = mds[0].metadata.model_copy(update={"annotations": {DEMAND_SEEN_AT: stamp}})
    md = mds[0].model_copy(update={"metadata": meta})
    assert woken_at(md, NOW) is not None  # fresh: it would wake the deployment at zero
    name = fleet[0].metadata.name
    starting = ObservedWorkload(
        name="nightly",
        instance_type="g2-standard-8",
        capacity_type="OnDemand",
        replicas=1,
        ready=0,
    )
    observation = Observation({name: ClusterObservation(name, workloads=(starting,))})
    snapshot = asyncio.run(metrics_snapshot(md, fleet, observation, StaticMetricsSource(), now=NOW))
    rates = [
        s.request_rate
        for s in snapshot.for_deployment("batch/nightly").values()
        if s.request_rate is not None
    ]
    assert WAKE_RATE not in rates and rates == []


def _snapshot_while(ready: int) -> tuple[list[bool], list[float]]:
    """The demand_only flags of the targets asked, and the request rates seen, for the
    scale-from-zero case's deployment with one replica placed and ``ready`` of it ready,
    its demand query answering 30 req/s in every cluster."""
    mds, fleet = load_objects([CASE / "deployments", CASE / "fleet"])
    md = mds[0]
    name = fleet[0].metadata.name
    placed = ObservedWorkload(
        name="nightly",
        instance_type="g2-standard-8",
        capacity_type="OnDemand",
        replicas=1,
        ready=ready,
    )
    observation = Observation(
        {
            c.metadata.name: ClusterObservation(
                c.metadata.name, workloads=(placed,) if c.metadata.name == name else ()
            )
            for c in fleet
        }
    )
    source = StaticMetricsSource()
    for c in fleet:
        source.set("batch", "nightly", cluster=c.metadata.name, request_rate=30.0)
    snapshot = asyncio.run(metrics_snapshot(md, fleet, observation, source, now=NOW))
    rates = [
        s.request_rate
        for s in snapshot.for_deployment("batch/nightly").values()
        if s.request_rate is not None
    ]
    return [target.demand_only for target, _ in source.calls], rates


def test_the_demand_signal_speaks_while_the_first_replicas_start() -> None:
    """Placed but none ready: no engine reports, so the demand query stands for the load
    (asked in every reachable cluster, the largest answer kept), and the count can grow
    past its first step during the lead time instead of after it."""
    flags, rates = _snapshot_while(ready=0)
    _, fleet = load_objects([CASE / "deployments", CASE / "fleet"])
    assert flags == [True] * len(fleet)
    assert rates == [30.0]


def test_once_a_replica_is_ready_its_engine_speaks() -> None:
    flags, _ = _snapshot_while(ready=1)
    assert flags == [False]
