"""Outlier ejection rules of the endpoint pool, on a fake clock: how many failures eject,
the cap on ejections for HTTP errors, refused connections, and what never counts."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelfleet.gateway.catalog import DeploymentInfo, DeploymentKey, EndpointInfo, build_catalog
from modelfleet.gateway.endpoints import EndpointPool, Failure
from modelfleet.gateway.metrics import GatewayMetrics
from modelfleet.gateway.settings import GatewaySettings

KEY = DeploymentKey("team", "d")


@pytest.fixture
async def pool() -> EndpointPool:
    urls = [f"http://127.0.0.1:{port}" for port in (1, 2, 3, 4)]  # never contacted here
    info = DeploymentInfo(KEY, "m", tuple(EndpointInfo(u[-1], u, None, True) for u in urls))
    settings = GatewaySettings(eject_after_failures=3, eject_base_seconds=60)
    session = aiohttp.ClientSession()
    p = EndpointPool(settings, GatewayMetrics(process_metrics=False), session, clock=lambda: 0.0)
    p.update(build_catalog([info], []))
    yield p  # type: ignore[misc]
    await p.close()
    await session.close()


def healthy(pool: EndpointPool) -> int:
    info = pool._catalog.deployments[KEY]
    return len(pool.healthy(info))


async def test_consecutive_http_errors_eject_at_most_half(pool: EndpointPool) -> None:
    outcomes = []
    for port in (1, 2, 3, 4):
        state = pool.state(f"http://127.0.0.1:{port}")
        assert state is not None
        outcomes.append([pool.failed(state, Failure.STATUS_5XX) for _ in range(3)])
    # The third failure in a row ejects; the third and fourth endpoints stay: half of four.
    assert outcomes == [[False, False, True]] * 2 + [[False, False, False]] * 2
    assert healthy(pool) == 2


async def test_a_success_resets_the_count(pool: EndpointPool) -> None:
    state = pool.state("http://127.0.0.1:1")
    assert state is not None
    pool.failed(state, Failure.STATUS_5XX)
    pool.failed(state, Failure.TIMEOUT)
    pool.succeeded(state, 0.1)
    assert not pool.failed(state, Failure.RESET)
    assert healthy(pool) == 4


async def test_refused_connections_eject_at_once_and_are_not_capped(pool: EndpointPool) -> None:
    for port in (1, 2, 3, 4):
        state = pool.state(f"http://127.0.0.1:{port}")
        assert state is not None
        assert pool.failed(state, Failure.REFUSED)
    assert healthy(pool) == 0


async def test_busy_and_mid_stream_failures_never_eject(pool: EndpointPool) -> None:
    state = pool.state("http://127.0.0.1:1")
    assert state is not None
    for _ in range(10):
        assert not pool.failed(state, Failure.STATUS_429)
        assert not pool.failed(state, Failure.STREAM)
    assert healthy(pool) == 4


async def test_in_flight_gauge_returns_to_zero_when_the_endpoint_is_relabelled() -> None:
    # A request in flight while the catalog renames its endpoint (static file edited, same
    # URL): the gauge was raised under the old label and lowered under the new one, leaving
    # old=1 and new=-1 for ever.
    url = "http://127.0.0.1:1"
    metrics = GatewayMetrics(process_metrics=False)
    session = aiohttp.ClientSession()
    p = EndpointPool(GatewaySettings(), metrics, session, clock=lambda: 0.0)
    try:
        p.update(
            build_catalog([DeploymentInfo(KEY, "m", (EndpointInfo("old", url, None, True),))], [])
        )
        lease = p.acquire(url)
        p.update(
            build_catalog([DeploymentInfo(KEY, "m", (EndpointInfo("new", url, None, True),))], [])
        )
        p.release(lease)
    finally:
        await p.close()
        await session.close()
    gauges = [
        line
        for line in metrics.render().decode().splitlines()
        if line.startswith("modelfleet_gateway_outstanding_requests{")
    ]
    assert gauges, "no in-flight gauge rendered"
    assert all(line.endswith(" 0.0") for line in gauges), gauges


async def test_one_url_in_two_deployments_shares_ejection_but_not_labels() -> None:
    # A base model and a LoRA adapter on one engine: two deployments, one URL. A failure of
    # a request for "lora" is counted under lora and its endpoint id; the engine is ejected
    # for both deployments (one engine), and the ejected gauge is set under both.
    url = "http://127.0.0.1:1"
    base, lora = DeploymentKey("team", "base"), DeploymentKey("team", "lora")
    metrics = GatewayMetrics(process_metrics=False)
    session = aiohttp.ClientSession()
    p = EndpointPool(GatewaySettings(), metrics, session, clock=lambda: 0.0)
    catalog = build_catalog(
        [
            DeploymentInfo(base, "qwen", (EndpointInfo("base-ep", url, None, True),)),
            DeploymentInfo(lora, "qwen-sql", (EndpointInfo("lora-ep", url, None, True),)),
        ],
        [],
    )
    try:
        p.update(catalog)
        attempt = p.acquire(url, lora)
        assert (attempt.deployment, attempt.label) == (lora, "lora-ep")
        assert p.failed(attempt, Failure.REFUSED)
        p.release(attempt)
        assert p.healthy(catalog.deployments[base]) == []
        assert p.healthy(catalog.deployments[lora]) == []
    finally:
        await p.close()
        await session.close()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }

    def value(name: str, deployment: str, endpoint: str, **more: str) -> float | None:
        labels = {"namespace": "team", "deployment": deployment, "endpoint": endpoint, **more}
        return samples.get((name, tuple(sorted(labels.items()))))

    errors = "modelfleet_gateway_upstream_errors_total"
    assert value(errors, "lora", "lora-ep", reason="refused") == 1
    assert value(errors, "base", "base-ep", reason="refused") is None
    assert value(errors, "base", "lora-ep", reason="refused") is None
    for deployment, endpoint in (("base", "base-ep"), ("lora", "lora-ep")):
        assert value("modelfleet_gateway_endpoint_ejected", deployment, endpoint) == 1
        assert value("modelfleet_gateway_ejections_total", deployment, endpoint) == 1
        assert value("modelfleet_gateway_outstanding_requests", deployment, endpoint) in (0, None)
    assert value("modelfleet_gateway_outstanding_requests", "lora", "lora-ep") == 0
