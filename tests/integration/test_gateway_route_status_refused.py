"""A status write the API server refuses for one route concerns that route: the gateway
must still write every other route's status; and one refused as invalid (422: the CRD's
schema, e.g. a condition message over its 32,768-character ``maxLength``) is not sent again
and again (the same body is refused the same way). Against KMock's emulator over real HTTP
(br15c)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kube_emulator import kube_emulator
from tests.integration.test_gateway_route_status import (
    ROUTE_SPEC,
    ROUTES_PATH,
    _send,
    conditions,
    hub_gateway,
    route,
    status_patches,
    until,
)

from modelfleet.gateway.run import serve_gateway

pytestmark = pytest.mark.integration


async def test_a_route_whose_status_write_fails_does_not_hold_up_the_others(
    tmp_path: Path,
) -> None:
    async with kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube:
        # a-failing comes first in the list the gateway works through.
        for name in ("a-failing", "b-fine"):
            assert await _send(kube, "POST", ROUTES_PATH, route(name, name)) == 200
        kube.refuse("PATCH", f"{ROUTES_PATH}/a-failing/status", 500)
        async with serve_gateway(hub_gateway(kube, tmp_path)):
            # Before: the error was raised out of the loop over routes, which was retried
            # whole (pauses 1, 2, 5, 10, 30 s) and never got past a-failing.
            await until(lambda: "Accepted" in conditions(kube, "b-fine"), "b-fine's status")


async def test_a_status_refused_422_neither_blocks_other_routes_nor_repeats(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube:
        # a-refused comes first in the list the gateway works through.
        for name in ("a-refused", "b-fine"):
            assert await _send(kube, "POST", ROUTES_PATH, route(name, name)) == 200
        refused = f"{ROUTES_PATH}/a-refused/status"
        kube.refuse("PATCH", refused, 422)
        async with serve_gateway(hub_gateway(kube, tmp_path)):
            await until(lambda: "Accepted" in conditions(kube, "b-fine"), "b-fine's status")
            first = [p for m, p in kube.authenticated_requests() if m == "PATCH" and p == refused]
            await asyncio.sleep(3.5)  # the retry pauses of 1 and 2 s pass (before: 2 more)
            again = [p for m, p in kube.authenticated_requests() if m == "PATCH" and p == refused]
        assert len(first) == 1 and again == first
        assert caplog.text.count("team/a-refused: status refused (422)") == 1


async def test_an_overloaded_hub_gets_one_write_per_pause_not_one_per_route(
    tmp_path: Path,
) -> None:
    """429/503 say the API server is overloaded, not that one route is refused: the pass
    stops there (the writes of every route, sent anyway, would add to the load)."""
    async with kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube:
        names = [f"r{i}" for i in range(5)]
        for name in names:
            assert await _send(kube, "POST", ROUTES_PATH, route(name, name)) == 200
            kube.refuse("PATCH", f"{ROUTES_PATH}/{name}/status", 503)
        async with serve_gateway(hub_gateway(kube, tmp_path)) as running:
            await until(lambda: running.gateway.catalog.resolve("r4") is not None, "sync")
            await until(lambda: status_patches(kube) >= 1, "the first write")
            await asyncio.sleep(0.5)  # within the first pause (1 s)
            assert status_patches(kube) == 1
