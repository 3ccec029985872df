"""The ledger tells the pools stage whether some deployment's scale-up could take an idle
node of a pool (``PoolLedger.wanted``, from each plan's ``warm_pools``): a pool nobody
wants loses its idle nodes without the scale-in delay. Unknown counts as wanted."""

from __future__ import annotations

from modelfleet.core import DecisionState, ExistingPlacement, Plan
from modelfleet.reconciler.ledger import PoolKey, PoolLedger

SPOT: PoolKey = ("east", "h100", "Spot")
ON_DEMAND: PoolKey = ("east", "h100", "OnDemand")


def _plan(
    deployment: str,
    warm: frozenset[tuple[str, str, str]] | None,
    first: tuple[str, str, str] | None = None,
) -> Plan:
    return Plan(
        deployment=deployment,
        desired_replicas=0,
        standby_replicas=0,
        placements=(),
        node_pools=(),
        retiring=(),
        cost_per_hour=0.0,
        unplaced=0,
        reasons=(),
        changes=(),
        state=DecisionState(),
        warm_pools=warm,
        first_pool=first,
    )


def test_a_pool_is_wanted_while_one_deployment_wants_it() -> None:
    ledger = PoolLedger()
    ledger.book("a", _plan("a", frozenset({SPOT})))
    ledger.book("b", _plan("b", frozenset()))
    assert ledger.wanted(SPOT)
    assert not ledger.wanted(ON_DEMAND)
    ledger.book("b", _plan("b", frozenset({ON_DEMAND})))
    assert ledger.wanted(ON_DEMAND)


def test_a_deployment_not_planned_here_wants_every_pool() -> None:
    # After an operator restart the others are only seeded from their status: until they
    # are planned, nobody knows what they would take, so nothing is released early.
    ledger = PoolLedger()
    ledger.book("a", _plan("a", frozenset({SPOT})))
    ledger.seed("b", [ExistingPlacement("b", "west", "l4", "OnDemand", 1, 1, 1)])
    assert ledger.wanted(ON_DEMAND)
    ledger.book("b", _plan("b", frozenset()))
    assert not ledger.wanted(ON_DEMAND)


def test_a_plan_without_the_answer_wants_every_pool() -> None:
    ledger = PoolLedger()
    ledger.book("a", _plan("a", frozenset({SPOT})))
    ledger.book("b", _plan("b", None))
    assert ledger.wanted(ON_DEMAND)
    ledger.book("b", _plan("b", frozenset()))  # planned again, now with the answer
    assert not ledger.wanted(ON_DEMAND)


def test_a_deleted_deployment_wants_nothing_any_more() -> None:
    ledger = PoolLedger()
    ledger.book("a", _plan("a", frozenset({SPOT})))
    ledger.book("b", _plan("b", frozenset({ON_DEMAND})))
    ledger.release("b")
    assert not ledger.wanted(ON_DEMAND)
    assert ledger.wanted(SPOT)


def test_an_empty_ledger_wants_nothing() -> None:
    assert not PoolLedger().wanted(SPOT)


def test_only_a_deployment_s_cheapest_candidate_is_its_first_choice() -> None:
    # a wants both pools warm but grows on spot first; on-demand is only a warm pool.
    ledger = PoolLedger()
    ledger.book("a", _plan("a", frozenset({SPOT, ON_DEMAND}), SPOT))
    assert ledger.first_choice(SPOT)
    assert not ledger.first_choice(ON_DEMAND)
    ledger.book("b", _plan("b", frozenset({ON_DEMAND}), ON_DEMAND))
    assert ledger.first_choice(ON_DEMAND)


def test_an_unknown_deployment_makes_every_pool_a_first_choice() -> None:
    ledger = PoolLedger()
    ledger.book("a", _plan("a", frozenset({SPOT}), SPOT))
    ledger.seed("b", [ExistingPlacement("b", "west", "l4", "OnDemand", 1, 1, 1)])
    assert ledger.first_choice(ON_DEMAND)
    ledger.book("b", _plan("b", None))  # planned without the answer: still unknown
    assert ledger.first_choice(ON_DEMAND)
    ledger.release("b")
    assert not ledger.first_choice(ON_DEMAND)
