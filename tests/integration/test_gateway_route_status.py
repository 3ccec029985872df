"""ModelRoute status from the gateway, against KMock's Kubernetes API emulator over real
HTTP: two routes claim one model name; two gateway replicas watch the hub. The losing route
gets ``Accepted=False`` naming the winner and why, a missing fallback gets
``ResolvedRefs=False``, each problem one Warning Event (not one per replica), and when the
winner is deleted the loser is accepted again with a Normal Event. Every request the gateways
send is one the chart's gateway RBAC allows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kube_emulator import KubeEmulator, ResourceSpec, kube_emulator
from tests.integration.rbac_check import gateway_grants
from tests.unit.test_argocd_health import SCRIPTS, run_health_check

from modelfleet.gateway.run import GatewayOptions, serve_gateway
from modelfleet.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

ROUTES = "modelfleet.io/v1alpha1/modelroutes"
ROUTE_SPEC = {ROUTES: ResourceSpec("ModelRoute", namespaced=True, subresources=("status",))}
ROUTES_PATH = "/apis/modelfleet.io/v1alpha1/namespaces/team/modelroutes"


def route(name: str, model: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"model": model, "rules": [{"backends": [{"deployment": "qwen"}]}], **spec},
    }


async def _send(kube: KubeEmulator, method: str, path: str, body: Any = None) -> int:
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, kube.url + path, json=body, headers=headers) as response,
    ):
        await response.read()
        return response.status


def hub_gateway(kube: KubeEmulator, tmp_path: Path, *, route_status: bool = True) -> GatewayOptions:
    """A gateway on loopback watching ``kube`` as its hub."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(kube.kubeconfig()), encoding="utf-8")
    return GatewayOptions(
        host="127.0.0.1",
        port=0,
        management_port=None,
        kubeconfig=kubeconfig,
        route_status=route_status,
        settings=GatewaySettings(scrape_interval=0),
    )


def conditions(kube: KubeEmulator, name: str) -> dict[str, dict[str, Any]]:
    obj = kube.get(ROUTES, name, namespace="team") or {}
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(1200):  # a hang bound (>= 60 s)
        if check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"never happened: {what}")


def status_patches(kube: KubeEmulator) -> int:
    """PATCH requests the hub received so far."""
    return sum(1 for m, _ in kube.authenticated_requests() if m == "PATCH")


def argocd_health(kube: KubeEmulator, name: str) -> tuple[str, str]:
    script = (SCRIPTS / "modelroute.lua").read_text(encoding="utf-8")
    return run_health_check(script, kube.get(ROUTES, name, namespace="team") or {})


def events(kube: KubeEmulator, reason: str) -> list[dict[str, Any]]:
    return [e for e in kube.objects("v1/events", namespace="team") if e.get("reason") == reason]


