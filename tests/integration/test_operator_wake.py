"""Scale from zero through the activator, with the real operator (kopf + handlers) against
KMock emulators: a ``replicas.min: 0`` deployment whose demand query has no series stays
at zero, and the gateway's wake-up annotation (``activator.modelfleet.io/demand-seen-at``,
written here as the gateway writes it: a merge patch of the metadata) starts it at once
through kopf's update handler, long before the next timed pass (10 minutes here)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.integration.operator_harness import (
    FAST,
    MD_PATH,
    Fleet,
    eventually,
    fleet_cluster,
    fleet_of,
    model_deployment,
    operator,
)

from modelfleet.labels import DEMAND_SEEN_AT

pytestmark = pytest.mark.integration

CLUSTERS = {"east": fleet_cluster("east", region="us-east-1", cloud="aws", price=10.0, spot=4.0)}
SLOW_TIMER = dataclasses.replace(FAST, interval_seconds=600.0)
DEMAND = 'sum(modelfleet_gateway_pending_requests{namespace="$namespace",deployment="$deployment"})'


@pytest.fixture
async def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fleet]:
    async with fleet_of(tmp_path, monkeypatch, CLUSTERS) as running:
        yield running


async def test_the_wake_up_annotation_starts_a_deployment_at_zero(fleet: Fleet) -> None:
    async with operator(fleet, settings=SLOW_TIMER):

        async def healthy() -> bool:
            fc = await fleet.fc("east")
            return ((fc or {}).get("status") or {}).get("health") == "Healthy"

        await eventually(healthy, what="east Healthy")
        md = model_deployment("coder", replicas={"min": 0, "max": 2}, metrics={"demand": DEMAND})
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)

        async def reconciled() -> bool:
            body = await fleet.md("coder")
            return ((body or {}).get("status") or {}).get("observedGeneration") == 1

        await eventually(reconciled, what="the first pass's status")
        assert fleet.replicas("east") == 0  # no series for the demand query: nothing seen

        stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        await fleet.kubectl.patch(
            MD_PATH.format(ns="default") + "/coder",
            {"metadata": {"annotations": {DEMAND_SEEN_AT: stamp}}},
        )
        await eventually(lambda: fleet.replicas("east") == 1, what="one replica after the wake")

        async def placed() -> bool:
            body = await fleet.md("coder")
            replicas = ((body or {}).get("status") or {}).get("replicas") or {}
            return replicas.get("desired") == 1 and replicas.get("unplaced") == 0

        await eventually(placed, what="status: one replica desired and placed")
