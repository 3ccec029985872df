"""Warm nodes first (``core.warm``, docs/decisions.md section 2): a scale-up puts its new
replicas on Ready nodes no deployment books (a pool's scale-in delay keeps them) before it
asks any pool for a new node, on pools within ``warm_node_price_factor`` of the cheapest per
unit of capacity; nothing else changes."""

from __future__ import annotations

from dataclasses import replace

from core_builders import NOW, cluster, existing, offering, placed, signals, spec

from modelfleet.core import DecisionState, FleetSnapshot, MetricsSnapshot, plan
from modelfleet.core import reasons as R
from modelfleet.core.types import DEFAULT_SETTINGS, ClusterSignals, PlannerSettings

KEY = existing("a").deployment


def _plan(b_price: float, idle: int, *, settings: PlannerSettings = DEFAULT_SETTINGS):  # type: ignore[no-untyped-def]
    # 1 replica runs on a ($2.00 per node-hour); replicas.min 3 asks for 2 more. Cluster b
    # ($b_price) holds ``idle`` Ready nodes nobody books (its scale-in delay keeps them).
    fleet = FleetSnapshot(
        (cluster("a", offering("g1", od=2.0)), cluster("b", offering("g1", od=b_price))),
        (existing("a", "g1", 1),),
        ((("b", "g1", "OnDemand"), idle),) if idle else (),
    )
    return plan(
        spec(3, 8),
        fleet,
        metrics=MetricsSnapshot(),
        state=DecisionState(last_desired=1),
        now=NOW,
        settings=settings,
    )


def test_the_shortfall_goes_onto_a_warm_node_before_a_new_one() -> None:
    # Without warm nodes both new replicas go to a, the cheapest: two new nodes to provision.
    cold = _plan(2.5, idle=0)
    assert placed(cold) == {("a", "g1", "OnDemand"): 3}
    # One Ready idle node on b (25% dearer): one new replica goes there (model start only),
    # the other to a.
    warm = _plan(2.5, idle=1)
    assert placed(warm) == {("a", "g1", "OnDemand"): 2, ("b", "g1", "OnDemand"): 1}
    assert [r.cluster for r in warm.changes if r.code == R.WARM_NODES] == ["b"]


def test_never_more_than_the_shortfall() -> None:
    # Five idle nodes on b, two replicas short: two go there, none more.
    warm = _plan(2.5, idle=5)
    assert placed(warm) == {("a", "g1", "OnDemand"): 1, ("b", "g1", "OnDemand"): 2}


def test_a_warm_node_far_dearer_than_the_cheapest_is_left_alone() -> None:
    # b at $4.00 is 2x a per unit of capacity, above the default factor 1.5.
    assert DEFAULT_SETTINGS.warm_node_price_factor == 1.5
    p = _plan(4.0, idle=1)
    assert placed(p) == {("a", "g1", "OnDemand"): 3}
    assert not [r for r in p.changes if r.code == R.WARM_NODES]


def test_factor_zero_turns_it_off() -> None:
    off = replace(DEFAULT_SETTINGS, warm_node_price_factor=0.0)
    assert placed(_plan(2.5, idle=1, settings=off)) == {("a", "g1", "OnDemand"): 3}


def test_no_shortfall_no_change() -> None:
    # Already 3 replicas running on a: the idle node on b is not used.
    fleet = FleetSnapshot(
        (cluster("a", offering("g1", od=2.0)), cluster("b", offering("g1", od=2.5))),
        (existing("a", "g1", 3),),
        ((("b", "g1", "OnDemand"), 2),),
    )
    p = plan(
        spec(3, 8),
        fleet,
        metrics=MetricsSnapshot(),
        state=DecisionState(last_desired=3),
        now=NOW,
    )
    assert placed(p) == {("a", "g1", "OnDemand"): 3}
    assert p.deployment == KEY


def test_while_the_slo_breaks_a_dearer_warm_node_is_taken() -> None:
    # 1 replica on a at TTFT 3x its target: the fleet needs capacity now. b's warm node at
    # $4.00 (2x per unit of capacity, above 1.5) is within the urgent factor (3.0).
    assert DEFAULT_SETTINGS.warm_node_urgent_price_factor == 3.0
    fleet = FleetSnapshot(
        (cluster("a", offering("g1", od=2.0)), cluster("b", offering("g1", od=4.0))),
        (existing("a", "g1", 1),),
        ((("b", "g1", "OnDemand"), 1),),
    )
    breach = signals(a=ClusterSignals(ready_replicas=1, ttft_p95_ms=600.0, request_rate=5.0))
    p = plan(
        spec(1, 8, scaling={"ttft_p95_ms": 200.0}),
        fleet,
        metrics=breach,
        state=DecisionState(last_desired=1),
        now=NOW,
    )
    assert p.desired_replicas == 3
    assert placed(p) == {("a", "g1", "OnDemand"): 2, ("b", "g1", "OnDemand"): 1}
    # The same fleet without the breach keeps to the cheap pool (test above).


def test_a_warm_node_of_another_gpu_model_is_left_alone() -> None:
    # b's warm node is an A100 at the same price per unit of capacity as a's L40S (no
    # profiles: one replica is one unit): still not taken, the deployment is sized for the
    # cheapest candidate's GPU (a slower GPU's replicas would displace it for good).
    fleet = FleetSnapshot(
        (
            cluster("a", offering("g1", od=2.0)),
            cluster("b", offering("a100", gpu="A100", mem=80, od=2.0)),
        ),
        (existing("a", "g1", 1),),
        ((("b", "a100", "OnDemand"), 1),),
    )
    p = plan(
        spec(3, 8), fleet, metrics=MetricsSnapshot(), state=DecisionState(last_desired=1), now=NOW
    )
    assert not [r for r in p.changes if r.code == R.WARM_NODES]
