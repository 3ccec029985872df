"""One rule for an offering's ``maxNodes`` (shared by its on-demand and spot pools) held by
the core, the pool ledger and the simulated provider alike; and offerings without an
on-demand price, end to end. On the in-package fakes with a virtual clock."""

from __future__ import annotations

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.core import DecisionState, Plan
from modelfleet.core.result import NodePoolSize
from modelfleet.core.types import CapacityType
from modelfleet.reconciler.ledger import PoolLedger


async def test_spot_and_on_demand_share_the_offering_limit_with_no_stockout() -> None:
    """Before: the core counted maxNodes per capacity type, so with 3 of east's 4 nodes
    held on demand by ``a`` it planned 3 spot nodes there for ``b``; the simulated provider
    refused (6 > 4, QuotaExceeded) and modelfleet's own overbooking became a stockout mark.
    Now ``b`` gets the 1 node left on east and the rest in west."""
    world = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, spot=3.0, max_nodes=4),
            fleet_cluster("west", region="us-west-2", price=12.0, max_nodes=8),
        ]
    )
    await world.start()
    world.add(model_deployment("a", replicas={"min": 3, "max": 3}))
    world.add(
        model_deployment(
            "b", replicas={"min": 3, "max": 3}, placement={"capacity": {"spot": "Preferred"}}
        )
    )
    a = await world.reconcile("a")
    b = await world.reconcile("b")

    east = world.pool_sizes("east")
    assert east[("east-h100", "OnDemand")][1] == 3
    assert east[("east-h100", "Spot")][1] == 1
    assert sum(desired for _, desired in east.values()) <= 4
    placed = {(p.cluster, p.capacity_type): p.replicas for p in b.plan.placements}
    assert placed == {("east", "Spot"): 1, ("west", "OnDemand"): 2}
    assert a.plan.unplaced == 0 and b.plan.unplaced == 0
    assert not [e for o in (a, b) for e in o.events if e.reason in ("Stockout", "PoolOverbooked")]
    assert not world.stockouts.marks("east"), "our own booking became a stockout"


def _plan(deployment: str, *pools: tuple[CapacityType, int]) -> Plan:
    """A plan holding ``nodes`` on east's (instance type h100, ``capacity type``) pools."""
    return Plan(
        deployment=deployment,
        desired_replicas=0,
        standby_replicas=0,
        placements=(),
        node_pools=tuple(NodePoolSize("east", "h100", "H100", ct, n, 1.0) for ct, n in pools),
        retiring=(),
        cost_per_hour=0.0,
        unplaced=0,
        reasons=(),
        changes=(),
        state=DecisionState(),
    )


def test_the_ledger_never_asks_both_pools_for_more_than_the_offering_limit() -> None:
    ledger = PoolLedger()
    ledger.book("a", _plan("a", ("OnDemand", 3)))
    ledger.book("b", _plan("b", ("Spot", 3)))
    on_demand, spot = ("east", "h100", "OnDemand"), ("east", "h100", "Spot")
    # Nothing asked yet: the other pool counts with its bookings.
    assert ledger.within_quota(on_demand, 4) == 1
    ledger.asked(on_demand, 3)
    # Once asked, the other pool counts with what the cloud was asked for.
    assert ledger.within_quota(spot, 4) == 1
    assert ledger.within_quota(spot, None) == 3
    assert ledger.within_quota(spot, 10) == 3
    ledger.asked(spot, 1)
    assert ledger.within_quota(on_demand, 4) == 3


async def test_an_offering_without_an_on_demand_price_is_published_and_takes_spot() -> None:
    """Before, the FleetCluster pass dropped every discovered offering without an
    on-demand price from ``status.offerings`` (a spot-only GPU was never used)."""
    world = World([fleet_cluster("east", region="us-east-1", price=None, spot=3.0, max_nodes=4)])
    await world.start()
    status = world.fleet["east"].status
    assert status is not None and status.offerings is not None
    [published] = status.offerings
    assert (published.on_demand_per_hour, published.spot_per_hour) == (None, 3.0)

    world.add(model_deployment("od", replicas={"min": 1, "max": 1}))
    world.add(
        model_deployment(
            "spot", replicas={"min": 2, "max": 2}, placement={"capacity": {"spot": "Allowed"}}
        )
    )
    on_demand = await world.reconcile("od")
    spot = await world.reconcile("spot")
    assert on_demand.plan.placements == () and on_demand.plan.unplaced == 1
    assert [(p.capacity_type, p.replicas) for p in spot.plan.placements] == [("Spot", 2)]
    assert world.pool_sizes("east") == {("east-h100", "Spot"): (2, 2)}
