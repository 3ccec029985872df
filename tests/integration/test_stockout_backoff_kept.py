"""Issue 9, fault 5 (case ``stockout-backoff-kept``), through the real operator over HTTP:
a deployment runs 2 spot replicas on a pool when the cloud runs out of that spot capacity,
then scales up twice, seconds apart. One refused grow request, then the pool is skipped
(the mark is not erased by calls that only keep the pool's size) and the mark is published
in the FleetCluster's ``status.stockouts`` for its 3 minutes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tests.integration.operator_harness import (
    EAST_WEST_SPOT,
    MD_PATH,
    Fleet,
    eventually,
    fleet_fixture,
    model_deployment,
    operator,
)

from modelfleet.api import FleetCluster

pytestmark = pytest.mark.integration
MD = MD_PATH.format(ns="default")


fleet = fleet_fixture(EAST_WEST_SPOT)


async def test_stockout_backoff_is_kept(fleet: Fleet) -> None:
    async with operator(fleet) as context:
        await fleet.until_healthy("east", "west")
        md = model_deployment(
            "llama",
            replicas={"min": 2, "max": 8},
            placement={"regions": ["us-east-1"], "capacity": {"spot": "Preferred"}},
        )
        await fleet.kubectl.create(MD, md)
        await eventually(lambda: fleet.replicas("east") == 2, what="2 spot replicas in east")
        fleet.mark_ready("east")
        await asyncio.sleep(2)

        provider = await context.providers.provider_for(
            FleetCluster.model_validate(await fleet.fc("east"))
        )
        provider.inject_stockout(
            "aws-h100-1g", "Spot", until=datetime.now(UTC) + timedelta(hours=1)
        )
        start = len(provider.calls)

        await fleet.kubectl.patch(f"{MD}/llama", {"spec": {"replicas": {"min": 4, "max": 8}}})
        await eventually(lambda: fleet.events("Stockout"), what="first Stockout event")
        await eventually(lambda: fleet.replicas("east") == 4, what="4 replicas")
        fleet.mark_ready("east")
        published: list[int] = []

        async def stockouts_published() -> bool:
            fc = await fleet.fc("east")
            published.append(len(((fc or {}).get("status") or {}).get("stockouts") or []))
            return published[-1] == 1

        # The probe publishes it (every 0.5 s); a fixed 6 s of sampling was too short for
        # a busy machine's probes.
        await eventually(stockouts_published, what="one entry in status.stockouts")
        assert len(context.stockouts.marks("east")) == 1

        await fleet.kubectl.patch(f"{MD}/llama", {"spec": {"replicas": {"min": 6, "max": 8}}})
        await eventually(lambda: fleet.replicas("east") == 6, what="6 replicas")
        await asyncio.sleep(3)
        spot_grows = [
            c.detail
            for c in provider.calls[start:]
            if c.method == "ensure_pool"
            and "/Spot=" in c.detail
            and int(c.detail.rsplit("=", 1)[1]) > 2
        ]
        assert len(fleet.events("Stockout")) >= 1
        [mark] = context.stockouts.marks("east")
        assert (mark.capacity_type, mark.failures) == ("Spot", 1), "the backoff was reset"
        fc = await fleet.fc("east")
        assert [s["capacityType"] for s in (fc.get("status") or {}).get("stockouts") or []] == [
            "Spot"
        ]
        assert len(spot_grows) == 1, (
            "the stocked-out pool was asked to grow again inside its backoff"
        )
