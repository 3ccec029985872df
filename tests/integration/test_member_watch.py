"""Member-cluster informers (``clusters.informer``) over real HTTP.

Two servers, both on loopback:

- KMock's Kubernetes emulator (what the other integration tests use) serves ``?watch=true``
  streams of the writes made through its API: initial sync and added/modified/deleted
  objects seen without a new LIST. It ignores resourceVersions, so resuming and 410 Gone
  cannot be shown on it;
- ``hack/fake_apiserver.py`` (the benchmark's API server) keeps a resourceVersion counter
  and an event history the way kube-apiserver does, and can cut watch connections, forget
  its history (a resume then gets the 410 ERROR event) and refuse watches: a dropped stream
  is resumed from the last resourceVersion without a LIST, a 410 relists, a failing watch
  makes reads fall back to LIST, and stopping leaves no task behind.

Every object is written through ``KubernetesClusterClient`` (the operator's own client),
and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import rbac_check
from aiohttp import web
from kube_emulator import KubeEmulator, kube_emulator

from modelfleet import labels
from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api.fleetcluster import FleetClusterStatus
from modelfleet.clusters import KubernetesClusterClient
from modelfleet.clusters.informer import Informer, InformerSet, InformerSettings, OnUpdate
from modelfleet.clusters.objects import DEPLOYMENT
from modelfleet.reconciler.observe import ObservationCache, deployment_informers, observe

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NS = "team-a"
SELECTOR = {labels.MANAGED: "true"}
FAST = InformerSettings(
    watch_timeout_seconds=30, backoff_initial_seconds=0.05, backoff_max_seconds=0.2
)
BOUND_S = 60.0
"""Outer bound on every wait (a hang fails, slowness does not)."""
REQUEST_TIMEOUT_S = 30.0
"""The member client's request timeout where no test expects one to fire: an informer
counts a timed-out LIST or WATCH as an error and relists, so a short timeout turns a busy
machine's slow loopback answer into a failed ``errors == 0`` or ``lists == 1``."""


def _fake_apiserver() -> Any:
    name = "modelfleet_hack_fake_apiserver"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "hack" / "fake_apiserver.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class FakeApi:
    """``hack/fake_apiserver.py`` on a loopback port, with its control endpoints."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self._session = session

    async def stats(self) -> dict[str, int]:
        return dict(await _fake_apiserver().request_counts(self._session, self.url))

    async def control(self, what: str, **query: str) -> None:
        async with self._session.post(self.url + "/_" + what, params=query) as resp:
            assert resp.status == 200


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeApi]:
    app = _fake_apiserver().make_app(bookmark_seconds=0.2)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        yield FakeApi(f"http://127.0.0.1:{port}", session)
    await runner.cleanup()


def kubeconfig(url: str) -> dict[str, Any]:
    config: dict[str, Any] = _fake_apiserver().kubeconfig(url, name="m")
    return config


@contextlib.asynccontextmanager
async def member(url: str) -> AsyncIterator[KubernetesClusterClient]:
    client = await KubernetesClusterClient.from_kubeconfig(
        kubeconfig(url), name="m1", request_timeout=REQUEST_TIMEOUT_S
    )
    try:
        yield client
    finally:
        await client.close()


def deployment(
    name: str, *, replicas: int = 1, namespace: str = NS, owner: str = "llama"
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                labels.MANAGED: "true",
                labels.DEPLOYMENT: owner,
                labels.NAMESPACE: namespace,
            },
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {
                        labels.NODE_INSTANCE_TYPE: "h100-1g",
                        labels.NODE_CAPACITY_TYPE: "on-demand",
                    },
                    "containers": [{"name": "server", "image": "vllm/vllm-openai:v0.6.0"}],
                },
            },
        },
    }


def fleet_cluster(name: str = "m1") -> FleetCluster:
    return FleetCluster.model_validate(
        {
            "metadata": {"name": name, "uid": f"uid-{name}"},
            "spec": {"provider": "static", "region": "us-east-1"},
        }
    )


async def until(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Wait (bounded) until ``check`` holds."""
    async with asyncio.timeout(BOUND_S):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)
    raise AssertionError(what)  # pragma: no cover (timeout raises first)


