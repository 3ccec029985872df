"""A tenant flapping its ModelRoute cannot make the gateway post Events at will (br15c F3):
against KMock's Kubernetes API emulator (versioned mode) over real HTTP, route ``a`` is
edited valid <-> invalid 30 times while route ``b`` claims the same model name. Each object
gets at most its budget of Events (client-go's: 25 at once, one per 5 minutes after), the
ones over it are counted in the gateway's metrics, and the status, which is not budgeted,
still ends up telling the truth."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest
from kube_emulator import kube_emulator
from tests.integration.test_gateway_route_status import (
    ROUTE_SPEC,
    ROUTES,
    ROUTES_PATH,
    _send,
    conditions,
    hub_gateway,
    route,
    until,
)

from modelfleet.event_budget import BURST
from modelfleet.gateway.run import serve_gateway

pytestmark = pytest.mark.integration

EDITS = 30
"""Before the budget, 20 such edits gave route ``a`` 31 Events (br15c F3): 30 go well past
the burst."""


def dropped(metrics_text: str, kind: str) -> float:
    found = re.search(
        rf'^modelfleet_gateway_events_dropped_total{{kind="{kind}"}} (\S+)$',
        metrics_text,
        re.MULTILINE,
    )
    return float(found.group(1)) if found else 0.0


async def test_a_flapping_route_gets_at_most_its_budget_of_events(tmp_path: Path) -> None:
    async with kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube:
        assert await _send(kube, "POST", ROUTES_PATH, route("a", "x")) == 200
        await asyncio.sleep(1.1)  # creation timestamps are to the second: a is first
        assert await _send(kube, "POST", ROUTES_PATH, route("b", "x")) == 200
        async with serve_gateway(hub_gateway(kube, tmp_path)) as running:
            await until(lambda: "Accepted" in conditions(kube, "b"), "b's status")
            for i in range(EDITS):
                # "Fallback" without a fallback list is invalid: the gateway ignores the
                # route (Accepted=False, InvalidSpec); "Reject" makes it valid again.
                edit = {"spec": {"onNoMatch": "Fallback" if i % 2 == 0 else "Reject"}}
                assert await _send(kube, "PATCH", f"{ROUTES_PATH}/a", edit) == 200
                await asyncio.sleep(0.3)

            # The status still follows the last edit: a valid again, and first, wins.
            generation = (kube.get(ROUTES, "a", namespace="team") or {})["metadata"]["generation"]
            await until(
                lambda: (
                    conditions(kube, "a").get("Accepted", {}).get("observedGeneration")
                    == generation
                    and conditions(kube, "a")["Accepted"]["status"] == "True"
                ),
                "a's status after the last edit",
            )
            lost = conditions(kube, "b")["Accepted"]
            assert (lost["status"], lost["reason"]) == ("False", "ModelNameClash")
            assert "ModelRoute team/a" in lost["message"]
            await asyncio.sleep(1.0)  # any Event still in flight lands
            text = running.gateway.metrics.render().decode()

        events = kube.objects("v1/events", namespace="team")
        per_route = Counter(e["involvedObject"]["name"] for e in events)
        assert set(per_route) <= {"a", "b"}
        # Within the budget, per object (one replica: one budget); the test lasts seconds,
        # far less than the 300 s a token takes to come back.
        assert per_route["a"] == BURST, per_route
        assert per_route["b"] <= BURST, per_route
        # The rest were dropped, and counted.
        assert dropped(text, "ModelRoute") >= 1
        reasons = Counter(
            (e["type"], e["reason"]) for e in events if e["involvedObject"]["name"] == "a"
        )
        assert reasons[("Warning", "InvalidSpec")] >= 1, reasons
