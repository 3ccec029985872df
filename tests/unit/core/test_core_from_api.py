"""Conversion from API objects to planner inputs, exercised on the shipped examples."""

from __future__ import annotations

from pathlib import Path

from core_builders import NOW

from modelfleet.api.validation import load_objects
from modelfleet.core import DecisionState, MetricsSnapshot, plan
from modelfleet.core.from_api import deployment_from_api, fleet_from_api

ROOT = Path(__file__).resolve().parents[3]


def test_examples_convert_and_plan_within_their_constraints() -> None:
    _, clusters = load_objects([ROOT / "examples" / "fleet"])
    deployments, _ = load_objects([ROOT / "examples" / "multicloud-failover.yaml"])
    md = deployments[0]
    spec = deployment_from_api(md)
    assert spec.key == "default/llama-8b"
    assert spec.gpu.types == frozenset({"H100", "A100-80GB", "L40S"})
    assert spec.placement.selector is not None
    fleet = fleet_from_api(clusters, [md], default_health="Healthy")
    assert [c.name for c in fleet.clusters] == sorted(c.metadata.name for c in clusters)
    p = plan(spec, fleet, metrics=MetricsSnapshot(), state=DecisionState(), now=NOW)
    assert p.desired_replicas == 2 and p.standby_replicas == 1 and p.unplaced == 0
    regions = {d.region for d in p.placements}
    assert len(regions) >= 2 and regions <= {"us-east-1", "us-central1", "eastus"}
    assert all(d.cloud in {"aws", "gcp", "azure"} for d in p.placements)
    assert p.cost_per_hour <= 120


def test_unprobed_clusters_are_unknown_for_the_operator() -> None:
    _, clusters = load_objects([ROOT / "examples" / "fleet"])
    fleet = fleet_from_api(clusters)
    assert {c.health for c in fleet.clusters} == {"Unknown"}
