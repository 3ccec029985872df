"""The operator's own traffic to member clusters stays small at scale: passes share one
LIST per (cluster, namespace) within the observation TTL, and unchanged workloads that are
observed as applied are not re-applied (a GET per object) on every pass."""

from __future__ import annotations

import asyncio

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.api import FleetCluster
from modelfleet.clusters import ClusterClient
from modelfleet.clusters.objects import DEPLOYMENT
from modelfleet.reconciler import ReconcilerSettings
from modelfleet.reconciler.observe import ObservationCache, observe_cluster


def _calls(world: World, method: str) -> int:
    """Calls of ``method``; for ``list_owned``, the observation's lists only: a pool's
    first sizing in this process also lists that pool's Nodes (``_node_lists``)."""
    return sum(
        1
        for c in world.members["east"].calls
        if c.method == method and not (method == "list_owned" and c.detail.startswith("nodes "))
    )


def _node_lists(world: World) -> int:
    return sum(
        1
        for c in world.members["east"].calls
        if c.method == "list_owned" and c.detail.startswith("nodes ")
    )


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
    # One pool, sized for the first time in this process: its Nodes are read at most once.
    assert _node_lists(world) <= 1, "every pass listed the pool's Nodes"
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


async def test_a_shared_list_is_filtered_to_exactly_what_the_clusters_selector_returns() -> None:
    """A pass reading the shared list keeps the objects carrying every owner label with its
    value: the same workloads as the member cluster's own label-selector LIST returns
    (deployments whose names share a prefix, and one in another namespace, left out)."""
    world = World(
        [fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=64)],
        settings=ReconcilerSettings(observe_cache_seconds=0),
    )
    await world.start()
    names = ["chat", "chat-2", "chat-2b"]
    for name in names:
        world.add(model_deployment(name, replicas={"min": 1, "max": 1}))
    other = model_deployment("chat", replicas={"min": 1, "max": 1})
    other = other.model_copy(
        update={"metadata": other.metadata.model_copy(update={"namespace": "team-b", "uid": "b"})}
    )
    world.deployments["team-b/chat"] = other
    for name in [*names, "team-b/chat"]:
        await world.reconcile(name)
    cluster = world.fleet["east"]
    cache = ObservationCache(ttl_seconds=60.0, clock=lambda: 0.0)

    async def client_for(_: FleetCluster) -> ClusterClient:
        return world.members["east"]

    seen = 0
    for md in world.deployments.values():
        shared = await observe_cluster(md, cluster, client_for, timeout=5.0, cache=cache)
        own = await observe_cluster(md, cluster, client_for, timeout=5.0, cache=None)
        assert shared == own and len(own.workloads) == 1, md.metadata.name
        seen += 1
    assert seen == 4 and cache.lists == 2  # one shared LIST per namespace
