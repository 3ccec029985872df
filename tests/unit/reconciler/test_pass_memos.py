"""What a reconcile pass reuses from the last one (the status's immutable entries, the
converted spec, the cluster views) is only saved work: the status equals the one built
from nothing, and anything that changed is built anew."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.api.fleetcluster import FleetClusterStatus, GpuOffering
from modelfleet.core import DecisionState
from modelfleet.core.from_api import cluster_from_api, deployment_from_api
from modelfleet.core.types import StockoutMark
from modelfleet.reconciler.snapshot import _ViewMemo
from modelfleet.reconciler.status import decision_to_status

T = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def _json(status: object) -> str:
    return json.dumps(status.model_dump(mode="json", by_alias=True), sort_keys=True)  # type: ignore[attr-defined]


def test_decision_status_reuses_unchanged_entries_and_equals_a_fresh_one() -> None:
    first = DecisionState(
        recommendations=((_at(0), 2), (_at(15), 3)),
        rate_history=((_at(0), 10.5), (_at(30), 12.0)),
        last_desired=3,
    )
    previous = decision_to_status(first)
    assert previous.recommendations is not None and previous.rate_history is not None
    # The next pass reads its state back from that status (the same datetime objects)
    # and appends; the oldest entry falls out of the window.
    recs = tuple((r.at, r.replicas) for r in previous.recommendations)
    rates = tuple((r.at, r.rate) for r in previous.rate_history)
    state = DecisionState(
        recommendations=(*recs[1:], (_at(30), 4)),
        rate_history=(*rates, (_at(60), 13.5)),
        last_desired=4,
    )
    reused = decision_to_status(state, previous)
    fresh = decision_to_status(state)
    assert reused == fresh and _json(reused) == _json(fresh)
    assert reused.recommendations is not None and reused.rate_history is not None
    assert reused.recommendations[0] is previous.recommendations[1]
    assert reused.rate_history[1] is previous.rate_history[1]
    assert reused.recommendations[-1].replicas == 4 and reused.rate_history[-1].rate == 13.5


def test_decision_status_builds_changed_or_ambiguous_entries_anew() -> None:
    previous = decision_to_status(
        DecisionState(
            recommendations=((_at(0), 2),),
            rate_history=((_at(0), 10.0), (_at(30), 0.0), (_at(60), 7.0)),
        )
    )
    assert previous.recommendations is not None and previous.rate_history is not None
    old = previous.rate_history
    state = DecisionState(
        recommendations=((previous.recommendations[0].at, 5),),  # same time, other count
        rate_history=(
            (_at(0), 10.0),  # an equal instant, but another datetime object
            (old[1].at, -0.0),  # equal to 0.0, serialised differently
            (old[2].at, 7),  # an int: validated to 7.0
        ),
    )
    status = decision_to_status(state, previous)
    assert _json(status) == _json(decision_to_status(state))
    assert status.recommendations is not None and status.recommendations[0].replicas == 5
    assert status.rate_history is not None
    assert all(new is not was for new, was in zip(status.rate_history, old, strict=True))


async def test_unchanged_conditions_and_placements_are_the_last_pass_objects() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0)])
    await world.start()
    world.add(model_deployment("llama"))
    await world.reconcile("llama")
    world.mark_ready("east")
    first = (await world.reconcile("llama")).status
    world.clock.advance(15)
    second = (await world.reconcile("llama")).status
    assert first.conditions and second.conditions and first.placements and second.placements
    for before, after in zip(first.conditions, second.conditions, strict=True):
        assert after is before  # nothing changed: the same immutable object
    assert second.placements[0] is first.placements[0]
    assert first.last_reconcile_time is not None
    assert second.last_reconcile_time == first.last_reconcile_time + timedelta(seconds=15)

    # A replica stops being ready: Ready changes (new object, new transition time) and the
    # placement's ready count is rebuilt; the conditions that did not change stay.
    world.members["east"].set_deployment_status("default", world.workloads("east")[0], ready=1)
    world.clock.advance(15)
    third = (await world.reconcile("llama")).status
    assert third.conditions and third.placements
    ready = {c.type: c for c in third.conditions}["Ready"]
    assert ready.status == "False" and ready.last_transition_time == world.clock()
    assert third.placements[0].ready == 1 and third.placements[0] is not first.placements[0]
    slo_met = {c.type: c for c in second.conditions}["SLOMet"]
    assert {c.type: c for c in third.conditions}["SLOMet"] is slo_met


async def test_the_converted_spec_follows_the_spec_object() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0)])
    await world.start()
    world.add(model_deployment("llama"))
    memo = world.reconciler._specs
    md = world.deployments["llama"]
    assert memo.spec(md) is memo.spec(md.model_copy(update={"status": None}))
    world.set_spec("llama", replicas=md.spec.replicas.model_copy(update={"max": 5}))
    changed = world.deployments["llama"]
    converted = memo.spec(changed)
    assert converted == deployment_from_api(changed)
    assert converted.scaling.max_replicas == 5 != memo.spec(md).scaling.max_replicas


def test_cluster_view_with_marks_follows_the_cluster_and_the_marks() -> None:
    memo = _ViewMemo()
    cluster = fleet_cluster("east", region="us-east-1", price=10.0)
    none: tuple[StockoutMark, ...] = ()
    mark = (StockoutMark("H100", "OnDemand", until=_at(600), failures=1),)
    view = memo.marked(cluster, none)
    assert memo.marked(cluster, none) is view
    assert view == cluster_from_api(cluster, default_health="Unknown")
    marked = memo.marked(cluster, mark)
    assert marked.stockouts == mark and marked.name == "east"
    other = cluster.model_copy(update={"spec": cluster.spec.model_copy(update={"region": "x"})})
    assert memo.marked(other, mark).region == "x"


def test_cluster_view_offerings_follow_the_spec_and_the_discovered_offerings() -> None:
    """A probe replaces the FleetCluster and its status (a new offerings list of the same
    offering objects): the converted offerings are reused, and every view equals the one
    built from nothing; a rediscovery or a spec edit converts them anew."""
    memo = _ViewMemo()
    cluster = fleet_cluster("east", region="us-east-1", price=10.0)
    discovered = GpuOffering(
        gpu="L4", gpu_memory_gi_b=24, gpus_per_node=1, instance_type="g6.xlarge"
    )
    probed = cluster.model_copy(
        update={"status": FleetClusterStatus(health="Healthy", offerings=[discovered])}
    )
    first = memo.view(probed)
    assert first == cluster_from_api(probed, default_health="Unknown")
    assert [o.instance_type for o in first.offerings] == ["east-h100", "g6.xlarge"]

    assert probed.status is not None and probed.status.offerings is not None
    again = probed.model_copy(
        update={
            "status": FleetClusterStatus(
                health="Suspect", health_since=_at(5), offerings=probed.status.offerings
            )
        }
    )
    view = memo.view(again)
    assert view == cluster_from_api(again, default_health="Unknown")
    assert view.health == "Suspect" and view.offerings is first.offerings

    cheaper = discovered.model_copy(update={"on_demand_per_hour": 0.5})
    rediscovered = again.model_copy(
        update={"status": FleetClusterStatus(health="Healthy", offerings=[cheaper])}
    )
    view = memo.view(rediscovered)
    assert view == cluster_from_api(rediscovered, default_health="Unknown")
    assert view.offerings[1].on_demand_per_hour == 0.5

    edited = rediscovered.model_copy(
        update={"spec": rediscovered.spec.model_copy(update={"zones": ["us-east-1a"]})}
    )
    view = memo.view(edited)
    assert view == cluster_from_api(edited, default_health="Unknown")
    assert view.offerings[0].zones == ("us-east-1a",)

    gone = edited.model_copy(update={"status": None})
    view = memo.view(gone)
    assert view == cluster_from_api(gone, default_health="Unknown")
    assert [o.instance_type for o in view.offerings] == ["east-h100"]
