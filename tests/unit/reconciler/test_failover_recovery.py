"""Faults 1 and 2: a cluster that comes back keeps its replicas, and failback waits.

Cases from ``recovered-cluster-keeps-replicas`` and the failback hysteresis fault, at the
reconciler level on the in-package fakes with a virtual clock: health moves through the
real probe state machine (Healthy -> Suspect -> Failed -> Recovering -> Healthy).
"""

from __future__ import annotations

from reconciler_world import east_west, model_deployment

from modelfleet.reconciler import FleetSettings

FLEET = FleetSettings(fail_after_seconds=45.0, recover_after_seconds=300.0)


async def test_returning_cluster_keeps_its_only_replicas() -> None:
    world = east_west(fleet=FLEET)
    await world.start()
    world.add(model_deployment("llama", placement={"regions": ["us-east-1"]}))
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    assert world.replicas("east") == 2

    await world.outage("east", seconds=60)
    assert world.fleet["east"].status is not None
    assert world.fleet["east"].status.health == "Failed"
    # The API answers again, but health still reads Failed until the next probe: a pass
    # now must not delete anything there.
    outcome = await world.reconcile("llama")
    assert world.replicas("east") == 2, "deleted workloads on a Failed cluster"
    assert not [e for e in outcome.events if e.reason == "Retired"]
    assert world.pool_sizes("east")[("east-h100", "OnDemand")] == (2, 2), "shrank a pool there"

    # Recovering, inside the failback window: still the only copies; kept, pool kept.
    await world.probe()
    assert world.fleet["east"].status.health == "Recovering"
    for _ in range(20):
        world.clock.advance(5)
        await world.reconcile("llama")
        assert world.replicas("east") == 2
        assert world.pool_sizes("east")[("east-h100", "OnDemand")][1] == 2

    # Past failback (300 s of Recovering): sticky again, nothing moved or removed.
    for _ in range(31):
        world.clock.advance(10)
        await world.probe()
    outcome = await world.reconcile("llama")
    assert world.replicas("east") == 2
    assert outcome.status.replicas is not None and outcome.status.replicas.ready == 2


async def test_failover_and_failback_are_make_before_break() -> None:
    """east (cheaper) fails: west replaces it in the same pass; east's workloads that
    survived are never removed before west is Ready; when east returns, its old replicas do
    not take the placement back before failbackAfterSeconds and west's are not removed as
    "dearest" meanwhile; after the window east is taken back, make-before-break."""
    world = east_west(fleet=FLEET)
    await world.start()
    world.add(model_deployment("llama", failover={"failbackAfterSeconds": 300}))
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    assert (world.replicas("east"), world.replicas("west")) == (2, 0)

    await world.outage("east", seconds=60)
    await world.reconcile("llama")
    assert world.replicas("west") == 2, "lost replicas were not replaced in the same pass"
    # east answers again (Recovering after the next probe); west is not Ready yet.
    await world.probe()
    assert world.fleet["east"].status.health == "Recovering"
    await world.reconcile("llama")
    assert world.replicas("east") == 2, "removed the survivors before the replacement was up"

    world.mark_ready("west")
    outcome = await world.reconcile("llama")
    assert world.replicas("west") == 2, "failback removed the healthy replacements"
    assert {p.cluster for p in outcome.status.placements or []} == {"west"}

    # Within the failback window east gets nothing back, however cheaper: its survivors
    # are held (not placed, not removed) and never displace west.
    for _ in range(10):
        world.clock.advance(20)
        await world.probe()
        outcome = await world.reconcile("llama")
        assert world.replicas("west") == 2
        assert {p.cluster for p in outcome.status.placements or []} == {"west"}
        assert world.replicas("east") == 2, "survivors removed although held for failback"

    # Past the window east is taken back (cheaper, Ready); west's surplus goes only then.
    world.clock.advance(120)
    await world.probe()
    for _ in range(3):
        world.clock.advance(5)
        outcome = await world.reconcile("llama")
        assert world.replicas("east") + world.replicas("west") >= 2
    assert world.replicas("east") == 2
    assert world.replicas("west") == 0
