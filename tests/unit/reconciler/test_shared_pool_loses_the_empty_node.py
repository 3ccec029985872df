"""A shared pool shrinks by the node the operator emptied, never by a node that serves.

Two deployments share one pool of 1-GPU nodes: ``chat`` (2 replicas) on the two oldest
nodes, ``code`` (1 replica) on the newest. ``chat`` scales in and its pod on the *oldest*
node goes. A resize by count would let the cloud pick; the simulated cloud, like an Auto
Scaling group scaling in, picks the newest, which serves ``code``. The operator must
instead name the empty node: cordon it and remove exactly it (``RemovesNodes``). While no
node is empty (another workload's pod holds it), the shrink waits and says so; DaemonSet
pods do not hold a node.

At the reconciler level on the in-package fakes: the ``SimulatedNodePoolProvider`` is the
cloud (its nodes carry providerIDs, ``node_refs``), the ``InMemoryClusterClient`` is the
member API, and this test plays the kubelet (Node objects, pods bound to them).
"""

from __future__ import annotations

from typing import Any

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet import labels
from modelfleet.clusters.objects import NODE, POD
from modelfleet.providers import NodeRef
from modelfleet.reconciler import ReconcilerSettings

POOL = ("east-h100", "OnDemand")


def _world() -> World:
    return World(
        [fleet_cluster("east", region="us-east-1", price=10.0)],
        settings=ReconcilerSettings(observe_cache_seconds=0, scale_in_delay_seconds=0),
    )


def _register_nodes(world: World) -> list[NodeRef]:
    """Node objects for the pool's Ready nodes, labelled as the providers label them and
    carrying their providerIDs (what a kubelet registers)."""
    member = world.members["east"]
    refs = world.clouds["east"].node_refs(*POOL)
    pool_labels = labels.node_labels("east", *POOL)
    for ref in refs:
        if member.get(NODE, ref.name) is not None:
            continue
        node = member.add_node(ref.name, instance_type=POOL[0], gpus=1, extra_labels=pool_labels)
        member.put({**node, "spec": {"providerID": ref.provider_id}})
    return refs


