"""The gateway as activator, in the simulator (``reconciler/activator.py`` is the operator's
side).

The simulator's traffic is the traffic that reaches the gateway, so every deployment is
fronted by it (as in a cluster, where the gateway wakes the operator for any deployment it
holds a request for, whether or not ``spec.metrics.demand`` is set: the activator needs
no Prometheus series). While a deployment has no ready replica, the gateway holds the
requests arriving for it and records the time of the first one it holds as the
deployment's demand (``labels.DEMAND_SEEN_AT``), at most once per
``WRITE_INTERVAL_SECONDS`` per deployment (a burst of held requests is one API write, not
one per request). The write is an event, which kopf handles at once: the simulator runs
that deployment's reconcile at the second the request arrived (``ModelfleetPolicy.react``),
not at its next 5 s tick, so the only delay left between the first request and the first
node request is the watch latency, which the simulator takes as zero.
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
"""The gateway rewrites a deployment's demand record at most this often."""


def wake_at_zero(
    md: ModelDeployment,
    load: LoadModel,
    *,
    ready: int,
    begin: int,
    end: int,
    at: Callable[[float], datetime],
) -> tuple[int, ModelDeployment] | None:
    """The second (run seconds) at which the gateway, holding a request for ``md`` that
    arrived in ``[begin, end)``, writes its wake-up, and ``md`` with the new annotation;
    None when nothing is written (a ready replica, no request, or only requests within
    ``WRITE_INTERVAL_SECONDS`` of the last write). ``at`` turns run seconds into the
    datetime written (``VirtualClock.at``)."""
    if ready > 0:
        return None
    d = load.deployments.get(deployment_key(md))
    if d is None:
        return None
    start = max(0, begin)
    arrivals = d.traffic.arrivals[start : max(start, min(end, len(d.traffic.arrivals)))]
    hit = np.flatnonzero(arrivals)
    if not hit.size:
        return None
    last = demand_seen_at(md)
    if last is not None:
        # The first held request at least WRITE_INTERVAL_SECONDS after the last write.
        free = (last - at(float(start))).total_seconds() + WRITE_INTERVAL_SECONDS
        hit = hit[hit >= free]
        if not hit.size:
            return None
    second = start + int(hit[0])
    stamp = at(float(second)).isoformat().replace("+00:00", "Z")
    meta = md.metadata.model_copy(
        update={"annotations": {**md.metadata.annotations, DEMAND_SEEN_AT: stamp}}
    )
    return second, md.model_copy(update={"metadata": meta})
