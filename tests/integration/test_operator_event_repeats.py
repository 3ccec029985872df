"""A lasting problem is one Event, not one per pass: with the real operator (kopf +
handlers) against KMock emulators, a ModelDeployment no cluster can hold (it asks for B200s,
which neither cluster offers) is reconciled every second and reports ``NoCandidates`` on
each pass; the operator posts that Warning once and counts the repeats in
``modelfleet_operator_events_deduplicated_total`` (``event_budget.EventRepeats``: an
identical Event on the same object within 10 minutes is not posted, and spends no budget).
Before, each pass posted it again until the object's budget (25) was spent."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from tests.integration.operator_harness import (
    MD_PATH,
    Fleet,
    eventually,
    fleet_cluster,
    fleet_fixture,
    model_deployment,
    operator,
)

pytestmark = pytest.mark.integration

CLUSTERS = {
    "east": fleet_cluster("east", region="us-east-1", cloud="aws", price=10.0),
    "west": fleet_cluster("west", region="us-west-2", cloud="aws", price=12.0),
}
PASSES = 5
"""Reconcile passes to watch after the first NoCandidates Event (the harness: 1 s apart)."""


fleet = fleet_fixture(CLUSTERS)


async def _last_reconcile(fleet: Fleet) -> datetime | None:
    body = await fleet.md("big")
    last = ((body or {}).get("status") or {}).get("lastReconcileTime")
    return datetime.fromisoformat(last) if last else None


async def test_a_lasting_no_candidates_is_posted_once(fleet: Fleet) -> None:
    async with operator(fleet) as context:
        await fleet.until_healthy("east", "west")
        md = model_deployment(
            "big", resources={"gpu": {"count": 1, "types": ["B200"]}}, replicas={"min": 1, "max": 2}
        )
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)
        await eventually(lambda: fleet.events("NoCandidates"), what="a NoCandidates Event")

        for i in range(PASSES):  # each one reports NoCandidates again
            before = await _last_reconcile(fleet)

            async def later(before: datetime | None = before) -> bool:
                last = await _last_reconcile(fleet)
                return last is not None and (before is None or last > before)

            await eventually(later, what=f"reconcile pass {i}")
        await asyncio.sleep(2.0)  # kopf posts Events in the background

        events: list[dict[str, Any]] = fleet.events("NoCandidates")
        assert len(events) == 1, [e["message"][:80] for e in events]
        assert events[0]["type"] == "Warning"
        assert (events[0].get("involvedObject") or {}).get("name") == "big"
        deduplicated = context.metrics.registry.get_sample_value(
            "modelfleet_operator_events_deduplicated_total", {"kind": "ModelDeployment"}
        )
        assert deduplicated is not None and deduplicated >= PASSES - 1
        dropped = context.metrics.registry.get_sample_value(
            "modelfleet_operator_events_dropped_total", {"kind": "ModelDeployment"}
        )
        assert not dropped  # repeats are not budget drops