def names(informer: Informer) -> dict[str, int]:
    """name -> spec.replicas of the informer's store (None while it is not serving)."""
    items = informer.items() or []
    return {o["metadata"]["name"]: o["spec"]["replicas"] for o in items}


@contextlib.asynccontextmanager
async def running(
    client: KubernetesClusterClient,
    *,
    on_update: OnUpdate | None = None,
) -> AsyncIterator[Informer]:
    """An informer of ``client``'s Deployments in NS, synced; stopped on the way out."""

    async def client_for() -> KubernetesClusterClient:
        return client

    informer = Informer(
        cluster="m1",
        namespace=NS,
        kind=DEPLOYMENT,
        selector=SELECTOR,
        client_for=client_for,
        settings=FAST,
        on_update=on_update,
    )
    task = asyncio.create_task(informer.run())
    try:
        await until(lambda: informer.state.serving, "the informer never synced")
        yield informer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- KMock ------------------------------------------------------------------------------------


@pytest.fixture
async def kube() -> AsyncIterator[KubeEmulator]:
    async with kube_emulator() as emulator:
        yield emulator


def kmock_lists(kube: KubeEmulator) -> int:
    return sum(
        1
        for method, path in kube.authenticated_requests()
        if method == "GET" and path.split("?")[0].endswith("/deployments") and "watch=" not in path
    )


async def test_kmock_initial_sync_then_changes_arrive_without_a_new_list(
    kube: KubeEmulator,
) -> None:
    async with member(kube.url) as client:
        await client.apply([deployment("a"), deployment("b", replicas=2)])
        # Another team's Deployment in the namespace: never in the store.
        kube.put(
            "apps/v1/deployments",
            {"metadata": {"name": "theirs", "namespace": NS}, "spec": {"replicas": 9}},
        )
        async with running(client) as informer:
            assert names(informer) == {"a": 1, "b": 2}
            assert kmock_lists(kube) == 1

            await client.apply([deployment("c", replicas=3)])  # ADDED
            await until(lambda: "c" in names(informer), "ADDED not seen")
            await client.apply([deployment("a", replicas=4)])  # MODIFIED
            await until(lambda: names(informer).get("a") == 4, "MODIFIED not seen")
            await client.delete_owned(
                DEPLOYMENT, {labels.DEPLOYMENT: "llama"}, namespace=NS, keep=("a", "c")
            )  # DELETED b
            await until(lambda: "b" not in names(informer), "DELETED not seen")

            assert names(informer) == {"a": 4, "c": 3}
            assert kmock_lists(kube) == 2  # the one delete_owned sent itself; none by the informer
            assert informer.state.lists == 1
            assert informer.state.events >= 3
        # Every request, the watches included, is allowed by the documented member role.
        assert rbac_check.member_grants().denied(kube.authenticated_requests()) == []


# -- hack/fake_apiserver.py -------------------------------------------------------------------


async def test_sync_and_events_on_a_versioned_server(fake_api: FakeApi) -> None:
    async with member(fake_api.url) as client:
        await client.apply([deployment("a"), deployment("x", namespace="other")])
        async with running(client) as informer:
            assert names(informer) == {"a": 1}
            listed_at = int(informer.state.resource_version)
            await client.apply([deployment("a", replicas=5), deployment("b")])
            await until(lambda: names(informer) == {"a": 5, "b": 1}, "events not seen")
            assert int(informer.state.resource_version) > listed_at
            stats = await fake_api.stats()
            assert stats.get("LIST deployments") == 1
            assert stats["open watches"] == 1


async def test_bookmarks_move_the_resource_version_on(fake_api: FakeApi) -> None:
    async with member(fake_api.url) as client:
        await client.apply([deployment("a")])
        async with running(client) as informer:
            synced_at = informer.state.resource_version
            # Writes the informer is not concerned with move the server's version on; a
            # bookmark (every 0.2 s here) hands the new version over without an event.
            await client.apply([deployment("x", namespace="other")])
            await until(lambda: informer.state.resource_version != synced_at, "no bookmark arrived")
            assert names(informer) == {"a": 1}
            assert informer.state.events == 0


