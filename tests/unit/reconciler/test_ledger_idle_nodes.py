"""The ledger tells the planner which Ready nodes nobody books (``FleetSnapshot.idle_nodes``,
``core.warm``): a pool asked for more nodes than its bookings (its scale-in delay keeps
them) with those nodes Ready."""

from __future__ import annotations

from modelfleet.core import ExistingPlacement
from modelfleet.reconciler.ledger import PoolLedger

POOL = ("c", "g1", "Spot")


def _ledger(booked: int, requested: int | None, ready: int | None) -> PoolLedger:
    ledger = PoolLedger()
    ledger.seed("ns/a", [ExistingPlacement("ns/a", "c", "g1", "Spot", booked, booked, booked)])
    if requested is not None:
        ledger.asked(POOL, requested)
    if ready is not None:
        ledger.saw(POOL, ready)
    return ledger


def test_ready_nodes_above_the_bookings_are_idle() -> None:
    # Booked 2, the pool still holds 4 (scale-in delay), 4 Ready: 2 idle.
    assert _ledger(2, 4, 4).idle_nodes() == ((POOL, 2),)


def test_nodes_not_ready_yet_are_not_idle() -> None:
    # Asked for 4, only 3 Ready: 1 idle (the 4th is still provisioning).
    assert _ledger(2, 4, 3).idle_nodes() == ((POOL, 1),)


def test_nothing_idle_when_the_bookings_use_every_node_or_nothing_is_known() -> None:
    assert _ledger(4, 4, 4).idle_nodes() == ()
    assert _ledger(2, None, 4).idle_nodes() == ()  # never asked by this process
    assert _ledger(2, 4, None).idle_nodes() == ()  # never read back
