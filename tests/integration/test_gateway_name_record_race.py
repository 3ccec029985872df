"""Two gateway replicas record one new model name at once: the first write's date stays.

A route's claim on a model name is dated by ``status.modelNames[].since``, which the gateway
writes the first time it sees the claim (``route_status``). Every replica watches the same
route and sees the same edit; each dates the new name by its own clock when it builds its
catalog. Before (gw15), both PATCHed and the last one stayed, so a replica could move a
recorded date (later, never earlier than the edit). Now each PATCH carries the
resourceVersion its replica read: the second is refused 409 by the API server, the replica
re-reads the route and keeps what the first recorded.

Real HTTP against KMock's emulator in ``versioned`` mode (resourceVersion preconditions as a
real API server honours them: tests/integration/test_kube_emulator_versions.py), two real
``RouteStatusWriter`` s with the gateway's own API client, each handed the route as its
watch delivered it: the race made deterministic, the second replica's write sent after the
first one's landed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kube_emulator import KubeEmulator, kube_emulator
from tests.integration.rbac_check import gateway_grants
from tests.integration.test_gateway_route_status import ROUTE_SPEC, ROUTES, until

from modelfleet.gateway.catalog import build_catalog, route_from_object
from modelfleet.gateway.route_status import RouteStatusWriter
from modelfleet.gateway.run import hub_api_client

pytestmark = pytest.mark.integration

API = "/apis/modelfleet.io/v1alpha1/namespaces/team-b/modelroutes"
FIRST = datetime(2026, 12, 2, 5, 0, 0, tzinfo=UTC)
SECOND = datetime(2026, 12, 2, 5, 0, 7, tzinfo=UTC)
JAN = "2026-01-01T00:00:00Z"


async def send(kube: KubeEmulator, method: str, path: str, body: Any) -> int:
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, kube.url + path, json=body, headers=headers) as response,
    ):
        await response.read()
        return response.status


def since(kube: KubeEmulator) -> dict[str, str]:
    obj = kube.get(ROUTES, "old", namespace="team-b") or {}
    return {e["name"]: e["since"] for e in (obj.get("status") or {}).get("modelNames") or []}


def gets(kube: KubeEmulator) -> list[str]:
    return [p for m, p in kube.authenticated_requests() if m == "GET"]


def patches(kube: KubeEmulator) -> int:
    return sum(1 for m, _ in kube.authenticated_requests() if m == "PATCH")


async def test_two_replicas_recording_one_new_name_keep_the_first_date(tmp_path: Path) -> None:
    async with kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube:
        old = {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "ModelRoute",
            "metadata": {"name": "old", "namespace": "team-b"},
            "spec": {"model": "mine", "rules": [{"backends": [{"deployment": "mine"}]}]},
        }
        assert await send(kube, "POST", API, old) in (200, 201)
        recorded = {"status": {"modelNames": [{"name": "mine", "since": JAN}]}}
        assert await send(kube, "PATCH", f"{API}/old/status", recorded) == 200
        # The edit both replicas see: 'llama' added, not recorded yet.
        assert await send(kube, "PATCH", f"{API}/old", {"spec": {"aliases": ["llama"]}}) == 200
        seen = route_from_object(kube.get(ROUTES, "old", namespace="team-b") or {})
        assert seen is not None

        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(kube.kubeconfig()), encoding="utf-8")
        api = await hub_api_client(kubeconfig)
        try:
            first = RouteStatusWriter(api, instance="gw-1", clock=lambda: FIRST)
            second = RouteStatusWriter(api, instance="gw-2", clock=lambda: SECOND)
            # Each replica's catalog dates the unrecorded name by its own now.
            first.submit(build_catalog([], [seen], now=FIRST), [seen])
            await until(lambda: "llama" in since(kube), "the first replica's record")
            assert since(kube) == {"mine": JAN, "llama": "2026-12-02T05:00:00Z"}
            second.submit(build_catalog([], [seen], now=SECOND), [seen])
            await until(lambda: patches(kube) == 2, "the second replica's write")
            await until(lambda: bool(gets(kube)), "the second replica's re-read")
            await asyncio.sleep(0.3)  # nothing more: no write after the re-read
            await first.close()
            await second.close()
        finally:
            await api.close()
        # The first date stays (before: the last PATCH's, 05:00:07); the second replica,
        # refused 409, re-read the route and found its status as it wants it: no write.
        assert since(kube) == {"mine": JAN, "llama": "2026-12-02T05:00:00Z"}
        assert patches(kube) == 2
        assert (first.writes, second.writes, second.conflicts) == (1, 0, 1)
        assert gets(kube) == [f"{API}/old"]
        # Every request is one the chart's gateway RBAC allows (the re-read: get modelroutes).
        for namespaces in ((), ("team-b",)):  # cluster-wide, and a Role per served namespace
            assert gateway_grants(namespaces).denied(kube.authenticated_requests()) == []
