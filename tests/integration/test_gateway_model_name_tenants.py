"""One tenant cannot take another tenant's model name at the gateway, end to end: KMock's
Kubernetes API emulator over real HTTP is the hub, the real gateway watches it, and the
official ``openai`` client sends the requests. Stub engines answer ``<engine>:<model>``, so
each reply says which tenant's engine got the prompt.

Before (br11): a ModelRoute created in team-b with team-a's served model name took team-a's
requests, and a ModelDeployment created later in namespace ``aaa`` with that served name beat
team-a's (the first namespace in name order). Now the name stays with the namespace that
claimed it first, and team-a can still put its own route in front of its deployment.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from kube_emulator import KubeEmulator, kube_emulator
from openai_stub import StubEngine
from tests.integration.rbac_check import gateway_grants
from tests.integration.test_gateway_route_status import (
    ROUTE_SPEC,
    ROUTES,
    _send,
    hub_gateway,
    until,
)

from modelfleet.gateway.catalog import RouteTarget
from modelfleet.gateway.run import serve_gateway

pytestmark = pytest.mark.integration

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
OLD = "2026-11-01T00:00:00Z"
JAN = "2026-01-01T00:00:00Z"
MSG = [{"role": "user", "content": "team-a's prompt"}]
API = "/apis/modelfleet.io/v1alpha1/namespaces"


def deployment(namespace: str, name: str, model: str, url: str) -> dict[str, Any]:
    """A ModelDeployment with one ready endpoint, as the operator leaves it."""
    cluster = f"c-{namespace}-{name}"
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": OLD},
        "spec": {"model": {"name": model}, "replicas": {"min": 0, "max": 1}},
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
                    "ready": 1,
                }
            ],
            "endpoints": [{"cluster": cluster, "url": url}],
        },
    }


def route(namespace: str, name: str, backend: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": LLAMA, "rules": [{"backends": [{"deployment": backend}]}]},
    }


async def post(kube: KubeEmulator, path: str, body: dict[str, Any]) -> None:
    """Create through the API: the emulator stamps creationTimestamp as a server does."""
    async with aiohttp.ClientSession() as session, session.post(kube.url + path, json=body) as r:
        assert r.status in (200, 201), await r.text()


def told(kube: KubeEmulator) -> list[str]:
    """Messages of the Events on ModelDeployment aaa/llama."""
    return [
        e["message"]
        for e in kube.objects("v1/events", namespace="aaa")
        if e["involvedObject"]["kind"] == "ModelDeployment"
        and e["involvedObject"]["name"] == "llama"
        and (e["type"], e["reason"]) == ("Warning", "ModelNameClash")
    ]


def accepted(kube: KubeEmulator, namespace: str, name: str) -> dict[str, Any]:
    obj = kube.get(ROUTES, name, namespace=namespace) or {}
    found = [
        c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Accepted"
    ]
    return found[0] if found else {}


async def test_a_later_claim_from_another_namespace_does_not_get_team_as_requests(
    tmp_path: Path,
) -> None:
    async with (
        kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube,
        StubEngine("team-a") as team_a,
        StubEngine("team-a-canary") as canary,
        StubEngine("team-b") as team_b,
        StubEngine("aaa") as aaa,
    ):
        mds = "modelfleet.io/v1alpha1/modeldeployments"
        kube.put(mds, deployment("team-a", "llama", LLAMA, team_a.url))
        kube.put(mds, deployment("team-a", "canary", "llama-canary", canary.url))
        kube.put(mds, deployment("team-b", "mine", "mine", team_b.url))
        async with serve_gateway(hub_gateway(kube, tmp_path)) as running:
            client = openai.AsyncOpenAI(base_url=f"{running.url}/v1", api_key="x", max_retries=0)
            await until(lambda: running.gateway.catalog.resolve(LLAMA) is not None, "the list")

            # team-b's route and aaa's deployment arrive later, as watch events.
            await post(kube, f"{API}/team-b/modelroutes", route("team-b", "grab", "mine"))
            aaa_md = deployment("aaa", "llama", LLAMA, aaa.url)
            del aaa_md["metadata"]["creationTimestamp"]
            await post(kube, f"{API}/aaa/modeldeployments", aaa_md)
            await until(
                lambda: len([p for p in running.gateway.catalog.problems if p.model]) == 2,
                "both later claims seen",
            )
            for _ in range(3):
                reply = await client.chat.completions.create(model=LLAMA, messages=MSG)
                assert reply.choices[0].message.content == f"team-a:{LLAMA}"
            assert team_b.served() == aaa.served() == 0
            # team-b's route says why on its status.
            await until(lambda: bool(accepted(kube, "team-b", "grab")), "grab's status")
            condition = accepted(kube, "team-b", "grab")
            assert (condition["status"], condition["reason"]) == ("False", "ModelNameClash")
            assert f"{LLAMA!r} is served by ModelDeployment team-a/llama" in condition["message"]
            assert "namespace 'team-a', the first to claim it" in condition["message"]
            # aaa's deployment is told on itself (an Event: its status is the operator's),
            # once, though the catalog was rebuilt since (grab's status came back).
            await until(lambda: bool(told(kube)), "an Event on aaa/llama")
            [message] = told(kube)
            assert "ModelDeployment aaa/llama ignored, ModelDeployment team-a/llama" in message

            # team-a's own route in front of its deployment (a canary) takes the name.
            await post(kube, f"{API}/team-a/modelroutes", route("team-a", "front", "canary"))
            await until(
                lambda: isinstance(running.gateway.catalog.resolve(LLAMA), RouteTarget),
                "team-a's route",
            )
            reply = await client.chat.completions.create(model=LLAMA, messages=MSG)
            assert reply.choices[0].message.content == "team-a-canary:llama-canary"
            await until(lambda: bool(accepted(kube, "team-a", "front")), "front's status")
            assert accepted(kube, "team-a", "front")["status"] == "True"
            assert team_b.served() == aaa.served() == 0
            # A new winner is news for aaa's deployment.
            await until(lambda: len(told(kube)) == 2, "a second Event on aaa/llama")
            assert "ModelRoute team-a/front serves it" in told(kube)[1]
            await asyncio.sleep(0.5)  # more catalogs (front's status came back): no repeat
            assert len(told(kube)) == 2
            # ... nor a repeated POST (a POST refused 409 each catalog would also leave 2).
            posts = [p for m, p in kube.authenticated_requests() if m == "POST"]
            assert len([p for p in posts if p.startswith("/api/v1/namespaces/aaa/events")]) == 2
        # Every request the gateway sent is one the chart's gateway RBAC allows.
        assert gateway_grants(()).denied(kube.authenticated_requests()) == []


async def test_an_old_route_edited_to_team_as_name_does_not_get_team_as_requests(
    tmp_path: Path,
) -> None:
    """br13 F1: team-b's route from January, edited to team-a's (November) name, took
    team-a's requests: the claim was dated by the route's creation. Now the gateway records
    when it first saw each name claimed (``status.modelNames``) and dates the claim by it."""
    async with (
        kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube,
        StubEngine("team-a") as team_a,
        StubEngine("team-b") as team_b,
    ):
        mds = "modelfleet.io/v1alpha1/modeldeployments"
        kube.put(mds, deployment("team-a", "llama", LLAMA, team_a.url))
        kube.put(mds, deployment("team-b", "mine", "mine", team_b.url))
        old = route("team-b", "old", "mine")
        old["spec"]["model"] = "mine-public"
        old["metadata"]["creationTimestamp"] = JAN
        kube.put(ROUTES, old)
        async with serve_gateway(hub_gateway(kube, tmp_path)) as running:
            client = openai.AsyncOpenAI(base_url=f"{running.url}/v1", api_key="x", max_retries=0)
            # The gateway records the route's claim, dated by its creation (never recorded).
            await until(lambda: bool(names(kube)), "team-b/old's status.modelNames")
            assert names(kube) == {"mine-public": JAN}

            edit = {"spec": {"model": LLAMA}}
            assert await _send(kube, "PATCH", f"{API}/team-b/modelroutes/old", edit) == 200
            await until(
                lambda: "mine-public" not in names(kube) and LLAMA in names(kube),
                "the edit recorded",
            )
            for _ in range(3):
                reply = await client.chat.completions.create(model=LLAMA, messages=MSG)
                assert reply.choices[0].message.content == f"team-a:{LLAMA}"
            assert team_b.served() == 0
            # Dated by the edit (after team-a's claim), and told why on its status.
            assert names(kube)[LLAMA] > OLD
            await until(
                lambda: accepted(kube, "team-b", "old").get("status") == "False", "old's status"
            )
            message = accepted(kube, "team-b", "old")["message"]
            assert f"{LLAMA!r} is served by ModelDeployment team-a/llama" in message
            assert "ModelRoute team-b/old claimed 20" in message
        assert gateway_grants(()).denied(kube.authenticated_requests()) == []


def names(kube: KubeEmulator) -> dict[str, str]:
    """team-b/old's status.modelNames: name -> since."""
    obj = kube.get(ROUTES, "old", namespace="team-b") or {}
    return {e["name"]: e["since"] for e in (obj.get("status") or {}).get("modelNames") or []}


