"""The gateway's own Prometheus metrics: requests, TTFT and errors per deployment and
endpoint, retries, ejections, and the requests held while a deployment has no ready
endpoint.

``modelfleet_gateway_received_requests_total{namespace,deployment}`` is the scale-from-zero
signal: it counts requests as they arrive for a deployment, before any hold, so its
``rate()`` is the arrival rate in requests/s, the unit ``spec.metrics.demand`` is read in
(docs/gateway.md). Its children exist at 0 from the moment the gateway knows a deployment,
so ``rate()`` sees the first request (a series born at 1 has no earlier sample to rise
from). ``modelfleet_gateway_pending_requests`` (held right now, a count) is not a rate: a
request is held up to ``--hold-timeout`` (60 s), so it reads up to 60 times the arrival
rate. Label values are namespaces,
deployment names, endpoint labels (FleetCluster names or the static file's names), status
codes and reason words: never an API key, a key id or a prompt.

Everything lives on a dedicated ``CollectorRegistry`` so tests can build several gateways in
one process. Label children are cached: ``labels()`` costs microseconds and runs on every
request.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, Protocol, TypeVar

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

DEPLOYMENT_LABELS: Final = ("namespace", "deployment")
"""The first labels of every per-deployment family."""

M = TypeVar("M", Counter, Gauge, Histogram)
C = TypeVar("C", covariant=True)

PENDING_REQUESTS: Final = "modelfleet_gateway_pending_requests"
"""Name of the held-requests gauge (a count of requests waiting now, not a rate)."""
RECEIVED_REQUESTS: Final = "modelfleet_gateway_received_requests_total"
"""Name of the arrivals counter: its ``rate()`` is the scale-from-zero demand (req/s)."""
DEMAND_QUERY: Final = (
    f'sum(rate({RECEIVED_REQUESTS}{{namespace="$namespace",deployment="$deployment"}}[1m]))'
)
"""The ``spec.metrics.demand`` PromQL the docs and examples give: arrivals per second at the
gateways (summed over gateway replicas), averaged over a minute."""


class ByDeployment(Protocol[C]):
    """A metric family labelled ``namespace, deployment`` then its extra label names, called
    as ``family(key, *values)`` for the child (ints are written as decimals)."""

    def __call__(self, key: DeploymentKey, /, *values: str | int) -> C:
        """The child for ``key`` and the extra label values."""
        ...


def by_deployment(family: M) -> ByDeployment[M]:
    """``family`` with its children cached: ``labels()`` costs microseconds and runs on
    every request; the label sets are few (deployments x endpoints x codes), and the family
    keeps every child anyway."""

    def child(key: DeploymentKey, *values: str | int) -> M:
        return family.labels(key.namespace, key.name, *map(str, values))

    return lru_cache(maxsize=None)(child)


class GatewayMetrics:
    """The gateway's metrics on one registry. Call from the event loop; every method is cheap.

    Each per-deployment family is a ``ByDeployment``: ``metrics.requests(key, endpoint,
    code).inc()``, ``metrics.pending(key).set(3)``.
    """

    def __init__(
        self, *, registry: CollectorRegistry | None = None, process_metrics: bool = True
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        r = self.registry

        def counter(name: str, doc: str, *extra: str) -> ByDeployment[Counter]:
            return by_deployment(Counter(name, doc, [*DEPLOYMENT_LABELS, *extra], registry=r))

        def gauge(name: str, doc: str, *extra: str) -> ByDeployment[Gauge]:
            return by_deployment(Gauge(name, doc, [*DEPLOYMENT_LABELS, *extra], registry=r))

        def histogram(
            name: str, doc: str, *extra: str, buckets: tuple[float, ...]
        ) -> ByDeployment[Histogram]:
            labels = [*DEPLOYMENT_LABELS, *extra]
            return by_deployment(Histogram(name, doc, labels, buckets=buckets, registry=r))

        self.requests = counter(
            "modelfleet_gateway_requests_total",
            "Requests answered, by the deployment and endpoint that answered (endpoint is "
            "empty when none did) and the HTTP status sent to the client.",
            "endpoint",
            "code",
        )
        """Answered requests: ``(key, endpoint, code)``."""
        self._rejected = Counter(
            "modelfleet_gateway_rejected_requests_total",
            "Requests refused before routing: unauthenticated, rate_limited, too_large, "
            "bad_request, unknown_model, no_rule.",
            ["reason"],
            registry=r,
        )
        self.ttft = histogram(
            "modelfleet_gateway_ttft_seconds",
            "From forwarding a request to the first byte of the endpoint's answer, seconds.",
            "endpoint",
            buckets=LATENCY_BUCKETS,
        )
        """Time to first byte: ``(key, endpoint)``."""
        self.duration = histogram(
            "modelfleet_gateway_request_duration_seconds",
            "From receiving a request to the end of the answer (holding included), seconds.",
            buckets=LATENCY_BUCKETS,
        )
        """Whole-request durations: ``(key)``."""
        self.overhead = histogram(
            "modelfleet_gateway_overhead_seconds",
            "Time the gateway's handler spent on a request between network exchanges, "
            "seconds: reading the body, checks and routing before forwarding, and relaying "
            "the first byte after the endpoint's answer. HTTP parsing before the handler, the "
            "exchange with the endpoint, failed tries and holding are not included.",
            buckets=OVERHEAD_BUCKETS,
        )
        """The gateway's own time per request: ``(key)``."""
        self.upstream_errors = counter(
            "modelfleet_gateway_upstream_errors_total",
            "Failed attempts against an endpoint: refused, reset, status_5xx, status_429, "
            "timeout, stream (broke after the answer started).",
            "endpoint",
            "reason",
        )
        """Failed attempts: ``(key, endpoint, reason)``."""
        self.retries = counter(
            "modelfleet_gateway_retries_total",
            "Attempts on another endpoint after a failure before the first byte.",
        )
        """Retries: ``(key)``."""
        self.budget_exhausted = counter(
            "modelfleet_gateway_retry_budget_exhausted_total",
            "Failures not retried because the retry budget was spent.",
        )
        """Failures left unretried for lack of budget: ``(key)``."""
        self.ejections = counter(
            "modelfleet_gateway_ejections_total",
            "Endpoints ejected after failures (outlier detection).",
            "endpoint",
        )
        """Ejections: ``(key, endpoint)``."""
        self.ejected = gauge(
            "modelfleet_gateway_endpoint_ejected",
            "1 while the endpoint is ejected (until a probe brings it back).",
            "endpoint",
        )
        """1 while ejected: ``(key, endpoint)``."""
        self.outstanding = gauge(
            "modelfleet_gateway_outstanding_requests",
            "Requests in flight from this gateway to the endpoint.",
            "endpoint",
        )
        """Requests in flight to an endpoint: ``(key, endpoint)``."""
        self.received = counter(
            RECEIVED_REQUESTS,
            "Requests routed to the deployment, counted on arrival before any hold (those "
            "later held, refused with 503 or sent to a fallback included); its rate() is the "
            "scale-from-zero demand in requests/s.",
        )
        """Arrivals per deployment asked for, the scale-from-zero signal: ``(key)``.
        ``Gateway.set_catalog`` creates each deployment's child at 0."""
        self.pending = gauge(
            PENDING_REQUESTS,
            "Requests held right now because the deployment has no ready endpoint (a count, "
            "up to --hold-timeout seconds of arrivals: not a rate).",
        )
        """Held requests right now: ``(key)``."""
        self.held = counter(
            "modelfleet_gateway_held_requests_total",
            "Requests that were held, by outcome: released, timeout, overflow, cancelled.",
            "outcome",
        )
        """Held requests by outcome: ``(key, outcome)``."""
        self.fallbacks = counter(
            "modelfleet_gateway_fallback_requests_total",
            "Requests sent to another deployment because the chosen one had no ready endpoint.",
            "to",
        )
        """Requests sent to a fallback deployment: ``(key, fallback's name)``."""
        self.demand_unanswered = counter(
            "modelfleet_gateway_demand_unanswered_total",
            "Demand Leases written for a deployment at zero that no operator answered in time "
            "(is the operator watching demand Leases in the gateway's --activator-namespace?).",
        )
        """Demand Leases no operator relayed (``activator.DemandWaker``): ``(key)``."""

        self._events_dropped = Counter(
            "modelfleet_gateway_events_dropped_total",
            "Kubernetes Events not posted because their object had used up its budget (25 at "
            "once, then one per 5 minutes, per object: client-go's spam filter), by the kind "
            "of the object (ModelRoute, ModelDeployment). Status writes are not limited.",
            ["kind"],
            registry=r,
        )

    @lru_cache(maxsize=8)  # noqa: B019 - one GatewayMetrics per process; two kinds
    def events_dropped(self, kind: str) -> Counter:
        """Counter of Events dropped over their object's budget (``route_status``)."""
        return self._events_dropped.labels(kind)

    @lru_cache(maxsize=64)  # noqa: B019 - one GatewayMetrics per process; bounded cache
    def rejected(self, reason: str) -> Counter:
        """Counter of requests refused before routing."""
        return self._rejected.labels(reason)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