async def test_a_losing_route_is_told_which_route_won_and_why(tmp_path: Path) -> None:
    async with kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube:
        kube.put(
            "modelfleet.io/v1alpha1/modeldeployments",
            {
                "apiVersion": "modelfleet.io/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": "qwen", "namespace": "team"},
                "spec": {"model": {"name": "qwen-1.5b"}, "replicas": {"min": 0, "max": 1}},
            },
        )
        # Created through the API (uid, generation stamped as a real server does).
        assert await _send(kube, "POST", ROUTES_PATH, route("a-first", "assistant")) == 200
        second = route("b-second", "assistant", aliases=["helper"], fallback=["ghost"])
        assert await _send(kube, "POST", ROUTES_PATH, second) == 200
        options = hub_gateway(kube, tmp_path)
        async with contextlib.AsyncExitStack() as replicas:
            for _ in range(2):
                await replicas.enter_async_context(serve_gateway(options))

            await until(lambda: "Accepted" in conditions(kube, "b-second"), "b-second status")
            lost = conditions(kube, "b-second")
            assert (lost["Accepted"]["status"], lost["Accepted"]["reason"]) == (
                "False",
                "ModelNameClash",
            )
            message = lost["Accepted"]["message"]
            assert "model name 'assistant' is served by ModelRoute team/a-first" in message
            assert "first in namespace/name order" in message and "still serves 'helper'" in message
            assert lost["Accepted"]["observedGeneration"] == 1
            assert (lost["ResolvedRefs"]["status"], lost["ResolvedRefs"]["reason"]) == (
                "False",
                "DeploymentNotFound",
            )
            assert "ModelDeployment team/ghost" in lost["ResolvedRefs"]["message"]
            await until(lambda: "Accepted" in conditions(kube, "a-first"), "a-first status")
            won = conditions(kube, "a-first")
            assert won["Accepted"]["status"] == won["ResolvedRefs"]["status"] == "True"
            # Argo CD's health check (the chart's Lua) reads the status as written.
            assert argocd_health(kube, "b-second") == ("Degraded", f"ModelNameClash: {message}")
            assert argocd_health(kube, "a-first")[0] == "Healthy"

            # One Warning Event per problem on the losing route, not one per replica.
            await until(lambda: bool(events(kube, "DeploymentNotFound")), "the Events")
            clash = events(kube, "ModelNameClash")
            assert len(clash) == 1 and len(events(kube, "DeploymentNotFound")) == 1
            assert clash[0]["type"] == "Warning"
            assert clash[0]["message"] == message
            assert clash[0]["involvedObject"]["name"] == "b-second"
            assert clash[0]["involvedObject"]["kind"] == "ModelRoute"
            assert not events(kube, "ModelNameClashResolved")

            # The winner goes: the loser serves its name and says so.
            assert await _send(kube, "DELETE", f"{ROUTES_PATH}/a-first") == 200
            await until(
                lambda: conditions(kube, "b-second")["Accepted"]["status"] == "True",
                "b-second accepted after a-first was deleted",
            )
            accepted = conditions(kube, "b-second")["Accepted"]
            assert accepted["message"] == "serves model name(s) 'assistant', 'helper'"
            await until(lambda: bool(events(kube, "ModelNameClashResolved")), "a Normal Event")
            assert [e["type"] for e in events(kube, "ModelNameClashResolved")] == ["Normal"]
            # The missing fallback is still missing: its condition (and its time) stand.
            assert conditions(kube, "b-second")["ResolvedRefs"] == lost["ResolvedRefs"]

            # Settled: a status the replicas see as written is not written again.
            patches = [r for r in kube.authenticated_requests() if r[0] == "PATCH"]
            await asyncio.sleep(0.5)
            assert [r for r in kube.authenticated_requests() if r[0] == "PATCH"] == patches
            # b-second: the clash, then its end; at most one more where both replicas raced.
            to_second = [p for _, p in patches if p.startswith(f"{ROUTES_PATH}/b-second/status")]
            assert 2 <= len(to_second) <= 4

    sent = kube.authenticated_requests()
    assert gateway_grants(()).denied(sent) == []
    assert {m for m, _ in sent} == {"GET", "PATCH", "POST"}


async def test_no_route_status_writes_nothing(tmp_path: Path) -> None:
    async with kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube:
        for name in ("a-first", "b-second"):
            assert await _send(kube, "POST", ROUTES_PATH, route(name, "assistant")) == 200
        async with serve_gateway(hub_gateway(kube, tmp_path, route_status=False)) as running:
            await until(lambda: bool(running.gateway.catalog.problems), "the clash seen")
            await asyncio.sleep(0.3)
        assert {m for m, _ in kube.authenticated_requests()} == {"GET"}
        assert conditions(kube, "b-second") == {}


