"""Small builders for the decision-core tests: a fleet, a spec and a plan in one line each."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelfleet.core import (
    ClusterSignals,
    ClusterView,
    DecisionState,
    DeploymentSpec,
    ExistingPlacement,
    FailoverPolicy,
    FleetSnapshot,
    GpuNeed,
    MetricsSnapshot,
    Offering,
    PlacementPolicy,
    Plan,
    ScalingPolicy,
    plan,
)
from modelfleet.core.types import DEFAULT_SETTINGS, CapacityType, PlannerSettings

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
KEY = "default/m"


def ago(seconds: float) -> datetime:
    """``NOW`` minus ``seconds``."""
    return NOW - timedelta(seconds=seconds)


def offering(
    it: str = "g1",
    *,
    gpu: str = "L40S",
    mem: float = 48,
    per_node: int = 1,
    od: float | None = 2.0,
    spot: float | None = None,
    max_nodes: int | None = None,
) -> Offering:
    """An offering; ``it`` is the instance type."""
    return Offering(gpu, mem, per_node, it, od, spot, max_nodes)


def cluster(
    name: str, *offerings: Offering, region: str | None = None, cloud: str = "aws", **kw: Any
) -> ClusterView:
    """A Healthy cluster named ``name`` in ``region`` (default: ``r-<name>``)."""
    return ClusterView(
        name=name, cloud=cloud, region=region or f"r-{name}", offerings=offerings, **kw
    )


def spec(
    min_replicas: int = 1,
    max_replicas: int = 8,
    *,
    gpu: GpuNeed | None = None,
    scaling: dict[str, Any] | None = None,
    failover: dict[str, Any] | None = None,
    **placement: Any,
) -> DeploymentSpec:
    """A DeploymentSpec; keyword arguments go to PlacementPolicy."""
    return DeploymentSpec(
        key=KEY,
        gpu=gpu or GpuNeed(),
        scaling=ScalingPolicy(min_replicas, max_replicas, **(scaling or {})),
        placement=PlacementPolicy(**placement),
        failover=FailoverPolicy(**(failover or {})),
    )


def existing(
    cluster_name: str,
    it: str = "g1",
    replicas: int = 1,
    *,
    ct: str = "OnDemand",
    ready: int | None = None,
) -> ExistingPlacement:
    """Replicas of ``KEY`` already running."""
    capacity_type: CapacityType = "Spot" if ct == "Spot" else "OnDemand"
    return ExistingPlacement(
        KEY, cluster_name, it, capacity_type, replicas, replicas if ready is None else ready
    )


def signals(**by_cluster: ClusterSignals) -> MetricsSnapshot:
    """Metrics of ``KEY`` observed at ``NOW``."""
    return MetricsSnapshot({KEY: by_cluster}, observed_at=NOW)


def run(
    s: DeploymentSpec,
    clusters: list[ClusterView],
    *,
    placements: tuple[ExistingPlacement, ...] = (),
    metrics: MetricsSnapshot | None = None,
    state: DecisionState | None = None,
    now: datetime = NOW,
    settings: PlannerSettings = DEFAULT_SETTINGS,
) -> Plan:
    """Plan ``s`` over ``clusters`` with optional existing placements, metrics, state."""
    fleet = FleetSnapshot(tuple(clusters), placements)
    return plan(
        s,
        fleet,
        metrics=metrics or MetricsSnapshot(),
        state=state or DecisionState(),
        now=now,
        settings=settings,
    )


def placed(p: Plan) -> dict[tuple[str, str, str], int]:
    """``{(cluster, instance type, capacity type): replicas}`` of a plan."""
    return {(d.cluster, d.instance_type, d.capacity_type): d.replicas for d in p.placements}


def codes(p: Plan, cluster: str | None = None) -> set[str]:
    """Reason codes of a plan (optionally only those about ``cluster``)."""
    return {r.code for r in p.reasons if cluster is None or r.cluster == cluster}


__all__ = ["NOW", "replace"]
