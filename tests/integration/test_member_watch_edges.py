"""Member-cluster informers against watch streams a real kube-apiserver can send.

``test_member_watch.py`` covers the common path on KMock and ``hack/fake_apiserver.py``.
This file scripts each watch stream byte by byte (a loopback aiohttp server, answered
through ``KubernetesClusterClient``, the operator's own client) for the cases those
servers cannot produce: ERROR events carrying a 410 or a 500 Status, a stream cut inside a
JSON line, DELETED for an object the store never had, events of other namespaces or
without modelfleet's labels, a watch that stays silent until its timeout, a 401 after the
credentials were rotated, and the races between stopping an informer and reading it.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from test_member_watch import (
    REQUEST_TIMEOUT_S,
    SELECTOR,
    deployment,
    fleet_cluster,
    kubeconfig,
    names,
    until,
)

from modelfleet.clusters import ClusterUnreachable, KubernetesClusterClient
from modelfleet.clusters.informer import Informer, InformerSet, InformerSettings
from modelfleet.clusters.objects import DEPLOYMENT

pytestmark = pytest.mark.integration

GENEROUS_S = 30.0
"""Outer bound on calls that must end by themselves (a hang fails; slowness does not)."""

NS = "team-a"
TOKEN = "s3cr3t-bearer-token-value"
FAST = InformerSettings(
    watch_timeout_seconds=30, backoff_initial_seconds=0.05, backoff_max_seconds=0.2
)

Step = bytes | float | int
"""One step of a scripted watch: bytes written, a float slept (seconds), or an int: the
HTTP status answered instead of a stream (must be the only step)."""


def line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def versioned(obj: dict[str, Any], version: int) -> dict[str, Any]:
    obj = json.loads(json.dumps(obj))
    obj["metadata"]["resourceVersion"] = str(version)
    return obj


def status(code: int, reason: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": f"{reason} ({code})",
    }


@dataclass
class Scripted:
    """The collection's LIST answer and one script per WATCH request, in order; once the
    scripts run out, a watch is held silent until the client goes away."""

    items: list[dict[str, Any]] = field(default_factory=list)
    version: int = 10
    watches: list[list[Step]] = field(default_factory=list)
    relists: list[tuple[list[dict[str, Any]], int]] = field(default_factory=list)
    """(items, version) the next LISTs answer, in order; then ``items``/``version`` stay."""
    list_delay: float = 0.0
    """Seconds each LIST takes to answer."""
    requests: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    """(LIST|WATCH, query, Authorization header) of every request."""

    def count(self, what: str) -> int:
        return sum(1 for r in self.requests if r[0] == what)


@contextlib.asynccontextmanager
async def scripted_server(script: Scripted) -> AsyncIterator[str]:
    async def collection(request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        auth = request.headers.get("Authorization", "")
        if query.get("watch") != "true":
            script.requests.append(("LIST", query, auth))
            await asyncio.sleep(script.list_delay)
            if script.count("LIST") > 1 and script.relists:
                script.items, script.version = script.relists.pop(0)
            return web.json_response(
                {
                    "kind": "DeploymentList",
                    "apiVersion": "apps/v1",
                    "metadata": {"resourceVersion": str(script.version)},
                    "items": script.items,
                }
            )
        script.requests.append(("WATCH", query, auth))
        steps = script.watches.pop(0) if script.watches else [3600.0]
        if len(steps) == 1 and isinstance(steps[0], int) and not isinstance(steps[0], bool):
            code = steps[0]
            return web.json_response(status(code, "Refused"), status=code)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for step in steps:
            if isinstance(step, bytes):
                await response.write(step)
            else:
                await asyncio.sleep(float(step))
        return response  # the stream ends (cleanly, or inside a line if the bytes did)

    app = web.Application()
    app.router.add_get(f"/apis/apps/v1/namespaces/{NS}/deployments", collection)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def informer_on(
    script: Scripted,
    settings: InformerSettings = FAST,
    *,
    wait_sync: bool = True,
    request_timeout: float = REQUEST_TIMEOUT_S,
) -> AsyncIterator[Informer]:
    async with scripted_server(script) as url:
        config = kubeconfig(url)
        config["users"][0]["user"]["token"] = TOKEN
        client = await KubernetesClusterClient.from_kubeconfig(
            config, name="m1", request_timeout=request_timeout
        )

        async def client_for() -> KubernetesClusterClient:
            return client

        informer = Informer(
            cluster="m1",
            namespace=NS,
            kind=DEPLOYMENT,
            selector=SELECTOR,
            client_for=client_for,
            settings=settings,
        )
        task = asyncio.create_task(informer.run())
        try:
            if wait_sync:
                await until(lambda: informer.state.serving, "the informer never synced")
            yield informer
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert task.cancelled(), f"the informer ended by itself: {task}"
            await client.close()


A = deployment("a")
B = deployment("b", replicas=2)


async def test_error_event_410_relists_and_watches_from_the_new_list() -> None:
    script = Scripted(items=[versioned(A, 5)], version=10)
    script.relists = [([versioned(A, 5), versioned(B, 11)], 15)]
    script.watches = [[line("ERROR", status(410, "Expired")), 3600.0]]
    async with informer_on(script, wait_sync=False) as informer:
        await until(lambda: informer.state.lists == 2, "no relist after the 410 ERROR event")
        await until(lambda: names(informer) == {"a": 1, "b": 2}, "relist not served")
        assert "410" in (informer.state.last_error or "")
        await until(lambda: script.count("WATCH") == 2, "no watch after the relist")
        watched_from = [q["resourceVersion"] for w, q, _ in script.requests if w == "WATCH"]
        assert watched_from == ["10", "15"]


async def test_error_event_500_is_not_applied_to_the_store_and_recovers() -> None:
    script = Scripted(items=[versioned(A, 5)], version=10)
    script.watches = [[line("ERROR", status(500, "InternalError"))]]
    async with informer_on(script, wait_sync=False) as informer:
        await until(lambda: informer.state.errors >= 1, "the ERROR event was ignored")
        await until(lambda: informer.state.serving, "never serving again after a 500 ERROR")
        assert names(informer) == {"a": 1}
        assert "500" in (informer.state.last_error or "")


async def test_a_stream_cut_inside_a_json_line_loses_no_event() -> None:
    script = Scripted(items=[versioned(A, 5)], version=10)
    whole = line("ADDED", versioned(B, 11))
    script.watches = [[whole[: len(whole) // 2]]]  # then the connection ends mid-line
    async with informer_on(script, wait_sync=False) as informer:
        await until(lambda: informer.state.errors >= 1, "the cut line went unnoticed")
        script.items = [versioned(A, 5), versioned(B, 11)]
        script.version = 11
        # The half event is never applied as garbage, and "b" arrives (by relist or resume).
        await until(lambda: names(informer) == {"a": 1, "b": 2}, "the cut event was lost")


async def test_events_the_informer_must_not_keep() -> None:
    other_ns = versioned(deployment("x", namespace="team-b"), 11)
    unlabelled = versioned(deployment("y"), 12)
    del unlabelled["metadata"]["labels"]
    script = Scripted(items=[versioned(A, 5)], version=10)
    script.watches = [
        [
            line(
                "BOOKMARK",
                {
                    "kind": "Deployment",
                    "apiVersion": "apps/v1",
                    "metadata": {"resourceVersion": "10"},
                },
            ),
            line("DELETED", versioned(deployment("never-seen"), 13)),
            line("ADDED", unlabelled),
            line("MODIFIED", versioned(deployment("a", replicas=3), 14)),
            line(
                "BOOKMARK",
                {
                    "kind": "Deployment",
                    "apiVersion": "apps/v1",
                    "metadata": {"resourceVersion": "20"},
                },
            ),
            3600.0,
        ]
    ]
    async with informer_on(script) as informer:
        await until(lambda: informer.state.resource_version == "20", "bookmark not taken")
        assert names(informer) == {"a": 3}
        assert informer.state.errors == 0 and informer.state.lists == 1
    # An event of another namespace on a namespaced watch is not the store's business.
    script = Scripted(items=[versioned(A, 5)], version=10)
    script.watches = [[line("ADDED", other_ns), line("MODIFIED", versioned(A, 12)), 3600.0]]
    async with informer_on(script) as informer:
        await until(lambda: informer.state.resource_version == "12", "events not applied")
        assert [o["metadata"]["namespace"] for o in informer.items() or []] == [NS]


async def test_a_watch_silent_until_its_timeout_is_resumed_without_error() -> None:
    script = Scripted(items=[versioned(A, 5)], version=10)
    script.watches = [[1.2], [1.2]]  # nothing at all, then the server's timeout ends it
    async with informer_on(script) as informer:
        await until(lambda: script.count("WATCH") >= 3, "not resumed after a silent stream")
        assert informer.state.errors == 0 and informer.state.lists == 1
        assert informer.state.serving
        assert {q.get("resourceVersion") for w, q, _ in script.requests if w == "WATCH"} == {"10"}


async def test_a_watch_that_never_ends_is_noticed_by_the_read_timeout() -> None:
    settings = InformerSettings(
        watch_timeout_seconds=1, backoff_initial_seconds=0.05, backoff_max_seconds=0.2
    )
    script = Scripted(items=[versioned(A, 5)], version=10)
    script.watches = [[3600.0]]  # ignores timeoutSeconds and never writes a byte
    # The read timeout under test is timeoutSeconds + the request timeout: 1 + 5 s here,
    # well inside the 60 s bound, and 5 s is still far above a busy machine's LIST time.
    async with informer_on(script, settings, request_timeout=5.0) as informer:
        await until(lambda: informer.state.errors >= 1, "a dead stream was never noticed")
        await until(lambda: script.count("WATCH") >= 2, "never watched again")
        assert informer.state.lists == 1


async def test_a_401_falls_back_then_recovers_and_never_logs_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    script = Scripted(items=[versioned(A, 5)], version=10)
    # Credentials rotated: the running stream is cut, the next watches are refused (401).
    script.watches = [[line("MODIFIED", versioned(A, 11))], [401], [401], [401]]
    async with informer_on(script, wait_sync=False) as informer:
        await until(lambda: informer.state.errors >= 2, "the 401 went unnoticed")
        assert informer.items() is None  # reads fall back to LIST meanwhile
        assert "401" in (informer.state.last_error or "") or "credentials" in (
            informer.state.last_error or ""
        )
        script.watches = [[line("ADDED", versioned(B, 12)), 3600.0]]
        await until(lambda: names(informer) == {"a": 1, "b": 2}, "never recovered")
        assert all(auth == f"Bearer {TOKEN}" for _, _, auth in script.requests)
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert TOKEN not in logged


# -- InformerSet races ---------------------------------------------------------------------


async def test_a_read_after_forget_starts_no_informer_for_the_deleted_cluster() -> None:
    """A pass that began before its FleetCluster was deleted reads afterwards: it must not
    bring the informer (and a watch client for a deleted cluster) back."""
    script = Scripted(items=[versioned(A, 5)], version=10)
    async with scripted_server(script) as url:
        client = await KubernetesClusterClient.from_kubeconfig(
            kubeconfig(url), name="m1", request_timeout=REQUEST_TIMEOUT_S
        )
        asked: list[str] = []

        async def client_for(cluster: Any) -> KubernetesClusterClient:
            asked.append(str(cluster.metadata.name))
            return client

        informers = InformerSet(
            client_for=client_for, kind=DEPLOYMENT, selector=SELECTOR, settings=FAST
        )
        cluster = fleet_cluster()
        try:
            informers.read(cluster, NS)
            await until(lambda: script.count("LIST") == 1, "never listed")  # mid-list now
            informers.forget("m1")
            asked.clear()
            assert informers.read(cluster, NS) is None  # the stale pass lists for itself
            await asyncio.sleep(0.3)
            assert informers.states("m1") == []
            assert asked == []
            assert not [
                t
                for t in asyncio.all_tasks()
                if t.get_name().startswith("informer ") and not t.done()
            ]
            # A FleetCluster created again under the same name is watched again.
            again = fleet_cluster()
            again = again.model_copy(
                update={"metadata": again.metadata.model_copy(update={"uid": "uid-new"})}
            )
            informers.read(again, NS)
            await until(lambda: bool(asked), "a re-created cluster is never watched")
        finally:
            await informers.close()
            await client.close()


async def test_an_idle_stop_racing_a_read_restarts_the_informer() -> None:
    clock = [0.0]
    script = Scripted(items=[versioned(A, 5)], version=10)
    script.watches = [[0.3]] * 50  # short streams: the idle check runs often
    async with scripted_server(script) as url:
        client = await KubernetesClusterClient.from_kubeconfig(
            kubeconfig(url), name="m1", request_timeout=REQUEST_TIMEOUT_S
        )

        async def client_for(_: Any) -> KubernetesClusterClient:
            return client

        settings = InformerSettings(
            watch_timeout_seconds=30,
            backoff_initial_seconds=0.05,
            backoff_max_seconds=0.2,
            idle_seconds=10.0,
        )
        informers = InformerSet(
            client_for=client_for,
            kind=DEPLOYMENT,
            selector=SELECTOR,
            settings=settings,
            monotonic=lambda: clock[0],
        )
        cluster = fleet_cluster()
        try:
            informers.read(cluster, NS)
            await until(lambda: informers.states()[0].serving, "never synced")
            clock[0] = 100.0  # nobody read it: it stops when its stream ends
            await until(lambda: _informer_tasks() == 0, "an idle informer never stopped")
            # Gone: no state says it serves (the metric's series goes), its store is not
            # served (no watch keeps it current) ...
            assert informers.states() == []
            assert informers.read(cluster, NS) is None
            # ... and the read brought a fresh one up.
            await until(lambda: _informer_tasks() == 1, "the read did not restart it")
            await until(lambda: informers.read(cluster, NS) is not None, "never served again")
        finally:
            await informers.close()
            await client.close()


def _informer_tasks() -> int:
    return sum(
        1 for t in asyncio.all_tasks() if t.get_name().startswith("informer ") and not t.done()
    )


async def test_a_410_http_answer_relists() -> None:
    script = Scripted(items=[versioned(A, 5)], version=10)
    script.relists = [([versioned(B, 12)], 12)]
    script.watches = [[410]]
    async with informer_on(script, wait_sync=False) as informer:
        await until(lambda: names(informer) == {"b": 2}, "no relist after HTTP 410")
        assert informer.state.lists == 2
        await until(lambda: script.count("WATCH") == 2, "no watch after the relist")
        assert script.requests[-1][1]["resourceVersion"] == "12"


async def test_a_relist_at_an_older_version_replaces_the_store_and_watches_from_it() -> None:
    """After a relist the list's version may be below the last event seen (another API
    server instance behind the load balancer): the list is the truth, nothing is merged."""
    script = Scripted(items=[versioned(A, 5)], version=10)
    script.relists = [([versioned(B, 8)], 8)]
    script.watches = [
        [line("ADDED", versioned(deployment("c"), 20)), 0.1, line("ERROR", status(410, "Expired"))]
    ]
    async with informer_on(script, wait_sync=False) as informer:
        await until(lambda: informer.state.lists == 2, "no relist")
        await until(lambda: names(informer) == {"b": 2}, "the relist was merged, not taken")
        await until(lambda: script.count("WATCH") == 2, "no watch after the relist")
        assert script.requests[-1][1]["resourceVersion"] == "8"


async def test_forget_during_a_slow_list_ends_the_task_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    script = Scripted(items=[versioned(A, 5)], version=10, list_delay=1.0)
    async with scripted_server(script) as url:
        client = await KubernetesClusterClient.from_kubeconfig(
            kubeconfig(url), name="m1", request_timeout=REQUEST_TIMEOUT_S
        )

        async def client_for(_: Any) -> KubernetesClusterClient:
            return client

        informers = InformerSet(
            client_for=client_for, kind=DEPLOYMENT, selector=SELECTOR, settings=FAST
        )
        try:
            informers.read(fleet_cluster(), NS)
            await until(lambda: script.count("LIST") == 1, "never listed")  # LIST in flight
            informers.forget("m1")
            await client.close()  # what OperatorContext.forget_cluster does next
            await until(lambda: _informer_tasks() == 0, "the informer outlived forget")
            await asyncio.sleep(0.3)
            assert script.count("WATCH") == 0
            assert not [r for r in caplog.records if r.name.startswith("modelfleet")]
        finally:
            await informers.close()


async def test_a_new_client_for_the_cluster_relists_before_it_is_served() -> None:
    """The FleetCluster's kubeconfig Secret changed (the registry built a new client: new
    credentials, or a kubeconfig now naming another API server). A resourceVersion is
    only meaningful to the server that issued it, so the store is listed again through the
    new client instead of being resumed with the old one's version."""
    old = Scripted(items=[versioned(A, 5)], version=10)
    new = Scripted(items=[versioned(B, 3)], version=4)
    async with scripted_server(old) as old_url, scripted_server(new) as new_url:
        clients = [
            await KubernetesClusterClient.from_kubeconfig(
                kubeconfig(url), name="m1", request_timeout=REQUEST_TIMEOUT_S
            )
            for url in (old_url, new_url)
        ]
        current = [clients[0]]

        async def client_for() -> KubernetesClusterClient:
            return current[0]

        informer = Informer(
            cluster="m1",
            namespace=NS,
            kind=DEPLOYMENT,
            selector=SELECTOR,
            client_for=client_for,
            settings=FAST,
        )
        task = asyncio.create_task(informer.run())
        try:
            await until(lambda: names(informer) == {"a": 1}, "never synced")
            current[0] = clients[1]
            # What the registry does to the client it replaced: the watch open on it must
            # end then (it hung, serving a frozen store, until the server's timeout and
            # beyond), and the informer carry on with the new client.
            await clients[0].close()
            await until(lambda: new.count("WATCH") >= 1, "never watched the new server")
            await until(lambda: names(informer) == {"b": 2}, "resumed with the old store")
            assert new.count("LIST") == 1
            assert new.requests[-1][1].get("resourceVersion") == "4"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for client in clients:
                await client.close()


