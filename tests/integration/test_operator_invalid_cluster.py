"""An invalid FleetCluster, with the real operator (kopf + handlers) against KMock
emulators: a spec the schema lets through (KMock validates nothing; a real API server's
structural schema lets these through too: the models' cross-field rules and types it does
not state) but the models refuse is left out of the fleet, and its status says so:
``Ready=False`` with reason ``InvalidSpec`` and a message naming the fields, never their
values (a spec may carry a credential), posted once as an Event (not once per probe); a fix
clears it (the next probe writes the cluster's own conditions)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.integration.operator_harness import (
    EAST,
    FC_PATH,
    Fleet,
    eventually,
    fleet_fixture,
    operator,
)

pytestmark = pytest.mark.integration

SECRET = "s3cret-t0ken"


fleet = fleet_fixture(EAST)


def _ready(fc: dict[str, Any] | None) -> dict[str, Any]:
    conditions = ((fc or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


async def test_an_invalid_cluster_says_why_in_its_status_until_it_is_fixed(fleet: Fleet) -> None:
    async with operator(fleet):
        await fleet.until_healthy("east")
        assert _ready(await fleet.fc("east")).get("status") == "True"

        # provider aws without its spec.aws block, and a price that is not a number (here
        # what could be a credential pasted into the wrong field).
        offerings = EAST["east"]["spec"]["gpuOfferings"]
        broken = [{**offerings[0], "onDemandPerHour": SECRET}]
        await fleet.kubectl.patch(
            f"{FC_PATH}/east", {"spec": {"provider": "aws", "gpuOfferings": broken}}
        )

        async def invalid() -> dict[str, Any] | None:
            ready = _ready(await fleet.fc("east"))
            return ready if ready.get("reason") == "InvalidSpec" else None

        ready = await eventually(invalid, what="Ready=False InvalidSpec on east")
        assert ready["status"] == "False"
        assert (
            "spec.gpuOfferings.0.onDemandPerHour" in ready["message"]
            and SECRET not in ready["message"]
        )
        await asyncio.sleep(2.0)  # several probe intervals (0.5 s): still one Event
        events = [
            e
            for e in fleet.events("InvalidSpec")
            if (e.get("involvedObject") or {}).get("name") == "east"
        ]
        assert len(events) == 1, events
        assert (
            SECRET not in str(events[0])
            and "spec.gpuOfferings.0.onDemandPerHour" in events[0]["message"]
        )
        assert _ready(await fleet.fc("east")) == ready  # not rewritten by every probe

        await fleet.kubectl.patch(
            f"{FC_PATH}/east", {"spec": {"provider": "simulated", "gpuOfferings": offerings}}
        )

        async def fixed() -> bool:
            return _ready(await fleet.fc("east")).get("reason") == "ClusterHealthy"

        await eventually(fixed, what="east's own Ready condition back after the fix")
