"""A request and the opening of a watch fail the same typed way over real sockets: a
refused connection is ``ClusterUnreachable`` "cannot connect" (at once), a server that
accepts and never answers is ``ClusterUnreachable`` "did not answer within" the client's
timeout, and a closed client is "client closed (replaced)"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from kube_emulator import closed_url, silent_url

from modelfleet.clusters import ClusterUnreachable, KubernetesClusterClient
from modelfleet.clusters.objects import POD

GENEROUS_S = 30.0
"""Only stops a hang; the client's own timeout is what ends a call."""

Call = Callable[[KubernetesClusterClient], Awaitable[Any]]


async def _list(client: KubernetesClusterClient) -> Any:
    return await client.list_versioned(POD, {}, namespace="ns")


async def _watch(client: KubernetesClusterClient) -> Any:
    return await client.watch(POD, {}, namespace="ns", resource_version="1", timeout_seconds=5)


def _kubeconfig(server: str) -> dict[str, Any]:
    return {
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """An http URL whose server accepts connections and never responds."""
    async with silent_url() as url:
        yield url


@pytest.mark.parametrize(("call", "what"), [(_list, "list pods"), (_watch, "watch pods")])
async def test_a_refused_connection_cannot_connect(call: Call, what: str) -> None:
    client = await KubernetesClusterClient.from_kubeconfig(
        _kubeconfig(closed_url()), name="gone", request_timeout=2.0
    )
    try:
        with pytest.raises(ClusterUnreachable) as caught:
            async with asyncio.timeout(GENEROUS_S):
                await call(client)
        assert caught.value.args[0].startswith(f"{what}: cannot connect to the API server (")
        assert caught.value.cluster == "gone"
        assert caught.value.retryable
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # A request names the timeout's class; the opening of a watch does not.
        (_list, r"list pods: API server did not answer within 0\.5s \(\w+\)$"),
        (_watch, r"watch pods: API server did not answer within 0\.5s$"),
    ],
)
async def test_a_silent_server_times_out(call: Call, message: str, silent_server: str) -> None:
    client = await KubernetesClusterClient.from_kubeconfig(
        _kubeconfig(silent_server), request_timeout=0.5
    )
    try:
        with pytest.raises(ClusterUnreachable, match=message):
            async with asyncio.timeout(GENEROUS_S):
                await call(client)
    finally:
        await client.close()


@pytest.mark.parametrize(("call", "what"), [(_list, "list pods"), (_watch, "watch pods")])
async def test_a_closed_client_is_unreachable(call: Call, what: str) -> None:
    client = await KubernetesClusterClient.from_kubeconfig(
        _kubeconfig(closed_url()), request_timeout=2.0
    )
    await client.close()
    with pytest.raises(ClusterUnreachable, match=rf"{what}: client closed \(replaced\)$"):
        await call(client)