async def test_closing_the_client_ends_its_open_watches() -> None:
    """``KubernetesClusterClient.close`` while a watch is open: the stream raises at once
    (before, the reader stayed blocked past its own read timeout)."""
    script = Scripted(items=[], version=10)  # the watch is held silent
    async with scripted_server(script) as url:
        client = await KubernetesClusterClient.from_kubeconfig(
            kubeconfig(url), name="m1", request_timeout=REQUEST_TIMEOUT_S
        )
        stream = await client.watch(
            DEPLOYMENT, SELECTOR, namespace=NS, resource_version="10", timeout_seconds=1
        )

        async def drain() -> None:
            async for _ in stream:
                pass

        reader = asyncio.create_task(drain())
        await asyncio.sleep(0.2)
        await client.close()
        with pytest.raises(ClusterUnreachable):
            # The close ends it; the read timeout (1 + 30 s) comes well after this bound,
            # so a stream the close left blocked fails here (it used to be 1 + 2 s: the
            # read timeout ended the stream within the bound and hid such a failure).
            async with asyncio.timeout(15.0):
                await reader


async def test_a_client_closed_before_its_request_is_unreachable_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The registry closed the client an informer had just taken (Secret changed between
    ``client_for`` and the request): a typed, retried error, not aiohttp's RuntimeError
    ("Session is closed") crashing the informer with an ERROR traceback."""
    script = Scripted(items=[versioned(A, 5)], version=10)
    async with scripted_server(script) as url:
        closed, fresh = [
            await KubernetesClusterClient.from_kubeconfig(
                kubeconfig(url), name="m1", request_timeout=REQUEST_TIMEOUT_S
            )
            for _ in range(2)
        ]
        await closed.close()
        with pytest.raises(ClusterUnreachable):
            await closed.list_versioned(DEPLOYMENT, SELECTOR, namespace=NS)
        with pytest.raises(ClusterUnreachable):
            await closed.watch(
                DEPLOYMENT, SELECTOR, namespace=NS, resource_version="10", timeout_seconds=1
            )
        given = [closed]

        async def client_for(_: Any) -> KubernetesClusterClient:
            client = given[0]
            given[0] = fresh  # the registry's new client from now on
            return client

        informers = InformerSet(
            client_for=client_for, kind=DEPLOYMENT, selector=SELECTOR, settings=FAST
        )
        try:
            informers.read(fleet_cluster(), NS)
            await until(lambda: informers.read(fleet_cluster(), NS) is not None, "no recovery")
            assert informers.states()[0].errors == 1
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        finally:
            await informers.close()
            await fresh.close()


async def test_a_client_closed_while_its_request_is_on_its_way_is_unreachable() -> None:
    """The registry closed a client while an informer's LIST or WATCH was on its way (a busy
    machine made this race likely): a typed, retried error, never aiohttp's AssertionError
    ("no connector"), which ended the informer's task. Closed after 0, 1, 2, ... yields of
    the request's task, so every point on the request's way is hit."""
    script = Scripted(items=[versioned(A, 5)], version=10)
    outcomes: set[str] = set()
    async with scripted_server(script) as url:
        for yields in range(30):
            for call in ("list", "watch"):
                client = await KubernetesClusterClient.from_kubeconfig(
                    kubeconfig(url), name="m1", request_timeout=REQUEST_TIMEOUT_S
                )
                request = asyncio.create_task(
                    client.list_versioned(DEPLOYMENT, SELECTOR, namespace=NS)
                    if call == "list"
                    else client.watch(
                        DEPLOYMENT, SELECTOR, namespace=NS, resource_version="10", timeout_seconds=1
                    )
                )
                for _ in range(yields):
                    await asyncio.sleep(0)
                await client.close()
                try:
                    async with asyncio.timeout(GENEROUS_S):
                        answer = await request
                except ClusterUnreachable:
                    outcomes.add("unreachable")
                else:  # it was answered before the close
                    outcomes.add("answered")
                    if call == "watch":  # the close ended the stream it had opened
                        with pytest.raises(ClusterUnreachable):
                            await _drain(answer)
    assert "unreachable" in outcomes


async def _drain(stream: Any) -> None:
    async with asyncio.timeout(GENEROUS_S):
        async for _ in stream:
            pass
