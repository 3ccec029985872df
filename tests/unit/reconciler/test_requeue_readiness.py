"""Readiness wakes and the requeue rule (``reconciler.wakes``, ``Reconciler._woken_when_ready``).

A pass whose only unfinished business is placed replicas not Ready yet asks for no 5 s
requeue when their becoming Ready wakes the deployment (the wakes are served for every
cluster concerned); without wakes, with a wake source not serving (a broken watch), with
a pool still launching nodes, or with anything else under way, it polls every 5 s as
before. The wake itself: a Deployment's readiness written to the in-memory member API
makes the deployment due at once; the pass's own writes (a spec it applied) do not.

At the reconciler level on the in-package fakes (``reconciler_world``), with the real
``OperatorLoop`` schedule and the same wiring as the simulator's.
"""

from __future__ import annotations

from reconciler_world import World, east_west, fleet_cluster, model_deployment

from modelfleet import labels
from modelfleet.api.modeldeployment import ReplicaRange
from modelfleet.clusters.objects import DEPLOYMENT

UID = "uid-llama"


async def _placed_not_ready(world: World) -> float | None:
    await world.start()
    world.add(model_deployment("llama"))
    outcome = await world.reconcile("llama")
    assert world.replicas("east") == 2
    assert outcome.status.replicas is not None and outcome.status.replicas.ready == 0
    return outcome.requeue_after


async def test_without_wakes_a_pass_waiting_for_ready_replicas_polls() -> None:
    assert await _placed_not_ready(east_west()) == 5.0


async def test_served_wakes_replace_the_poll_and_readiness_makes_the_deployment_due() -> None:
    world = east_west(readiness_wakes=True)
    assert await _placed_not_ready(world) is None, "woken when Ready: the regular interval"
    assert not world.loop.deployment_due(UID), "next pass at the interval, 15 s away"

    world.clock.advance(1)
    world.members["east"].set_deployment_status("default", world.workloads("east")[0], ready=1)
    assert world.loop.deployment_due(UID), "a replica turned Ready: due at once"
    assert world.loop.deployments.next_due(UID) == world.clock()

    world.clock.advance(1)
    outcome = await world.reconcile("llama")
    assert outcome.status.replicas is not None and outcome.status.replicas.ready == 1
    assert outcome.requeue_after is None
    assert not world.loop.deployment_due(UID), "its own pass (no write) wakes nothing"

    world.mark_ready("east")
    assert world.loop.deployment_due(UID)
    outcome = await world.reconcile("llama")
    assert outcome.requeue_after is None, "steady state"


async def test_a_pass_s_own_writes_wake_nothing() -> None:
    world = east_west(readiness_wakes=True)
    await _placed_not_ready(world)
    world.mark_ready("east")
    await world.reconcile("llama")
    assert not world.loop.deployment_due(UID)
    world.set_spec("llama", replicas=ReplicaRange.model_validate({"min": 3, "max": 3}))
    outcome = await world.reconcile("llama")
    assert world.replicas("east") == 3, "the pass scaled its Deployment up (a spec write)"
    assert outcome.requeue_after is None
    assert not world.loop.deployment_due(UID), "its spec write changed no readiness"
    assert world.wakes is not None and world.wakes.wakes == 1, "only mark_ready woke it"


async def test_a_broken_watch_keeps_the_poll() -> None:
    world = east_west(readiness_wakes=True)
    world.not_watched.add("east")
    assert await _placed_not_ready(world) == 5.0


async def test_a_pool_still_launching_nodes_keeps_the_poll() -> None:
    # Nodes take 120 s: the cloud may yet report it cannot launch them, which no pod
    # readiness would tell; the pass keeps reading the pool back every 5 s meanwhile.
    world = World(
        [fleet_cluster("east", region="us-east-1", price=10.0, provisioning_seconds=120.0)],
        readiness_wakes=True,
    )
    assert await _placed_not_ready(world) == 5.0
    world.clock.advance(130)
    outcome = await world.reconcile("llama")
    assert world.pool_sizes("east")["east-h100", "OnDemand"] == (2, 2), "nodes Ready"
    assert outcome.requeue_after is None, "only pods starting now: woken when Ready"


