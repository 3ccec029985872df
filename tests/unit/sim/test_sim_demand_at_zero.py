"""At zero replicas the simulator knows only what the operator would know (issue 10 point 6,
"honest simulation of what a policy knows"), and the operator now has the gateway as
activator (docs/decisions.md "Scale from zero").

History: the simulated Prometheus once answered the arriving requests as the demand at
zero for every deployment, while the operator could see demand at zero only through
``spec.metrics.demand``; the simulator was then made to keep a deployment without
``demand`` at zero, as the operator did. Since the activator, the gateway wakes any
deployment it holds a request for, ``demand`` or not, and the simulator's traffic is the
gateway's: the ``scale-from-zero`` case as given (its manifest names no ``demand``) must
come back from zero - the case's "right value" - through the wake-up annotation, not
through an invented Prometheus series.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import yaml

from modelfleet.sim.engine import run_policy
from modelfleet.sim.scenario import load_scenario

FIXTURE = Path(__file__).parents[2] / "fixtures" / "cases" / "scale-from-zero"


def test_the_case_as_given_without_a_demand_query_comes_back_from_zero(tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(FIXTURE, case)
    manifest = case / "deployments" / "batch.yaml"
    md = yaml.safe_load(manifest.read_text())
    md["spec"].pop("metrics", None)  # as in ../shared/cases: no spec.metrics.demand
    manifest.write_text(yaml.safe_dump(md))
    scenario = load_scenario(case / "scenario.toml", overrides={"durationHours": 1})
    run = run_policy("modelfleet", scenario)
    key = "batch/nightly"
    arrivals = run.load.deployments[key].traffic.arrivals
    measured = np.flatnonzero(arrivals[run.offset :])
    assert measured.size, "the case must have requests in its first hour"
    first = run.offset + int(measured[0])
    ready = run.ready[key]
    started = [k for k in range(len(ready)) if ready[k] > 0 and k * run.tick >= first]
    assert started, "requests at zero were ignored: the deployment never started"
    assert ready[: first // int(run.tick)].max(initial=0) == 0, "nothing runs before demand"
