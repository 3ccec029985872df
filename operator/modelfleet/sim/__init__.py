"""The fleet simulator: the real decision path on virtual time, against a world model.

``simulate`` runs a scenario (``examples/scenarios/*.toml``) under modelfleet — the real
``Reconciler``, decision core and FleetCluster probe, with the simulated node-pool provider,
in-memory member clusters and a metrics source computed from the simulated traffic — and,
with ``compare``, under the ``static-peak`` and ``hpa-failover`` baselines on the same
traffic and seed. It returns the per-policy reports and writes ``report.json``,
``timeline.csv`` and ``report.png`` when given a folder. docs/simulation.md describes the
world model, its sources, the scenario format and the report.

Layout: ``world`` (parameters), ``scenario`` (files), ``traffic_spec`` (their traffic
models), ``traffic``, ``serving`` (one replica), ``load`` (the fleet serving traffic),
``fleet`` (nodes, pods, events), ``prometheus`` (the metrics source), ``policies``
(modelfleet), ``baselines``, ``engine`` (the loop), ``report``, ``plot``, ``output`` (files
and the summary table).
"""

from __future__ import annotations

from modelfleet.sim.output import SimulationResult, default_scenario_path, simulate
from modelfleet.sim.scenario import Scenario, ScenarioError, load_scenario

__all__ = [
    "Scenario",
    "ScenarioError",
    "SimulationResult",
    "default_scenario_path",
    "load_scenario",
    "simulate",
]
