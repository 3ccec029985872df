"""PromQL for the autoscaler's signals, per inference engine, with user overrides.

The autoscaler reads seven signals per (deployment, cluster): five SLO signals and two
saturation signals (KV-cache use and running requests; ``core.saturation``). Each engine exposes them under
its own metric names, so this module owns the one table that maps (engine, signal) to a
PromQL template, and the substitution of ``$selector``, ``$window``, ``$deployment``,
``$namespace`` and ``$cluster`` into those templates and into the user's
``spec.metrics`` overrides. It does no I/O; ``modelfleet.metrics.prometheus`` runs the
queries. The metric names and where they come from are listed in ``docs/metrics.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from modelfleet.api.modeldeployment import Engine, MetricsQueries
from modelfleet.labels import label_value

Signal = Literal[
    "ttft_p95_ms",
    "tpot_p95_ms",
    "queue_depth",
    "request_rate",
    "tokens_per_second",
    "kv_cache_usage",
    "requests_running",
]
"""A signal the autoscaler reads. Names match the ``spec.metrics`` override fields.

``kv_cache_usage`` is the **sum over the deployment's pods** of each pod's KV-cache use
(a fraction 0..1 per pod), so that dividing by the ready replicas gives the mean use per
ready replica (as ``queue_depth`` gives the queue per replica); ``requests_running`` is the
sum of the running batch sizes."""

SIGNALS: Final[tuple[Signal, ...]] = get_args(Signal)

QUANTILE: Final = 0.95
"""The percentile of the latency signals (TTFT p95, TPOT p95)."""

# The built-in server's metric names: a contract with modelfleet.serving, which must expose
# exactly these (seconds for the histograms, as Prometheus naming asks).
BUILTIN_TTFT_HISTOGRAM: Final = "modelfleet_ttft_seconds"
BUILTIN_TPOT_HISTOGRAM: Final = "modelfleet_tpot_seconds"
BUILTIN_QUEUE_GAUGE: Final = "modelfleet_queue_depth"
BUILTIN_REQUESTS_COUNTER: Final = "modelfleet_requests_total"
BUILTIN_GENERATED_TOKENS_COUNTER: Final = "modelfleet_generated_tokens_total"
BUILTIN_RUNNING_GAUGE: Final = "modelfleet_running_sequences"
BUILTIN_KV_CACHE_GAUGE: Final = "modelfleet_kv_cache_usage_ratio"

VARIABLES: Final[tuple[str, ...]] = ("selector", "window", "deployment", "namespace", "cluster")
"""Names a template or override may use as ``$name`` or ``${name}``; ``$$`` is a literal $."""

_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_VARIABLE = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class QueryTemplateError(ValueError):
    """A PromQL template (usually a user override) names a variable that does not exist."""


class NoEngineQuery(QueryTemplateError):
    """The engine exposes no metric for this signal (TGI has no KV-cache gauge) and no
    override is set: the signal is missing and no query is sent."""


def _quantile_ms(bucket: str) -> str:
    return (
        f"1000 * histogram_quantile({QUANTILE}, sum by (le) (rate({bucket}{{$selector}}[$window])))"
    )


def _quantile_ms_either(new_bucket: str, old_bucket: str) -> str:
    # `or` keeps the left result when it exists (both sides carry the empty label set after
    # `sum by (le)` + histogram_quantile), so the newer name wins and the older one is read
    # only from engine versions that do not expose the newer one.
    return (
        f"1000 * (histogram_quantile({QUANTILE}, "
        f"sum by (le) (rate({new_bucket}{{$selector}}[$window]))) "
        f"or histogram_quantile({QUANTILE}, "
        f"sum by (le) (rate({old_bucket}{{$selector}}[$window]))))"
    )


def _quantile_ms_per_pod(new_bucket: str, old_bucket: str) -> str:
    # Per pod and bucket, the newer name where the pod exposes it, else the older one,
    # then summed: in a fleet mixing engine versions (a rolling upgrade, a canary) every
    # pod counts. `or` after rate() matches the series of one pod and `le` (rate drops the
    # metric name), so a pod exposing both names counts once. Only where both names share
    # their buckets (vLLM's do: the deprecated name is the same histogram), or the summed
    # buckets would mix two layouts.
    return (
        f"1000 * histogram_quantile({QUANTILE}, sum by (le) ("
        f"rate({new_bucket}{{$selector}}[$window]) or rate({old_bucket}{{$selector}}[$window])))"
    )


def _sum(metric: str) -> str:
    return f"sum({metric}{{$selector}})"


def _sum_either(new: str, old: str) -> str:
    # Per pod, the newer name where the pod exposes it, else the older one (`or` matches on
    # the labels without the metric name), then summed over the pods.
    return f"sum({new}{{$selector}} or {old}{{$selector}})"


def _sum_rate(metric: str) -> str:
    return f"sum(rate({metric}{{$selector}}[$window]))"


_BUILTIN: Final[Mapping[Signal, str]] = {
    "ttft_p95_ms": _quantile_ms(f"{BUILTIN_TTFT_HISTOGRAM}_bucket"),
    "tpot_p95_ms": _quantile_ms(f"{BUILTIN_TPOT_HISTOGRAM}_bucket"),
    "queue_depth": _sum(BUILTIN_QUEUE_GAUGE),
    "request_rate": _sum_rate(BUILTIN_REQUESTS_COUNTER),
    "tokens_per_second": _sum_rate(BUILTIN_GENERATED_TOKENS_COUNTER),
    "kv_cache_usage": _sum(BUILTIN_KV_CACHE_GAUGE),
    "requests_running": _sum(BUILTIN_RUNNING_GAUGE),
}

_VLLM: Final[Mapping[Signal, str]] = {
    "ttft_p95_ms": _quantile_ms("vllm:time_to_first_token_seconds_bucket"),
    # vLLM >= 0.11 names per-token decode latency inter_token_latency_seconds and deprecates
    # time_per_output_token_seconds (same observations and buckets); read either, per pod.
    "tpot_p95_ms": _quantile_ms_per_pod(
        "vllm:inter_token_latency_seconds_bucket", "vllm:time_per_output_token_seconds_bucket"
    ),
    "queue_depth": _sum("vllm:num_requests_waiting"),
    # Finished requests of every finish reason (stop, length, abort, ...).
    "request_rate": _sum_rate("vllm:request_success_total"),
    "tokens_per_second": _sum_rate("vllm:generation_tokens_total"),
    # vLLM V1 names KV-cache use kv_cache_usage_perc (a fraction 0..1 despite the name);
    # older releases gpu_cache_usage_perc (same meaning); read either, per pod.
    "kv_cache_usage": _sum_either("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    "requests_running": _sum("vllm:num_requests_running"),
}

_SGLANG: Final[Mapping[Signal, str]] = {
    "ttft_p95_ms": _quantile_ms("sglang:time_to_first_token_seconds_bucket"),
    # Newer SGLang: inter_token_latency_seconds; older: time_per_output_token_seconds.
    "tpot_p95_ms": _quantile_ms_either(
        "sglang:inter_token_latency_seconds_bucket", "sglang:time_per_output_token_seconds_bucket"
    ),
    "queue_depth": _sum("sglang:num_queue_reqs"),
    "request_rate": _sum_rate("sglang:num_requests_total"),
    "tokens_per_second": _sum_rate("sglang:generation_tokens_total"),
    # Fraction of the KV-cache token pool in use (0..1).
    "kv_cache_usage": _sum("sglang:token_usage"),
    "requests_running": _sum("sglang:num_running_reqs"),
}

_TGI: Final[Mapping[Signal, str]] = {
    # TGI has no time-to-first-token histogram. The default approximates TTFT as the p95
    # time in TGI's queue plus the p95 duration of a prefill batch (which yields the first
    # token). It leaves out validation/tokenisation and adds two p95s, so it errs high;
    # override spec.metrics.ttftP95Ms where a gateway measures TTFT directly.
    "ttft_p95_ms": (
        f"1000 * (histogram_quantile({QUANTILE}, "
        "sum by (le) (rate(tgi_request_queue_duration_bucket{$selector}[$window]))) "
        f"+ on() histogram_quantile({QUANTILE}, "
        'sum by (le) (rate(tgi_batch_inference_duration_bucket{$selector,method="prefill"}'
        "[$window]))))"
    ),
    # Mean time per token of each request; p95 over requests.
    "tpot_p95_ms": _quantile_ms("tgi_request_mean_time_per_token_duration_bucket"),
    "queue_depth": _sum("tgi_queue_size"),
    "request_rate": _sum_rate("tgi_request_count"),
    # tgi_request_generated_tokens is a histogram of tokens per finished request; its _sum
    # grows by the tokens generated.
    "tokens_per_second": _sum_rate("tgi_request_generated_tokens_sum"),
    # TGI exposes no KV-cache use gauge: kv_cache_usage has no default (missing unless
    # spec.metrics.kvCacheUsage is set); never a made-up query.
    "requests_running": _sum("tgi_batch_current_size"),
}

REPORTING_GAUGES: Final[Mapping[Engine, str]] = {
    "builtin": BUILTIN_QUEUE_GAUGE,
    "vllm": "vllm:num_requests_waiting",
    "sglang": "sglang:num_queue_reqs",
    "tgi": "tgi_queue_size",
    "custom": BUILTIN_QUEUE_GAUGE,
}
"""A gauge every pod of the engine exposes once it serves (its queue): ``count`` of its
series is how many pods Prometheus holds a fresh sample of (``reporting_query``)."""


ENGINE_QUERIES: Final[Mapping[Engine, Mapping[Signal, str]]] = {
    "builtin": _BUILTIN,
    "vllm": _VLLM,
    "sglang": _SGLANG,
    "tgi": _TGI,
    # A custom image is read with the built-in server's metric names (expose them, or set
    # spec.metrics overrides for the signals it names differently).
    "custom": _BUILTIN,
}
"""Default PromQL template per engine and signal. Every engine defines every signal except
TGI's ``kv_cache_usage`` (TGI has no KV-cache gauge)."""


