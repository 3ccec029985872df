"""Which pools' idle nodes a deployment's scale-up could take (``core.warm.warm_pools``,
docs/decisions.md section 6): the pools stage releases an idle node no deployment wants
without the scale-in delay. Worked examples on hand-made candidates, then through
``plan`` (``Plan.warm_pools``)."""

from __future__ import annotations

from core_builders import NOW, cluster, existing, offering, run, signals, spec

from modelfleet.core import DecisionState, FleetSnapshot, plan
from modelfleet.core.candidates import Candidate
from modelfleet.core.types import DEFAULT_SETTINGS, CapacityType, ClusterSignals, PlannerSettings
from modelfleet.core.warm import warm_pools


def _cand(
    order: int, name: str, gpu: str, effective: float, ct: CapacityType = "Spot"
) -> Candidate:
    return Candidate(
        order=order,
        key=(name, f"{gpu}-1g", ct),
        cluster=name,
        cloud="gcp",
        region=f"r-{name}",
        gpu=gpu,
        instance_type=f"{gpu}-1g",
        capacity_type=ct,
        price=effective,
        effective=effective,
        replicas_per_node=1,
        max_nodes=None,
        preferred=False,
    )


# The default scenario's H100 pools for a 1-GPU replica, per unit of capacity with the
# $1/GPU-hour shadow price (examples/scenarios/fleet/*.yaml): azure-eus spot 2.79 + 1,
# azure-weu spot 3.26 + 1, azure-eus on-demand 6.98 + 1, gcp-usc1 on-demand 11.06 + 1; an
# A100 spot pool in between (another GPU model).
EUS = _cand(0, "eus", "H100", 3.79)
WEU = _cand(1, "weu", "H100", 4.26)
A100 = _cand(2, "usc1", "A100", 2.58)
EUS_OD = _cand(3, "eus", "H100", 7.98, "OnDemand")
USC1_OD = _cand(4, "usc1", "H100", 12.06, "OnDemand")
GROWTH = (EUS, WEU, EUS_OD, A100, USC1_OD)


def test_the_cheapest_gpu_model_within_the_factor() -> None:
    # 1.5 x 3.79 = 5.685: both spot pools (weu is 1.12x); the on-demand pools (2.1x, 3.2x)
    # and the A100 pool (another model) are nobody's warm capacity for this deployment.
    assert warm_pools(GROWTH, price_factor=1.5) == {EUS.key, WEU.key}


def test_a_wider_factor_takes_the_dearer_pools_it_covers() -> None:
    # 3 x 3.79 = 11.37: eus on-demand (7.98) joins; usc1 on-demand (12.06) stays out.
    assert warm_pools(GROWTH, price_factor=3.0) == {EUS.key, WEU.key, EUS_OD.key}


def test_the_cheapest_candidate_is_always_wanted() -> None:
    # Its idle nodes are taken by size alone when the deployment grows there, whatever the
    # factor: a factor below 1 keeps it (and only it).
    assert warm_pools(GROWTH, price_factor=0.5) == {EUS.key}


def test_warm_placement_off_wants_every_growth_pool() -> None:
    # Without warm placement, the placement may grow on any growth pool and its size takes
    # what the pool holds: no pool's idle node is known to be useless.
    assert warm_pools(GROWTH, price_factor=0.0) == {c.key for c in GROWTH}


def test_no_growth_candidate_wants_nothing() -> None:
    assert warm_pools((), price_factor=1.5) == frozenset()


def _plan(b_price: float, settings: PlannerSettings = DEFAULT_SETTINGS):  # type: ignore[no-untyped-def]
    # Cluster a at $2.00 per node-hour, b at ``b_price``; one replica.
    return run(
        spec(1, 4),
        [cluster("a", offering("g1", od=2.0)), cluster("b", offering("g1", od=b_price))],
        settings=settings,
    )


def test_the_plan_says_its_warm_pools_at_the_default_factor() -> None:
    # With the $1/GPU-hour shadow price: a is 3.00, b at $2.50 is 3.50 (1.17x), b at $4.00
    # is 5.00 (1.67x: above the default 1.5).
    assert DEFAULT_SETTINGS.warm_node_price_factor == 1.5
    assert _plan(2.5).warm_pools == {("a", "g1", "OnDemand"), ("b", "g1", "OnDemand")}
    assert _plan(4.0).warm_pools == {("a", "g1", "OnDemand")}
    assert _plan(2.5).first_pool == _plan(4.0).first_pool == ("a", "g1", "OnDemand")


def test_the_plan_wants_every_growth_pool_with_warm_placement_off() -> None:
    off = PlannerSettings(warm_node_price_factor=0.0)
    assert _plan(4.0, off).warm_pools == {("a", "g1", "OnDemand"), ("b", "g1", "OnDemand")}


def test_while_the_slo_breaks_the_plan_wants_what_its_urgent_scale_up_takes() -> None:
    # 1 replica on a at TTFT 3x its target: this pass takes warm nodes up to the urgent
    # factor (3.0), so b at $4.00 (1.67x) is wanted now; without the breach it is not.
    fleet = FleetSnapshot(
        (cluster("a", offering("g1", od=2.0)), cluster("b", offering("g1", od=4.0))),
        (existing("a", "g1", 1),),
    )
    breach = signals(a=ClusterSignals(ready_replicas=1, ttft_p95_ms=600.0, request_rate=5.0))
    calm = signals(a=ClusterSignals(ready_replicas=1, ttft_p95_ms=100.0, request_rate=1.0))
    both = {("a", "g1", "OnDemand"), ("b", "g1", "OnDemand")}
    s = spec(1, 8, scaling={"ttft_p95_ms": 200.0})
    state = DecisionState(last_desired=1)
    assert plan(s, fleet, metrics=breach, state=state, now=NOW).warm_pools == both
    assert plan(s, fleet, metrics=calm, state=state, now=NOW).warm_pools == {
        ("a", "g1", "OnDemand")
    }
