"""Warm nodes first (``core.warm``) at the edges a real fleet reaches: a budget
(``placement.maxCostPerHour``), a cluster gone unhealthy that still reports Ready idle
nodes, a deployment at zero (``replicas.min`` 0) woken by demand, and the rule's own
bounds (never more than the shortfall, warm nodes only on growth pools)."""

from __future__ import annotations

from dataclasses import replace

from core_builders import NOW, ago, cluster, existing, offering, placed, signals, spec

from modelfleet.core import DecisionState, FleetSnapshot, MetricsSnapshot, plan
from modelfleet.core import reasons as R
from modelfleet.core.types import DEFAULT_SETTINGS, ClusterSignals

B = ("b", "g1", "OnDemand")


def _fleet(idle: int, *, b_health: str = "Healthy", running: int = 1) -> FleetSnapshot:
    b = cluster("b", offering("g1", od=2.5))
    if b_health != "Healthy":
        b = replace(b, health=b_health, health_since=ago(600))  # type: ignore[arg-type]
    return FleetSnapshot(
        (cluster("a", offering("g1", od=2.0)), b),
        (existing("a", "g1", running),) if running else (),
        ((B, idle),) if idle else (),
    )


def test_a_warm_node_never_breaks_max_cost_per_hour() -> None:
    # min 3, one replica on a ($2.00): cold, three on a cost $6.00/h, within the $6.00 cap.
    # The warm node on b ($2.50, within 1.5x) would make it $6.50/h: the cap wins, and the
    # deployment gets no fewer replicas than it gets without the warm node.
    s = spec(3, 8, max_cost_per_hour=6.0)
    cold = plan(
        s, _fleet(0), metrics=MetricsSnapshot(), state=DecisionState(last_desired=1), now=NOW
    )
    warm = plan(
        s, _fleet(1), metrics=MetricsSnapshot(), state=DecisionState(last_desired=1), now=NOW
    )
    assert sum(placed(cold).values()) == 3
    assert cold.cost_per_hour <= 6.0 + 1e-9
    assert warm.cost_per_hour <= 6.0 + 1e-9
    assert sum(placed(warm).values()) == sum(placed(cold).values())


def test_warm_nodes_on_an_unhealthy_cluster_are_not_used() -> None:
    # b went Failed mid-burst; the ledger still remembers its Ready idle node.
    p = plan(
        spec(3, 8),
        _fleet(1, b_health="Failed"),
        metrics=MetricsSnapshot(),
        state=DecisionState(last_desired=1),
        now=NOW,
    )
    assert B not in placed(p)
    assert not [r for r in p.changes if r.code == R.WARM_NODES]


def test_a_deployment_at_zero_woken_by_demand_starts_on_a_warm_node() -> None:
    # min 0, nothing runs, the demand query reports requests: the first replicas go onto
    # the warm node first (model start only).
    demand = MetricsSnapshot(
        {existing("a").deployment: {"a": ClusterSignals(ready_replicas=0, request_rate=1.0)}},
        observed_at=NOW,
    )
    p = plan(
        spec(0, 8),
        _fleet(1, running=0),
        metrics=demand,
        state=DecisionState(last_desired=0),
        now=NOW,
    )
    assert p.desired_replicas >= 1
    assert placed(p).get(B, 0) >= 1
    assert [r.cluster for r in p.changes if r.code == R.WARM_NODES] == ["b"]


def test_factor_zero_turns_warm_placement_off_also_while_the_slo_breaks() -> None:
    # docs/operations.md: warmNodePriceFactor 0 turns it off. A breach (urgent) must not
    # turn it back on with the urgent factor's default 3.0.
    off = replace(DEFAULT_SETTINGS, warm_node_price_factor=0.0)
    breach = signals(a=ClusterSignals(ready_replicas=1, ttft_p95_ms=600.0, request_rate=5.0))
    p = plan(
        spec(1, 8, scaling={"ttft_p95_ms": 200.0}),
        _fleet(1),
        metrics=breach,
        state=DecisionState(last_desired=1),
        now=NOW,
        settings=off,
    )
    assert p.desired_replicas >= 2
    assert B not in placed(p)
    assert not [r for r in p.changes if r.code == R.WARM_NODES]