@dataclass(frozen=True)
class SelectorLabels:
    """Which Prometheus labels identify the pods of one deployment in one cluster.

    The operator labels inference pods ``modelfleet.io/deployment=<name>`` and
    ``modelfleet.io/namespace=<namespace>`` (the ModelDeployment's namespace in the hub).
    Both usual ways of turning pod labels into target labels produce the defaults below:
    a ``labelmap`` of ``__meta_kubernetes_pod_label_(.+)`` in a kubernetes_sd scrape job,
    and ``podTargetLabels`` in a prometheus-operator PodMonitor (each replaces ``.`` and
    ``/`` with ``_``). Change them when your relabelling names the labels differently.
    """

    deployment: str = "modelfleet_io_deployment"
    """Label holding the ModelDeployment's name."""
    namespace: str = "modelfleet_io_namespace"
    """Label holding the ModelDeployment's namespace."""
    cluster: str | None = None
    """Label holding the FleetCluster name, for a Prometheus (Thanos, Mimir) that holds
    several clusters' series; unset when each cluster has its own Prometheus."""
    pod_namespace: str | None = None
    """Label holding the Kubernetes namespace the scraped pod runs in, as service discovery
    found it (``namespace``: what a PodMonitor and the usual kubernetes_sd relabelling of
    ``__meta_kubernetes_namespace`` produce). When set, the selector also matches it
    against the ModelDeployment's namespace, where modelfleet runs its pods
    (``clusters.workloads.workload_namespace``): a pod in another namespace carrying the two
    ``modelfleet.io`` labels (anyone who may run a pod there may write them) no longer
    feeds the deployment's signals. None (the default, so that a scrape job keeping only
    the pod labels still selects something): pod labels alone select the series."""

    def __post_init__(self) -> None:
        for name in (self.deployment, self.namespace, self.cluster, self.pod_namespace):
            if name is not None and not _LABEL_NAME.match(name):
                raise ValueError(f"not a Prometheus label name: {name!r}")
            if name is not None and name.startswith("__"):
                # Prometheus drops __ labels after relabelling (__meta_kubernetes_namespace
                # never reaches a stored series) and __name__ is the metric's name: every
                # query would select nothing, or be refused.
                raise ValueError(
                    f"{name!r} is reserved (labels starting with __ are not stored on series); "
                    "name the target label your relabelling writes, e.g. namespace"
                )
        if self.pod_namespace in (self.deployment, self.namespace):
            # A pod label (whoever runs the pod writes it): matching it again pins nothing.
            raise ValueError(
                f"{self.pod_namespace!r} is the pod label modelfleet selects on, which any "
                "pod may carry: the pod's namespace must come from service discovery "
                "(e.g. namespace)"
            )

    def render(self, *, deployment: str, namespace: str, cluster: str | None) -> str:
        """The label matchers (without braces) selecting one deployment's series.

        ``deployment`` is the ModelDeployment's name, matched as the pods carry it
        (``labels.label_value``: shortened with a digest past 63 characters). The
        pod-namespace matcher is added when ``pod_namespace`` is set, the cluster
        matcher only when ``cluster`` label and value are both set. Values are escaped as
        PromQL string literals.
        """
        matchers = [
            # The pod label's value: a name over 63 characters is shortened there.
            f"{self.deployment}={_quote(label_value(deployment))}",
            f"{self.namespace}={_quote(namespace)}",
        ]
        if self.pod_namespace is not None:
            matchers.append(f"{self.pod_namespace}={_quote(namespace)}")
        if self.cluster is not None and cluster is not None:
            matchers.append(f"{self.cluster}={_quote(cluster)}")
        return ",".join(matchers)


