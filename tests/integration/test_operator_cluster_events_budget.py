"""A tenant whose ``pvc://`` claims keep going missing in a member cluster cannot silence
that cluster's own Events: with the real operator (kopf + handlers) against KMock
emulators, each new missing claim brings a ``ClaimMissing`` Event on the FleetCluster, the
one object every tenant shares, until its budget is spent; the cluster's health Event that
follows (``ClusterSuspect``) is still posted. Here the budget is 3 at once (set on the
context before kopf starts, instead of client-go's 25, to keep the test short).

The emulator has no scheduler: the test leaves pods as kube-scheduler does when a volume
names a claim that does not exist (as ``test_operator_pvc_claim``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.integration.operator_harness import (
    EAST,
    Fleet,
    eventually,
    fleet_fixture,
    operator_prepared,
)

from modelfleet import labels
from modelfleet.event_budget import EventBudget
from modelfleet.runtime import OperatorContext

pytestmark = pytest.mark.integration

BURST = 3
CLAIMS = 6
"""Claims that go missing one after another: twice the budget."""


fleet = fleet_fixture(EAST)


def _pending_pod(claim: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "tenant-pod",
            "namespace": "default",
            "labels": {labels.MANAGED: "true", labels.DEPLOYMENT: "tenant"},
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": f'0/1 nodes are available: persistentvolumeclaim "{claim}" '
                    "not found. preemption: 0/1 nodes are available: 1 Preemption is not "
                    "helpful for scheduling.",
                }
            ],
        },
    }


def _on_east(fleet: Fleet, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in fleet.events(reason)
        if (e.get("involvedObject") or {}).get("kind") == "FleetCluster"
    ]


async def test_missing_claims_cannot_spend_a_clusters_health_events(fleet: Fleet) -> None:
    async def small_budget(context: OperatorContext) -> None:
        context.event_budget = EventBudget(burst=BURST)

    async with operator_prepared(fleet, small_budget):
        await fleet.until_healthy("east")
        for i in range(CLAIMS):
            claim = f"weights-{i}"
            fleet.members["east"].put("v1/pods", _pending_pod(claim))

            async def listed(claim: str = claim) -> bool:
                status = ((await fleet.fc("east")) or {}).get("status") or {}
                return status.get("missingClaims") == [f"default/{claim}"]

            await eventually(listed, what=f"{claim} in missingClaims")
        # kopf posts Events in the background: give it a while.
        await asyncio.sleep(2.0)

        fleet.break_member("east")
        await eventually(
            lambda: len(_on_east(fleet, "ClusterSuspect")) == 1,
            what="ClusterSuspect Event on east",
        )
        # Each claim was new to the cluster's status; only the budget's worth was posted.
        assert len(_on_east(fleet, "ClaimMissing")) == BURST
