"""The simulator runs the operator's pool upkeep: node pools no deployment places replicas
on are scaled to zero (as the FleetCluster handler does every minute), so nodes a
deployment moved away from stop billing. Before, they billed for the rest of the run."""

from __future__ import annotations

from pathlib import Path

import modelfleet.sim.policies as policies
from modelfleet.sim.engine import run_policy
from modelfleet.sim.scenario import load_scenario

ROOT = Path(__file__).parents[3]


def test_nodes_without_a_placement_are_released() -> None:
    seen: list[policies.ModelfleetPolicy] = []
    original = policies.ModelfleetPolicy.__init__

    def keep(self: policies.ModelfleetPolicy, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        seen.append(self)

    policies.ModelfleetPolicy.__init__ = keep  # type: ignore[method-assign]
    try:
        # The outage at 60 min moves the replicas out of eastus and back.
        run = run_policy("modelfleet", load_scenario(ROOT / "examples/scenarios/trace-replay.toml"))
    finally:
        policies.ModelfleetPolicy.__init__ = original  # type: ignore[method-assign]
    policy = seen[0]
    placed = {
        (p.cluster, p.instance_type, str(p.capacity_type))
        for md in policy.deployments
        for p in (md.status.placements if md.status else None) or []
        if p.replicas > 0
    }
    held = {
        (name, instance_type, str(capacity_type))
        for name, twin in run.world.clusters.items()
        for (instance_type, capacity_type), (nodes, _) in twin.provider.node_counts().items()
        if nodes > 0
    }
    # Ready nodes a plan stopped using stay for the pools' scale-in delay (10 min, like
    # cluster-autoscaler): at the end of the run those are still on their clock.
    ledger = policy.reconciler.ledger
    shrinking = {(name, it, str(ct)) for (name, it, ct) in ledger._shrinking}
    assert held, "the deployment runs somewhere"
    assert held <= placed | shrinking, (
        f"nodes held in pools nothing is placed on: {held - placed - shrinking}"
    )
