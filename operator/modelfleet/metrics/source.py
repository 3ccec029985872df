"""The ``MetricsSource`` port: SLO signals of one deployment in one cluster, and a fake.

The reconciler reads the autoscaler's inputs through this narrow interface so that the
Prometheus client (``modelfleet.metrics.prometheus``) and the in-memory
``StaticMetricsSource`` used by tests and the simulator are interchangeable. Nothing here
does I/O or imports an HTTP client, so the simulator and the CLI can use it without the
``operator`` extra.

The rule that matters most: a signal that could not be measured is ``None`` (missing),
never ``0``. The autoscaler must not scale down on missing data, and a zero would read as
"idle".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from modelfleet.api.fleetcluster import PrometheusEndpoint
from modelfleet.api.modeldeployment import Engine, MetricsQueries
from modelfleet.metrics.queries import SIGNALS, Signal


class MetricsUnavailable(Exception):
    """No signal could be read: Prometheus unreachable, timed out, refused or misconfigured.

    Distinct from a missing series (the deployment exposes nothing yet), which is not an
    error: that signal is ``None`` in ``SignalValues``. ``reason`` is short and safe to put
    in a condition message: it never holds credentials.
    """

    def __init__(self, reason: str, *, cluster: str | None = None) -> None:
        self.reason = reason
        self.cluster = cluster
        where = f"cluster {cluster}: " if cluster else ""
        super().__init__(f"{where}metrics unavailable: {reason}")


@dataclass(frozen=True)
class MetricsTarget:
    """What to measure: one ModelDeployment's pods in one member cluster."""

    namespace: str
    """Namespace of the ModelDeployment (in the hub cluster)."""
    deployment: str
    """Name of the ModelDeployment."""
    cluster: str
    """FleetCluster name."""
    engine: Engine
    """``spec.runtime.engine``: picks the engine's metric names."""
    prometheus: PrometheusEndpoint | None
    """``FleetCluster.spec.prometheus``; ``None`` when the cluster declares none."""
    ready_replicas: int
    """Ready replicas of this deployment in this cluster (divisor of queue_per_replica)."""
    overrides: MetricsQueries | None = None
    """``spec.metrics``: PromQL overrides per signal."""
    demand_only: bool = False
    """The deployment has no replica anywhere: only the demand signal is asked, returned as
    ``request_rate`` (``spec.metrics.demand`` where set, else the request-rate query). Other
    signals are missing. Scale from zero depends on it (docs/decisions.md)."""


@dataclass(frozen=True)
class SignalValues:
    """SLO signals of one deployment in one cluster at one instant.

    Every value is ``None`` when it is missing: no series, an empty histogram (NaN), a
    non-finite result or a failed query, never ``0``. A ``0`` is a real measurement (series
    present, nothing happening). ``errors`` says why a signal is missing when there is more
    to say than "no series".
    """

    observed_at: datetime
    """Evaluation time of the queries (Prometheus' timestamp), timezone-aware UTC."""
    ttft_p95_ms: float | None = None
    """95th percentile time to first token over the window, milliseconds."""
    tpot_p95_ms: float | None = None
    """95th percentile time per output token over the window, milliseconds."""
    queue_depth: float | None = None
    """Requests waiting, summed over the deployment's pods in the cluster."""
    queue_per_replica: float | None = None
    """``queue_depth / ready_replicas``; ``None`` with no ready replica (undefined)."""
    request_rate: float | None = None
    """Requests per second over the window."""
    tokens_per_second: float | None = None
    """Generated tokens per second over the window."""
    kv_cache_usage: float | None = None
    """KV-cache use summed over the deployment's pods (each pod's use is a fraction 0..1)."""
    kv_cache_per_replica: float | None = None
    """``kv_cache_usage / ready_replicas``, clamped to [0, 1]: mean KV-cache use of a ready
    replica; ``None`` with no ready replica or no KV-cache data (TGI)."""
    requests_running: float | None = None
    """Requests in the running batches, summed over the deployment's pods."""
    running_per_replica: float | None = None
    """``requests_running / ready_replicas``; ``None`` with no ready replica."""
    errors: Mapping[Signal, str] = field(default_factory=dict)
    """Why a signal is missing, for the signals where a reason is known."""
    reporting_pods: int | None = None
    """Pods of the deployment whose metrics Prometheus holds (``queries.reporting_query``);
    None: unknown. Fewer than the ready replicas: the sums miss serving pods."""

    @classmethod
    def from_signals(
        cls,
        values: Mapping[Signal, float | None],
        *,
        ready_replicas: int,
        observed_at: datetime,
        errors: Mapping[Signal, str] | None = None,
        reporting_pods: int | None = None,
    ) -> SignalValues:
        """Assemble the values, turning non-finite and negative numbers into missing and
        deriving the per-replica figures (queue, KV-cache use, running) from the sums and
        ``ready_replicas``."""
        clean: dict[Signal, float | None] = {}
        reasons: dict[Signal, str] = dict(errors or {})
        for signal in SIGNALS:
            value = values.get(signal)
            if value is not None and not math.isfinite(value):
                reasons.setdefault(signal, f"non-finite value {value}")
                value = None
            elif value is not None and value < 0:
                # No signal can be negative (a latency, a rate, a count, a fraction): an
                # override such as delta() or deriv() of a gauge. Read as a number, -3
                # requests/s at zero replicas was demand (bool(-3)) and started a replica.
                reasons.setdefault(signal, f"negative value {value:g}")
                value = None
            clean[signal] = value
        queue = clean["queue_depth"]
        per_replica = queue / ready_replicas if queue is not None and ready_replicas > 0 else None
        kv, running = clean["kv_cache_usage"], clean["requests_running"]
        kv_mean = (
            min(1.0, max(0.0, kv / ready_replicas))
            if kv is not None and ready_replicas > 0
            else None
        )
        running_mean = (
            running / ready_replicas if running is not None and ready_replicas > 0 else None
        )
        return cls(
            observed_at=observed_at,
            ttft_p95_ms=clean["ttft_p95_ms"],
            tpot_p95_ms=clean["tpot_p95_ms"],
            queue_depth=queue,
            queue_per_replica=per_replica,
            request_rate=clean["request_rate"],
            tokens_per_second=clean["tokens_per_second"],
            kv_cache_usage=kv,
            kv_cache_per_replica=kv_mean,
            requests_running=running,
            running_per_replica=running_mean,
            errors=reasons,
            reporting_pods=reporting_pods,
        )

    @classmethod
    def missing(cls, *, observed_at: datetime, reason: str | None = None) -> SignalValues:
        """Every signal missing (for a cluster whose metrics could not be read)."""
        errors: dict[Signal, str] = {s: reason for s in SIGNALS} if reason else {}
        return cls(observed_at=observed_at, errors=errors)

    def get(self, signal: Signal) -> float | None:
        """The value of ``signal`` by name."""
        value: float | None = getattr(self, signal)
        return value


