"""Replicas the plan replaces but that still serve (a make-before-break move, a failback)
are shown in ``status.retiring``, counted in ``replicas.ready`` and routed to by the
gateway; lost ones are not. ``build_status`` on a hand-made plan and observation, and the
gateway catalog built from the resulting object as the hub would serve it."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler_world import model_deployment

from modelfleet.api.modeldeployment import Endpoint
from modelfleet.core import DecisionState, Plan
from modelfleet.core.result import PlacementDecision, Retiring
from modelfleet.gateway.catalog import deployment_from_object
from modelfleet.reconciler.observe import ClusterObservation, Observation, ObservedWorkload
from modelfleet.reconciler.status import build_status

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _move_plan() -> Plan:
    """2 replicas moving from east (p5, OnDemand) to west (a3, OnDemand); a spot replica
    in south was reclaimed (lost)."""
    return Plan(
        deployment="llama",
        desired_replicas=2,
        standby_replicas=0,
        placements=(
            PlacementDecision("west", "gcp", "us-west-2", "H100", "a3", "OnDemand", 2, 1, 12.0),
        ),
        node_pools=(),
        retiring=(
            Retiring("east", "p5", "OnDemand", 2, lost=False, reason="Cheaper: moved to west"),
            Retiring("south", "p5", "Spot", 1, lost=True, reason="SpotReclaimed: gone"),
        ),
        cost_per_hour=24.0,
        unplaced=0,
        reasons=(),
        changes=(),
        state=DecisionState(),
    )


def _observation() -> Observation:
    return Observation(
        clusters={
            "east": ClusterObservation(
                "east", (ObservedWorkload("llama-p5", "p5", "OnDemand", 2, 2),)
            ),
            "west": ClusterObservation(
                "west", (ObservedWorkload("llama-a3", "a3", "OnDemand", 2, 0),)
            ),
        }
    )


def test_make_before_break_replicas_serve_in_status_and_gateway() -> None:
    md = model_deployment("llama")
    status = build_status(
        md,
        _move_plan(),
        _observation(),
        endpoints=[
            Endpoint(cluster="east", url="http://llama.default.svc.east:8000"),
            Endpoint(cluster="west", url="http://llama.default.svc.west:8000"),
        ],
        problems=(),
        now=NOW,
        regions={"east": "us-east-1", "west": "us-west-2", "south": "us-south-1"},
    )
    assert status.replicas is not None and status.replicas.ready == 2
    assert [(p.cluster, p.replicas, p.ready) for p in status.placements or []] == [("west", 2, 0)]
    assert [(r.cluster, r.region, r.replicas, r.ready) for r in status.retiring or []] == [
        ("east", "us-east-1", 2, 2)
    ], "the lost south replica must not be listed; east's serving ones must"
    ready = {c.type: c for c in status.conditions or []}["Ready"]
    assert ready.status == "True", ready.message

    obj = md.model_copy(update={"status": status}).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    assert obj["status"]["retiring"][0]["ready"] == 2
    info = deployment_from_object(obj)
    assert info is not None
    assert [(e.id, e.region, e.ready) for e in info.endpoints] == [
        ("east", "us-east-1", True),
        ("west", "us-west-2", False),
    ]


def test_an_old_status_without_retiring_still_reads() -> None:
    md = model_deployment("llama")
    obj = md.model_dump(mode="json", by_alias=True, exclude_none=True)
    obj["status"] = {
        "placements": [
            {
                "cluster": "east",
                "cloud": "aws",
                "region": "us-east-1",
                "gpu": "H100",
                "instanceType": "p5",
                "capacityType": "OnDemand",
                "replicas": 2,
                "ready": 1,
            }
        ],
        "endpoints": [{"cluster": "east", "url": "http://llama.default.svc:8000"}],
    }
    info = deployment_from_object(obj)
    assert info is not None
    assert [(e.id, e.region, e.ready) for e in info.endpoints] == [("east", "us-east-1", True)]