def events_on(kube: KubeEmulator, name: str) -> list[tuple[str, str]]:
    """(type, reason) of the Events on ModelRoute team-b/``name``, oldest first."""
    found = [
        e
        for e in kube.objects("v1/events", namespace="team-b")
        if e["involvedObject"]["kind"] == "ModelRoute" and e["involvedObject"]["name"] == name
    ]
    return [(e["type"], e["reason"]) for e in sorted(found, key=lambda e: e["firstTimestamp"])]


async def test_an_invalid_route_fixed_and_renamed_in_one_edit_does_not_get_team_as_requests(
    tmp_path: Path,
) -> None:
    """gw15: team-b's route from January that the gateway ignores as invalid (a CEL rule the
    API server did not enforce) was never recorded, so fixed and renamed to team-a's
    (November) name in one edit it was dated by its creation and took team-a's requests.
    Now the gateway records an invalid route's names too (and tells its owner why it is
    ignored): the name the fix brings is dated by the fix."""
    async with (
        kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube,
        StubEngine("team-a") as team_a,
        StubEngine("team-b") as team_b,
    ):
        mds = "modelfleet.io/v1alpha1/modeldeployments"
        kube.put(mds, deployment("team-a", "llama", LLAMA, team_a.url))
        kube.put(mds, deployment("team-b", "mine", "mine", team_b.url))
        old = route("team-b", "old", "mine")
        old["spec"]["model"] = "mine-public"
        old["spec"]["onNoMatch"] = "Fallback"  # without spec.fallback: the CRD's CEL refuses it
        old["metadata"].update(creationTimestamp=JAN, uid="old-uid", generation=1)
        kube.put(ROUTES, old)
        async with serve_gateway(hub_gateway(kube, tmp_path)) as running:
            client = openai.AsyncOpenAI(base_url=f"{running.url}/v1", api_key="x", max_retries=0)
            # Ignored, yet its claim is recorded (never recorded before: its creation) and
            # its owner told why.
            await until(lambda: bool(names(kube)), "team-b/old's status.modelNames")
            assert names(kube) == {"mine-public": JAN}
            assert running.gateway.catalog.resolve("mine-public") is None
            condition = accepted(kube, "team-b", "old")
            assert (condition["status"], condition["reason"]) == ("False", "InvalidSpec")
            assert "onNoMatch: Fallback needs spec.fallback" in condition["message"]
            await until(lambda: bool(events_on(kube, "old")), "the InvalidSpec Event")
            assert events_on(kube, "old") == [("Warning", "InvalidSpec")]

            # One edit fixes it and renames it to team-a's name.
            edit = {"spec": {"model": LLAMA, "fallback": ["mine"]}}
            assert await _send(kube, "PATCH", f"{API}/team-b/modelroutes/old", edit) == 200
            await until(
                lambda: accepted(kube, "team-b", "old").get("reason") == "ModelNameClash",
                "old's verdict on the fixed spec",
            )
            for _ in range(3):
                reply = await client.chat.completions.create(model=LLAMA, messages=MSG)
                assert reply.choices[0].message.content == f"team-a:{LLAMA}"
            assert team_b.served() == 0
            assert list(names(kube)) == [LLAMA]
            assert names(kube)[LLAMA] > OLD  # dated by the fix, after team-a's claim
            message = accepted(kube, "team-b", "old")["message"]
            assert f"{LLAMA!r} is served by ModelDeployment team-a/llama" in message
            await until(lambda: len(events_on(kube, "old")) == 2, "the ModelNameClash Event")
            assert events_on(kube, "old")[1] == ("Warning", "ModelNameClash")
        assert gateway_grants(()).denied(kube.authenticated_requests()) == []