class MetricsSource(Protocol):
    """Reads the SLO signals of one deployment in one cluster.

    Contract of ``fetch``:
    - Returns the signals at ``now`` (implementations evaluate at ``now`` where the backend
      allows, so one reconcile sees one instant); ``observed_at`` says when they were
      actually evaluated.
    - A signal with no data is ``None``, never ``0``; its reason, if any, is in ``errors``.
      One failing signal (a bad override, a query error) leaves the others readable.
    - Raises ``MetricsUnavailable`` when no signal could be read because the backend is
      unreachable, too slow (a per-request timeout bounds every call), refused the request
      or is not configured for the cluster. Never raises for missing series.
    - Safe to call concurrently for different targets; does not mutate ``target``.
    """

    async def fetch(self, target: MetricsTarget, *, now: datetime) -> SignalValues:
        """The signals of ``target`` at ``now``. See the class docstring for the contract."""
        ...


@dataclass
class StaticMetricsSource:
    """In-memory ``MetricsSource`` for tests and the simulator.

    Holds raw signal values per (namespace, deployment, cluster); ``fetch`` derives
    ``queue_per_replica`` from the target's ``ready_replicas`` exactly as the Prometheus
    source does. ``unavailable`` maps a cluster to the reason its fetches raise
    ``MetricsUnavailable``. Every fetch is recorded in ``calls``.
    """

    values: dict[tuple[str, str, str], dict[Signal, float | None]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[MetricsTarget, datetime]] = field(default_factory=list)

    def set(
        self,
        namespace: str,
        deployment: str,
        *,
        cluster: str,
        ttft_p95_ms: float | None = None,
        tpot_p95_ms: float | None = None,
        queue_depth: float | None = None,
        request_rate: float | None = None,
        tokens_per_second: float | None = None,
        kv_cache_usage: float | None = None,
        requests_running: float | None = None,
    ) -> None:
        """Set the signals of one deployment in one cluster (unset ones are missing).
        ``kv_cache_usage`` and ``requests_running`` are sums over the pods."""
        self.values[(namespace, deployment, cluster)] = {
            "ttft_p95_ms": ttft_p95_ms,
            "tpot_p95_ms": tpot_p95_ms,
            "queue_depth": queue_depth,
            "request_rate": request_rate,
            "tokens_per_second": tokens_per_second,
            "kv_cache_usage": kv_cache_usage,
            "requests_running": requests_running,
        }

    def clear(self, namespace: str, deployment: str, *, cluster: str) -> None:
        """Forget one deployment's signals in one cluster (its fetches become missing)."""
        self.values.pop((namespace, deployment, cluster), None)

    def set_unavailable(self, cluster: str, reason: str | None = "injected outage") -> None:
        """Make fetches for ``cluster`` raise ``MetricsUnavailable``; ``None`` restores it."""
        if reason is None:
            self.unavailable.pop(cluster, None)
        else:
            self.unavailable[cluster] = reason

    async def fetch(self, target: MetricsTarget, *, now: datetime) -> SignalValues:
        """The stored signals of ``target``; all missing when none were set."""
        self.calls.append((target, now))
        if target.cluster in self.unavailable:
            raise MetricsUnavailable(self.unavailable[target.cluster], cluster=target.cluster)
        stored = self.values.get((target.namespace, target.deployment, target.cluster))
        if stored is None:
            return SignalValues.missing(observed_at=now)
        return SignalValues.from_signals(
            stored, ready_replicas=target.ready_replicas, observed_at=now
        )
