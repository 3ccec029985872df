"""The gateway's wake-up writes (gateway/activator.py) against a real HTTP server speaking
the API server's Lease requests: a merge patch of the deployment's demand Lease in the
gateway's own namespace, a create when there is none yet (404), a patch again when another
replica created it meanwhile (409); one write per deployment per interval; a refused write
(403: the RBAC verbs missing) logged, never raised, and retried after the interval (not on
the next held request: a flood must not become one API call per request)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio.client import ApiClient, Configuration

from modelfleet.gateway.activator import DemandWaker
from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.labels import (
    DEMAND_FOR_DEPLOYMENT,
    DEMAND_FOR_NAMESPACE,
    DEMAND_LEASE,
    demand_lease_name,
)
from modelfleet.loop.demand_leases import lease_demand

pytestmark = pytest.mark.integration

GATEWAY_NS = "modelfleet-system"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{GATEWAY_NS}/leases"
NAME = demand_lease_name("team", "coder")


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies an application/merge-patch+json body."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


class Hub:
    """Answers Lease PATCHes and POSTs with the queued statuses (then 200/201), keeping the
    requests and the Lease a 2xx write left."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.requests: list[tuple[str, str, str, dict[str, Any]]] = []
        self.lease: dict[str, Any] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.requests.append(
            (request.method, request.path, request.headers.get("Content-Type", ""), body)
        )
        default = 201 if request.method == "POST" else (200 if self.lease else 404)
        status = self.statuses.pop(0) if self.statuses else default
        if status < 300:
            if request.method == "POST":
                self.lease = body
            else:
                assert self.lease is not None
                self.lease = merge_patch(self.lease, body)
        return web.json_response({"kind": "Lease", **(self.lease or {})}, status=status)


@pytest.fixture
async def hub() -> AsyncIterator[tuple[Hub, ApiClient]]:
    state = Hub()
    app = web.Application()
    app.router.add_post(LEASES, state.handle)
    app.router.add_patch(f"{LEASES}/{NAME}", state.handle)
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
    for _ in range(3000):  # a hang bound (>= 60 s); the checks after it tell what is missing
        await asyncio.sleep(0.02)
        if not waker.in_flight:
            return


async def test_the_first_write_creates_the_lease_then_patches_renew_it(
    hub: tuple[Hub, ApiClient],
) -> None:
    state, client = hub
    now = [100.0]
    when = [datetime(2026, 12, 1, 7, 0, 5, tzinfo=UTC)]
    waker = DemandWaker(
        client,
        namespace=GATEWAY_NS,
        interval=15.0,
        clock=lambda: now[0],
        wall=lambda: when[0],
        holder="gw-0",
    )
    key = DeploymentKey("team", "coder")
    waker.held(key)
    await _settle(waker)
    assert [(m, p) for m, p, _, _ in state.requests] == [
        ("PATCH", f"{LEASES}/{NAME}"),  # 404: no Lease yet
        ("POST", LEASES),
    ]
    assert waker.writes == 1 and state.lease is not None
    meta = state.lease["metadata"]
    assert meta == {
        "name": "team.coder",
        "namespace": GATEWAY_NS,
        "labels": {
            DEMAND_LEASE: "true",
            DEMAND_FOR_NAMESPACE: "team",
            DEMAND_FOR_DEPLOYMENT: "coder",
        },
        "annotations": {DEMAND_FOR_DEPLOYMENT: "team/coder"},
    }
    # What the operator reads of it (loop/demand_leases.py): the deployment and the time.
    assert lease_demand(state.lease) == ("team", "coder", when[0])

    waker.held(key)  # within the interval: nothing
    await _settle(waker)
    assert len(state.requests) == 2
    now[0] += 15.0
    when[0] = datetime(2026, 12, 1, 7, 0, 20, 250000, tzinfo=UTC)
    waker.held(key)  # the interval has passed: renewed with a merge patch
    await _settle(waker)
    method, path, content_type, body = state.requests[-1]
    assert (method, path) == ("PATCH", f"{LEASES}/{NAME}")
    assert content_type.startswith("application/merge-patch+json")
    assert body == {
        "metadata": {"labels": meta["labels"], "annotations": meta["annotations"]},
        "spec": {
            "holderIdentity": "gw-0",
            "renewTime": "2026-12-01T07:00:20.250000Z",
            "leaseDurationSeconds": 120,
        },
    }
    assert waker.writes == 2 and lease_demand(state.lease) == ("team", "coder", when[0])
    await waker.close()


