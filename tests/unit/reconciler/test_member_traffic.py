"""The operator's own traffic to member clusters stays small at scale: passes share one
LIST per (cluster, namespace) within the observation TTL, and unchanged workloads that are
observed as applied are not re-applied (a GET per object) on every pass."""

from __future__ import annotations

import asyncio

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.clusters.objects import DEPLOYMENT
from modelfleet.reconciler import ReconcilerSettings


def _calls(world: World, method: str) -> int:
    return sum(1 for c in world.members["east"].calls if c.method == method)


async def test_concurrent_passes_share_one_list_per_namespace() -> None:
    world = World(
        [fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=64)],
        settings=ReconcilerSettings(observe_cache_seconds=2.0),
    )
    await world.start()
    for i in range(20):
        world.add(model_deployment(f"md-{i}", replicas={"min": 1, "max": 1}))
    before = _calls(world, "list_owned")
    await asyncio.gather(*(world.reconcile(f"md-{i}") for i in range(20)))
    assert _calls(world, "list_owned") - before == 1, "every pass listed on its own"
    assert world.replicas("east") == 20

    # Past the TTL the next pass lists again and sees the current state.
    world.clock.advance(3)
    before = _calls(world, "list_owned")
    outcome = await world.reconcile("md-0")
    assert _calls(world, "list_owned") - before == 1
    assert outcome.status.placements and outcome.status.placements[0].replicas == 1


async def test_unchanged_workloads_are_not_reapplied_every_pass() -> None:
    world = World(
        [fleet_cluster("east", region="us-east-1", price=10.0)],
        settings=ReconcilerSettings(observe_cache_seconds=0, reapply_after_seconds=300),
    )
    await world.start()
    world.add(model_deployment("llama"))
    await world.reconcile("llama")
    world.mark_ready("east")
    applies = _calls(world, "apply")
    for _ in range(5):
        world.clock.advance(15)
        await world.reconcile("llama")
    assert _calls(world, "apply") == applies, "re-applied unchanged workloads"

    # Drift (scaled by hand) is repaired at once; so is a changed render.
    [deployment] = world.members["east"].objects(DEPLOYMENT)
    deployment["spec"]["replicas"] = 5
    world.members["east"].put(deployment)
    assert world.replicas("east") == 5
    world.clock.advance(15)
    await world.reconcile("llama")
    assert world.replicas("east") == 2
    # And after reapply_after_seconds everything is re-applied once anyway.
    applies = _calls(world, "apply")
    world.clock.advance(301)
    await world.reconcile("llama")
    assert _calls(world, "apply") > applies
