"""The Prometheus metrics source against a real Prometheus scraping engine-shaped metrics.

A local exporter serves histograms, gauges and counters under each engine's real metric
names, for several deployments, with counters that grow linearly in time. Prometheus
scrapes it every second; the source's PromQL must then yield the p95s that the bucket
counts imply (linear interpolation, computed here independently), the sums and rates the
exporter was given, ``None`` where there is no data, and ``MetricsUnavailable`` when
Prometheus cannot be reached. Stub HTTP servers cover retries, timeouts and auth.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from modelfleet.api.fleetcluster import PrometheusEndpoint
from modelfleet.api.modeldeployment import Engine, MetricsQueries
from modelfleet.gateway.metrics import DEMAND_QUERY
from modelfleet.labels import label_value
from modelfleet.metrics.prometheus import (
    PrometheusAuth,
    PrometheusClient,
    PrometheusMetricsSource,
    QueryError,
)
from modelfleet.metrics.queries import QuerySettings, SelectorLabels
from modelfleet.metrics.source import MetricsTarget, MetricsUnavailable, SignalValues

try:  # tests/integration on sys.path (pytest's default rootdir-less import)
    from prometheus_server import (
        PrometheusServer,
        TextExporter,
        expected_quantile,
        free_port,
        prometheus_binary,
    )
except ImportError:  # tests as a package
    from tests.integration.prometheus_server import (
        PrometheusServer,
        TextExporter,
        expected_quantile,
        free_port,
        prometheus_binary,
    )

pytestmark = pytest.mark.integration

GENEROUS_S = 30.0
"""Outer bound on calls that must end by themselves (a hang fails; slowness does not)."""

NS = "team-a"
WINDOW = "5s"  # rate() needs the whole window inside the scraped history; keep the test short
SETTINGS = QuerySettings(window=WINDOW)
INF = math.inf

# Cumulative bucket counts per unit of "time scale"; the exporter multiplies them by the
# elapsed seconds so that every bucket grows in proportion and rate() keeps the ratios.
# Every sample carries the time it was computed at as its explicit timestamp: Prometheus
# stamps a sample without one at the scrape's start, so a busy machine's varying response
# delay would otherwise show in rate() (CI saw 4.29/s for a counter growing 4.0/s). That
# time is a whole second, and the queries are evaluated at a whole second G whose window
# holds samples at both ends (``fetch``): rate() extrapolates to the window's edges only
# when the samples reach them, so a scrape a busy machine missed or delayed at an edge
# would otherwise read low (a 5 s window missing 1 s of it reads 20% low).
TTFT_BOUNDS = (0.05, 0.1, 0.2, 0.5, 1.0, INF)
TPOT_BOUNDS = (0.01, 0.025, 0.05, 0.1, INF)
LLAMA_TTFT = {"a": (10, 30, 45, 50, 50, 50), "b": (0, 20, 45, 50, 50, 50)}
LLAMA_TPOT = {"a": (40, 80, 95, 100, 100), "b": (60, 90, 98, 100, 100)}
LLAMA_QUEUE = {"a": 3.0, "b": 4.0}
LLAMA_REQUESTS = {"a": {"stop": 1.5, "length": 0.5}, "b": {"stop": 3.0}}  # per second
LLAMA_TOKENS = {"a": 100.0, "b": 150.0}  # per second
LLAMA_KV = {"a": 0.6, "b": 0.8}  # vllm:kv_cache_usage_perc (a fraction despite the name)
LLAMA_RUNNING = {"a": 10.0, "b": 30.0}
GUARDED_QUEUE = 2.0
FORGED_QUEUE = 50.0
LONG_NAME = "team-a-llama-3.1-8b-instruct.canary.eu-west-4.blue-green.rollout-2026-12-01"
LONG_QUEUE = 6.0
DECOY_TTFT = (0, 0, 0, 0, 0, 100)  # another deployment, all in +Inf: must not leak in
OLD_VLLM_TPOT = (0, 10, 60, 100, 100)
MIXED_NEW_TPOT = (90, 100, 100, 100, 100)  # an upgraded pod: fast
MIXED_OLD_TPOT = (0, 0, 20, 95, 100)  # a pod still on vLLM < 0.11: slow
MISTRAL_TTFT = (60, 90, 100, 100, 100, 100)
MISTRAL_TPOT = (100, 100, 100, 100, 100)
QWEN_TTFT = (0, 0, 80, 100, 100, 100)
QWEN_ITL = (5, 50, 100, 100, 100)
TGI_QUEUE_BOUNDS = (0.01, 0.05, 0.1, INF)
FALCON_QUEUE = (70, 96, 100, 100)
FALCON_PREFILL = (20, 60, 100, 100, 100, 100)
FALCON_TPOT = (10, 90, 100, 100, 100)
NIGHTLY_RATE = 3.0  # req/s arriving at the gateway for a deployment at zero


def summed(*series: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(sum(values) for values in zip(*series, strict=True))


class Exposition:
    """Builds Prometheus text format; counters grow as ``value_per_second * elapsed``; every
    sample is stamped ``timestamp_ms`` (milliseconds since the epoch) when given."""

    def __init__(self, elapsed: float, timestamp_ms: int | None = None) -> None:
        self.elapsed = elapsed
        self.timestamp_ms = timestamp_ms
        self.lines: list[str] = []

    @staticmethod
    def _labels(labels: dict[str, str]) -> str:
        return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"

    def histogram(
        self,
        name: str,
        labels: dict[str, str],
        bounds: tuple[float, ...],
        counts: tuple[float, ...],
        *,
        growing: bool = True,
    ) -> None:
        scale = self.elapsed if growing else 1000.0
        for bound, count in zip(bounds, counts, strict=True):
            le = "+Inf" if math.isinf(bound) else repr(bound)
            self.lines.append(f"{name}_bucket{self._labels({**labels, 'le': le})} {count * scale}")
        self.lines.append(f"{name}_sum{self._labels(labels)} {counts[-1] * scale * 0.1}")
        self.lines.append(f"{name}_count{self._labels(labels)} {counts[-1] * scale}")

    def counter(self, name: str, labels: dict[str, str], per_second: float) -> None:
        self.lines.append(f"{name}{self._labels(labels)} {per_second * self.elapsed}")

    def gauge(self, name: str, labels: dict[str, str], value: float) -> None:
        self.lines.append(f"{name}{self._labels(labels)} {value}")

    def text(self) -> str:
        suffix = "" if self.timestamp_ms is None else f" {self.timestamp_ms}"
        return "".join(f"{line}{suffix}\n" for line in self.lines)


def pod(deployment: str, name: str = "a", **extra: str) -> dict[str, str]:
    return {
        "modelfleet_io_deployment": deployment,
        "modelfleet_io_namespace": NS,
        "pod": f"{deployment}-{name}",
        **extra,
    }


def render_engines(now: float, origin: float) -> str:
    """Every engine's series at wall-clock ``now`` (seconds since the epoch), counters
    started at ``origin``, each sample stamped ``now``."""
    elapsed = now - origin
    out = Exposition(elapsed, timestamp_ms=round(now * 1000))
    # vLLM (>= 0.11 names), two pods.
    for p in ("a", "b"):
        labels = pod("llama", p, model_name="llama-3.1-8b")
        out.histogram("vllm:time_to_first_token_seconds", labels, TTFT_BOUNDS, LLAMA_TTFT[p])
        out.histogram("vllm:inter_token_latency_seconds", labels, TPOT_BOUNDS, LLAMA_TPOT[p])
        out.gauge("vllm:num_requests_waiting", labels, LLAMA_QUEUE[p])
        for reason, rate in LLAMA_REQUESTS[p].items():
            out.counter("vllm:request_success_total", {**labels, "finished_reason": reason}, rate)
        out.counter("vllm:generation_tokens_total", labels, LLAMA_TOKENS[p])
        out.gauge("vllm:kv_cache_usage_perc", labels, LLAMA_KV[p])
        out.gauge("vllm:num_requests_running", labels, LLAMA_RUNNING[p])
    # A different deployment in the same Prometheus: the selector must exclude it.
    decoy = pod("decoy")
    out.histogram("vllm:time_to_first_token_seconds", decoy, TTFT_BOUNDS, DECOY_TTFT)
    out.gauge("vllm:num_requests_waiting", decoy, 100.0)
    out.counter("vllm:request_success_total", decoy, 1000.0)
    # vLLM before 0.11: time_per_output_token_seconds only.
    old = pod("old-vllm")
    out.histogram("vllm:time_per_output_token_seconds", old, TPOT_BOUNDS, OLD_VLLM_TPOT)
    out.gauge("vllm:gpu_cache_usage_perc", old, 0.5)
    # A rolling vLLM upgrade: one pod exposes both TPOT names (0.11, identical series), the
    # other only the old name (< 0.11). Both pods' observations make the p95.
    upgraded = pod("mixed-vllm", "a")
    out.histogram("vllm:inter_token_latency_seconds", upgraded, TPOT_BOUNDS, MIXED_NEW_TPOT)
    out.histogram("vllm:time_per_output_token_seconds", upgraded, TPOT_BOUNDS, MIXED_NEW_TPOT)
    out.histogram(
        "vllm:time_per_output_token_seconds",
        pod("mixed-vllm", "b"),
        TPOT_BOUNDS,
        MIXED_OLD_TPOT,
    )
    # A vLLM exposing both KV-cache names (the deprecation window): the newer one counts.
    both = pod("both-vllm")
    out.gauge("vllm:kv_cache_usage_perc", both, 0.7)
    out.gauge("vllm:gpu_cache_usage_perc", both, 0.2)
    out.gauge("vllm:kv_cache_usage_perc", pod("both-vllm", "b"), 0.3)
    # Idle vLLM: series exist, nothing happens (histograms flat, counters flat, queue 0).
    idle = pod("idle")
    out.histogram(
        "vllm:time_to_first_token_seconds", idle, TTFT_BOUNDS, LLAMA_TTFT["a"], growing=False
    )
    out.gauge("vllm:num_requests_waiting", idle, 0.0)
    out.gauge("vllm:request_success_total", idle, 42.0)
    # The built-in server's contract.
    mistral = pod("mistral")
    out.histogram("modelfleet_ttft_seconds", mistral, TTFT_BOUNDS, MISTRAL_TTFT)
    out.histogram("modelfleet_tpot_seconds", mistral, TPOT_BOUNDS, MISTRAL_TPOT)
    out.gauge("modelfleet_queue_depth", mistral, 2.0)
    out.counter("modelfleet_requests_total", mistral, 4.0)
    out.counter("modelfleet_generated_tokens_total", mistral, 80.0)
    out.gauge("modelfleet_kv_cache_usage_ratio", mistral, 0.9)
    out.gauge("modelfleet_kv_cache_usage_ratio", pod("mistral", "b"), 0.7)
    out.gauge("modelfleet_running_sequences", mistral, 3.0)
    # SGLang.
    qwen = pod("qwen", tp_rank="0")
    out.histogram("sglang:time_to_first_token_seconds", qwen, TTFT_BOUNDS, QWEN_TTFT)
    out.histogram("sglang:inter_token_latency_seconds", qwen, TPOT_BOUNDS, QWEN_ITL)
    out.gauge("sglang:num_queue_reqs", qwen, 5.0)
    out.counter("sglang:num_requests_total", qwen, 6.0)
    out.counter("sglang:generation_tokens_total", qwen, 300.0)
    out.gauge("sglang:token_usage", qwen, 0.4)
    out.gauge("sglang:num_running_reqs", qwen, 7.0)
    # TGI: counters without _total, TTFT from queue + prefill histograms.
    falcon = pod("falcon")
    out.histogram("tgi_request_queue_duration", falcon, TGI_QUEUE_BOUNDS, FALCON_QUEUE)
    out.histogram(
        "tgi_batch_inference_duration", {**falcon, "method": "prefill"}, TTFT_BOUNDS, FALCON_PREFILL
    )
    out.histogram(
        "tgi_batch_inference_duration", {**falcon, "method": "decode"}, TTFT_BOUNDS, DECOY_TTFT
    )
    out.histogram("tgi_request_mean_time_per_token_duration", falcon, TPOT_BOUNDS, FALCON_TPOT)
    out.gauge("tgi_queue_size", falcon, 1.0)
    out.gauge("tgi_batch_current_size", falcon, 4.0)
    # A deployment's pod in its namespace, and a pod in another namespace (a tenant who may
    # run pods only there) carrying its modelfleet.io labels: its queue must not count
    # where the selector pins the namespace service discovery found the pod in.
    out.gauge("vllm:num_requests_waiting", pod("guarded", namespace=NS), GUARDED_QUEUE)
    forged = pod("guarded", "forged", namespace="team-b")
    out.gauge("vllm:num_requests_waiting", forged, FORGED_QUEUE)
    # A ModelDeployment named past 63 characters: its pods carry the name shortened.
    out.gauge("vllm:num_requests_waiting", pod(label_value(LONG_NAME)), LONG_QUEUE)
    # A gateway receiving 3 req/s for a deployment that has no replica (scale from zero),
    # and holding them: 30 s of arrivals are waiting (a count, which the demand must not be).
    gateway = {"namespace": NS, "deployment": "nightly"}
    out.counter("modelfleet_gateway_received_requests_total", gateway, NIGHTLY_RATE)
    out.gauge("modelfleet_gateway_pending_requests", gateway, 30 * NIGHTLY_RATE)
    out.counter("tgi_request_count", falcon, 2.5)
    out.lines.append(
        f"tgi_request_generated_tokens_sum{Exposition._labels(falcon)} {75.0 * elapsed}"
    )
    out.lines.append(
        f"tgi_request_generated_tokens_count{Exposition._labels(falcon)} {2.5 * elapsed}"
    )
    return out.text()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Prometheus scraping the engine exporter, with at least 7 s of history (more than
    WINDOW) for every series."""
    binary = prometheus_binary()
    origin = time.time() - 1000.0  # counters are large and far from their reset
    exporter = TextExporter(lambda: render_engines(math.floor(time.time()), origin))
    server = PrometheusServer(
        binary, tmp_path_factory.mktemp("prometheus"), targets=[exporter.target]
    )
    try:
        server.start()
        server.wait_for(
            'count_over_time(vllm:num_requests_waiting{pod="llama-a"}[1m])',
            lambda result: bool(result) and float(result[0]["value"][1]) >= 7,
            timeout_s=120,  # a hang bound: a busy machine's scrapes time out now and then
        )
        yield server
    finally:
        server.stop()
        exporter.stop()


