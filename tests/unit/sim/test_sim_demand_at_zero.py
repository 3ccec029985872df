"""At zero replicas the simulator knows only what the operator would know (issue 10 point 6,
"honest simulation of what a policy knows"; QA of issue 10).

Found on main: the simulated Prometheus answered the arriving requests as the demand at
zero for *every* deployment, while the operator asks ``spec.metrics.demand`` and, without
it, the engine's own request rate, which has no series at zero (docs/decisions.md, "Scale
from zero"). So a ``min: 0`` deployment without ``demand`` (the ``scale-from-zero`` case,
``examples/spot-hedged.yaml``) came back from zero in ``modelfleet simulate`` but would
stay at zero for good under the real operator.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from modelfleet.sim.engine import run_policy
from modelfleet.sim.scenario import load_scenario

CASE = Path(__file__).parents[2] / "fixtures" / "cases" / "scale-from-zero"


def test_without_a_demand_query_a_deployment_at_zero_stays_at_zero(tmp_path: Path) -> None:
    case = tmp_path / "case"
    shutil.copytree(CASE, case)
    manifest = case / "deployments" / "batch.yaml"
    md = yaml.safe_load(manifest.read_text())
    md["spec"].pop("metrics", None)  # no spec.metrics.demand: nothing to see at zero
    manifest.write_text(yaml.safe_dump(md))
    scenario = load_scenario(case / "scenario.toml", overrides={"durationHours": 1})
    run = run_policy("modelfleet", scenario)
    key = "batch/nightly"
    arrivals = run.load.deployments[key].traffic.arrivals
    assert arrivals[run.offset :].sum() > 0, "the case must have requests in its first hour"
    assert run.ready[key].max(initial=0) == 0  # as the operator: no signal, no replica
