"""The built-in server's metrics, scraped by a real Prometheus and read by the operator.

The server runs in-process; Prometheus scrapes its ``/metrics`` with the target labels a
Kubernetes scrape job gives the pod (``modelfleet_io_deployment``,
``modelfleet_io_namespace``); the operator's own ``PrometheusMetricsSource`` then runs the
``engine: builtin`` queries. The queue depth must be the requests actually waiting, and
after a burst the p95s must be what the server's own bucket counts imply, the rates what
its counters grew by over the window.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelfleet.api.fleetcluster import PrometheusEndpoint
from modelfleet.metrics.prometheus import PrometheusClient, PrometheusMetricsSource
from modelfleet.metrics.queries import QuerySettings
from modelfleet.metrics.source import MetricsTarget, SignalValues
from modelfleet.serving.tiny import write_tiny_model

try:  # tests/integration on sys.path (pytest's default rootdir-less import)
    from prometheus_server import PrometheusServer, expected_quantile, prometheus_binary
    from serving_harness import MODEL_NAME, RunningServer, running_server, settings_for
except ImportError:  # tests as a package
    from tests.integration.prometheus_server import (
        PrometheusServer,
        expected_quantile,
        prometheus_binary,
    )
    from tests.integration.serving_harness import (
        MODEL_NAME,
        RunningServer,
        running_server,
        settings_for,
    )

pytestmark = pytest.mark.integration

DEPLOYMENT, NAMESPACE = "chat", "team-a"
WINDOW_S = 600  # longer than the test: every series' whole history, from its zero sample
SETTINGS = QuerySettings(window=f"{WINDOW_S}s")


class LabelledPrometheus(PrometheusServer):
    """Prometheus whose scrape job gives the target the pod labels' Prometheus names."""

    def _write_config(self) -> Path:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    "job_name": "modelfleet-server",
                    "static_configs": [
                        {
                            "targets": self.targets,
                            "labels": {
                                "modelfleet_io_deployment": DEPLOYMENT,
                                "modelfleet_io_namespace": NAMESPACE,
                            },
                        }
                    ],
                }
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(json.dumps(config))
        return path


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, PrometheusServer]]:
    binary = prometheus_binary()
    tmp = tmp_path_factory.mktemp("serving-prometheus")
    model = write_tiny_model(tmp / "tiny")
    with running_server(settings_for(model, max_running_sequences=2, max_queue=8)) as server:
        prometheus = LabelledPrometheus(binary, tmp, targets=[server.url.removeprefix("http://")])
        try:
            prometheus.start()
            prometheus.wait_for(  # two zero samples before any request
                "count_over_time(modelfleet_queue_depth[1m])",
                lambda r: bool(r) and float(r[0]["value"][1]) >= 2,
            )
            yield server, prometheus
        finally:
            prometheus.stop()


def signals(prometheus: PrometheusServer) -> SignalValues:
    target = MetricsTarget(
        namespace=NAMESPACE,
        deployment=DEPLOYMENT,
        cluster="local",
        engine="builtin",
        prometheus=PrometheusEndpoint(url=prometheus.url),
        ready_replicas=1,
    )

    # Evaluated at the latest scrape's time: rate() then has a sample at the window's end
    # and extrapolates nothing past it (it extrapolated up to 1.1 scrape intervals past the
    # last sample, more when a busy machine delayed or missed scrapes), and nothing before
    # the series' zero start either: the rates below are the counts over the window exactly.
    latest = prometheus.query("max(timestamp(modelfleet_queue_depth))")
    at = datetime.fromtimestamp(float(latest[0]["value"][1]), tz=UTC)

    async def fetch() -> SignalValues:
        async with PrometheusClient(timeout_s=30.0) as client:
            source = PrometheusMetricsSource(client, settings=SETTINGS)
            return await source.fetch(target, now=at)

    return asyncio.run(fetch())


