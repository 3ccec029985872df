"""The built-in server's Prometheus metrics: the names the autoscaler reads, and two
saturation signals.

The first five are a contract with the operator (``modelfleet.metrics.queries``, the
``builtin`` engine; listed in docs/metrics.md): the operator's PromQL reads exactly these
names. ``modelfleet_running_sequences`` and ``modelfleet_kv_cache_usage_ratio`` tell how
full the batch and the KV-cache budget are (the saturation signals of docs/serving.md).
Each server has its own registry, so several servers can live in one process (tests).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from modelfleet.metrics.queries import (
    BUILTIN_GENERATED_TOKENS_COUNTER,
    BUILTIN_QUEUE_GAUGE,
    BUILTIN_REQUESTS_COUNTER,
    BUILTIN_TPOT_HISTOGRAM,
    BUILTIN_TTFT_HISTOGRAM,
)

TTFT_BUCKETS: Final = (
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
"""Seconds. Dense around the 200 ms interactive bar, so its p95 interpolates well."""
TPOT_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.025,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    1.0,
    2.5,
)
"""Seconds per output token, observed for every token after the first."""

FINISH_REASONS: Final = ("stop", "length", "cancelled", "rejected", "error")
"""Values of ``finish_reason`` on ``modelfleet_requests_total``."""


def _prefix(name: str) -> str:
    # prometheus_client appends _total to counters itself.
    return name.removesuffix("_total")


class ServerMetrics:
    """The server's metrics on a private registry; ``render()`` gives the exposition text.

    Thread-safe (prometheus_client's metrics are): the engine thread observes, the HTTP
    handlers count rejections.
    """

    def __init__(self, *, model: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"model": model}
        self.ttft = Histogram(
            BUILTIN_TTFT_HISTOGRAM,
            "Time from a request's arrival to its first generated token.",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self.tpot = Histogram(
            BUILTIN_TPOT_HISTOGRAM,
            "Time between two consecutive generated tokens of one request.",
            ["model"],
            buckets=TPOT_BUCKETS,
            registry=self.registry,
        ).labels(**labels)
        self.queue_depth = Gauge(
            BUILTIN_QUEUE_GAUGE,
            "Requests admitted to the queue and waiting for a slot in the running batch.",
            ["model"],
            registry=self.registry,
        ).labels(**labels)
        self._requests = Counter(
            _prefix(BUILTIN_REQUESTS_COUNTER),
            "Requests that ended, by finish_reason (stop, length, cancelled, rejected, error).",
            ["model", "finish_reason"],
            registry=self.registry,
        )
        for reason in FINISH_REASONS:  # export every series from the start, at 0
            self._requests.labels(model=model, finish_reason=reason)
        self._model = model
        self.generated_tokens = Counter(
            _prefix(BUILTIN_GENERATED_TOKENS_COUNTER),
            "Tokens generated.",
            ["model"],
            registry=self.registry,
        ).labels(**labels)
        self.prompt_tokens = Counter(
            "modelfleet_prompt_tokens",
            "Prompt tokens prefilled.",
            ["model"],
            registry=self.registry,
        ).labels(**labels)
        self.running = Gauge(
            "modelfleet_running_sequences",
            "Sequences in the running batch (prefilling or decoding).",
            ["model"],
            registry=self.registry,
        ).labels(**labels)
        self.kv_cache_usage = Gauge(
            "modelfleet_kv_cache_usage_ratio",
            "KV-cache positions held (padding included) over the KV-cache budget, 0 to 1.",
            ["model"],
            registry=self.registry,
        ).labels(**labels)

    def request_finished(self, reason: str) -> None:
        """Count one request that ended with ``reason`` (one of ``FINISH_REASONS``)."""
        self._requests.labels(model=self._model, finish_reason=reason).inc()

    def render(self) -> bytes:
        """Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