async def test_an_invalid_route_fixed_without_a_rename_keeps_its_date(tmp_path: Path) -> None:
    """The record of an invalid route's names does not cost it its claim: fixed without a
    rename, it serves its name with the date recorded, and its owner gets a Normal Event."""
    async with (
        kube_emulator(resources=ROUTE_SPEC, versioned=True) as kube,
        StubEngine("team-b") as team_b,
    ):
        mds = "modelfleet.io/v1alpha1/modeldeployments"
        kube.put(mds, deployment("team-b", "mine", "mine", team_b.url))
        old = route("team-b", "old", "mine")
        old["spec"]["model"] = "mine-public"
        old["spec"]["onNoMatch"] = "Fallback"
        old["metadata"].update(creationTimestamp=JAN, uid="old-uid", generation=1)
        kube.put(ROUTES, old)
        async with serve_gateway(hub_gateway(kube, tmp_path)) as running:
            client = openai.AsyncOpenAI(base_url=f"{running.url}/v1", api_key="x", max_retries=0)
            await until(lambda: bool(names(kube)), "team-b/old's status.modelNames")
            edit = {"spec": {"fallback": ["mine"]}}
            assert await _send(kube, "PATCH", f"{API}/team-b/modelroutes/old", edit) == 200
            await until(
                lambda: accepted(kube, "team-b", "old").get("status") == "True", "old accepted"
            )
            reply = await client.chat.completions.create(model="mine-public", messages=MSG)
            assert reply.choices[0].message.content == "team-b:mine"
            assert names(kube) == {"mine-public": JAN}
            await until(lambda: len(events_on(kube, "old")) == 2, "the Normal Event")
            assert events_on(kube, "old") == [
                ("Warning", "InvalidSpec"),
                ("Normal", "InvalidSpecFixed"),
            ]
        assert gateway_grants(()).denied(kube.authenticated_requests()) == []
