"""A decision status dated after the operator's clock never steers the next plan.

``status.decision`` is the planner's memory, read back every pass. A status written by a
clock ahead of ours (another replica's, a restore, a hand edit) held entries from the
future, and the planner took them as they were:

- a ``rateHistory`` sample from the future was the forecast's latest rate (a negative
  age), so a high one raised the replica count, and, being the newest sample, it stopped
  the current rate from being recorded until the clock caught up with it;
- a ``recommendations`` entry from the future stayed in the down-stabilisation window
  until its date: a high one held the replicas up that long;
- a timer started in the future (``spotUnavailableAt``, ``idleSince``...) ran from then.

The status is now read as the past it must be (``reconciler.status.decision_from_status``
with the pass's clock): future samples and recommendations are dropped, future timers
start at the pass. Reconciler level on the in-package fakes with a virtual clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from reconciler_world import T0, World, fleet_cluster, model_deployment

from modelfleet.api import dump
from modelfleet.api.modeldeployment import DecisionStatus, ModelDeployment
from modelfleet.reconciler.status import decision_from_status

PROFILED: dict[str, Any] = {
    "replicas": {"min": 1, "max": 10},
    "slo": {"ttftP95Ms": 200, "tpotP95Ms": 50},
    "workload": {"promptTokens": 600, "outputTokens": 250},
    "capacityProfiles": [
        {
            "gpu": "H100",
            "prefillTokensPerSecond": 40000,
            "decodeTokensPerSecond": 4000,
            "source": "Measured",
        }
    ],
}
"""12.9 req/s per replica (600 prompt + 250 output tokens)."""


async def _steady(rate: float) -> World:
    """``a`` planned for ``rate`` req/s for 5 minutes: its rate history is real."""
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=16)])
    await world.start()
    world.add(model_deployment("a", **PROFILED))
    for _ in range(11):
        world.metrics.set(
            "default",
            "a",
            cluster="east",
            request_rate=rate,
            ttft_p95_ms=100.0,
            tpot_p95_ms=20.0,
            queue_depth=0.0,
        )
        await world.reconcile("a")
        world.mark_ready("east")
        world.clock.advance(30)
    return world


def _edit_decision(world: World, **changes: Any) -> None:
    """Rewrite ``a``'s ``status.decision`` as a clock ahead (or a hand) would."""
    body: dict[str, Any] = dump(world.deployments["a"])
    body["status"]["decision"].update(changes)
    world.deployments["a"] = ModelDeployment.model_validate(body)


def _desired(world: World) -> int:
    status = world.deployments["a"].status
    assert status is not None and status.replicas is not None
    return status.replicas.desired


async def test_a_rate_sample_from_the_future_does_not_steer_the_forecast() -> None:
    world = await _steady(25.0)  # ceil(25 x 1.2 / 12.9) = 3
    assert _desired(world) == 3
    ahead = world.clock() + timedelta(minutes=5)
    body = dump(world.deployments["a"])
    samples = body["status"]["decision"]["rateHistory"]
    _edit_decision(world, rateHistory=[*samples, {"at": ahead.isoformat(), "rate": 300.0}])
    await world.reconcile("a")
    assert _desired(world) == 3, "a sample from the future raised the replicas"
    decision = world.deployments["a"].status.decision  # type: ignore[union-attr]
    assert decision is not None and decision.rate_history
    last = decision.rate_history[-1]
    assert (last.at, last.rate) == (world.clock(), 25.0), "the current rate was not recorded"
    assert all(s.at <= world.clock() for s in decision.rate_history)


async def test_a_recommendation_from_the_future_does_not_hold_the_replicas() -> None:
    """Demand falls from 80 to 25 req/s: the replicas come down once the 5-minute
    down-stabilisation window has passed, with or without a recommendation from the
    future in the status (one of 8, dated a month ahead, held them at 8 for a month)."""
    worlds = [await _steady(80.0), await _steady(80.0)]  # ceil(80 x 1.2 / 12.9) = 8
    edited, twin = worlds
    assert _desired(edited) == _desired(twin) == 8
    ahead = edited.clock() + timedelta(days=30)
    recs = dump(edited.deployments["a"])["status"]["decision"]["recommendations"]
    _edit_decision(edited, recommendations=[*recs, {"at": ahead.isoformat(), "replicas": 8}])
    for world in worlds:
        for _ in range(16):  # 8 minutes at 25 req/s
            world.metrics.set(
                "default", "a", cluster="east", request_rate=25.0, ttft_p95_ms=100.0,
                tpot_p95_ms=20.0, queue_depth=0.0,
            )  # fmt: skip
            await world.reconcile("a")
            world.mark_ready("east")
            world.clock.advance(30)
    assert _desired(twin) < 8, "the test needs a scale-down"
    assert _desired(edited) == _desired(twin), "a recommendation from the future held them"


def test_timers_started_in_the_future_start_now() -> None:
    later = T0 + timedelta(days=365)
    status = DecisionStatus.model_validate(
        {
            "idleSince": later.isoformat(),
            "spotUnavailableAt": later.isoformat(),
            "capacityBoundedAt": later.isoformat(),
            "shortSince": later.isoformat(),
            "rateHistory": [
                {"at": (T0 - timedelta(seconds=30)).isoformat(), "rate": 4.0},
                {"at": later.isoformat(), "rate": 400.0},
            ],
            "recommendations": [{"at": later.isoformat(), "replicas": 9}],
        }
    )
    state = decision_from_status(status, T0)
    assert (state.idle_since, state.spot_unavailable_at) == (T0, T0)
    assert (state.capacity_bounded_at, state.short_since) == (T0, T0)
    assert state.rate_history == ((T0 - timedelta(seconds=30), 4.0),)
    assert state.recommendations == ()
    # Read without a clock (tools that only convert) the status is taken as written.
    assert decision_from_status(status).short_since == later
