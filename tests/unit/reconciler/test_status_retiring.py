"""Replicas the plan replaces but that still serve (a make-before-break move, a failback)
are shown in ``status.retiring``, counted in ``replicas.ready`` and routed to by the
gateway; lost ones are not. ``build_status`` on a hand-made plan and observation, and the
gateway catalog built from the resulting object as the hub would serve it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from reconciler_world import model_deployment

from modelfleet.api.modeldeployment import Endpoint
from modelfleet.core import DecisionState, Plan
from modelfleet.core.health import failing_back
from modelfleet.core.result import NodePoolSize, PlacementDecision, Retiring
from modelfleet.core.types import ClusterView, FailoverPolicy
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
        node_pools=(
            NodePoolSize("west", "a3", "H100", "OnDemand", 2, 12.0),
            NodePoolSize("east", "p5", "H100", "OnDemand", 2, 10.0),
        ),
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
    # Both pools are paid for during the move: the plan's $24/h and east's kept $20/h.
    assert status.cost_per_hour == 44.0
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


# -- the shortfall the serving retirees make up for (br5: "2 replica(s) unplaced" while
#    both served during a failback) --------------------------------------------------------

FAILING_BACK = "ClusterFailingBack: back since 2026-12-01T11:58:00+00:00, failback after 300s"
MOVED = "RegionNotAllowed: us-east-1 is not in placement.regions"


def _stuck_plan(reason: str, capacity_type: str = "OnDemand") -> Plan:
    """2 replicas wanted, none placed (nothing else is eligible), 2 kept on east."""
    return Plan(
        deployment="llama",
        desired_replicas=2,
        standby_replicas=0,
        placements=(),
        # The nodes the planner keeps for them (they are paid for: status.costPerHour).
        node_pools=(NodePoolSize("east", "p5", "H100", capacity_type, 2, 10.0),),
        retiring=(Retiring("east", "p5", capacity_type, 2, lost=False, reason=reason),),
        cost_per_hour=0.0,
        unplaced=2,
        reasons=(),
        changes=(),
        state=DecisionState(),
    )


def _east(ready: int, capacity_type: str = "OnDemand") -> Observation:
    return Observation(
        clusters={
            "east": ClusterObservation(
                "east", (ObservedWorkload("llama-p5", "p5", capacity_type, 2, ready),)
            )
        }
    )


@pytest.mark.parametrize(
    ("reason", "ready", "unplaced", "degraded", "capacity", "regions"),
    [
        # Failback keeping both serving: nothing is missing, nothing to look at.
        (FAILING_BACK, 2, 0, ("False", "NoProblems", ""), "True", "us-east-1"),
        # One of them serves: one is really missing.
        (
            FAILING_BACK,
            1,
            1,
            ("True", "PartiallyPlaced", "1 replica(s) unplaced"),
            "False",
            "us-east-1",
        ),
        # Neither serves: both are missing.
        (FAILING_BACK, 0, 2, ("True", "PartiallyPlaced", "2 replica(s) unplaced"), "False", ""),
        # A move whose replacements found no room: they serve, but where the spec no longer
        # allows them, and that does not end by itself.
        (
            MOVED,
            2,
            0,
            ("True", "PartiallyPlaced", "they still serve on east"),
            "False",
            "us-east-1",
        ),
    ],
)
def test_serving_retirees_are_not_unplaced(
    reason: str,
    ready: int,
    unplaced: int,
    degraded: tuple[str, str, str],
    capacity: str,
    regions: str,
) -> None:
    status = build_status(
        model_deployment("llama"),
        _stuck_plan(reason),
        _east(ready),
        endpoints=(),
        problems=(),
        now=NOW,
        regions={"east": "us-east-1"},
    )
    assert status.replicas is not None
    assert status.replicas.unplaced == unplaced
    assert status.replicas.ready == ready
    # Every wanted replica is counted once: on demand, spot or unplaced.
    assert status.replicas.on_demand + status.replicas.spot + unplaced == 2
    assert status.regions == regions
    assert status.cost_per_hour == 20.0, "the kept nodes cost 2 x $10/h"
    cond = {c.type: c for c in status.conditions or []}
    status_, reason_, text = degraded
    assert (cond["Degraded"].status, cond["Degraded"].reason) == (status_, reason_)
    assert text in cond["Degraded"].message
    assert "2 replica(s) unplaced" not in cond["Degraded"].message or unplaced == 2
    assert cond["CapacityAvailable"].status == capacity, cond["CapacityAvailable"].message
    assert cond["Ready"].status == ("True" if ready == 2 else "False")
    if reason == FAILING_BACK:
        assert "kept serving on east while it fails back" in cond["Progressing"].message
        assert "replacements" not in cond["Progressing"].message


def test_serving_spot_retirees_count_as_spot() -> None:
    status = build_status(
        model_deployment("llama"),
        _stuck_plan(FAILING_BACK, "Spot"),
        _east(2, "Spot"),
        endpoints=(),
        problems=(),
        now=NOW,
    )
    assert status.replicas is not None
    assert (status.replicas.spot, status.replicas.on_demand, status.replicas.unplaced) == (2, 0, 0)


def test_failing_back_event_says_kept_serving_in_a_stable_text() -> None:
    """The reason of failing-back replicas (``status.retiring[].reason``, the Event posted
    each pass) does not change from one pass to the next: it names the window's start."""
    back = NOW - timedelta(seconds=120)
    cluster = ClusterView("east", "aws", "us-east-1", health="Healthy", recovered_since=back)
    policy = FailoverPolicy(failback_after_seconds=300)
    first = failing_back(cluster, policy, NOW)
    later = failing_back(cluster, policy, NOW + timedelta(seconds=30))
    assert first is not None and first == later
    assert back.isoformat() in first
    assert failing_back(cluster, policy, back + timedelta(seconds=300)) is None