def _pod(name: str, node: str, *, namespace: str = "default", **extra: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, **extra.pop("metadata", {})},
        "spec": {"nodeName": node},
        "status": {
            "phase": extra.pop("phase", "Running"),
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    return pod


async def _shared_pool(world: World) -> list[NodeRef]:
    """chat x2 on the two oldest nodes, code x1 on the newest, all Ready; the node refs."""
    await world.start()
    world.add(model_deployment("chat", replicas={"min": 2, "max": 2}))
    world.add(model_deployment("code", replicas={"min": 1, "max": 1}))
    await world.reconcile("chat")
    await world.reconcile("code")
    world.mark_ready("east")
    await world.reconcile("chat")
    await world.reconcile("code")
    assert world.pool_sizes("east")[POOL] == (3, 3)
    refs = _register_nodes(world)
    assert len(refs) == 3
    member = world.members["east"]
    member.put(_pod("chat-a", refs[0].name))
    member.put(_pod("chat-b", refs[1].name))
    member.put(_pod("code-a", refs[2].name))
    # A DaemonSet's pod on every node (the GPU device plugin): it holds no node.
    for ref in refs:
        member.put(
            _pod(
                f"nvidia-device-plugin-{ref.name}",
                ref.name,
                namespace="kube-system",
                metadata={"ownerReferences": [{"kind": "DaemonSet", "name": "nvidia"}]},
            )
        )
    return refs


async def _scale_chat_in(world: World) -> None:
    world.set_spec(
        "chat",
        replicas=world.deployments["chat"].spec.replicas.model_copy(update={"min": 1, "max": 1}),
    )
    await world.reconcile("chat")
    assert world.replicas("east", "chat") == 1
    world.mark_ready("east")


def _removed(world: World) -> list[str]:
    return [c.detail for c in world.clouds["east"].calls if c.method == "remove_nodes"]


def _count_shrinks(world: World, since: int) -> list[str]:
    """Resizes by count below the pool's 3 nodes, among the calls from index ``since``."""
    return [
        c.detail
        for c in world.clouds["east"].calls[since:]
        if c.method == "ensure_pool" and not c.detail.endswith("=3")
    ]


async def test_a_shared_pool_loses_exactly_the_emptied_node() -> None:
    world = _world()
    refs = await _shared_pool(world)
    await _scale_chat_in(world)
    world.members["east"].remove(POD, "chat-a", "default")  # the oldest node is empty now
    since = len(world.clouds["east"].calls)

    world.clock.advance(5)
    await world.reconcile("chat")

    left = [r.name for r in world.clouds["east"].node_refs(*POOL)]
    assert left == [refs[1].name, refs[2].name], "the cloud removed a node that serves"
    assert world.pool_sizes("east")[POOL] == (2, 2)
    assert _removed(world) == [refs[0].name]
    assert _count_shrinks(world, since) == []
    cordoned = world.members["east"].get(NODE, refs[0].name)
    assert cordoned is not None and cordoned["spec"]["unschedulable"] is True
    for ref in refs[1:]:
        node = world.members["east"].get(NODE, ref.name)
        assert node is not None and not node["spec"].get("unschedulable")

    # Settled: the next pass asks nothing more of the pool.
    calls = len(world.clouds["east"].calls)
    world.clock.advance(5)
    await world.reconcile("chat")
    await world.reconcile("code")
    assert [c.method for c in world.clouds["east"].calls[calls:]] == []
    assert world.pool_sizes("east")[POOL] == (2, 2)


async def test_no_empty_node_waits_and_says_so_until_one_empties() -> None:
    world = _world()
    refs = await _shared_pool(world)
    await _scale_chat_in(world)
    member = world.members["east"]
    member.remove(POD, "chat-a", "default")
    # Another workload's pod (not ours, not a DaemonSet's) holds the emptied node.
    member.put(_pod("etl-job", refs[0].name, namespace="batch"))
    since = len(world.clouds["east"].calls)

    for _ in range(2):
        world.clock.advance(5)
        outcome = await world.reconcile("chat")
        waiting = [e for e in outcome.events if e.reason == "PoolShrinkWaiting"]
        assert waiting, [e.reason for e in outcome.events]
        assert "keeps 1 node(s)" in waiting[0].message
        assert world.pool_sizes("east")[POOL] == (3, 3)
        assert _removed(world) == [] and _count_shrinks(world, since) == []

    # The job finishes: its node is empty and goes, alone.
    member.put(_pod("etl-job", refs[0].name, namespace="batch", phase="Succeeded"))
    world.clock.advance(5)
    outcome = await world.reconcile("chat")
    assert not [e for e in outcome.events if e.reason == "PoolShrinkWaiting"]
    assert [r.name for r in world.clouds["east"].node_refs(*POOL)] == [
        refs[1].name,
        refs[2].name,
    ]
    assert _removed(world) == [refs[0].name]


async def test_a_pool_whose_nodes_serve_nothing_still_shrinks_by_count() -> None:
    """No Node holds a Ready pod (here: no Node registered at all, as in the simulator):
    a resize by count cannot take a serving pod, so it is kept as before."""
    world = _world()
    await world.start()
    world.add(model_deployment("chat", replicas={"min": 2, "max": 2}))
    await world.reconcile("chat")
    world.mark_ready("east")
    await world.reconcile("chat")
    await _scale_chat_in(world)
    world.clock.advance(5)
    await world.reconcile("chat")
    assert world.pool_sizes("east")[POOL] == (1, 1)
    assert _removed(world) == []
    assert [c.detail for c in world.clouds["east"].calls if c.method == "ensure_pool"][-1] == (
        "east-h100/OnDemand=1"
    )


async def test_a_pool_of_unknown_size_is_read_from_its_nodes_before_a_shrink() -> None:
    """After a failed call (or a restart) the operator does not know what it last asked of
    the pool; the shrink takes the pool's registered Nodes as its size and still removes
    only the emptied node."""
    world = _world()
    refs = await _shared_pool(world)
    await _scale_chat_in(world)
    world.members["east"].remove(POD, "chat-a", "default")
    world.reconciler.ledger.forget_request(("east", *POOL))
    since = len(world.clouds["east"].calls)

    world.clock.advance(5)
    await world.reconcile("chat")

    assert [r.name for r in world.clouds["east"].node_refs(*POOL)] == [
        refs[1].name,
        refs[2].name,
    ]
    assert _removed(world) == [refs[0].name]
    assert _count_shrinks(world, since) == []


async def test_a_member_api_that_cannot_be_read_holds_the_pool_as_it_is() -> None:
    """Which nodes serve is unknown while the member API does not answer: the pool keeps
    its size (no resize by count), and shrinks by the empty node once it answers."""
    world = _world()
    refs = await _shared_pool(world)
    await _scale_chat_in(world)
    member = world.members["east"]
    member.remove(POD, "chat-a", "default")
    since = len(world.clouds["east"].calls)

    member.set_unreachable(True)
    for _ in range(2):
        world.clock.advance(5)
        await world.reconcile("chat")
        assert world.pool_sizes("east")[POOL] == (3, 3)
        assert _removed(world) == [] and _count_shrinks(world, since) == []
    member.set_unreachable(False)

    world.clock.advance(5)
    await world.reconcile("chat")
    assert [r.name for r in world.clouds["east"].node_refs(*POOL)] == [
        refs[1].name,
        refs[2].name,
    ]
    assert _count_shrinks(world, since) == []
