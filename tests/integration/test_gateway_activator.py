"""The gateway's wake-up writes (gateway/activator.py) against a real HTTP server speaking
the API server's PATCH: one merge patch per deployment per interval, a refused write (403:
the RBAC verb missing) logged and retried on the next held request, never raised."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web
from kubernetes_asyncio.client import ApiClient, Configuration

from modelfleet.gateway.activator import DemandWaker
from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.labels import DEMAND_SEEN_AT

pytestmark = pytest.mark.integration

PATH = "/apis/modelfleet.io/v1alpha1/namespaces/team/modeldeployments/coder"


class Hub:
    """Answers PATCHes of one ModelDeployment with the queued statuses (then 200)."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.patches: list[tuple[str, dict[str, object]]] = []

    async def patch(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.patches.append((request.headers.get("Content-Type", ""), body))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"kind": "ModelDeployment", **body}, status=status)


@pytest.fixture
async def hub() -> AsyncIterator[tuple[Hub, ApiClient]]:
    state = Hub()
    app = web.Application()
    app.router.add_patch(PATH, state.patch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = ApiClient(Configuration(host=f"http://127.0.0.1:{port}"))
    try:
        yield state, client
    finally:
        await client.close()
        await runner.cleanup()


async def _settle(waker: DemandWaker) -> None:
    for _ in range(100):
        await asyncio.sleep(0.02)
        if not waker.in_flight:
            return


async def test_one_merge_patch_per_interval_and_a_refusal_is_retried(
    hub: tuple[Hub, ApiClient], caplog: pytest.LogCaptureFixture
) -> None:
    state, client = hub
    now = [100.0]
    when = datetime(2026, 12, 1, 7, 0, 5, tzinfo=UTC)
    waker = DemandWaker(client, interval=15.0, clock=lambda: now[0], wall=lambda: when)
    key = DeploymentKey("team", "coder")
    state.statuses = [403]
    with caplog.at_level(logging.WARNING, logger="modelfleet.gateway.activator"):
        waker.held(key)
        await _settle(waker)
    assert waker.writes == 0 and len(state.patches) == 1
    assert "403" in caplog.text and "'patch' on modeldeployments" in caplog.text

    waker.held(key)  # refused before: the next held request tries again at once
    await _settle(waker)
    waker.held(key)  # within the interval of a write that worked: no second write
    await _settle(waker)
    assert waker.writes == 1 and len(state.patches) == 2
    content_type, body = state.patches[-1]
    assert content_type.startswith("application/merge-patch+json")
    assert body == {"metadata": {"annotations": {DEMAND_SEEN_AT: "2026-12-01T07:00:05.000Z"}}}

    now[0] += 15.0
    waker.held(key)
    await _settle(waker)
    assert waker.writes == 2 and len(state.patches) == 3
    await waker.close()
