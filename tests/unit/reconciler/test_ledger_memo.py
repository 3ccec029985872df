"""The pool ledger keeps ``placements(exclude=...)`` until a booking changes: after every
kind of change (a booking with other nodes, the same booking again, a release, a seed) the
kept answer equals the answer computed from the bookings afresh, and ``total`` and
``idle_nodes`` (one pass over the bookings) equal the sums over each deployment."""

from __future__ import annotations

from modelfleet.core import DecisionState, ExistingPlacement, Plan
from modelfleet.core.result import NodePoolSize
from modelfleet.core.types import CapacityType
from modelfleet.reconciler.ledger import PoolLedger

POOLS: list[tuple[str, str, CapacityType]] = [("east", "h100", "Spot"), ("west", "l4", "OnDemand")]


def _plan(deployment: str, nodes: tuple[int, int]) -> Plan:
    return Plan(
        deployment=deployment,
        desired_replicas=0,
        standby_replicas=0,
        placements=(),
        node_pools=tuple(
            NodePoolSize(c, it, "H100", ct, n, 1.0)
            for (c, it, ct), n in zip(POOLS, nodes, strict=True)
            if n
        ),
        retiring=(),
        cost_per_hour=0.0,
        unplaced=0,
        reasons=(),
        changes=(),
        state=DecisionState(),
    )


def _fresh(ledger: PoolLedger, exclude: str) -> tuple[ExistingPlacement, ...]:
    """What ``placements`` computes, from the public bookings of a copy of the ledger."""
    copy = PoolLedger()
    for name in ("a", "b", "c"):
        if ledger.knows(name):
            copy.seed(
                name,
                [
                    ExistingPlacement(name, k[0], k[1], k[2], b.replicas, 0, b.nodes)
                    for k, b in ledger.bookings(name).items()
                ],
            )
    return copy.placements(exclude=exclude)


def test_kept_placements_follow_every_booking_change() -> None:
    ledger = PoolLedger()
    steps = [
        lambda: ledger.book("a", _plan("a", (2, 0))),
        lambda: ledger.book("b", _plan("b", (1, 3))),
        lambda: ledger.book("b", _plan("b", (1, 3))),  # the same booking again
        lambda: ledger.book("b", _plan("b", (0, 3))),
        lambda: ledger.seed("c", [ExistingPlacement("c", "east", "h100", "Spot", 1, 1, 1)]),
        lambda: ledger.release("a"),
        lambda: ledger.book("a", _plan("a", (4, 1))),
    ]
    for step in steps:
        kept = {name: ledger.placements(exclude=name) for name in ("a", "b", "c")}
        step()
        for name in ("a", "b", "c"):
            now = ledger.placements(exclude=name)
            assert now == _fresh(ledger, name)
            assert ledger.placements(exclude=name) is now  # kept until the next change
        assert kept  # each exclude was asked before the change, so a stale memo would show
        for pool in POOLS:
            assert ledger.total(pool) == sum(
                ledger.bookings(n).get(pool).nodes  # type: ignore[union-attr]
                for n in ("a", "b", "c")
                if pool in ledger.bookings(n)
            )
    others = ledger.placements(exclude="c")
    assert {(p.deployment, p.cluster, p.nodes) for p in others} == {
        ("a", "east", 4),
        ("a", "west", 1),
        ("b", "west", 3),
    }


def test_idle_nodes_use_every_deployments_bookings() -> None:
    ledger = PoolLedger()
    ledger.book("a", _plan("a", (2, 1)))
    ledger.book("b", _plan("b", (1, 0)))
    for pool in POOLS:
        ledger.asked(pool, 5)
        ledger.saw(pool, 4)
    # east: 4 Ready - (2 + 1) booked = 1 idle; west: 4 - 1 = 3.
    assert ledger.idle_nodes() == ((POOLS[0], 1), (POOLS[1], 3))
