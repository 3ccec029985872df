"""Region-loss tolerance through the real operator: placement, status and its price.

KMock hub and two member clusters in two regions, as in test_operator.py. A deployment of
two replicas with ``failover.tolerateRegionLoss`` must keep two replicas outside each
region, so both regions hold two; the status says what the headroom costs per hour.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.operator_harness import (
    EAST_WEST,
    MD_PATH,
    Fleet,
    eventually,
    fleet_fixture,
    model_deployment,
    operator,
)

pytestmark = pytest.mark.integration


fleet = fleet_fixture(EAST_WEST)


async def test_tolerant_deployment_keeps_demand_outside_each_region(fleet: Fleet) -> None:
    async with operator(fleet):
        md = model_deployment(
            "llama",
            replicas={"min": 2, "max": 2},
            failover={"tolerateRegionLoss": True},
        )
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)
        await eventually(
            lambda: fleet.replicas("east") == 2 and fleet.replicas("west") == 2,
            what="two replicas in each region",
        )

        async def status() -> dict[str, Any] | None:
            body = await fleet.md("llama")
            st = (body or {}).get("status") or {}
            # A pass may write status while the new placements are still being applied
            # (costPerHour 0); wait for the pass that reports the placed replicas.
            placed = sum(p.get("replicas", 0) for p in st.get("placements") or [])
            return st if st.get("headroomCostPerHour") is not None and placed == 4 else None

        st = await eventually(status, what="status.headroomCostPerHour")
        # Plain: both replicas in east at $10 = $20/h. Tolerant: 2 + 2 = $44/h.
        assert st["costPerHour"] == pytest.approx(44.0)
        assert st["headroomCostPerHour"] == pytest.approx(24.0)
        assert st["replicas"]["desired"] == 2
