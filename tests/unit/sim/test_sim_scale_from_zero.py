"""Scale from zero in the simulator, on the ``scale-from-zero`` case of ../shared/cases
(copied into tests/fixtures/cases): a ``replicas.min: 0`` deployment with no traffic for
its first ~25 minutes must start when requests arrive, and the first request must not wait
longer than the chosen offering's lead time (node + model start): the gateway, holding the
first request, wakes the operator at once (the activator) and kopf reconciles on that event
at once, so the simulator reconciles at the request's second, not at its next 5 s tick
(``ModelfleetPolicy.react``), and the kubelet model binds the pod when its node gets Ready.

The world's delays are made constant here so that "the lead time of the chosen offering"
is one number (240 s GCP node + 150 s model start)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelfleet.sim.engine import run_policy
from modelfleet.sim.fleet import FleetWorld
from modelfleet.sim.scenario import load_scenario

CASE = Path(__file__).parents[2] / "fixtures" / "cases" / "scale-from-zero" / "scenario.toml"
NODE_S, START_S = 240.0, 150.0


def test_requests_at_zero_start_the_deployment_within_the_lead_time() -> None:
    scenario = load_scenario(
        CASE,
        overrides={
            "durationHours": 1,
            "world": {
                "provisioning": {"byCloud": {"gcp": {"median": NODE_S, "p90": NODE_S}}},
                "modelStart": {"median": START_S, "p90": START_S},
            },
        },
    )
    run = run_policy("modelfleet", scenario)
    key = "batch/nightly"
    arrivals = run.load.deployments[key].traffic.arrivals
    measured = np.flatnonzero(arrivals[run.offset :])
    assert measured.size, "the case must have requests in its first hour"
    first = run.offset + int(measured[0])
    ready = run.ready[key]
    before = ready[: int(run.offset // run.tick)]
    assert before.max(initial=0) == 0, "idle before the first request: nothing should run"
    # The first replica's Ready time, to the second (the kubelet model's record).
    assert isinstance(run.world, FleetWorld)
    ready_times = [t for t, md in run.world.became_ready if md == key and t >= first]
    assert ready_times, "the deployment never started: requests at zero were ignored"
    wait = min(ready_times) - first
    assert wait <= NODE_S + START_S, wait
    # The load model serves in ticks: the replica takes requests from the first tick at
    # which it is Ready (a cluster's gateway would forward the held request at once).
    served_at = [k * run.tick for k in range(len(ready)) if ready[k] > 0 and k * run.tick >= first]
    assert served_at and served_at[0] - first <= NODE_S + START_S + run.tick, served_at[:1]
    # And it went back to zero GPU-hours while idle: less than the hour at one replica.
    assert run.gpus.sum() < 1.0
