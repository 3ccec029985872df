"""The emulator's ``versioned`` mode does what a real API server does for optimistic
concurrency (tests that rely on it, e.g. the gateway's first-write-wins status record, are
only as good as this): writes bump resourceVersion, a merge PATCH carrying a stale
``metadata.resourceVersion`` is refused 409 Conflict and changes nothing, ``/status``
changes only status, and a spec change bumps the generation. KMock 0.8 alone does none of
it (the default mode, checked last, still does not)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from kube_emulator import KubeEmulator, ResourceSpec, kube_emulator

pytestmark = pytest.mark.integration

ROUTES = "modelfleet.io/v1alpha1/modelroutes"
SPEC = {ROUTES: ResourceSpec("ModelRoute", namespaced=True, subresources=("status",))}
PATH = "/apis/modelfleet.io/v1alpha1/namespaces/team/modelroutes"


async def send(kube: KubeEmulator, method: str, path: str, body: Any) -> tuple[int, Any]:
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, kube.url + path, json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


ROUTE = {
    "apiVersion": "modelfleet.io/v1alpha1",
    "kind": "ModelRoute",
    "metadata": {"name": "r", "namespace": "team"},
    "spec": {"model": "m"},
}


async def test_a_stale_resource_version_is_refused_409_and_changes_nothing() -> None:
    async with kube_emulator(resources=SPEC, versioned=True) as kube:
        status, created = await send(kube, "POST", PATH, ROUTE)
        assert status in (200, 201)
        first = created["metadata"]["resourceVersion"]
        assert created["metadata"]["generation"] == 1

        # A status write at the version read: applied, a new version.
        at_first = {"metadata": {"resourceVersion": first}, "status": {"x": "a"}}
        status, written = await send(kube, "PATCH", f"{PATH}/r/status", at_first)
        assert status == 200
        second = written["metadata"]["resourceVersion"]
        assert int(second) > int(first)
        assert written["status"] == {"x": "a"}

        # The same precondition again (a second writer that read the first version): 409.
        again = {"metadata": {"resourceVersion": first}, "status": {"x": "b"}}
        status, refused = await send(kube, "PATCH", f"{PATH}/r/status", again)
        assert (status, refused["reason"], refused["code"]) == (409, "Conflict", 409)
        assert "the object has been modified" in refused["message"]
        stored = kube.get(ROUTES, "r", namespace="team") or {}
        assert stored["status"] == {"x": "a"}
        assert stored["metadata"]["resourceVersion"] == second

        # /status changes only status; the object's PATCH changes the spec (a new
        # generation) but not status; no precondition: applied whatever the version.
        sneaky = {"spec": {"model": "other"}, "status": {"x": "c"}}
        status, _ = await send(kube, "PATCH", f"{PATH}/r/status", sneaky)
        assert status == 200
        status, _ = await send(kube, "PATCH", f"{PATH}/r", {"spec": {"model": "n"}, "status": {}})
        assert status == 200
        stored = kube.get(ROUTES, "r", namespace="team") or {}
        assert (stored["spec"]["model"], stored["status"]) == ("n", {"x": "c"})
        assert stored["metadata"]["generation"] == 2
        assert int(stored["metadata"]["resourceVersion"]) > int(second) + 1

        # A test's own writes (a controller's) move the version too.
        before = stored["metadata"]["resourceVersion"]
        kube.patch(ROUTES, "r", {"status": {"x": "d"}}, namespace="team")
        after = (kube.get(ROUTES, "r", namespace="team") or {})["metadata"]["resourceVersion"]
        assert int(after) > int(before)
        stale = {"metadata": {"resourceVersion": before}, "status": {"x": "e"}}
        assert (await send(kube, "PATCH", f"{PATH}/r/status", stale))[0] == 409


async def test_the_default_mode_does_not_check_versions() -> None:
    """What the module doc says of KMock alone: a test that needs the check must ask."""
    async with kube_emulator(resources=SPEC) as kube:
        assert (await send(kube, "POST", PATH, ROUTE))[0] in (200, 201)
        stale = {"metadata": {"resourceVersion": "0"}, "status": {"x": "a"}}
        status, written = await send(kube, "PATCH", f"{PATH}/r/status", stale)
        assert (status, written["status"]) == (200, {"x": "a"})


async def test_a_pruned_field_is_dropped_from_writes_as_an_older_crd_would() -> None:
    async with kube_emulator(resources=SPEC, versioned=True) as kube:
        kube.prune(ROUTES, "status.modelNames")
        assert (await send(kube, "POST", PATH, ROUTE))[0] in (200, 201)
        body = {"status": {"modelNames": [{"name": "m"}], "x": "a"}}
        status, written = await send(kube, "PATCH", f"{PATH}/r/status", body)
        assert (status, written["status"]) == (200, {"x": "a"})