async def test_anything_else_under_way_keeps_the_poll() -> None:
    # A move east -> west: west's replacements are placed, east's replicas are retiring
    # until they are Ready. The retirement is under way: 5 s whatever the wakes.
    world = east_west(readiness_wakes=True)
    await _placed_not_ready(world)
    world.mark_ready("east")
    await world.reconcile("llama")
    world.set_spec(
        "llama",
        placement=model_deployment("x", placement={"regions": ["us-west-2"]}).spec.placement,
    )
    outcome = await world.reconcile("llama")
    assert world.replicas("west") == 2 and world.replicas("east") == 2
    assert outcome.plan.retiring, "east retires once west is Ready"
    assert outcome.requeue_after == 5.0

    # West turns Ready: the pass that sees it retires east, deleting its Deployment. The
    # deletion comes while the pass runs (as a watch event may): it is kept for the end
    # of the pass, which would otherwise book the next pass later and lose it.
    world.mark_ready("west")
    assert world.loop.deployment_due(UID)
    outcome = await world.reconcile("llama")
    assert world.replicas("east") == 0, "retired"
    assert world.loop.deployments.next_due(UID) == world.clock(), "the deletion woke it"


async def test_a_wake_does_not_cut_an_error_backoff_short() -> None:
    # br10: after a pass raised, the loop backs the deployment off (5 s doubling to 5
    # min, ``Schedule.failed``). A readiness wake made it due at once regardless, so a
    # Deployment flapping readiness (a crash-looping server: exactly when passes fail)
    # ran the failing pass on every 2 s tick instead of backing off.
    world = east_west(readiness_wakes=True)
    await _placed_not_ready(world)
    schedule = world.loop.deployments
    for _ in range(4):  # four failed passes in a row: 40 s backoff
        delay = schedule.failed(UID, world.clock())
    assert delay == 40.0
    world.mark_ready("east")  # a replica turns Ready: a wake
    assert not world.loop.deployment_due(UID), "the wake cut the error backoff short"
    world.clock.advance(40)
    assert world.loop.deployment_due(UID)


async def test_only_the_deployment_s_own_workloads_wake_it_and_not_after_it_is_finalized() -> None:
    # The pass told the wakes which (namespace, name) uid-llama is: a copy of its
    # Deployment in another namespace, uid label and name kept (anyone who may create
    # Deployments there can write it), wakes nothing; the real one does, until finalized.
    world = east_west(readiness_wakes=True)
    await _placed_not_ready(world)
    east = world.members["east"]
    (name,) = world.workloads("east")
    copy = east.get(DEPLOYMENT, name, "default")  # as it was before a replica turned Ready
    assert copy is not None and copy["metadata"]["labels"][labels.UID] == UID
    copy["metadata"]["namespace"] = "team-b"
    east.put(copy)
    east.set_deployment_status("team-b", name, ready=2)
    assert not world.loop.deployment_due(UID), "woken by another namespace's Deployment"
    assert world.wakes is not None and world.wakes.refused == 1

    east.set_deployment_status("default", name, ready=1)
    assert world.loop.deployment_due(UID), "its own Deployment: due at once"

    outcome = await world.loop.finalize(
        UID,
        world.deployments["llama"],
        fleet=list(world.fleet.values()),
        others=[],
    )
    assert outcome.done and world.workloads("east") == [name], "only the copy is left"
    assert world.wakes.wakes == 2, "its own readiness change and its deletion"
    # Gone: its uid wakes nothing, even on an object where and as it was named.
    copy["metadata"]["namespace"] = "default"
    east.put(copy)
    east.set_deployment_status("default", name, ready=1)
    assert world.wakes.wakes == 2 and world.wakes.refused == 2