async def test_a_crd_without_status_is_patched_once_per_verdict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``helm upgrade`` leaves an older ModelRoute CRD (no status subresource): the API
    server answers 404 to the status PATCH. The gateway says so once and does not repeat
    the PATCH on every deployment change."""
    async with kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube:
        assert await _send(kube, "POST", ROUTES_PATH, route("assistant", "assistant")) == 200
        status_path = f"{ROUTES_PATH}/assistant/status"
        kube.refuse("PATCH", status_path, 404)
        qwen = "/apis/modelfleet.io/v1alpha1/namespaces/team/modeldeployments"
        body = {
            "metadata": {"name": "qwen", "namespace": "team"},
            "spec": {"model": {"name": "qwen-1.5b"}, "replicas": {"min": 0, "max": 1}},
        }
        async with serve_gateway(hub_gateway(kube, tmp_path)) as running:
            await until(lambda: running.gateway.catalog.resolve("assistant") is not None, "sync")
            for replicas in (1, 2, 3):  # three more catalogs, the same verdict on the route
                body["spec"]["replicas"]["max"] = replicas
                method, path = ("POST", qwen) if replicas == 1 else ("PATCH", f"{qwen}/qwen")
                assert await _send(kube, method, path, body) == 200
                await until(
                    lambda: running.gateway.catalog.deployment("team", "qwen") is not None,
                    "the deployment seen",
                )
                if replicas == 1:  # the new verdict's PATCH (the gateway must not stop first)
                    await until(lambda: status_patches(kube) == 2, "qwen's verdict written")
                await asyncio.sleep(0.2)
        patches = [p for m, p in kube.authenticated_requests() if m == "PATCH"]
        # One PATCH for "accepted, but the backend is missing", one once qwen exists.
        # (Before, a fixed 0.2 s was all the second one had: a busy machine stopped the
        # gateway before it was sent.)
        assert patches == [status_path, status_path]
        assert caplog.text.count("status not written (404)") == 1


async def test_a_route_deleted_during_its_status_write_does_not_use_up_the_crd_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A status PATCH answered 404 because the route was deleted meanwhile is not the
    "older CRD" case: no warning for it, so a later real one (a route that exists) still
    gets its one warning."""
    async with kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube:
        for name in ("a-gone", "b-kept"):
            assert await _send(kube, "POST", ROUTES_PATH, route(name, name)) == 200
            kube.refuse("PATCH", f"{ROUTES_PATH}/{name}/status", 404)
        kube.refuse("GET", f"{ROUTES_PATH}/a-gone", 404)  # deleted, the watch not yet told
        async with serve_gateway(hub_gateway(kube, tmp_path)) as running:
            await until(lambda: running.gateway.catalog.resolve("b-kept") is not None, "sync")
            await until(lambda: "status not written (404)" in caplog.text, "the warning for b-kept")
        assert caplog.text.count("status not written (404)") == 1
        assert "team/b-kept: status not written" in caplog.text
        assert "team/a-gone: status not written" not in caplog.text


async def test_a_crd_that_prunes_model_names_is_told_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A ModelRoute CRD from before ``status.modelNames`` (``helm upgrade`` leaves CRDs as
    they were) has the API server prune the list from every status write, so no claim is
    ever recorded and each is dated by its route's creation (docs/gateway.md Limits). Before,
    that was silent; the gateway now says so once (it sees the list missing from the answer
    to its PATCH), and does not rewrite the status on every catalog for it."""
    async with kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube:
        kube.prune(ROUTES, "status.modelNames")
        for name in ("a", "b"):
            assert await _send(kube, "POST", ROUTES_PATH, route(name, name)) == 200
        async with serve_gateway(hub_gateway(kube, tmp_path)) as running:
            await until(lambda: bool(conditions(kube, "a")) and bool(conditions(kube, "b")), "a, b")
            assert running.gateway.catalog.resolve("a") is not None
            # Another catalog with the same verdicts (a new route): a and b not rewritten.
            assert await _send(kube, "POST", ROUTES_PATH, route("c", "c")) == 200
            await until(lambda: bool(conditions(kube, "c")), "c's status")
            await asyncio.sleep(0.3)
        for name in ("a", "b", "c"):
            obj = kube.get(ROUTES, name, namespace="team") or {}
            assert "modelNames" not in obj["status"]
        assert status_patches(kube) == 3
        assert caplog.text.count("the API server dropped status.modelNames") == 1
        assert "apply crds/modelroutes.modelfleet.io.yaml" in caplog.text
