"""The operator's own Prometheus metrics: reconcile timings and errors, failovers, stockouts,
and per-deployment replicas and cost.

These are what a platform team alerts on (reconcile errors, stockout storms, a deployment
stuck below its desired replicas, cost over budget). They live on a dedicated
``CollectorRegistry`` so tests can create as many as they like and nothing another library
registers globally leaks into the operator's endpoint. The HTTP endpoint is
prometheus-client's threaded server, apart from kopf's event loop.

Per-deployment series carry ``namespace`` and ``name`` labels. A scrape through
kubernetes_sd attaches its own ``namespace`` target label; scrape with ``honor_labels: true``
(``honorLabels: true`` in a ServiceMonitor, as for kube-state-metrics) to keep ours.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

RECONCILE_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Seconds; the brief's target is apply-to-workloads under 2 s."""


class OperatorMetrics:
    """The operator's metrics on one registry. Every method is thread-safe and cheap."""

    def __init__(
        self, *, registry: CollectorRegistry | None = None, process_metrics: bool = True
    ) -> None:
        """``process_metrics`` adds process (memory, CPU, fds), platform and GC metrics to
        the registry, as the default prometheus-client registry has them."""
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.reconcile_duration = Histogram(
            "modelfleet_operator_reconcile_duration_seconds",
            "Time to reconcile one object, seconds.",
            ["kind"],
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "modelfleet_operator_reconcile_errors",
            "Reconciles that failed, by kind and reason.",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.failovers = Counter(
            "modelfleet_operator_failovers",
            "Replicas moved away from a cluster, by the cluster left and the reason.",
            ["cluster", "reason"],
            registry=self.registry,
        )
        self.stockouts = Counter(
            "modelfleet_operator_stockouts",
            "Capacity errors (insufficient capacity) from a cloud, by offering.",
            ["cluster", "gpu", "capacity_type"],
            registry=self.registry,
        )
        self.events_dropped = Counter(
            "modelfleet_operator_events_dropped",
            "Kubernetes Events not posted because their object had used up its budget (25 at "
            "once, then one per 5 minutes, per object: client-go's spam filter), by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.events_deduplicated = Counter(
            "modelfleet_operator_events_deduplicated",
            "Kubernetes Events not posted because the same Event (type, reason, message) was "
            "posted on the same object less than 10 minutes before (client-go's aggregation "
            "window), by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.desired_replicas = Gauge(
            "modelfleet_deployment_desired_replicas",
            "Replicas the autoscaler wants for a ModelDeployment.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.ready_replicas = Gauge(
            "modelfleet_deployment_ready_replicas",
            "Ready replicas of a ModelDeployment across the fleet.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.cost_per_hour = Gauge(
            "modelfleet_deployment_cost_per_hour_usd",
            "Cost of a ModelDeployment's placed node capacity, USD per hour.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self._deployment_gauges = (self.desired_replicas, self.ready_replicas, self.cost_per_hour)
        self.member_watch_serving = Gauge(
            "modelfleet_member_watch_serving",
            "1 while observation of a member cluster's namespace reads its watch (informer) "
            "store, 0 while it falls back to LIST (not synced yet, or the watch is failing).",
            ["cluster", "namespace"],
            registry=self.registry,
        )
        self.member_watch_lists = Gauge(
            "modelfleet_member_watch_lists",
            "LISTs an informer has sent (1 at start, +1 per relist after 410 Gone or ERROR).",
            ["cluster", "namespace"],
            registry=self.registry,
        )
        self._watched: dict[str, set[str]] = {}

    def observe_reconcile(self, kind: str, seconds: float) -> None:
        """Record one reconcile of ``kind`` (ModelDeployment, FleetCluster) that took
        ``seconds``."""
        self.reconcile_duration.labels(kind=kind).observe(seconds)

    @contextmanager
    def time_reconcile(self, kind: str) -> Iterator[None]:
        """Time the block as one reconcile of ``kind``. An exception escaping the block is
        also counted as an error whose reason is the exception's class name, then
        re-raised."""
        start = time.perf_counter()
        try:
            yield
        except BaseException as error:
            self.count_reconcile_error(kind, type(error).__name__)
            raise
        finally:
            self.observe_reconcile(kind, time.perf_counter() - start)

    def count_reconcile_error(self, kind: str, reason: str) -> None:
        """Count a failed reconcile. ``reason`` must come from a small fixed set (an error
        class or a condition reason), never a free-form message: it is a label."""
        self.reconcile_errors.labels(kind=kind, reason=reason).inc()

    def count_failover(self, cluster: str, *, reason: str) -> None:
        """Count one failover of a deployment away from ``cluster`` (reason: ClusterFailed,
        SpotReclaimed, Stockout, ...)."""
        self.failovers.labels(cluster=cluster, reason=reason).inc()

    def count_stockout(self, cluster: str, gpu: str, *, capacity_type: str) -> None:
        """Count one capacity error for (cluster, gpu, capacity_type: OnDemand or Spot)."""
        self.stockouts.labels(cluster=cluster, gpu=gpu, capacity_type=capacity_type).inc()

    def set_deployment(
        self,
        namespace: str,
        name: str,
        *,
        desired: int,
        ready: int,
        cost_per_hour: float | None,
    ) -> None:
        """Publish a ModelDeployment's replicas and cost; ``cost_per_hour`` ``None`` (not
        known) removes its cost series rather than reporting 0."""
        self.desired_replicas.labels(namespace=namespace, name=name).set(desired)
        self.ready_replicas.labels(namespace=namespace, name=name).set(ready)
        if cost_per_hour is None:
            _remove(self.cost_per_hour, namespace, name)
        else:
            self.cost_per_hour.labels(namespace=namespace, name=name).set(cost_per_hour)

    def forget_deployment(self, namespace: str, name: str) -> None:
        """Remove every per-deployment series of a deleted ModelDeployment. Idempotent."""
        for gauge in self._deployment_gauges:
            _remove(gauge, namespace, name)

    def set_member_watches(self, cluster: str, states: Iterable[tuple[str, bool, int]]) -> None:
        """Publish ``cluster``'s informers as (namespace, serving, lists); series of
        namespaces no longer watched are removed."""
        seen: set[str] = set()
        for namespace, serving, lists in states:
            seen.add(namespace)
            self.member_watch_serving.labels(cluster=cluster, namespace=namespace).set(serving)
            self.member_watch_lists.labels(cluster=cluster, namespace=namespace).set(lists)
        for namespace in self._watched.get(cluster, set()) - seen:
            for gauge in (self.member_watch_serving, self.member_watch_lists):
                with suppress(KeyError):
                    gauge.remove(cluster, namespace)
        if seen:
            self._watched[cluster] = seen
        else:
            self._watched.pop(cluster, None)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (what the endpoint serves)."""
        return generate_latest(self.registry)


def _remove(gauge: Gauge, namespace: str, name: str) -> None:
    with suppress(KeyError):
        gauge.remove(namespace, name)


@dataclass(frozen=True)
class MetricsServer:
    """A running metrics endpoint (``GET /metrics``, any path in fact)."""

    port: int
    """The bound port (the chosen one when started with port 0)."""
    _server: WSGIServer
    _thread: threading.Thread

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop serving and release the port. Idempotent."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout_s)


def start_metrics_server(
    metrics: OperatorMetrics, port: int, *, addr: str = "0.0.0.0"
) -> MetricsServer:
    """Serve ``metrics`` over HTTP on ``addr:port`` from a daemon thread.

    ``port`` 0 picks a free port (see ``MetricsServer.port``). Raises ``OSError`` when the
    port is taken.
    """
    server, thread = start_http_server(port, addr=addr, registry=metrics.registry)
    return MetricsServer(port=server.server_port, _server=server, _thread=thread)