async def test_a_dropped_stream_resumes_from_the_last_version_without_a_list(
    fake_api: FakeApi,
) -> None:
    async with member(fake_api.url) as client:
        await client.apply([deployment("a")])
        async with running(client) as informer:
            await fake_api.control("refuse_watches", code="503")
            await fake_api.control("drop")
            await until(lambda: informer.state.errors >= 1, "the drop went unnoticed")
            # Written while no watch is open: the resumed watch must replay it.
            await client.apply([deployment("b", replicas=2)])
            await client.delete_owned(DEPLOYMENT, SELECTOR, namespace=NS, keep=("b",))
            await fake_api.control("refuse_watches", code="0")
            await until(lambda: names(informer) == {"b": 2}, "missed events not replayed")
            stats = await fake_api.stats()
            assert informer.state.lists == 1
            # One LIST by delete_owned, none by the informer.
            assert stats.get("LIST deployments") == 2
            assert stats.get("WATCH deployments", 0) >= 2


async def test_a_410_gone_relists(fake_api: FakeApi) -> None:
    async with member(fake_api.url) as client:
        await client.apply([deployment("a")])
        async with running(client) as informer:
            await fake_api.control("refuse_watches", code="503")
            await fake_api.control("drop")
            await until(lambda: not informer.state.healthy, "the drop went unnoticed")
            await client.apply([deployment("b")])
            await fake_api.control("compact")  # the informer's version is now too old
            await fake_api.control("refuse_watches", code="0")
            await until(lambda: informer.state.lists == 2, "no relist after 410")
            await until(lambda: names(informer) == {"a": 1, "b": 1}, "relist incomplete")
            assert "410" in (informer.state.last_error or "")
            await client.apply([deployment("c")])  # and it watches again afterwards
            await until(lambda: "c" in names(informer), "no watch after the relist")


async def test_a_failing_watch_falls_back_to_list(fake_api: FakeApi) -> None:
    async with member(fake_api.url) as client:
        await client.apply([deployment("a")])
        informers = deployment_informers(_const(client), FAST)
        cache = ObservationCache(ttl_seconds=0.0, clock=lambda: 0.0, informers=informers)
        md = _md("llama")
        cluster = fleet_cluster()
        try:
            first = await observe(md, [cluster], _const(client), cache=cache)
            assert [w.name for w in first.clusters["m1"].workloads] == ["a"]  # by LIST
            await until(lambda: informers.states()[0].serving, "never synced")
            before = (await fake_api.stats()).get("LIST deployments", 0)
            for _ in range(5):
                seen = await observe(md, [cluster], _const(client), cache=cache)
                assert [w.name for w in seen.clusters["m1"].workloads] == ["a"]
            assert (await fake_api.stats()).get("LIST deployments", 0) == before  # watched

            # A cluster the probe doubts is listed even while its watch serves.
            doubted = cluster.model_copy(
                update={"status": FleetClusterStatus.model_validate({"health": "Suspect"})}
            )
            seen = await observe(md, [doubted], _const(client), cache=cache)
            assert [w.name for w in seen.clusters["m1"].workloads] == ["a"]
            assert (await fake_api.stats()).get("LIST deployments", 0) == before + 1
            before += 1

            await fake_api.control("refuse_watches", code="403")
            await fake_api.control("drop")
            await until(lambda: not informers.states()[0].serving, "failure unnoticed")
            await client.apply([deployment("b")])
            seen = await observe(md, [cluster], _const(client), cache=cache)
            assert [w.name for w in seen.clusters["m1"].workloads] == ["a", "b"]  # listed
            assert (await fake_api.stats()).get("LIST deployments", 0) > before
        finally:
            await cache.close()