async def test_a_create_that_lost_the_race_renews_the_other_replicas_lease(
    hub: tuple[Hub, ApiClient],
) -> None:
    state, client = hub
    state.lease = None
    state.statuses = [404, 409, 200]  # patch: none yet; create: another replica was first
    state.lease = {"metadata": {"name": NAME}, "spec": {"holderIdentity": "gw-1"}}
    waker = DemandWaker(client, namespace=GATEWAY_NS, holder="gw-0")
    waker.held(DeploymentKey("team", "coder"))
    await _settle(waker)
    assert [m for m, _, _, _ in state.requests] == ["PATCH", "POST", "PATCH"]
    assert waker.writes == 1
    assert state.lease["spec"]["holderIdentity"] == "gw-0"
    await waker.close()


async def test_a_refusing_api_server_gets_one_write_per_interval_under_a_flood(
    hub: tuple[Hub, ApiClient], caplog: pytest.LogCaptureFixture
) -> None:
    """A gateway without the RBAC verbs (403) must not turn every held request into an API
    call: a client opening and closing held requests in a loop would otherwise make the
    gateway hammer the API server (and the log)."""
    state, client = hub
    now = [100.0]
    waker = DemandWaker(client, namespace=GATEWAY_NS, interval=15.0, clock=lambda: now[0])
    key = DeploymentKey("team", "coder")
    state.statuses = [403] * 100
    with caplog.at_level(logging.WARNING, logger="modelfleet.gateway.activator"):
        for _ in range(200):  # each held request of a flood, each after the last answer
            waker.held(key)
            await _settle(waker)
            now[0] += 0.05  # 10 s in all: within one interval
    assert len(state.requests) == 1 and waker.writes == 0
    assert caplog.text.count("could not wake") == 1
    assert f"'create' and 'patch' on leases in {GATEWAY_NS}" in caplog.text
    now[0] += 15.0
    waker.held(key)
    await _settle(waker)
    assert len(state.requests) == 2  # tried again after the interval
    await waker.close()


async def test_a_renewal_restores_what_the_operator_selects_the_lease_by(
    hub: tuple[Hub, ApiClient],
) -> None:
    """A Lease of that name the gateway did not create (made by hand, left by another
    version, its label removed) would be renewed forever without the operator seeing it:
    its watch selects on the label, and it reads the deployment from the annotation."""
    state, client = hub
    state.lease = {
        "metadata": {"name": NAME, "namespace": GATEWAY_NS, "labels": {"team": "ops"}},
        "spec": {"holderIdentity": "someone"},
    }
    when = datetime(2026, 12, 1, 7, 0, 5, tzinfo=UTC)
    waker = DemandWaker(client, namespace=GATEWAY_NS, wall=lambda: when, holder="gw-0")
    waker.held(DeploymentKey("team", "coder"))
    await _settle(waker)
    assert [m for m, _, _, _ in state.requests] == ["PATCH"] and waker.writes == 1
    assert state.lease["metadata"]["labels"] == {
        "team": "ops",  # a merge patch: what else is there stays
        DEMAND_LEASE: "true",
        DEMAND_FOR_NAMESPACE: "team",
        DEMAND_FOR_DEPLOYMENT: "coder",
    }
    assert lease_demand(state.lease) == ("team", "coder", when)
    await waker.close()
