"""The gateway discovering endpoints from a hub: KMock's Kubernetes API emulator over real
HTTP serves ModelDeployments (with the status the operator writes), a ModelRoute and the API
keys Secret; the gateway lists and watches them through kubernetes_asyncio, exactly as
against a real API server. Status changes are made with HTTP PATCHes so they reach the
gateway as watch events."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import yaml
from kube_emulator import KubeEmulator, ResourceSpec, kube_emulator
from openai_stub import StubEngine
from tests.integration import rbac_check

from modelfleet.gateway.run import GatewayOptions, serve_gateway
from modelfleet.gateway.settings import GatewaySettings
from modelfleet.loop.demand_leases import lease_demand

pytestmark = pytest.mark.integration


ROUTES = {
    "modelfleet.io/v1alpha1/modelroutes": ResourceSpec(
        "ModelRoute", namespaced=True, subresources=("status",)
    )
}
KEY = "sk-hub-0123456789"
MSG = [{"role": "user", "content": "hi"}]


def deployment(name: str, model: str, url: str, *, ready: int) -> dict[str, Any]:
    """A ModelDeployment as the operator leaves it: one placement in c-<name>, one endpoint."""
    cluster = f"c-{name}"
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"model": {"name": model}, "replicas": {"min": 0, "max": 2}},
        "status": {
            "placements": [
                {
                    "cluster": cluster,
                    "cloud": "aws",
                    "region": "us-east-1",
                    "gpu": "L40S",
                    "instanceType": "g6e.xlarge",
                    "capacityType": "OnDemand",
                    "replicas": 1,
                    "ready": ready,
                }
            ],
            "endpoints": [{"cluster": cluster, "url": url}],
        },
    }


async def _http(kube: KubeEmulator, method: str, path: str, body: Any = None) -> int:
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, kube.url + path, json=body, headers=headers) as response,
    ):
        await response.read()
        return response.status


async def _pending(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        return await response.text()


@pytest.mark.parametrize("namespaces", [(), ("team",)], ids=["cluster-wide", "namespaced"])
async def test_hub_discovery_routes_holds_and_follows_status_changes(
    tmp_path: Path, namespaces: tuple[str, ...]
) -> None:
    async with (
        kube_emulator(resources=ROUTES) as kube,
        StubEngine("warm") as warm,
        StubEngine("cold") as cold,
    ):
        kube.put(
            "modelfleet.io/v1alpha1/modeldeployments",
            deployment("llama", "llama-8b", warm.url, ready=1),
        )
        kube.put(
            "modelfleet.io/v1alpha1/modeldeployments",
            deployment("qwen", "qwen-1.5b", cold.url, ready=0),
        )
        kube.put(
            "modelfleet.io/v1alpha1/modelroutes",
            {
                "apiVersion": "modelfleet.io/v1alpha1",
                "kind": "ModelRoute",
                "metadata": {"name": "assistant", "namespace": "team"},
                "spec": {"model": "assistant", "rules": [{"backends": [{"deployment": "qwen"}]}]},
            },
        )
        kube.put(
            "v1/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "gateway-keys", "namespace": rbac_check.CHART_NAMESPACE},
                "data": {"team-a": base64.b64encode(KEY.encode()).decode()},
            },
        )
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(kube.kubeconfig()), encoding="utf-8")
        options = GatewayOptions(
            host="127.0.0.1",
            port=0,
            management_port=0,
            kubeconfig=kubeconfig,
            api_keys_secret=(rbac_check.CHART_NAMESPACE, "gateway-keys"),
            namespaces=namespaces,
            activator_namespace=rbac_check.CHART_NAMESPACE,
            settings=GatewaySettings(scrape_interval=0, hold_timeout=300),
        )
        async with serve_gateway(options) as running:
            assert running.management_url is not None
            client = openai.AsyncOpenAI(base_url=f"{running.url}/v1", api_key=KEY, max_retries=0)
            for _ in range(1200):  # the first list arrives asynchronously (bound: >= 60 s)
                if running.gateway.catalog.resolve("assistant") is not None:
                    break
                await asyncio.sleep(0.05)
            reply = await client.chat.completions.create(model="llama-8b", messages=MSG)
            assert reply.choices[0].message.content == "warm:llama-8b"
            with pytest.raises(openai.AuthenticationError):
                await openai.AsyncOpenAI(
                    base_url=f"{running.url}/v1", api_key="sk-other", max_retries=0
                ).models.list()

            # qwen has no ready replica: the request is held and counted as pending demand.
            held = asyncio.create_task(
                client.chat.completions.create(model="assistant", messages=MSG)
            )
            gauge = 'modelfleet_gateway_pending_requests{deployment="qwen",namespace="team"} 1.0'
            for _ in range(1200):  # a hang bound (>= 60 s)
                if gauge in await _pending(running.management_url):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the held request never showed as pending")
            assert cold.served() == 0 and not held.done()
            # ... and the gateway woke the operator: the held time in qwen's demand Lease,
            # in the gateway's own namespace.
            for _ in range(1200):  # a hang bound (>= 60 s)
                lease = kube.get(
                    "coordination.k8s.io/v1/leases",
                    "team.qwen",
                    namespace=rbac_check.CHART_NAMESPACE,
                )
                if lease is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the held request did not wake the operator (no demand Lease)")
            demand = lease_demand(lease)
            assert demand is not None and demand[:2] == ("team", "qwen")
            assert abs((demand[2] - datetime.now(UTC)).total_seconds()) < 30

            # The operator reports the replica ready: the watch event releases the request.
            ready = deployment("qwen", "qwen-1.5b", cold.url, ready=1)["status"]
            path = "/apis/modelfleet.io/v1alpha1/namespaces/team/modeldeployments/qwen/status"
            assert await _http(kube, "PATCH", path, {"status": ready}) == 200
            released = await asyncio.wait_for(held, 60)
            assert released.choices[0].message.content == "cold:qwen-1.5b"

            # Deleted on the hub: the model disappears from the gateway.
            path = "/apis/modelfleet.io/v1alpha1/namespaces/team/modeldeployments/llama"
            assert await _http(kube, "DELETE", path) == 200
            for _ in range(1200):  # a hang bound (>= 60 s)
                if running.gateway.catalog.resolve("llama-8b") is None:
                    break
                await asyncio.sleep(0.05)
            with pytest.raises(openai.NotFoundError):
                await client.chat.completions.create(model="llama-8b", messages=MSG)
            await client.close()
    requests = kube.requests()
    # The gateway's writes: one wake-up of qwen (its demand Lease: a patch, 404 as there is
    # none yet, then the create; once for the one held request) and the route's status
    # (accepted: it alone claims "assistant"). The others are the test's own, standing in
    # for the operator. Nothing of the gateway's writes to a ModelDeployment.
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{rbac_check.CHART_NAMESPACE}/leases"
    wake = [("PATCH", f"{leases}/team.qwen"), ("POST", leases)]
    qwen = "/apis/modelfleet.io/v1alpha1/namespaces/team/modeldeployments/qwen"
    route_status = (
        "PATCH",
        "/apis/modelfleet.io/v1alpha1/namespaces/team/modelroutes/assistant/status",
    )
    gateway_requests = kube.authenticated_requests()
    assert sorted((m, p.split("?")[0]) for m, p in gateway_requests if m != "GET") == sorted(
        [*wake, route_status]
    )
    assert sorted((m, p.split("?")[0]) for m, p in requests if m != "GET") == sorted(
        [
            *wake,
            route_status,
            ("PATCH", qwen + "/status"),
            ("DELETE", "/apis/modelfleet.io/v1alpha1/namespaces/team/modeldeployments/llama"),
        ]
    )
    # Every request the gateway sent is one the chart's gateway RBAC allows.
    assert rbac_check.gateway_grants(namespaces).denied(gateway_requests) == []
    prefix = "/apis/modelfleet.io/v1alpha1/" + "".join(f"namespaces/{n}/" for n in namespaces)
    for plural in ("modeldeployments", "modelroutes"):
        assert ("GET", prefix + plural) in requests
        assert any(p.startswith(f"{prefix}{plural}?") and "watch=true" in p for _, p in requests)


async def test_a_hub_without_the_modelroute_crd_still_serves_deployments(tmp_path: Path) -> None:
    async with kube_emulator() as kube, StubEngine("warm") as warm:  # no modelroutes resource
        kube.put(
            "modelfleet.io/v1alpha1/modeldeployments",
            deployment("llama", "llama-8b", warm.url, ready=1),
        )
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(kube.kubeconfig()), encoding="utf-8")
        options = GatewayOptions(
            host="127.0.0.1",
            port=0,
            management_port=0,
            kubeconfig=kubeconfig,
            settings=GatewaySettings(scrape_interval=0),
        )
        async with serve_gateway(options) as running:
            assert running.management_url is not None
            async with aiohttp.ClientSession() as session:
                for _ in range(1200):  # a hang bound (>= 60 s)
                    async with session.get(running.management_url + "/readyz") as ready:
                        if ready.status == 200:
                            break
                    await asyncio.sleep(0.05)
                assert ready.status == 200
            client = openai.AsyncOpenAI(base_url=f"{running.url}/v1", api_key="x", max_retries=0)
            reply = await client.chat.completions.create(model="llama-8b", messages=MSG)
            assert reply.choices[0].message.content == "warm:llama-8b"
            await client.close()
