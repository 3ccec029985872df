"""Issue 9's fault kinds tried with other inputs than the cases (QA, b9): more deployments
on one pool, partial recoveries, recoveries and restarts during a stockout backoff, pool
limits of zero, deletion while a cluster is Failed, and long outages with pool upkeep.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from reconciler_world import World, east_west, fleet_cluster, model_deployment

from modelfleet.api.modeldeployment import ReplicaRange
from modelfleet.clusters.objects import DEPLOYMENT
from modelfleet.clusters.workloads import owner_selector
from modelfleet.reconciler import FleetSettings, StockoutMemory

FLEET = FleetSettings(fail_after_seconds=45.0, recover_after_seconds=300.0)


async def test_three_deployments_on_one_pool_never_overbook_it() -> None:
    world = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=5),
            fleet_cluster("west", region="us-west-2", price=12.0, max_nodes=3),
            fleet_cluster("north", region="ca-central-1", price=14.0, max_nodes=8),
        ]
    )
    await world.start()
    for name, n in (("a", 2), ("b", 3), ("c", 4)):
        world.add(model_deployment(name, replicas={"min": n, "max": n}))
    outcomes = await asyncio.gather(*(world.reconcile(n) for n in ("a", "b", "c")))
    for cluster, limit in (("east", 5), ("west", 3), ("north", 8)):
        asked = [
            int(c.detail.rsplit("=", 1)[1])
            for c in world.clouds[cluster].calls
            if c.method == "ensure_pool"
        ]
        assert not asked or max(asked) <= limit, f"{cluster} asked beyond {limit}: {asked}"
    placed: dict[str, int] = {}
    for o in outcomes:
        assert o.plan.unplaced == 0, f"{o.plan.deployment} did not fall through"
        for p in o.plan.placements:
            placed[p.cluster] = placed.get(p.cluster, 0) + p.replicas
    assert placed.get("east", 0) <= 5 and placed.get("west", 0) <= 3
    assert sum(placed.values()) == 9
    assert not [e for o in outcomes for e in o.events if e.reason in ("Stockout", "PoolOverbooked")]
    for name in ("east", "west", "north"):
        assert not world.stockouts.marks(name)
    # Passes again, one by one, change nothing (no ping-pong between deployments).
    for name in ("a", "b", "c", "a"):
        outcome = await world.reconcile(name)
        assert outcome.plan.unplaced == 0


async def test_a_pool_limit_of_zero_is_never_asked_for_nodes() -> None:
    world = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=0),
            fleet_cluster("west", region="us-west-2", price=12.0),
        ]
    )
    await world.start()
    world.add(model_deployment("llama"))
    outcome = await world.reconcile("llama")
    assert {p.cluster for p in outcome.plan.placements} == {"west"}
    assert not world.grow_calls("east", "OnDemand", above=0)
    assert not [e for e in outcome.events if e.reason in ("Stockout", "PoolOverbooked")]
    assert not world.stockouts.marks("east")


async def test_existing_replicas_stay_on_a_pool_that_refuses_to_grow() -> None:
    """A stockout mark means "cannot grow", not "evict": the replicas already Ready on the
    stocked-out pool keep serving and only the extra replica goes elsewhere."""
    world = east_west()
    await world.start()
    world.add(model_deployment("llama", replicas={"min": 2, "max": 2}))
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    world.clouds["east"].inject_stockout(
        "east-h100", "OnDemand", until=world.clock() + timedelta(hours=1)
    )
    world.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 3, "max": 3}))
    await world.reconcile("llama")
    assert world.stockouts.marks("east")
    for _ in range(6):
        world.clock.advance(5)
        world.mark_ready("west")
        await world.reconcile("llama")
        assert world.replicas("east") == 2, "the stockout evicted replicas that were serving"
    assert world.replicas("west") == 1
    assert world.pool_sizes("east")[("east-h100", "OnDemand")] == (2, 2)


async def test_recovery_while_a_stockout_mark_is_active_keeps_the_survivors() -> None:
    world = east_west(fleet=FLEET)
    await world.start()
    world.add(model_deployment("llama", failover={"failbackAfterSeconds": 300}))
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    # west cannot grow: the failover has nowhere to go.
    world.clouds["west"].inject_stockout(
        "west-h100", "OnDemand", until=world.clock() + timedelta(hours=1)
    )
    await world.outage("east", seconds=60)
    outcome = await world.reconcile("llama")
    assert world.stockouts.marks("west")
    assert world.replicas("east") == 2
    await world.probe()
    assert world.fleet["east"].status.health == "Recovering"
    for _ in range(12):
        world.clock.advance(5)
        outcome = await world.reconcile("llama")
        assert world.replicas("east") == 2, "removed the only replicas during recovery"
        assert world.pool_sizes("east")[("east-h100", "OnDemand")] == (2, 2)
    assert not [e for e in outcome.events if e.reason == "Retired"]


async def test_cluster_that_returns_with_only_some_of_its_workloads() -> None:
    """east held spot and on-demand replicas; during the outage the spot Deployment was
    lost (deleted). What survived is kept; nothing is removed before its replacement is
    Ready."""
    world = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, spot=4.0),
            fleet_cluster("west", region="us-west-2", price=12.0, spot=5.0),
        ],
        fleet=FLEET,
    )
    await world.start()
    world.add(
        model_deployment(
            "llama",
            replicas={"min": 4, "max": 4},
            placement={
                "regions": ["us-east-1", "us-west-2"],
                "capacity": {"spot": "Allowed", "onDemandBase": 2},
            },
            failover={"failbackAfterSeconds": 300},
        )
    )
    await world.reconcile("llama")
    world.mark_ready("east")
    world.mark_ready("west")
    await world.reconcile("llama")
    before = world.workloads("east")
    assert world.replicas("east") >= 2, before
    world.members["east"].set_unreachable(True)
    for _ in range(6):
        world.clock.advance(10)
        await world.probe()
    # One of east's Deployments disappears while its API is down.
    lost = before[-1]
    world.members["east"].set_unreachable(False)
    await world.members["east"].delete_owned(
        DEPLOYMENT,
        owner_selector(name="llama", namespace="default"),
        namespace="default",
        keep={n for n in before if n != lost},
    )
    survivors = world.workloads("east")
    kept = world.replicas("east")
    world.members["east"].set_unreachable(True)
    world.clock.advance(10)
    await world.probe()
    world.members["east"].set_unreachable(False)
    await world.reconcile("llama")
    assert world.workloads("east") == survivors
    assert world.replicas("east") == kept
    await world.probe()
    assert world.fleet["east"].status.health == "Recovering"
    for _ in range(10):
        world.clock.advance(5)
        await world.reconcile("llama")
        assert world.workloads("east") == survivors, "survivors removed while recovering"
        assert world.replicas("east") == kept


async def test_a_long_outage_never_collects_the_pools_under_the_survivors() -> None:
    """Nothing destructive on a Failed cluster: pool upkeep (orphan GC) runs with the probe
    and must not scale to zero, or delete, the pool the survivors run on, however long the
    outage."""
    world = east_west(fleet=FLEET)
    await world.start()
    world.add(model_deployment("llama", failover={"failbackAfterSeconds": 300}))
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    assert world.pool_sizes("east")[("east-h100", "OnDemand")] == (2, 2)
    world.members["east"].set_unreachable(True)
    for i in range(6 * 45):  # 45 minutes of probes every 10 s, a pass every minute
        world.clock.advance(10)
        await world.probe()
        if i % 6 == 0:
            await world.reconcile("llama")
            world.mark_ready("west")
    assert world.fleet["east"].status.health == "Failed"
    assert world.pool_sizes("east").get(("east-h100", "OnDemand")) == (2, 2), (
        "the survivors' pool was collected while the cluster was Failed"
    )
    assert not [c for c in world.clouds["east"].calls if c.method == "delete_pool"]
    # Back (Recovering): the survivors are held for failback and keep their nodes; the
    # orphan clock did not run through the outage, so nothing is collected on return.
    world.members["east"].set_unreachable(False)
    for i in range(6 * 15):
        world.clock.advance(10)
        await world.probe()
        if i % 6 == 0:
            await world.reconcile("llama")
        assert world.replicas("east") == 2
        assert world.pool_sizes("east").get(("east-h100", "OnDemand")) == (2, 2)


async def test_restart_in_the_middle_of_a_backoff_keeps_the_mark() -> None:
    clusters = [
        fleet_cluster("east", region="us-east-1", price=10.0, spot=4.0),
        fleet_cluster("west", region="us-west-2", price=12.0, spot=5.0),
    ]
    first = World(clusters)
    await first.start()
    spec = {
        "replicas": {"min": 2, "max": 8},
        "placement": {"regions": ["us-east-1"], "capacity": {"spot": "Preferred"}},
    }
    first.add(model_deployment("llama", **spec))
    await first.reconcile("llama")
    first.mark_ready("east")
    await first.reconcile("llama")
    first.clouds["east"].inject_stockout(
        "east-h100", "Spot", until=first.clock() + timedelta(hours=2)
    )
    first.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 3, "max": 8}))
    await first.reconcile("llama")
    await first.probe()
    published = first.fleet["east"].status.stockouts
    assert published and published[0].failures == 1

    # A new process: fresh memory and ledger; the same clouds and member clusters.
    second = World(list(first.fleet.values()), stockouts=StockoutMemory())
    second.clock.now = first.clock.now + timedelta(seconds=60)
    second.members = first.members
    second.clouds = first.clouds
    await second.start()
    second.deployments = dict(first.deployments)
    calls = len(first.grow_calls("east", "Spot", above=2))
    for _ in range(10):
        second.clock.advance(5)
        await second.reconcile("llama")
    assert len(first.grow_calls("east", "Spot", above=2)) == calls, "grew inside the backoff"
    assert second.fleet["east"].status.stockouts, "the restart dropped the published mark"
    # Past the first backoff the pool is asked again; the second refusal doubles it.
    second.clock.advance(180)
    second.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 4, "max": 8}))
    await second.reconcile("llama")
    mark = second.stockouts.marks("east")[0]
    assert mark.failures == 2, "the restart reset the doubling"
    assert mark.until == second.clock() + timedelta(seconds=360)


async def test_a_restart_after_the_mark_expired_keeps_the_backoff_doubling() -> None:
    """The memory keeps an expired mark for an hour so the next refusal doubles the
    backoff (3 -> 6 min); a restart in that hour must not start over at 3 min."""
    clusters = [fleet_cluster("east", region="us-east-1", price=10.0, spot=4.0)]
    first = World(clusters)
    await first.start()
    first.add(
        model_deployment(
            "llama",
            replicas={"min": 2, "max": 8},
            placement={"capacity": {"spot": "Preferred"}},
        )
    )
    await first.reconcile("llama")
    first.mark_ready("east")
    await first.reconcile("llama")
    first.clouds["east"].inject_stockout(
        "east-h100", "Spot", until=first.clock() + timedelta(hours=2)
    )
    first.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 3, "max": 8}))
    await first.reconcile("llama")
    assert first.stockouts.marks("east")[0].failures == 1
    first.clock.advance(240)  # the 3-minute mark has expired; the memory still has it
    await first.probe()

    second = World(list(first.fleet.values()), stockouts=StockoutMemory())
    second.clock.now = first.clock.now + timedelta(seconds=30)
    second.members = first.members
    second.clouds = first.clouds
    await second.start()
    second.deployments = dict(first.deployments)
    second.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 4, "max": 8}))
    await second.reconcile("llama")
    [mark] = second.stockouts.marks("east")
    assert mark.failures == 2, "the restart reset the doubling"
    assert mark.until == second.clock() + timedelta(seconds=360)


async def test_deleting_a_deployment_while_its_cluster_is_failed() -> None:
    world = east_west(fleet=FLEET)
    await world.start()
    world.add(model_deployment("llama", placement={"regions": ["us-east-1"]}))
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    world.members["east"].set_unreachable(True)
    for _ in range(6):
        world.clock.advance(10)
        await world.probe()
    assert world.fleet["east"].status.health == "Failed"
    gone = world.deployments.pop("llama")
    done = await world.loop.finalize("uid-llama", gone, fleet=list(world.fleet.values()), others=[])
    assert not done.done and done.pending == ("east",)
    # The API answers again while health still reads Failed: the deletion completes
    # (deleting a deleted deployment's workloads is what the user asked for).
    world.members["east"].set_unreachable(False)
    done = await world.loop.finalize("uid-llama", gone, fleet=list(world.fleet.values()), others=[])
    assert done.done, done
    assert world.workloads("east") == []
    # Nothing leaked: once east is Healthy again, its pool goes within the orphan grace.
    for _ in range(6 * 45):
        world.clock.advance(10)
        await world.probe()
    sizes = world.pool_sizes("east")
    assert sizes.get(("east-h100", "OnDemand"), (0, 0))[1] == 0, sizes


def _serving(world: World, cluster: str) -> int:
    """Replicas a Deployment controller would leave serving: per Deployment, its Ready
    replicas capped by what it is now asked for (a scale-in takes effect at once)."""
    total = 0
    for d in world.members[cluster].objects(DEPLOYMENT):
        ready = int((d.get("status") or {}).get("readyReplicas", 0))
        total += min(int(d["spec"]["replicas"]), ready)
    return total


async def test_moving_back_to_spot_never_scales_on_demand_in_before_spot_is_ready() -> None:
    """Make-before-break inside one cluster: after a spot reclaim the replicas run on
    on-demand; when spot may be used again (spotReturnAfterSeconds) they move back, and the
    on-demand Deployment must not be scaled in before the spot replicas are Ready."""
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, spot=3.0)])
    await world.start()
    world.add(
        model_deployment(
            "llama",
            replicas={"min": 3, "max": 3},
            placement={"capacity": {"spot": "Preferred", "onDemandBase": 1}},
        )
    )
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    assert world.pool_sizes("east")[("east-h100", "Spot")] == (2, 2)
    cloud, member = world.clouds["east"], world.members["east"]
    cloud.inject_stockout("east-h100", "Spot", until=world.clock() + timedelta(seconds=300))
    cloud.reclaim_spot()
    [spot] = [d for d in member.objects(DEPLOYMENT) if d["spec"]["replicas"] == 2]
    member.set_deployment_status("default", spot["metadata"]["name"], ready=0)
    for _ in range(6):  # the reclaimed replicas are replaced on on-demand, Ready
        world.clock.advance(5)
        await world.reconcile("llama")
        world.mark_ready("east")
    assert world.workloads("east") and _serving(world, "east") == 3
    moved = False
    for _ in range(120):  # 20 minutes: spot comes back and the planner returns to it
        world.clock.advance(10)
        outcome = await world.reconcile("llama")
        moved = moved or any(c.code == "SpotReturn" for c in outcome.plan.changes)
        serving = _serving(world, "east")
        assert serving >= 3, f"{serving} of 3 serving while spot starts: {world.workloads('east')}"
    assert moved, "the planner never moved back to spot (the case did not happen)"
    # Once the spot replicas are Ready, on-demand is scaled in to its base.
    world.mark_ready("east")
    for _ in range(3):
        world.clock.advance(5)
        await world.reconcile("llama")
        world.mark_ready("east")
    assert world.replicas("east") == 3, world.workloads("east")
    assert _serving(world, "east") == 3


def test_replicas_a_key_is_scaled_in_from_are_not_its_replacements() -> None:
    """Pure: east's on-demand key goes 3 -> 1 while 2 spot replicas start. Its 3 Ready
    replicas count for 1 (the plan's), so the old workload elsewhere stays and east's
    on-demand keeps 3 until spot is Ready; a plain scale-down (all Ready) has no floor."""
    from modelfleet.reconciler.observe import ClusterObservation, ObservedWorkload
    from modelfleet.reconciler.retire import decide_retire

    observed = {
        "east": ClusterObservation(
            "east",
            workloads=(
                ObservedWorkload("llama-od", "h100", "OnDemand", 3, 3),
                ObservedWorkload("llama-spot", "h100", "Spot", 2, 0),
            ),
        ),
        "central": ClusterObservation(
            "central", workloads=(ObservedWorkload("llama-c", "h100", "OnDemand", 1, 1),)
        ),
    }
    planned = {("east", "h100", "OnDemand"): 1, ("east", "h100", "Spot"): 2}
    health = {"east": "Healthy", "central": "Healthy"}
    decision = decide_retire(
        planned=set(planned),
        desired=3,
        observed=observed,
        health=health,
        planned_replicas=planned,
    )
    assert dict(decision.remove) == {}
    assert dict(decision.floors) == {("east", "h100", "OnDemand"): 3}
    ready = {
        "east": ClusterObservation(
            "east",
            workloads=(
                ObservedWorkload("llama-od", "h100", "OnDemand", 3, 3),
                ObservedWorkload("llama-spot", "h100", "Spot", 2, 2),
            ),
        ),
    }
    decision = decide_retire(
        planned=set(planned), desired=3, observed=ready, health=health, planned_replicas=planned
    )
    assert dict(decision.floors) == {}
    down = {
        "east": ClusterObservation(
            "east", workloads=(ObservedWorkload("llama-od", "h100", "OnDemand", 5, 5),)
        )
    }
    od = {("east", "h100", "OnDemand"): 3}
    decision = decide_retire(
        planned=set(od), desired=3, observed=down, health=health, planned_replicas=od
    )
    assert dict(decision.floors) == {}, "a plain scale-down is held"


async def test_spot_and_on_demand_of_one_offering_never_overbook_its_max_nodes() -> None:
    world = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0, spot=3.0, max_nodes=4),
            fleet_cluster("west", region="us-west-2", price=20.0, spot=9.0, max_nodes=8),
        ]
    )
    await world.start()
    world.add(model_deployment("a", replicas={"min": 3, "max": 3}))
    world.add(
        model_deployment(
            "b", replicas={"min": 3, "max": 3}, placement={"capacity": {"spot": "Preferred"}}
        )
    )
    await world.reconcile("a")
    outcome = await world.reconcile("b")
    assert not [e for e in outcome.events if e.reason == "Stockout"], "own overbooking"
    assert not world.stockouts.marks("east")


async def test_two_deployments_fail_back_each_after_its_own_window() -> None:
    """east (cheaper) fails and returns with its pods still running; a (failback 120 s) and
    b (failback 900 s) share its pool. Each leaves west (takes east back) only after its own
    window, and neither has fewer than 2 replicas serving on the way."""
    world = World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0),
            fleet_cluster("west", region="us-west-2", price=12.0),
        ],
        fleet=FleetSettings(fail_after_seconds=45.0, recover_after_seconds=60.0),
    )
    await world.start()
    world.add(model_deployment("a", failover={"failbackAfterSeconds": 120}))
    world.add(model_deployment("b", failover={"failbackAfterSeconds": 900}))
    for name in ("a", "b"):
        await world.reconcile(name)
    world.mark_ready("east")
    for name in ("a", "b"):
        await world.reconcile(name)
    world.members["east"].set_unreachable(True)
    for _ in range(6):
        world.clock.advance(10)
        await world.probe()
    for name in ("a", "b"):  # replaced on west; east's pods kept running through the outage
        await world.reconcile(name)
    world.mark_ready("west")
    world.members["east"].set_unreachable(False)
    back: dict[str, float] = {}
    for step in range(150):  # 25 minutes, a probe and a pass of each every 10 s
        world.clock.advance(10)
        await world.probe()
        for name in ("a", "b"):
            await world.reconcile(name)
            if name not in back and world.replicas("west", name) == 0:
                back[name] = (step + 1) * 10
        world.mark_ready("east")
        world.mark_ready("west")
        for name in ("a", "b"):
            serving = sum(
                min(
                    int(d["spec"]["replicas"]), int((d.get("status") or {}).get("readyReplicas", 0))
                )
                for c in ("east", "west")
                for d in world.members[c].objects(DEPLOYMENT)
                if d["metadata"]["name"].startswith(name + "-")
            )
            assert serving >= 2 or step == 0, f"{name}: {serving} serving at {step}"
    # east answers at 0 s (Recovering), Healthy at 60 s. a leaves west after its 120 s
    # window; b must not leave before its 900 s window has passed.
    assert 120 <= back["a"] < 900, back
    assert back.get("b", 10**9) >= 900, back
    assert world.replicas("east", "b") == 2 and world.replicas("east", "a") == 2, back
