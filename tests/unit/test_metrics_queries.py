"""The signal queries per engine, the selector and the substitution of user overrides,
plus the missing-versus-zero rule of ``SignalValues`` and the in-memory source."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from modelfleet.api.fleetcluster import PrometheusEndpoint
from modelfleet.api.modeldeployment import Engine, MetricsQueries
from modelfleet.metrics.queries import (
    ENGINE_QUERIES,
    SIGNALS,
    NoEngineQuery,
    QuerySettings,
    QueryTemplateError,
    SelectorLabels,
    build_queries,
    substitute,
)
from modelfleet.metrics.source import (
    MetricsTarget,
    MetricsUnavailable,
    SignalValues,
    StaticMetricsSource,
)

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SELECTOR = 'modelfleet_io_deployment="llama",modelfleet_io_namespace="team-a"'


def queries_for(engine: Engine, overrides: MetricsQueries | None = None) -> dict[str, str]:
    built = build_queries(engine, overrides, deployment="llama", namespace="team-a")
    out: dict[str, str] = {}
    for signal, query in built.items():
        if isinstance(query, NoEngineQuery):
            continue  # TGI's KV-cache use: no metric, no query
        assert isinstance(query, str), f"{engine}/{signal}: {query}"
        out[signal] = query
    return out


@pytest.mark.parametrize(
    ("engine", "signal", "metric"),
    [
        ("builtin", "ttft_p95_ms", "modelfleet_ttft_seconds_bucket"),
        ("builtin", "tpot_p95_ms", "modelfleet_tpot_seconds_bucket"),
        ("builtin", "queue_depth", "modelfleet_queue_depth"),
        ("builtin", "request_rate", "modelfleet_requests_total"),
        ("builtin", "tokens_per_second", "modelfleet_generated_tokens_total"),
        ("builtin", "kv_cache_usage", "modelfleet_kv_cache_usage_ratio"),
        ("builtin", "requests_running", "modelfleet_running_sequences"),
        ("vllm", "ttft_p95_ms", "vllm:time_to_first_token_seconds_bucket"),
        ("vllm", "tpot_p95_ms", "vllm:inter_token_latency_seconds_bucket"),
        ("vllm", "tpot_p95_ms", "vllm:time_per_output_token_seconds_bucket"),
        ("vllm", "queue_depth", "vllm:num_requests_waiting"),
        ("vllm", "request_rate", "vllm:request_success_total"),
        ("vllm", "tokens_per_second", "vllm:generation_tokens_total"),
        ("vllm", "kv_cache_usage", "vllm:kv_cache_usage_perc"),
        ("vllm", "kv_cache_usage", "vllm:gpu_cache_usage_perc"),
        ("vllm", "requests_running", "vllm:num_requests_running"),
        ("sglang", "ttft_p95_ms", "sglang:time_to_first_token_seconds_bucket"),
        ("sglang", "tpot_p95_ms", "sglang:inter_token_latency_seconds_bucket"),
        ("sglang", "tpot_p95_ms", "sglang:time_per_output_token_seconds_bucket"),
        ("sglang", "queue_depth", "sglang:num_queue_reqs"),
        ("sglang", "request_rate", "sglang:num_requests_total"),
        ("sglang", "tokens_per_second", "sglang:generation_tokens_total"),
        ("sglang", "kv_cache_usage", "sglang:token_usage"),
        ("sglang", "requests_running", "sglang:num_running_reqs"),
        ("tgi", "ttft_p95_ms", "tgi_request_queue_duration_bucket"),
        ("tgi", "ttft_p95_ms", "tgi_batch_inference_duration_bucket"),
        ("tgi", "tpot_p95_ms", "tgi_request_mean_time_per_token_duration_bucket"),
        ("tgi", "queue_depth", "tgi_queue_size"),
        ("tgi", "request_rate", "tgi_request_count"),
        ("tgi", "tokens_per_second", "tgi_request_generated_tokens_sum"),
        ("tgi", "requests_running", "tgi_batch_current_size"),
    ],
)
def test_each_engine_reads_its_own_metric_for_the_deployment(
    engine: Engine, signal: str, metric: str
) -> None:
    query = queries_for(engine)[signal]
    # Every use of a metric is restricted to this deployment's series.
    assert f"{metric}{{{SELECTOR}" in query
    assert "$" not in query


def test_every_engine_defines_every_signal_and_custom_reads_builtin_names() -> None:
    for engine, templates in ENGINE_QUERIES.items():
        absent = {"kv_cache_usage"} if engine == "tgi" else set()
        assert set(templates) == set(SIGNALS) - absent, engine
    assert queries_for("custom") == queries_for("builtin")


def test_tgi_has_no_kv_cache_query_unless_an_override_names_one() -> None:
    built = build_queries("tgi", None, deployment="llama", namespace="team-a")
    missing = built["kv_cache_usage"]
    assert isinstance(missing, NoEngineQuery) and "tgi" in str(missing)
    declared = build_queries(
        "tgi",
        MetricsQueries(kv_cache_usage="sum(my_kv{$selector})"),
        deployment="llama",
        namespace="team-a",
    )
    assert declared["kv_cache_usage"] == f"sum(my_kv{{{SELECTOR}}})"


def test_kv_cache_use_and_running_are_divided_by_ready_replicas() -> None:
    values = SignalValues.from_signals(
        {"kv_cache_usage": 2.7, "requests_running": 90.0}, ready_replicas=3, observed_at=NOW
    )
    assert values.kv_cache_per_replica == pytest.approx(0.9)
    assert values.running_per_replica == 30.0
    # More than the ready replicas hold (a pod on its way out still reporting): at most 1.
    over = SignalValues.from_signals({"kv_cache_usage": 2.5}, ready_replicas=2, observed_at=NOW)
    assert over.kv_cache_per_replica == 1.0
    none_ready = SignalValues.from_signals(
        {"kv_cache_usage": 0.5}, ready_replicas=0, observed_at=NOW
    )
    assert none_ready.kv_cache_usage == 0.5 and none_ready.kv_cache_per_replica is None


def test_latency_signals_are_p95_in_milliseconds_over_the_window() -> None:
    query = queries_for("vllm")["ttft_p95_ms"]
    assert query == (
        "1000 * histogram_quantile(0.95, sum by (le) "
        f"(rate(vllm:time_to_first_token_seconds_bucket{{{SELECTOR}}}[2m])))"
    )
    assert queries_for("builtin")["request_rate"] == (
        f"sum(rate(modelfleet_requests_total{{{SELECTOR}}}[2m]))"
    )
    assert queries_for("tgi")["queue_depth"] == f"sum(tgi_queue_size{{{SELECTOR}}})"


def test_window_and_selector_labels_are_configurable() -> None:
    settings = QuerySettings(
        window="30s",
        selector=SelectorLabels(deployment="app", namespace="owner_ns", cluster="cluster"),
    )
    built = build_queries(
        "vllm", None, deployment="llama", namespace="team-a", cluster="aws-use1", settings=settings
    )
    assert built["queue_depth"] == (
        'sum(vllm:num_requests_waiting{app="llama",owner_ns="team-a",cluster="aws-use1"})'
    )
    assert "[30s]" in str(built["request_rate"])


@pytest.mark.parametrize("window", ["2", "two minutes", "2m;", ""])
def test_a_window_that_is_not_a_promql_duration_is_refused(window: str) -> None:
    with pytest.raises(ValueError, match="PromQL duration"):
        QuerySettings(window=window)


def test_a_selector_label_that_is_not_a_label_name_is_refused() -> None:
    with pytest.raises(ValueError, match="label name"):
        SelectorLabels(deployment="modelfleet.io/deployment")


def test_label_values_are_escaped_in_the_selector() -> None:
    rendered = SelectorLabels().render(deployment='a"b', namespace="c\\d", cluster=None)
    assert rendered == 'modelfleet_io_deployment="a\\"b",modelfleet_io_namespace="c\\\\d"'


def test_overrides_replace_only_their_signal_and_get_every_variable() -> None:
    overrides = MetricsQueries(
        ttft_p95_ms=(
            "1000 * histogram_quantile(0.99, sum by (le) (rate("
            'gateway_ttft_seconds_bucket{route="$namespace/$deployment"}[$window])))'
        ),
        queue_depth='sum(my_queue{$selector, cluster="${cluster}"})',
    )
    built = build_queries(
        "vllm",
        overrides,
        deployment="llama",
        namespace="team-a",
        cluster="gcp-usc1",
        settings=QuerySettings(window="1m"),
    )
    assert built["ttft_p95_ms"] == (
        "1000 * histogram_quantile(0.99, sum by (le) (rate("
        'gateway_ttft_seconds_bucket{route="team-a/llama"}[1m])))'
    )
    assert built["queue_depth"] == f'sum(my_queue{{{SELECTOR}, cluster="gcp-usc1"}})'
    # Signals without an override keep the engine's query.
    assert (
        built["tpot_p95_ms"]
        == build_queries(
            "vllm",
            None,
            deployment="llama",
            namespace="team-a",
            settings=QuerySettings(window="1m"),
        )["tpot_p95_ms"]
    )


def test_an_override_with_an_unknown_variable_fails_alone() -> None:
    overrides = MetricsQueries(request_rate='sum(rate(x{app="$deploymnet"}[$window]))')
    built = build_queries("builtin", overrides, deployment="llama", namespace="team-a")
    error = built["request_rate"]
    assert isinstance(error, QueryTemplateError)
    assert "$deploymnet" in str(error)
    assert "$deployment" in str(error)  # the message lists what is known
    assert isinstance(built["ttft_p95_ms"], str)


def test_substitute_keeps_regex_dollars_and_unescapes_double_dollar() -> None:
    variables = {"deployment": "llama"}
    assert substitute('x{pod=~"$deployment-.*$"}', variables) == 'x{pod=~"llama-.*$"}'
    assert substitute("cost $$5 ${deployment}", variables) == "cost $5 llama"


def test_an_empty_override_falls_back_to_the_engine_query() -> None:
    built = queries_for("sglang", MetricsQueries(queue_depth=""))
    assert built["queue_depth"] == f"sum(sglang:num_queue_reqs{{{SELECTOR}}})"


# --- SignalValues: missing is None, never zero -------------------------------------------


def test_non_finite_values_become_missing_with_a_reason() -> None:
    values = SignalValues.from_signals(
        {"ttft_p95_ms": math.nan, "tpot_p95_ms": math.inf, "request_rate": 0.0},
        ready_replicas=2,
        observed_at=NOW,
    )
    assert values.ttft_p95_ms is None
    assert values.tpot_p95_ms is None
    assert values.request_rate == 0.0  # a measured zero stays zero
    assert values.queue_depth is None
    assert values.queue_per_replica is None
    assert "non-finite" in values.errors["ttft_p95_ms"]


@pytest.mark.parametrize(
    ("queue", "ready", "per_replica"),
    [(6.0, 3, 2.0), (0.0, 2, 0.0), (5.0, 0, None), (None, 4, None)],
)
def test_queue_per_replica_divides_by_ready_replicas(
    queue: float | None, ready: int, per_replica: float | None
) -> None:
    values = SignalValues.from_signals(
        {"queue_depth": queue}, ready_replicas=ready, observed_at=NOW
    )
    assert values.queue_depth == queue
    assert values.queue_per_replica == per_replica


def _target(cluster: str = "aws-use1", ready: int = 2) -> MetricsTarget:
    return MetricsTarget(
        namespace="team-a",
        deployment="llama",
        cluster=cluster,
        engine="vllm",
        prometheus=PrometheusEndpoint(url="http://prometheus:9090"),
        ready_replicas=ready,
    )


async def test_static_source_serves_what_was_set_and_records_calls() -> None:
    source = StaticMetricsSource()
    source.set("team-a", "llama", cluster="aws-use1", ttft_p95_ms=150.0, queue_depth=8.0)
    values = await source.fetch(_target(ready=4), now=NOW)
    assert values.ttft_p95_ms == 150.0
    assert values.queue_per_replica == 2.0
    assert values.request_rate is None
    assert values.observed_at == NOW
    other = await source.fetch(_target(cluster="gcp-usc1"), now=NOW)
    assert all(other.get(signal) is None for signal in SIGNALS)
    assert [call[0].cluster for call in source.calls] == ["aws-use1", "gcp-usc1"]


async def test_static_source_injects_and_clears_an_outage() -> None:
    source = StaticMetricsSource()
    source.set("team-a", "llama", cluster="aws-use1", request_rate=3.0)
    source.set_unavailable("aws-use1", "prometheus down")
    with pytest.raises(MetricsUnavailable, match="prometheus down") as caught:
        await source.fetch(_target(), now=NOW)
    assert caught.value.cluster == "aws-use1"
    source.set_unavailable("aws-use1", None)
    assert (await source.fetch(_target(), now=NOW)).request_rate == 3.0


def test_the_pod_namespace_label_pins_the_series_to_the_deployment_s_namespace() -> None:
    # A pod in another namespace may carry the two modelfleet.io labels (whoever runs it
    # writes them); the namespace service discovery found it in cannot be written so.
    settings = QuerySettings(selector=SelectorLabels(pod_namespace="namespace"))
    built = build_queries("vllm", None, deployment="llama", namespace="team-a", settings=settings)
    assert built["queue_depth"] == (
        'sum(vllm:num_requests_waiting{modelfleet_io_deployment="llama",'
        'modelfleet_io_namespace="team-a",namespace="team-a"})'
    )
    with pytest.raises(ValueError, match="label name"):
        SelectorLabels(pod_namespace="kubernetes.io/namespace")


@pytest.mark.parametrize("name", ["__meta_kubernetes_namespace", "__name__", "__x"])
def test_a_reserved_label_name_is_refused_for_every_selector_label(name: str) -> None:
    for field in ("deployment", "namespace", "cluster", "pod_namespace"):
        with pytest.raises(ValueError, match="reserved"):
            SelectorLabels(**{field: name})


def test_a_pod_namespace_label_that_is_a_pod_label_is_refused() -> None:
    with pytest.raises(ValueError, match="any pod may carry"):
        SelectorLabels(pod_namespace="modelfleet_io_namespace")
    with pytest.raises(ValueError, match="any pod may carry"):
        SelectorLabels(pod_namespace="ns", namespace="ns")
    assert SelectorLabels(pod_namespace="_namespace").pod_namespace == "_namespace"