@pytest.fixture
async def client() -> AsyncIterator[PrometheusClient]:
    async with PrometheusClient(timeout_s=5.0) as prometheus_client:
        yield prometheus_client


def target(
    prometheus: PrometheusServer | str,
    deployment: str,
    engine: Engine,
    *,
    ready: int = 1,
    overrides: MetricsQueries | None = None,
) -> MetricsTarget:
    url = prometheus if isinstance(prometheus, str) else prometheus.url
    return MetricsTarget(
        namespace=NS,
        deployment=deployment,
        cluster="local",
        engine=engine,
        prometheus=PrometheusEndpoint(url=url),
        ready_replicas=ready,
        overrides=overrides,
    )


def whole_window_end(prometheus: PrometheusServer) -> datetime:
    """The latest whole second G with a scraped sample at G and at G - 4 s (every series is
    in every scrape, stamped alike): a WINDOW evaluated at G has samples at both its edges,
    with gaps between them of one second or more, so rate() extrapolates over the whole
    window and reads the exporter's rate exactly, however irregular the scrapes were."""
    span = int(WINDOW.removesuffix("s")) - 1
    found: list[float] = []

    def has_whole_window(result: list[dict[str, Any]]) -> bool:
        stamps = {round(float(t)) for t, _ in result[0]["values"]} if result else set()
        found[:] = sorted(g for g in stamps if g - span in stamps)
        return bool(found)

    prometheus.wait_for(
        'vllm:num_requests_waiting{pod="llama-a"}[30s]', has_whole_window, timeout_s=60
    )
    return datetime.fromtimestamp(found[-1], tz=UTC)


