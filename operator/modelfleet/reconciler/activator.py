"""Scale from zero without waiting for a scrape: the activator's wake-up annotation.

At zero replicas the operator learns of demand from ``spec.metrics.demand`` (the rate of
requests arriving at the gateway, req/s, through Prometheus): a scrape interval plus a
reconcile interval after the first request. KServe's activator does better by telling the autoscaler at once; here the
gateway, holding a request for a deployment with no endpoint, writes the time of that
request into the annotation ``activator.modelfleet.io/demand-seen-at`` of the
ModelDeployment (``labels.DEMAND_SEEN_AT``). The annotation change is an update event: kopf
reconciles at once, and this module turns a fresh annotation into the demand signal of
that pass, so the first node is requested within the watch latency of the first request.

Pure (``now`` comes in); the reconciler's ``metrics_snapshot`` calls it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from modelfleet.api import ModelDeployment
from modelfleet.labels import DEMAND_SEEN_AT, zoned_time

FRESH_SECONDS: Final = 120.0
"""An annotation older than this is history, not demand (the autoscaler's staleness bound:
past it the Prometheus demand signal speaks for itself)."""
SKEW_SECONDS: Final = 10.0
"""Clock skew tolerated between the gateway and the operator (a time slightly ahead of
``now`` still counts)."""
WAKE_RATE: Final = 1.0 / 60.0
"""Requests/s a wake-up stands for: one held request in a minute. Any rate above zero
starts the deployment at ``replicas.min`` or one replica (``core.autoscale``); the
Prometheus signal sizes it from the next scrape on."""


def demand_seen_at(md: ModelDeployment) -> datetime | None:
    """The time in ``md``'s wake-up annotation; None when absent or not an RFC 3339 time
    with a zone (a malformed value is ignored, never an error)."""
    return zoned_time((md.metadata.annotations or {}).get(DEMAND_SEEN_AT))


def woken_at(md: ModelDeployment, now: datetime) -> datetime | None:
    """The wake-up time if it is fresh at ``now`` (within ``FRESH_SECONDS`` before it, or
    ``SKEW_SECONDS`` after), else None."""
    seen = demand_seen_at(md)
    if seen is None:
        return None
    if now - timedelta(seconds=FRESH_SECONDS) <= seen <= now + timedelta(seconds=SKEW_SECONDS):
        return min(seen, now)
    return None
