"""The documented scale-from-zero demand query, through a real Prometheus scraping a real
gateway, reads the arrival rate in requests/s (the unit ``core.autoscale`` sizes the first
step with), not the count of held requests.

A gateway over a deployment with no ready endpoint holds every request (``--hold-timeout``
300 s here, so none leaves); a client sends ``RATE`` requests/s. Prometheus scrapes the
gateway's /metrics every second. The operator's own path then evaluates
``gateway.metrics.DEMAND_QUERY`` (the query of docs/gateway.md, examples/ and the CRD's
field text) as ``spec.metrics.demand`` at zero: it must read about ``RATE``, while the
pending gauge (the query documented before) reads the whole backlog, tens of requests.
The query's ``[1m]`` window is shortened to ``WINDOW`` so the test needs ~30 s, not 70 s:
the rest of the query is the documented one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from gateway_harness import Dep, gateway_for
from openai_stub import StubEngine
from prometheus_server import PrometheusServer, prometheus_binary

from modelfleet.api.fleetcluster import PrometheusEndpoint
from modelfleet.api.modeldeployment import MetricsQueries
from modelfleet.gateway.metrics import DEMAND_QUERY, PENDING_REQUESTS
from modelfleet.gateway.settings import GatewaySettings
from modelfleet.metrics.prometheus import PrometheusClient, PrometheusMetricsSource
from modelfleet.metrics.queries import QuerySettings
from modelfleet.metrics.source import MetricsTarget

pytestmark = pytest.mark.integration

RATE = 2.0
"""Requests/s sent (all held)."""
WINDOW = "15s"
SENDING_S = 24.0
"""Seconds of arrivals before the query: more than WINDOW, so the window is full of them."""


async def test_the_documented_demand_query_reads_the_arrival_rate_not_the_backlog(
    tmp_path: Path,
) -> None:
    binary = prometheus_binary()
    query = DEMAND_QUERY.replace("[1m]", f"[{WINDOW}]")
    assert query != DEMAND_QUERY
    settings = GatewaySettings(scrape_interval=0, hold_timeout=300)
    async with StubEngine("cold") as cold:
        zero = Dep("nightly", "m", [cold], not_ready=frozenset({"cold"}))
        async with gateway_for(tmp_path, [zero], settings=settings) as h:
            assert h.running.management_url is not None
            server = PrometheusServer(
                binary, tmp_path / "prom", targets=[urlsplit(h.running.management_url).netloc]
            )
            (tmp_path / "prom").mkdir()
            server.start()
            held: list[asyncio.Task[int]] = []
            try:
                # The series exists (at 0) before the first request, once scraped.
                await asyncio.to_thread(
                    server.wait_for,
                    'modelfleet_gateway_received_requests_total{deployment="nightly"}',
                    lambda r: bool(r) and float(r[0]["value"][1]) == 0.0,
                    timeout_s=60,
                )
                async with aiohttp.ClientSession() as session:

                    async def send() -> int:
                        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
                        async with session.post(
                            f"{h.url}/v1/chat/completions", json=body
                        ) as answer:
                            return answer.status

                    start = time.monotonic()
                    sent = 0
                    while (now := time.monotonic() - start) < SENDING_S:
                        while sent <= now * RATE:  # on schedule even when a tick is late
                            held.append(asyncio.create_task(send()))
                            sent += 1
                        await asyncio.sleep(0.05)
                    assert not any(t.done() for t in held), "a request was not held"
                    async with PrometheusClient(timeout_s=5.0) as client:
                        source = PrometheusMetricsSource(
                            client, settings=QuerySettings(window=WINDOW)
                        )

                        async def demand(promql: str) -> float | None:
                            target = MetricsTarget(
                                namespace="team",
                                deployment="nightly",
                                cluster="local",
                                engine="vllm",
                                prometheus=PrometheusEndpoint(url=server.url),
                                ready_replicas=0,
                                overrides=MetricsQueries(demand=promql),
                                demand_only=True,
                            )
                            at = datetime.now(UTC)
                            values = await source.fetch(target, now=at)
                            return values.request_rate

                        rate = await demand(query)
                        backlog = await demand(
                            f'sum({PENDING_REQUESTS}{{namespace="$namespace",'
                            'deployment="$deployment"})'
                        )
            finally:
                for task in held:
                    task.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.gather(*held, return_exceptions=True)
                log = server.log_tail()
                server.stop()
    assert rate is not None, log
    # The window ends at the last scrape (a second old at most) and is full of arrivals.
    # Scrape jitter on a busy machine moves rate() by a sample or two either way.
    assert 0.6 * RATE <= rate <= 1.4 * RATE, (rate, backlog)
    assert backlog is not None and backlog >= 0.8 * RATE * SENDING_S, backlog