async def test_stopping_leaves_no_task_and_no_open_watch(fake_api: FakeApi) -> None:
    async with member(fake_api.url) as client:
        await client.apply([deployment("a"), deployment("b", namespace="team-b")])
        informers = deployment_informers(_const(client), FAST)
        m1, m2 = fleet_cluster("m1"), fleet_cluster("m2")
        for cluster in (m1, m2):
            for namespace in (NS, "team-b"):
                informers.read(cluster, namespace)
        await until(lambda: all(s.serving for s in informers.states()), "never synced")
        assert len(informers.states()) == 4
        # Serving starts with the LIST; the WATCH connection opens right after it.
        await until(lambda: _open_watches(fake_api, 4), "not one open watch per informer")

        informers.forget("m2")  # the FleetCluster was deleted
        assert [s.cluster for s in informers.states()] == ["m1", "m1"]
        await until(lambda: _open_watches(fake_api, 2), "m2's watches still open after forget")

        await informers.close()
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("informer ")]
        await until(lambda: _open_watches(fake_api, 0), "watches still open after close")
        assert informers.read(m1, NS) is None  # closed: nothing starts again


async def test_a_client_that_cannot_watch_is_always_listed() -> None:
    async def no_watch(_: Any) -> None:
        return None

    informers = InformerSet(client_for=no_watch, kind=DEPLOYMENT, selector=SELECTOR)
    cluster = fleet_cluster()
    assert informers.read(cluster, NS) is None
    await until(lambda: informers.states()[0].unsupported, "not marked unsupported")
    assert informers.read(cluster, NS) is None
    assert informers.states()[0].watches == 0
    await informers.close()


def _const(client: KubernetesClusterClient) -> Callable[[Any], Awaitable[Any]]:
    async def client_for(_: Any) -> KubernetesClusterClient:
        return client

    return client_for


async def _open_watches(fake_api: FakeApi, wanted: int) -> bool:
    return (await fake_api.stats())["open watches"] == wanted


def _md(name: str) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": name, "namespace": NS, "uid": "uid-1"},
            "spec": {
                "model": {"name": "llama-3.1-8b-instruct"},
                "resources": {"gpu": {"count": 1, "types": ["H100"]}},
                "replicas": {"min": 1, "max": 1},
            },
        }
    )


# -- a pass reading its own write too early ----------------------------------------------------


async def test_a_pass_reading_a_store_that_lags_its_own_write_stays_safe(
    fake_api: FakeApi,
) -> None:
    """The watch holds the pass's own Deployment back: the next pass sees nothing in the
    member cluster, yet creates no duplicate, deletes nothing and plans the same."""
    async with member(fake_api.url) as client:
        loop, cluster = await _operator_loop(client)
        md = _md("llama")
        fleet = [cluster]
        informers = loop.reconciler.observations.informers
        assert informers is not None
        informers.read(cluster, NS)
        await until(lambda: informers.states()[0].serving, "never synced")
        await fake_api.control("pause")  # from here the store lags the server
        try:
            first = await loop.reconcile("uid-1", md, fleet=fleet, others=[md])
            assert first is not None and first.plan.placed_replicas == 1
            created = await client.list_owned(DEPLOYMENT, SELECTOR, namespace=NS)
            assert len(created) == 1
            assert informers.read(cluster, NS) == []  # the store has not seen it

            second = await loop.reconcile("uid-1", md, fleet=fleet, others=[md])
            assert second is not None
            assert second.plan.placements == first.plan.placements
            again = await client.list_owned(DEPLOYMENT, SELECTOR, namespace=NS)
            assert [d["metadata"]["resourceVersion"] for d in again] == [
                d["metadata"]["resourceVersion"] for d in created
            ]  # applied again as a no-op: neither duplicated nor rewritten
            stats = await fake_api.stats()
            assert not any(k.startswith("DELETE") for k in stats)
            assert not [e for e in second.events if e.reason == "Retired"]
        finally:
            await fake_api.control("resume")
        await until(lambda: len(informers.read(cluster, NS) or []) == 1, "never caught up")
        third = await loop.reconcile("uid-1", md, fleet=fleet, others=[md])
        assert third is not None and third.plan.placements == first.plan.placements
        await loop.reconciler.observations.close()