def wait_signal(prometheus: PrometheusServer, name: str, value: float) -> SignalValues:
    deadline = time.monotonic() + 60
    while True:
        values = signals(prometheus)
        if getattr(values, name) == value or time.monotonic() > deadline:
            assert getattr(values, name) == value, (values, prometheus.log_tail())
            return values
        time.sleep(0.25)


def buckets(text: str, name: str) -> tuple[list[float], list[float]]:
    """(upper bounds, cumulative counts) of histogram ``name`` in exposition ``text``."""
    pairs = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                pairs.append((float(sample.labels["le"]), float(sample.value)))
    pairs.sort()
    return [b for b, _ in pairs], [c for _, c in pairs]


def total(text: str, name: str) -> float:
    return sum(
        float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


def test_the_operators_builtin_queries_read_the_servers_metrics(
    stack: tuple[RunningServer, PrometheusServer],
) -> None:
    server, prometheus = stack
    client = openai.OpenAI(base_url=server.api, api_key="unused", max_retries=0, timeout=60)

    # 1. Four long streams on two slots: two run, two wait in the queue.
    streams: list[Any] = []
    opened = threading.Barrier(5)

    def hold() -> None:
        stream = client.chat.completions.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": "w3 w4"}], temperature=0,
            max_tokens=1900, stream=True, extra_body={"ignore_eos": True},
        )  # fmt: skip
        streams.append(stream)
        opened.wait(30)

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(4)]
    for thread in holders:
        thread.start()
    opened.wait(30)
    server.wait_metric("modelfleet_queue_depth", 2)
    waiting = wait_signal(prometheus, "queue_depth", 2.0)
    assert waiting.queue_per_replica == 2.0
    # The saturation gauges through the same queries: two running on the two slots, and
    # their KV-cache positions a fraction of the budget.
    running = wait_signal(prometheus, "requests_running", 2.0)
    assert running.running_per_replica == 2.0
    assert running.kv_cache_per_replica is not None
    assert 0.0 < running.kv_cache_per_replica <= 1.0
    for stream in streams:
        stream.close()
    server.wait_metric("modelfleet_running_sequences", 0)

    # 2. A burst of short requests, then idle.
    for i in range(6):
        client.completions.create(model=MODEL_NAME, prompt=f"w{i} w{i + 1}", max_tokens=8,
                                  temperature=0, extra_body={"ignore_eos": True})  # fmt: skip
    text = server.metrics_text()
    tokens = total(text, "modelfleet_generated_tokens_total")
    requests = total(text, "modelfleet_requests_total")
    assert requests == 10  # 4 cancelled + 6 finished
    prometheus.wait_for(  # the last scrape saw the final counts
        "sum(modelfleet_generated_tokens_total)",
        lambda r: bool(r) and float(r[0]["value"][1]) == tokens,
    )
    values = wait_signal(prometheus, "queue_depth", 0.0)

    ttft_bounds, ttft_counts = buckets(text, "modelfleet_ttft_seconds")
    tpot_bounds, tpot_counts = buckets(text, "modelfleet_tpot_seconds")
    # 2 held streams that ran + 6; a queued stream may have started between two closes.
    assert 8 <= ttft_counts[-1] <= 10
    assert values.ttft_p95_ms == pytest.approx(
        1000 * expected_quantile(0.95, ttft_bounds, ttft_counts), rel=1e-6
    ), values.errors
    assert values.tpot_p95_ms == pytest.approx(
        1000 * expected_quantile(0.95, tpot_bounds, tpot_counts), rel=1e-6
    ), values.errors
    # rate() spreads the increase over the window (evaluated at a sample: no extrapolation
    # past it, and none below the zero start), so these hold with equality.
    assert requests / WINDOW_S <= values.request_rate <= requests / WINDOW_S * 1.1, values  # type: ignore[operator]
    assert tokens / WINDOW_S <= values.tokens_per_second <= tokens / WINDOW_S * 1.1, values  # type: ignore[operator]
    assert values.errors == {}
