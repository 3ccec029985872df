"""A capacity profile whose ``measurement.curve`` cannot be read as a latency-vs-load curve
(points out of order, a repeated rate, a latency that falls as the load rises), with the
real operator (kopf + handlers) against KMock emulators. A 1.19 API server's structural
schema cannot state these rules (no CEL), so the operator refuses the spec itself: Ready=False
with reason ``InvalidSpec`` and a message naming the point, one Warning Event (not one per
pass), nothing placed; a fixed curve is then reconciled. It used to be re-sorted and read as
its running maximum without a word."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.integration.operator_harness import (
    EAST,
    MD_PATH,
    Fleet,
    condition,
    eventually,
    fleet_fixture,
    measured_h100,
    model_deployment,
    operator,
)

pytestmark = pytest.mark.integration


fleet = fleet_fixture(EAST)


async def test_an_unreadable_curve_is_refused_with_a_condition_and_one_event(
    fleet: Fleet,
) -> None:
    unsorted = [
        {"requestsPerSecond": 8.0, "ttftP95Ms": 140, "tpotP95Ms": 29.5},
        {"requestsPerSecond": 4.0, "ttftP95Ms": 120, "tpotP95Ms": 24.0},
        {"requestsPerSecond": 12.9, "ttftP95Ms": 100, "tpotP95Ms": 38.2},
    ]
    async with operator(fleet):
        await fleet.until_healthy("east")
        md = model_deployment("llama", capacityProfiles=measured_h100(unsorted))
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)

        async def invalid() -> dict[str, Any] | None:
            ready = condition(await fleet.md("llama"))
            return ready if ready.get("reason") == "InvalidSpec" else None

        ready = await eventually(invalid, what="Ready=False InvalidSpec on llama")
        assert ready["status"] == "False"
        where = "spec.capacityProfiles.0.measurement.curve"
        assert where in ready["message"], ready["message"]
        assert "curve.1.requestsPerSecond is not above curve.0's" in ready["message"]
        assert "curve.2.ttftP95Ms is below curve.0.ttftP95Ms" in ready["message"]

        def posted() -> list[dict[str, Any]]:
            return [
                e
                for e in fleet.events("InvalidSpec")
                if (e.get("involvedObject") or {}).get("name") == "llama"
            ]

        await eventually(posted, what="an InvalidSpec Event")  # kopf posts in the background
        await asyncio.sleep(3.0)  # several passes of the operator's loop: still one Event
        events = posted()
        assert len(events) == 1, events
        assert events[0]["type"] == "Warning" and where in events[0]["message"]
        assert condition(await fleet.md("llama")) == ready  # not rewritten by every pass
        assert fleet.replicas("east") == 0, "an invalid spec placed replicas"
        # The served name is recorded for an invalid spec too, dated by the creation (else
        # a deployment kept invalid, then fixed and renamed at once, would be dated by its
        # creation: the gateway's first-come rule, br13).
        stored = await fleet.md("llama") or {}
        created = stored["metadata"]["creationTimestamp"]
        served = {"name": md["spec"]["model"]["name"], "since": created}
        assert stored["status"].get("servedModel") == served

        fixed = sorted(unsorted, key=lambda p: p["requestsPerSecond"])
        fixed[2] = {**fixed[2], "ttftP95Ms": 181}
        await fleet.kubectl.patch(
            MD_PATH.format(ns="default") + "/llama",
            {"spec": {"capacityProfiles": measured_h100(fixed)}},
        )
        await eventually(lambda: fleet.replicas("east") == 2, what="placed once fixed")

        async def no_longer_invalid() -> bool:
            return condition(await fleet.md("llama")).get("reason") not in (None, "InvalidSpec")

        await eventually(no_longer_invalid, what="Ready no longer InvalidSpec")
        assert ((await fleet.md("llama")) or {})["status"]["servedModel"] == served  # kept


async def test_a_curve_beside_a_zero_capacity_rate_is_refused(fleet: Fleet) -> None:
    """The curve's rates are read relative to ``measurement.requestsPerSecond``: beside 0 it
    was accepted and silently unused. Now the same InvalidSpec path names the field."""
    curve = [
        {"requestsPerSecond": 4.0, "ttftP95Ms": 120},
        {"requestsPerSecond": 8.0, "ttftP95Ms": 140},
    ]
    profiles = measured_h100(curve)
    profiles[0]["measurement"]["requestsPerSecond"] = 0
    async with operator(fleet):
        await fleet.until_healthy("east")
        md = model_deployment("llama", capacityProfiles=profiles)
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)

        async def invalid() -> dict[str, Any] | None:
            ready = condition(await fleet.md("llama"))
            return ready if ready.get("reason") == "InvalidSpec" else None

        ready = await eventually(invalid, what="Ready=False InvalidSpec on llama")
        assert ready["status"] == "False"
        assert (
            "spec.capacityProfiles.0.measurement.curve: curve is set but requestsPerSecond is 0"
            in " ".join(ready["message"].split())
        ), ready["message"]
        assert fleet.replicas("east") == 0, "an invalid spec placed replicas"
