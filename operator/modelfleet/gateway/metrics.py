"""The gateway's own Prometheus metrics: requests, TTFT and errors per deployment and
endpoint, retries, ejections, and the requests held while a deployment has no ready
endpoint.

``modelfleet_gateway_pending_requests{namespace,deployment}`` is the scale-from-zero
signal: it is non-zero exactly while requests wait for a deployment to get a ready endpoint,
and the autoscaler reads it through PromQL (docs/gateway.md). Label values are namespaces,
deployment names, endpoint labels (FleetCluster names or the static file's names), status
codes and reason words: never an API key, a key id or a prompt.

Everything lives on a dedicated ``CollectorRegistry`` so tests can build several gateways in
one process. Label children are cached: ``labels()`` costs microseconds and runs on every
request.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from modelfleet.gateway.catalog import DeploymentKey

LATENCY_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
"""Seconds; 0.2 s is the usual interactive TTFT bar."""

OVERHEAD_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1)
"""Seconds; the target is under 2 ms added at p50 and 10 ms at p99."""

PENDING_REQUESTS: Final = "modelfleet_gateway_pending_requests"
"""Name of the held-requests gauge (the autoscaler's scale-from-zero signal)."""


class GatewayMetrics:
    """The gateway's metrics on one registry. Call from the event loop; every method is cheap."""

    def __init__(
        self, *, registry: CollectorRegistry | None = None, process_metrics: bool = True
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        r = self.registry
        dep = ["namespace", "deployment"]
        self._requests = Counter(
            "modelfleet_gateway_requests_total",
            "Requests answered, by the deployment and endpoint that answered (endpoint is "
            "empty when none did) and the HTTP status sent to the client.",
            [*dep, "endpoint", "code"],
            registry=r,
        )
        self._rejected = Counter(
            "modelfleet_gateway_rejected_requests_total",
            "Requests refused before routing: unauthenticated, rate_limited, too_large, "
            "bad_request, unknown_model, no_rule.",
            ["reason"],
            registry=r,
        )
        self._ttft = Histogram(
            "modelfleet_gateway_ttft_seconds",
            "From forwarding a request to the first byte of the endpoint's answer, seconds.",
            [*dep, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._duration = Histogram(
            "modelfleet_gateway_request_duration_seconds",
            "From receiving a request to the end of the answer (holding included), seconds.",
            dep,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._overhead = Histogram(
            "modelfleet_gateway_overhead_seconds",
            "Time the gateway's handler spent on a request between network exchanges, "
            "seconds: reading the body, checks and routing before forwarding, and relaying "
            "the first byte after the endpoint's answer. HTTP parsing before the handler, the "
            "exchange with the endpoint, failed tries and holding are not included.",
            dep,
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self._upstream_errors = Counter(
            "modelfleet_gateway_upstream_errors_total",
            "Failed attempts against an endpoint: refused, reset, status_5xx, status_429, "
            "timeout, stream (broke after the answer started).",
            [*dep, "endpoint", "reason"],
            registry=r,
        )
        self._retries = Counter(
            "modelfleet_gateway_retries_total",
            "Attempts on another endpoint after a failure before the first byte.",
            dep,
            registry=r,
        )
        self._budget_exhausted = Counter(
            "modelfleet_gateway_retry_budget_exhausted_total",
            "Failures not retried because the retry budget was spent.",
            dep,
            registry=r,
        )
        self._ejections = Counter(
            "modelfleet_gateway_ejections_total",
            "Endpoints ejected after failures (outlier detection).",
            [*dep, "endpoint"],
            registry=r,
        )
        self._ejected = Gauge(
            "modelfleet_gateway_endpoint_ejected",
            "1 while the endpoint is ejected (until a probe brings it back).",
            [*dep, "endpoint"],
            registry=r,
        )
        self._outstanding = Gauge(
            "modelfleet_gateway_outstanding_requests",
            "Requests in flight from this gateway to the endpoint.",
            [*dep, "endpoint"],
            registry=r,
        )
        self._pending = Gauge(
            PENDING_REQUESTS,
            "Requests held because the deployment has no ready endpoint (scale-from-zero demand).",
            dep,
            registry=r,
        )
        self._held = Counter(
            "modelfleet_gateway_held_requests_total",
            "Requests that were held, by outcome: released, timeout, overflow, cancelled.",
            [*dep, "outcome"],
            registry=r,
        )
        self._fallbacks = Counter(
            "modelfleet_gateway_fallback_requests_total",
            "Requests sent to another deployment because the chosen one had no ready endpoint.",
            [*dep, "to"],
            registry=r,
        )

    # Cached label children (the label sets are few: deployments x endpoints x codes).

    @lru_cache(maxsize=4096)  # noqa: B019 - one GatewayMetrics per process; bounded cache
    def requests(self, key: DeploymentKey, endpoint: str, code: int) -> Counter:
        """Counter of answered requests."""
        return self._requests.labels(key.namespace, key.name, endpoint, str(code))

    @lru_cache(maxsize=64)  # noqa: B019
    def rejected(self, reason: str) -> Counter:
        """Counter of requests refused before routing."""
        return self._rejected.labels(reason)

    @lru_cache(maxsize=4096)  # noqa: B019
    def ttft(self, key: DeploymentKey, endpoint: str) -> Histogram:
        """Histogram of time to first byte."""
        return self._ttft.labels(key.namespace, key.name, endpoint)

    @lru_cache(maxsize=1024)  # noqa: B019
    def duration(self, key: DeploymentKey) -> Histogram:
        """Histogram of whole-request durations."""
        return self._duration.labels(key.namespace, key.name)

    @lru_cache(maxsize=1024)  # noqa: B019
    def overhead(self, key: DeploymentKey) -> Histogram:
        """Histogram of the gateway's own time per request."""
        return self._overhead.labels(key.namespace, key.name)

    @lru_cache(maxsize=4096)  # noqa: B019
    def upstream_errors(self, key: DeploymentKey, endpoint: str, reason: str) -> Counter:
        """Counter of failed attempts."""
        return self._upstream_errors.labels(key.namespace, key.name, endpoint, reason)

    @lru_cache(maxsize=1024)  # noqa: B019
    def retries(self, key: DeploymentKey) -> Counter:
        """Counter of retries."""
        return self._retries.labels(key.namespace, key.name)

    @lru_cache(maxsize=1024)  # noqa: B019
    def budget_exhausted(self, key: DeploymentKey) -> Counter:
        """Counter of failures left unretried for lack of budget."""
        return self._budget_exhausted.labels(key.namespace, key.name)

    @lru_cache(maxsize=4096)  # noqa: B019
    def ejections(self, key: DeploymentKey, endpoint: str) -> Counter:
        """Counter of ejections."""
        return self._ejections.labels(key.namespace, key.name, endpoint)

    @lru_cache(maxsize=4096)  # noqa: B019
    def ejected(self, key: DeploymentKey, endpoint: str) -> Gauge:
        """Gauge: 1 while ejected."""
        return self._ejected.labels(key.namespace, key.name, endpoint)

    @lru_cache(maxsize=4096)  # noqa: B019
    def outstanding(self, key: DeploymentKey, endpoint: str) -> Gauge:
        """Gauge of requests in flight to an endpoint."""
        return self._outstanding.labels(key.namespace, key.name, endpoint)

    @lru_cache(maxsize=1024)  # noqa: B019
    def pending(self, key: DeploymentKey) -> Gauge:
        """Gauge of held requests (the scale-from-zero signal)."""
        return self._pending.labels(key.namespace, key.name)

    @lru_cache(maxsize=4096)  # noqa: B019
    def held(self, key: DeploymentKey, outcome: str) -> Counter:
        """Counter of held requests by outcome."""
        return self._held.labels(key.namespace, key.name, outcome)

    @lru_cache(maxsize=4096)  # noqa: B019
    def fallbacks(self, key: DeploymentKey, to: DeploymentKey) -> Counter:
        """Counter of requests sent to a fallback deployment."""
        return self._fallbacks.labels(key.namespace, key.name, to.name)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