async def test_the_operator_context_watches_its_members_and_closes_every_watch(
    fake_api: FakeApi,
) -> None:
    """Wiring: ``build_context`` gives the reconciler informers on the watch clients (the
    hub as a member here), the probe publishes their state, ``close`` ends them all."""
    from modelfleet.metrics.operator_metrics import OperatorMetrics
    from modelfleet.metrics.source import StaticMetricsSource
    from modelfleet.providers.simulated import SimulatedNodePoolProvider
    from modelfleet.runtime import build_context, utcnow

    async with member(fake_api.url) as hub:
        metrics = OperatorMetrics(process_metrics=False)
        context = await build_context(
            hub=hub, metrics_source=StaticMetricsSource(), operator_metrics=metrics
        )
        try:
            cluster = _simulated_cluster()
            await context.providers.install(
                cluster, SimulatedNodePoolProvider(cluster, clock=utcnow)
            )
            probed = await context.loop.probe(cluster)
            fleet = [cluster.model_copy(update={"status": probed.status})]
            md = _md("llama")
            outcome = await context.loop.reconcile("uid-1", md, fleet=fleet, others=[md])
            assert outcome is not None and outcome.plan.placed_replicas == 1
            states = context.reconciler.observations.watch_states("m1")
            assert [(s.cluster, s.namespace) for s in states] == [("m1", NS)]
            await until(lambda: states[0].serving, "never synced")
            await context.loop.probe(fleet[0])
            assert 'modelfleet_member_watch_serving{cluster="m1",namespace="team-a"} 1.0' in (
                metrics.exposition().decode()
            )
        finally:
            await context.close()
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("informer ")]
        await until(lambda: _open_watches(fake_api, 0), "a watch outlived close")


def _simulated_cluster() -> FleetCluster:
    return FleetCluster.model_validate(
        {
            "metadata": {"name": "m1", "uid": "uid-m1", "generation": 1},
            "spec": {
                "provider": "simulated",
                "region": "us-east-1",
                "simulated": {"provisioningSeconds": 0},
                "gpuOfferings": [
                    {
                        "gpu": "H100",
                        "gpuMemoryGiB": 80,
                        "gpusPerNode": 1,
                        "instanceType": "h100-1g",
                        "onDemandPerHour": 10.0,
                        "maxNodes": 4,
                    }
                ],
            },
        }
    )


async def _operator_loop(client: KubernetesClusterClient) -> tuple[Any, FleetCluster]:
    """The real OperatorLoop over one simulated-provider FleetCluster whose member API is
    ``client``'s, with member watches on; returns it and the probed FleetCluster."""
    from datetime import UTC, datetime

    from modelfleet.loop import OperatorLoop
    from modelfleet.metrics.source import StaticMetricsSource
    from modelfleet.providers.simulated import SimulatedNodePoolProvider
    from modelfleet.reconciler import (
        ProviderRegistry,
        Reconciler,
        ReconcilerSettings,
        StockoutMemory,
    )

    def utcnow() -> datetime:
        return datetime.now(UTC)

    async def client_for(_: Any) -> KubernetesClusterClient:
        return client

    cluster = _simulated_cluster()
    providers = ProviderRegistry(clusters=client_for, secrets=None, clock=utcnow)
    await providers.install(cluster, SimulatedNodePoolProvider(cluster, clock=utcnow))
    reconciler = Reconciler(
        clusters=client_for,
        providers=providers,
        metrics=StaticMetricsSource(),
        stockouts=StockoutMemory(),
        clock=utcnow,
        settings=ReconcilerSettings(informers=FAST),
        watch_clients=client_for,
    )
    loop = OperatorLoop(
        reconciler=reconciler, providers=providers, probe_clients=client_for, clock=utcnow
    )
    probed = await loop.probe(cluster)
    return loop, cluster.model_copy(update={"status": probed.status})
