"""The core's memos across snapshots (offering pass, repriced candidates) are pure caches:
a plan with warm memos equals the plan computed from nothing, and a changed input (an
offering's price, a profile) is never answered from memory."""

from __future__ import annotations

from dataclasses import replace

import pytest
from core_builders import NOW, ago, cluster, existing, offering, run, signals, spec

from modelfleet.core import ClusterSignals, ClusterView, DecisionState, DeploymentSpec, Plan
from modelfleet.core import candidates as cand_module
from modelfleet.core import planner as planner_module
from modelfleet.core.candidates import eligibility
from modelfleet.core.planner import clear_memos
from modelfleet.core.profiles import CapacityProfile, Workload
from modelfleet.core.types import FleetSnapshot, GpuNeed


def _cold() -> None:
    """Forget every memo the core keeps across snapshots."""
    clear_memos()
    assert not cand_module._OFFERING_PASSES
    assert planner_module._repriced.cache_info().currsize == 0


def _fleet(price: float = 2.0, *, health: str = "Healthy") -> list[ClusterView]:
    return [
        cluster("a", offering("a-h100", gpu="H100", mem=80, od=price, spot=price / 2, max_nodes=8)),
        cluster(
            "b",
            offering("b-h100", gpu="H100", mem=80, od=3.0, max_nodes=8),
            offering("b-l40s", gpu="L40S", mem=48, od=1.0, max_nodes=8),
            health=health,
            health_since=ago(600),
        ),
    ]


def _profiled() -> DeploymentSpec:
    profiles = (
        CapacityProfile("H100", 40_000.0, 4_000.0, source="Measured"),
        CapacityProfile("L40S", 10_000.0, 1_000.0, source="Measured"),
    )
    s = spec(1, 8, gpu=GpuNeed(1), scaling={"ttft_p95_ms": 200.0}, spot="Allowed")
    return replace(s, profiles=profiles, workload=Workload(600, 250))


def _plan(price: float = 2.0, *, health: str = "Healthy") -> Plan:
    return run(
        _profiled(),
        _fleet(price, health=health),
        placements=(existing("a", "a-h100", 2),),
        metrics=signals(a=ClusterSignals(ready_replicas=2, request_rate=30.0, observed_at=NOW)),
        state=DecisionState(last_desired=2),
    )


def test_a_plan_with_warm_memos_equals_the_plan_from_nothing() -> None:
    _cold()
    cold = _plan()
    _plan(health="Suspect")  # another snapshot with the same offerings warms the memos
    warm = _plan()
    assert cand_module._OFFERING_PASSES, "the offering pass was not kept across snapshots"
    assert planner_module._repriced.cache_info().hits > 0
    assert warm == cold
    assert warm.placements and warm.cost_per_hour > 0


@pytest.mark.parametrize("price", [1.2, 4.0])
def test_a_changed_offering_price_is_planned_afresh(price: float) -> None:
    _cold()
    _plan()  # memos warm with the price 2.0
    changed = _plan(price)
    _cold()
    assert changed == _plan(price)
    prices = {p.price_per_node_hour for p in changed.placements if p.cluster == "a"}
    assert prices and prices <= {price, price / 2}


def test_eligibility_over_a_new_snapshot_reads_its_own_offerings() -> None:
    s = spec(1, 8, spot="Allowed")
    first = eligibility(FleetSnapshot(tuple(_fleet())), s, NOW)
    second = eligibility(FleetSnapshot(tuple(_fleet(5.0))), s, NOW)
    assert {c.key: c.price for c in first.candidates}[("a", "a-h100", "OnDemand")] == 2.0
    assert {c.key: c.price for c in second.candidates}[("a", "a-h100", "OnDemand")] == 5.0
    again = eligibility(FleetSnapshot(tuple(_fleet())), s, NOW)
    assert again == first
