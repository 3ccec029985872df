"""The gateway as activator, in the simulator (``reconciler/activator.py`` is the operator's
side).

The simulator's traffic is the traffic that reaches the gateway, so every deployment is
fronted by it (as in a cluster, where the gateway writes the annotation for any deployment
it holds a request for, whether or not ``spec.metrics.demand`` is set: the activator needs
no Prometheus series). While a deployment has no ready replica, the gateway holds the
requests arriving for it
and writes the time of the first one it holds into the wake-up annotation
(``labels.DEMAND_SEEN_AT``), at most once per ``WRITE_INTERVAL_SECONDS`` per deployment (a
burst of held requests is one API write, not one per request). The annotation change is an
update event, which kopf handles at once: here the deployment's reconcile is made due now.

The simulator sees arrivals per second and acts on its 5 s ticks: a request arriving at
second ``s`` wakes the operator at the first tick after ``s`` (never before the request:
the policy sees only the past), so the remaining detection delay is at most one tick; in
a cluster it is the watch latency of the annotation change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

import numpy as np

from modelfleet.api import ModelDeployment
from modelfleet.core.from_api import deployment_key
from modelfleet.labels import DEMAND_SEEN_AT
from modelfleet.reconciler.activator import demand_seen_at
from modelfleet.sim.load import LoadModel

WRITE_INTERVAL_SECONDS: Final = 15.0
"""The gateway rewrites a deployment's annotation at most this often."""


def wake_at_zero(
    md: ModelDeployment,
    load: LoadModel,
    *,
    ready: int,
    begin: int,
    end: int,
    at: Callable[[float], datetime],
) -> ModelDeployment | None:
    """``md`` with a new wake-up annotation if the gateway held a request for it in
    seconds ``[begin, end)`` (no ready replica, a request arrived,
    the last write older than ``WRITE_INTERVAL_SECONDS``); None when nothing is written.
    ``at`` turns run seconds into the datetime written (``VirtualClock.at``)."""
    if ready > 0:
        return None
    d = load.deployments.get(deployment_key(md))
    if d is None:
        return None
    arrivals = d.traffic.arrivals[max(0, begin) : max(0, min(end, len(d.traffic.arrivals)))]
    hit = np.flatnonzero(arrivals)
    if not hit.size:
        return None
    held = at(float(max(0, begin) + int(hit[0])))
    last = demand_seen_at(md)
    if last is not None and (held - last).total_seconds() < WRITE_INTERVAL_SECONDS:
        return None
    stamp = held.isoformat().replace("+00:00", "Z")
    meta = md.metadata.model_copy(
        update={"annotations": {**md.metadata.annotations, DEMAND_SEEN_AT: stamp}}
    )
    return md.model_copy(update={"metadata": meta})
