"""Regression tests from the QA pass on issue 11 (exact placement): reasons a user reads
when the solver stops at its limit or a requirement cannot be met."""

from __future__ import annotations

from core_builders import NOW, cluster, offering, spec

from modelfleet.core import DecisionState, FleetSnapshot, MetricsSnapshot, plan
from modelfleet.core.types import PlannerSettings


def test_solver_limit_without_a_proven_bound_does_not_claim_an_infinite_gap() -> None:
    """Stopped before any lower bound was proven, HiGHS reports an infinite gap; the reason
    said "within inf% of the optimum"."""
    fleet = FleetSnapshot(
        (
            cluster("a", offering("a4", per_node=4, od=10.0), offering("a2", per_node=2, od=6.0)),
            cluster("b", offering("b2", per_node=2, od=5.0), offering("b1", per_node=1, od=4.0)),
        )
    )
    p = plan(
        spec(4, 4, min_regions=2, max_cost_per_hour=20.0),
        fleet,
        metrics=MetricsSnapshot(),
        state=DecisionState(),
        now=NOW,
        settings=PlannerSettings(solver_time_limit_seconds=0.0),
    )
    [limit] = [r.message for r in p.reasons if r.code == "SolverLimit"]
    assert "inf" not in limit and "nan" not in limit, limit
    assert "best plan found used" in limit
