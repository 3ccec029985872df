"""Metrics: the SLO signals the autoscaler reads, and the operator's own metrics.

- ``queries``: PromQL per engine and signal, with ``spec.metrics`` overrides.
- ``source``: the ``MetricsSource`` port, ``SignalValues``, ``MetricsUnavailable`` and the
  in-memory ``StaticMetricsSource`` (no HTTP client needed).
- ``prometheus``: the Prometheus-backed source (needs the ``operator`` extra: aiohttp).
- ``operator_metrics``: the operator's own metrics (needs prometheus-client).

Only the first two are imported here, so importing this package needs no extra.
"""

from modelfleet.metrics.queries import SIGNALS, QuerySettings, SelectorLabels, Signal
from modelfleet.metrics.source import (
    MetricsSource,
    MetricsTarget,
    MetricsUnavailable,
    SignalValues,
    StaticMetricsSource,
)

__all__ = [
    "SIGNALS",
    "MetricsSource",
    "MetricsTarget",
    "MetricsUnavailable",
    "QuerySettings",
    "SelectorLabels",
    "Signal",
    "SignalValues",
    "StaticMetricsSource",
]