@dataclass(frozen=True)
class QuerySettings:
    """Operator-wide settings for building the signal queries."""

    window: str = "2m"
    """Range of ``rate()``: long enough to hold several scrapes (4x the scrape interval at
    least), short enough to follow a burst. A PromQL duration such as ``2m`` or ``90s``."""
    selector: SelectorLabels = field(default_factory=SelectorLabels)
    """Labels that select one deployment's series."""

    def __post_init__(self) -> None:
        if not _DURATION.match(self.window):
            raise ValueError(f"not a PromQL duration: {self.window!r} (examples: 2m, 90s)")


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def substitute(template: str, variables: Mapping[str, str]) -> str:
    """Replace ``$name`` and ``${name}`` in ``template`` with ``variables[name]``.

    ``$$`` yields a literal ``$``; a ``$`` not followed by a name is left as it is (PromQL
    regular expressions use it). Raises ``QueryTemplateError`` naming the unknown variable
    when ``template`` uses a name absent from ``variables``, so that a typo in an override
    is reported instead of reaching Prometheus.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        if name is None:
            return "$"
        if name not in variables:
            known = ", ".join(f"${v}" for v in sorted(variables))
            raise QueryTemplateError(f"unknown variable ${name} (known: {known})")
        return variables[name]

    return _VARIABLE.sub(replace, template)


def signal_templates(engine: Engine, overrides: MetricsQueries | None) -> dict[Signal, str]:
    """The PromQL template of every signal: the override where set, else the engine's.
    A signal the engine has no metric for and no override sets is left out."""
    defaults = ENGINE_QUERIES[engine]
    templates: dict[Signal, str] = {}
    for signal in SIGNALS:
        override = getattr(overrides, signal) if overrides is not None else None
        template = override if override else defaults.get(signal)
        if template:
            templates[signal] = template
    return templates


def reporting_query(
    engine: Engine,
    *,
    deployment: str,
    namespace: str,
    cluster: str | None = None,
    settings: QuerySettings | None = None,
) -> str:
    """``count`` of the engine's queue-gauge series of one deployment in one cluster: the
    pods whose metrics Prometheus holds (a pod it cannot scrape goes stale and drops out
    of every sum). Fewer than the ready replicas means the sums (request rate, queue)
    miss some serving pods: the autoscaler then holds instead of scaling down. No
    series: unknown (a custom image without the gauge), not zero."""
    settings = settings or QuerySettings()
    selector = settings.selector.render(deployment=deployment, namespace=namespace, cluster=cluster)
    return f"count({REPORTING_GAUGES[engine]}{{{selector}}})"


def build_queries(
    engine: Engine,
    overrides: MetricsQueries | None,
    *,
    deployment: str,
    namespace: str,
    cluster: str | None = None,
    settings: QuerySettings | None = None,
) -> dict[Signal, str | QueryTemplateError]:
    """The PromQL to run for each signal of one deployment in one cluster.

    A signal whose template cannot be rendered maps to its ``QueryTemplateError`` instead of
    a query, so that one bad override leaves the other signals readable; a signal the
    engine has no metric for (and no override) maps to ``NoEngineQuery``. Pure; the result
    is the same for the same arguments.
    """
    settings = settings or QuerySettings()
    variables = {
        "selector": settings.selector.render(
            deployment=deployment, namespace=namespace, cluster=cluster
        ),
        "window": settings.window,
        "deployment": deployment,
        "namespace": namespace,
        "cluster": cluster or "",
    }
    templates = signal_templates(engine, overrides)
    queries: dict[Signal, str | QueryTemplateError] = {}
    for signal in SIGNALS:
        template = templates.get(signal)
        if template is None:
            queries[signal] = NoEngineQuery(
                f"engine {engine} exposes no metric for {signal}: set spec.metrics to read it"
            )
            continue
        try:
            queries[signal] = substitute(template, variables)
        except QueryTemplateError as error:
            queries[signal] = error
    return queries