async def fetch(
    prometheus: PrometheusServer,
    client: PrometheusClient,
    t: MetricsTarget,
    *,
    at: datetime | None = None,
) -> SignalValues:
    """The source's signals evaluated at ``at`` (default: ``whole_window_end``)."""
    source = PrometheusMetricsSource(client, settings=SETTINGS)
    try:
        return await source.fetch(t, now=at or whole_window_end(prometheus))
    except Exception as error:
        raise AssertionError(f"{error}; prometheus log:\n{prometheus.log_tail()}") from error


async def test_vllm_signals_match_the_buckets_summed_over_pods(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    at = whole_window_end(prometheus)
    values = await fetch(prometheus, client, target(prometheus, "llama", "vllm", ready=2), at=at)

    ttft = 1000 * expected_quantile(0.95, TTFT_BOUNDS, summed(*LLAMA_TTFT.values()))
    tpot = 1000 * expected_quantile(0.95, TPOT_BOUNDS, summed(*LLAMA_TPOT.values()))
    assert ttft == pytest.approx(350.0)  # rank 95 of 100: halfway through (0.2, 0.5]
    assert values.ttft_p95_ms == pytest.approx(ttft, rel=1e-6), values.errors
    assert values.tpot_p95_ms == pytest.approx(tpot, rel=1e-6), values.errors
    assert values.queue_depth == 7.0
    assert values.queue_per_replica == 3.5
    assert values.request_rate == pytest.approx(5.0, rel=0.05)
    assert values.tokens_per_second == pytest.approx(250.0, rel=0.05)
    assert values.kv_cache_usage == pytest.approx(1.4)  # 0.6 + 0.8 over the two pods
    assert values.kv_cache_per_replica == pytest.approx(0.7)
    assert (values.requests_running, values.running_per_replica) == (40.0, 20.0)
    assert values.errors == {}
    assert values.observed_at == at  # the evaluation time Prometheus answered for


async def test_older_vllm_tpot_name_is_read_when_the_newer_is_absent(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    values = await fetch(prometheus, client, target(prometheus, "old-vllm", "vllm"))
    expected = 1000 * expected_quantile(0.95, TPOT_BOUNDS, OLD_VLLM_TPOT)
    assert values.tpot_p95_ms == pytest.approx(expected, rel=1e-6)
    assert values.kv_cache_per_replica == pytest.approx(0.5)  # gpu_cache_usage_perc


async def test_a_fleet_mixing_vllm_versions_reads_every_pods_tpot(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    """During a rolling upgrade of vLLM (or a canary of a newer one) some pods expose only
    time_per_output_token_seconds. The `or` used to sit between the two quantiles: as soon
    as one pod exposed the newer name, the older pods were left out of the p95 (here the
    slow ones: TPOT read 17.5 ms, the fleet's is 96.7 ms). Now the fallback is per pod, before
    the sum; a pod exposing both names (the same observations) counts once."""
    values = await fetch(prometheus, client, target(prometheus, "mixed-vllm", "vllm", ready=2))
    expected = 1000 * expected_quantile(0.95, TPOT_BOUNDS, summed(MIXED_NEW_TPOT, MIXED_OLD_TPOT))
    assert values.tpot_p95_ms == pytest.approx(expected, rel=1e-6)
    upgraded_only = 1000 * expected_quantile(0.95, TPOT_BOUNDS, MIXED_NEW_TPOT)
    assert values.tpot_p95_ms > 2 * upgraded_only


async def test_a_pod_exposing_both_kv_cache_names_counts_once(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    values = await fetch(prometheus, client, target(prometheus, "both-vllm", "vllm", ready=2))
    # Pod a: kv_cache_usage_perc 0.7 wins over its gpu_cache_usage_perc 0.2; pod b: 0.3.
    assert values.kv_cache_usage == pytest.approx(1.0)
    assert values.kv_cache_per_replica == pytest.approx(0.5)


async def test_builtin_sglang_and_tgi_signals(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    mistral = await fetch(prometheus, client, target(prometheus, "mistral", "builtin", ready=2))
    assert mistral.ttft_p95_ms == pytest.approx(150.0, rel=1e-6)
    assert mistral.tpot_p95_ms == pytest.approx(
        1000 * expected_quantile(0.95, TPOT_BOUNDS, MISTRAL_TPOT), rel=1e-6
    )
    assert (mistral.queue_depth, mistral.queue_per_replica) == (2.0, 1.0)
    assert mistral.request_rate == pytest.approx(4.0, rel=0.05)
    assert mistral.tokens_per_second == pytest.approx(80.0, rel=0.05)
    assert mistral.kv_cache_per_replica == pytest.approx(0.8)  # (0.9 + 0.7) / 2 ready
    assert mistral.running_per_replica == pytest.approx(1.5)

    qwen = await fetch(prometheus, client, target(prometheus, "qwen", "sglang"))
    assert qwen.ttft_p95_ms == pytest.approx(
        1000 * expected_quantile(0.95, TTFT_BOUNDS, QWEN_TTFT), rel=1e-6
    )
    assert qwen.tpot_p95_ms == pytest.approx(
        1000 * expected_quantile(0.95, TPOT_BOUNDS, QWEN_ITL), rel=1e-6
    )
    assert qwen.queue_depth == 5.0
    assert qwen.request_rate == pytest.approx(6.0, rel=0.05)
    assert qwen.tokens_per_second == pytest.approx(300.0, rel=0.05)
    assert (qwen.kv_cache_per_replica, qwen.running_per_replica) == (0.4, 7.0)

    falcon = await fetch(prometheus, client, target(prometheus, "falcon", "tgi"))
    ttft = 1000 * (
        expected_quantile(0.95, TGI_QUEUE_BOUNDS, FALCON_QUEUE)
        + expected_quantile(0.95, TTFT_BOUNDS, FALCON_PREFILL)
    )
    assert falcon.ttft_p95_ms == pytest.approx(ttft, rel=1e-6)
    assert falcon.tpot_p95_ms == pytest.approx(
        1000 * expected_quantile(0.95, TPOT_BOUNDS, FALCON_TPOT), rel=1e-6
    )
    assert falcon.queue_depth == 1.0
    assert falcon.request_rate == pytest.approx(2.5, rel=0.05)
    assert falcon.tokens_per_second == pytest.approx(75.0, rel=0.05)
    assert falcon.running_per_replica == 4.0
    # TGI has no KV-cache gauge: missing, with the reason, never a made-up figure.
    assert falcon.kv_cache_per_replica is None and falcon.kv_cache_usage is None
    assert "exposes no metric" in falcon.errors["kv_cache_usage"]
    # An override gives TGI one (here: the running batch over 8 slots, 0.5).
    declared = await fetch(
        prometheus,
        client,
        target(
            prometheus,
            "falcon",
            "tgi",
            overrides=MetricsQueries(kv_cache_usage="sum(tgi_batch_current_size{$selector}) / 8"),
        ),
    )
    assert declared.kv_cache_per_replica == 0.5


async def test_no_series_and_empty_histograms_are_missing_but_a_flat_counter_is_zero(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    ghost = await fetch(prometheus, client, target(prometheus, "ghost", "vllm", ready=3))
    assert ghost == SignalValues(
        observed_at=ghost.observed_at,
        errors={s: "no series" for s in ghost.errors},
    )
    assert set(ghost.errors) == {
        "ttft_p95_ms",
        "tpot_p95_ms",
        "queue_depth",
        "request_rate",
        "tokens_per_second",
        "kv_cache_usage",
        "requests_running",
    }

    idle = await fetch(prometheus, client, target(prometheus, "idle", "vllm", ready=2))
    assert idle.ttft_p95_ms is None  # histogram present, no observation in the window: NaN
    assert "NaN" in idle.errors["ttft_p95_ms"]
    assert idle.request_rate == 0.0  # the counter exists and did not move: a real zero
    assert idle.queue_depth == 0.0
    assert idle.queue_per_replica == 0.0


async def test_overrides_are_substituted_and_a_bad_one_loses_only_its_signal(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    overrides = MetricsQueries(
        ttft_p95_ms=(
            "1000 * histogram_quantile(0.5, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket"
            '{modelfleet_io_deployment="$deployment",modelfleet_io_namespace="$namespace"}'
            "[$window])))"
        ),
        queue_depth='max(vllm:num_requests_waiting{$selector, pod=~"$deployment-.*"})',
        request_rate="sum(rate(vllm:request_success_total{$selector}[$window]) by (",
        tokens_per_second="sum(rate(vllm:generation_tokens_total{$selector}[$window])) + $unknown",
    )
    values = await fetch(
        prometheus, client, target(prometheus, "llama", "vllm", ready=2, overrides=overrides)
    )
    p50 = 1000 * expected_quantile(0.5, TTFT_BOUNDS, summed(*LLAMA_TTFT.values()))
    assert values.ttft_p95_ms == pytest.approx(p50, rel=1e-6)
    assert values.queue_depth == 4.0
    assert values.request_rate is None
    assert "bad_data" in values.errors["request_rate"]
    assert values.tokens_per_second is None
    assert "$unknown" in values.errors["tokens_per_second"]
    # Untouched signals still use the engine's query.
    assert values.tpot_p95_ms == pytest.approx(
        1000 * expected_quantile(0.95, TPOT_BOUNDS, summed(*LLAMA_TPOT.values())), rel=1e-6
    )


async def test_an_override_returning_several_series_is_summed_or_maxed(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    overrides = MetricsQueries(
        queue_depth="vllm:num_requests_waiting{$selector}",
        ttft_p95_ms=(
            "1000 * histogram_quantile(0.95, sum by (le, pod) "
            "(rate(vllm:time_to_first_token_seconds_bucket{$selector}[$window])))"
        ),
    )
    values = await fetch(
        prometheus, client, target(prometheus, "llama", "vllm", overrides=overrides)
    )
    assert values.queue_depth == 7.0
    worst = max(expected_quantile(0.95, TTFT_BOUNDS, c) for c in LLAMA_TTFT.values())
    assert values.ttft_p95_ms == pytest.approx(1000 * worst, rel=1e-6)


async def test_raw_client_reports_prometheus_rejections_as_query_errors(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    with pytest.raises(QueryError, match="bad_data"):
        await client.query(prometheus.url, "sum(")
    with pytest.raises(QueryError, match="matrix"):
        await client.query(prometheus.url, "vllm:num_requests_waiting[1m]")
    scalar = await client.query(prometheus.url, "scalar(vector(2))")
    assert [s.value for s in scalar.samples] == [2.0]


# --- Unreachable, slow, failing and protected Prometheus servers ---------------------------


async def test_unreachable_prometheus_raises_metrics_unavailable_quickly() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with PrometheusClient(timeout_s=2.0, retries=2, retry_backoff_s=0.05) as client:
        source = PrometheusMetricsSource(client)
        # Bounded by behaviour (3 attempts, asserted below), not by wall time; the generous
        # outer bound only stops a hang.
        with pytest.raises(MetricsUnavailable, match="cannot connect") as caught:
            async with asyncio.timeout(GENEROUS_S):
                await source.fetch(target(url, "llama", "vllm"), now=datetime.now(UTC))
    assert caught.value.cluster == "local"
    assert "3 attempts" in caught.value.reason


async def test_a_cluster_without_prometheus_is_unavailable() -> None:
    async with PrometheusClient() as client:
        no_prometheus = MetricsTarget(
            namespace=NS,
            deployment="llama",
            cluster="edge",
            engine="vllm",
            prometheus=None,
            ready_replicas=1,
        )
        with pytest.raises(MetricsUnavailable, match=r"no spec\.prometheus"):
            await PrometheusMetricsSource(client).fetch(no_prometheus, now=datetime.now(UTC))


class StubPrometheus:
    """An aiohttp server standing in for Prometheus with scripted answers."""

    def __init__(self, handler: Callable[[web.Request], Awaitable[web.Response]]) -> None:
        self.app = web.Application()
        self.app.router.add_post("/prefix/api/v1/query", handler)
        self.runner = web.AppRunner(self.app)
        self.url = ""

    async def __aenter__(self) -> StubPrometheus:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/prefix"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


def vector(value: str) -> dict[str, object]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {}, "value": [1700000000.5, value]}],
        },
    }


async def test_timeouts_are_not_retried_and_bound_the_call() -> None:
    calls = 0
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await release.wait()
        return web.json_response(vector("1"))

    async with StubPrometheus(slow) as stub, PrometheusClient(timeout_s=0.5, retries=3) as client:
        # The client's 0.5 s timeout ends the call (the message) and it is not retried
        # (calls == 1 below); the generous outer bound only stops a hang.
        with pytest.raises(MetricsUnavailable, match=r"within 0.5s"):
            async with asyncio.timeout(GENEROUS_S):
                await client.query(stub.url, "up")
        release.set()
    assert calls == 1


async def test_5xx_is_retried_a_bounded_number_of_times() -> None:
    answers = [web.Response(status=503, text="busy"), web.Response(status=502)]
    seen: list[str] = []

    async def flaky(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append(str(form["query"]))
        return answers.pop(0) if answers else web.json_response(vector("NaN"))

    async with StubPrometheus(flaky) as stub:
        async with PrometheusClient(retries=2, retry_backoff_s=0.01) as client:
            result = await client.query(stub.url, "up", at=datetime(2023, 11, 14, tzinfo=UTC))
        assert len(seen) == 3
        assert math.isnan(result.samples[0].value)
        assert result.evaluated_at == datetime.fromtimestamp(1700000000.5, tz=UTC)

        answers.extend(web.Response(status=500) for _ in range(5))
        async with PrometheusClient(retries=1, retry_backoff_s=0.01) as client:
            with pytest.raises(MetricsUnavailable, match="HTTP 500 after 2 attempts"):
                await client.query(stub.url, "up")


async def test_credentials_are_sent_but_never_appear_in_errors() -> None:
    headers: list[str | None] = []

    async def protected(request: web.Request) -> web.Response:
        headers.append(request.headers.get("Authorization"))
        return web.Response(status=401, text="unauthorized")

    async with StubPrometheus(protected) as stub:
        with_password = stub.url.replace("http://", "http://user:hunter2@")
        auth = PrometheusAuth(bearer_token="s3cret-token")
        assert "s3cret" not in repr(auth)
        messages = []
        async with PrometheusClient(auth=auth) as client:
            for url in (stub.url, with_password):  # explicit credentials win over the URL's
                with pytest.raises(MetricsUnavailable) as caught:
                    await client.query(url, "up")
                messages.append(str(caught.value))
        async with PrometheusClient() as client:
            with pytest.raises(MetricsUnavailable) as caught:
                await client.query(with_password, "up")
            messages.append(str(caught.value))
    basic = "Basic " + base64.b64encode(b"user:hunter2").decode()
    assert headers == ["Bearer s3cret-token", "Bearer s3cret-token", basic]
    for message in messages:
        assert "HTTP 401" in message
        assert "s3cret" not in message
        assert "hunter2" not in message


async def test_at_zero_only_the_named_demand_query_is_asked(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    """Scale from zero: with no replica anywhere, the user's demand PromQL (the rate of the
    gateway's arrivals counter, docs/gateway.md, over this module's window) comes back as
    the request rate in req/s, not the held-requests count; no other signal is asked
    (their series cannot exist at zero)."""
    demand = MetricsQueries(demand=DEMAND_QUERY.replace("[1m]", "[$window]"))
    at_zero = replace(
        target(prometheus, "nightly", "vllm", ready=0, overrides=demand), demand_only=True
    )
    values = await fetch(prometheus, client, at_zero)
    assert values.request_rate == pytest.approx(NIGHTLY_RATE, rel=0.05), values.errors
    assert (values.ttft_p95_ms, values.queue_depth, values.tokens_per_second) == (None, None, None)
    # Without a demand query the engine's own request rate is asked: no series at zero.
    plain = await fetch(prometheus, client, replace(at_zero, overrides=None))
    assert plain.request_rate is None


async def test_a_negative_answer_is_missing_not_a_number(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    """A demand query built on delta() or deriv() of the gateway's gauge goes negative as
    the queue drains (here the gateway's backlog gauge, negated). Read as a number, a
    negative rate at zero replicas was demand (any non-zero rate starts a replica) and a
    negative queue lowered the ratios; no signal can be negative, so it is missing, with
    the reason."""
    drain = MetricsQueries(
        demand='-1 * sum(modelfleet_gateway_pending_requests{deployment="$deployment"})'
    )
    at_zero = replace(
        target(prometheus, "nightly", "vllm", ready=0, overrides=drain), demand_only=True
    )
    values = await fetch(prometheus, client, at_zero)
    assert values.request_rate is None
    assert values.errors["request_rate"] == f"negative value {-30 * NIGHTLY_RATE:g}"
    running = target(
        prometheus,
        "llama",
        "vllm",
        ready=2,
        overrides=MetricsQueries(queue_depth="-sum(vllm:num_requests_waiting{$selector})"),
    )
    queue = await fetch(prometheus, client, running)
    assert (queue.queue_depth, queue.queue_per_replica) == (None, None)
    assert queue.errors["queue_depth"] == "negative value -7"
    assert queue.ttft_p95_ms is not None  # the other signals are read as before


async def test_a_pod_in_another_namespace_feeds_no_signal_once_its_namespace_is_matched(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    at = whole_window_end(prometheus)
    t = target(prometheus, "guarded", "vllm")
    pinned = QuerySettings(window=WINDOW, selector=SelectorLabels(pod_namespace="namespace"))
    values = await PrometheusMetricsSource(client, settings=pinned).fetch(t, now=at)
    assert values.queue_depth == GUARDED_QUEUE, values.errors
    # Pod labels alone (the default): the other namespace's pod counts. This is what
    # ``--metrics-namespace-label`` exists for.
    unpinned = await fetch(prometheus, client, t, at=at)
    assert unpinned.queue_depth == GUARDED_QUEUE + FORGED_QUEUE


async def test_a_deployment_named_past_63_characters_reads_its_pods_series(
    prometheus: PrometheusServer, client: PrometheusClient
) -> None:
    """Found on main 8be971f (br11): the pods of a ModelDeployment named past 63 characters
    carry the name shortened (a label value's limit), the selector asked for the whole
    name, and no signal ever came back."""
    values = await fetch(prometheus, client, target(prometheus, LONG_NAME, "vllm"))
    assert values.queue_depth == LONG_QUEUE, values.errors
