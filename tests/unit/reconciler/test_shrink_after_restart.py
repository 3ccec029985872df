"""A shrink right after an operator restart still removes only the emptied node.

A restarted operator has not asked anything of a pool yet in this process, nor read it
back: its last request and Ready count are unknown. It used to size such a pool by count
without reading the member API, so a shrink on the first pass after a restart let the
cloud pick the instance, maybe one whose pod serves. The restart here is a fresh
``PoolLedger`` (what a new process starts with; other deployments are seeded from their
stored status, as in the operator), on the world of
``test_shared_pool_loses_the_empty_node``: ``chat`` x2 on the two oldest nodes, ``code``
x1 on the newest; the simulated cloud, like an Auto Scaling group, picks the newest node
when resized by count.
"""

from __future__ import annotations

import pytest
from reconciler_world import model_deployment
from test_shared_pool_loses_the_empty_node import (
    POOL,
    _count_shrinks,
    _pod,
    _register_nodes,
    _removed,
    _scale_chat_in,
    _shared_pool,
    _world,
)

from modelfleet.clusters.objects import DEPLOYMENT, NODE, POD
from modelfleet.providers import Throttled
from modelfleet.reconciler.ledger import PoolLedger


async def test_a_shrink_on_the_first_pass_after_a_restart_never_takes_a_serving_node() -> None:
    world = _world()
    refs = await _shared_pool(world)
    member = world.members["east"]
    # chat's pod on the oldest node stopped being Ready and went: a replica that is not
    # Ready holds no node, so the first plan after the restart releases one at once.
    member.remove(POD, "chat-a", "default")
    (chat,) = [d for d in member.objects(DEPLOYMENT) if d["metadata"]["name"].startswith("chat")]
    member.set_deployment_status(chat["metadata"]["namespace"], chat["metadata"]["name"], ready=1)
    world.reconciler.ledger = PoolLedger()  # the operator restarts
    since = len(world.clouds["east"].calls)

    world.clock.advance(5)
    world.set_spec(
        "chat",
        replicas=world.deployments["chat"].spec.replicas.model_copy(update={"min": 1, "max": 1}),
    )
    await world.reconcile("chat")  # the first pass after the restart shrinks the pool

    assert _count_shrinks(world, since) == [], "a resize by count let the cloud pick"
    left = [r.name for r in world.clouds["east"].node_refs(*POOL)]
    assert refs[2].name in left, "the cloud removed code's serving node"
    assert refs[1].name in left, "the cloud removed chat's serving node"
    assert _removed(world) == [refs[0].name]
    assert world.pool_sizes("east")[POOL] == (2, 2)
    node = member.get(NODE, refs[2].name)
    assert node is not None and not node["spec"].get("unschedulable")


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-a-restart"])
async def test_a_node_cordoned_for_a_removal_that_failed_is_uncordoned_when_kept(
    restart: bool,
) -> None:
    """The removal of the cordoned node fails (throttled; or the operator restarts before
    retrying it); before it is retried, demand comes back and the pool keeps all its nodes. The node the operator cordoned must take
    pods again: a node left cordoned counts as capacity to the cloud (Ready) but the new
    replica could never be scheduled there. A node someone else cordoned stays cordoned."""
    world = _world()
    refs = await _shared_pool(world)
    member = world.members["east"]
    await _scale_chat_in(world)
    member.remove(POD, "chat-a", "default")
    world.clouds["east"].fail_next(Throttled("Rate exceeded"))
    world.clock.advance(5)
    await world.reconcile("chat")
    node = member.get(NODE, refs[0].name)
    assert node is not None and node["spec"].get("unschedulable") is True, "not cordoned"
    assert [r.name for r in world.clouds["east"].node_refs(*POOL)] == [r.name for r in refs]
    # An administrator cordons code's node meanwhile (maintenance): not ours to undo.
    admin = member.get(NODE, refs[2].name)
    assert admin is not None
    member.put({**admin, "spec": {**admin["spec"], "unschedulable": True}})
    if restart:  # the operator restarts between the cordon and the removal
        world.reconciler.ledger = PoolLedger()

    world.set_spec(
        "chat",
        replicas=world.deployments["chat"].spec.replicas.model_copy(update={"min": 2, "max": 2}),
    )
    for _ in range(2):
        world.clock.advance(5)
        await world.reconcile("chat")
    assert [r.name for r in world.clouds["east"].node_refs(*POOL)] == [r.name for r in refs]
    node = member.get(NODE, refs[0].name)
    assert node is not None and not node["spec"].get("unschedulable"), (
        "the node cordoned for a removal that did not happen stays cordoned"
    )
    admin = member.get(NODE, refs[2].name)
    assert admin is not None and admin["spec"].get("unschedulable") is True


async def test_a_removed_node_whose_node_object_lingers_is_not_chosen_again() -> None:
    """After a removal the instance is gone but its Node object lingers a while, NotReady,
    until the cloud controller deletes it. The next shrink must name a node that is still
    there: choosing the lingering one (NotReady sorts first) removes nothing, and the pool
    keeps a node it no longer needs, with nothing left to retry."""
    world = _world()
    await world.start()
    world.add(model_deployment("chat", replicas={"min": 3, "max": 3}))
    world.add(model_deployment("code", replicas={"min": 1, "max": 1}))
    await world.reconcile("chat")
    await world.reconcile("code")
    world.mark_ready("east")
    await world.reconcile("chat")
    await world.reconcile("code")
    assert world.pool_sizes("east")[POOL] == (4, 4)
    refs = _register_nodes(world)
    member = world.members["east"]
    for i, ref in enumerate(refs[:3]):
        member.put(_pod(f"chat-{i}", ref.name))
    member.put(_pod("code-0", refs[3].name))

    async def scale_chat(replicas: int, gone: str) -> None:
        md = world.deployments["chat"]
        world.set_spec(
            "chat",
            replicas=md.spec.replicas.model_copy(update={"min": replicas, "max": replicas}),
        )
        await world.reconcile("chat")
        world.mark_ready("east")
        member.remove(POD, gone, "default")
        for _ in range(3):
            world.clock.advance(5)
            await world.reconcile("chat")

    await scale_chat(2, "chat-0")
    assert world.pool_sizes("east")[POOL] == (3, 3)
    assert _removed(world) == [refs[0].name]
    # refs[0]'s instance is gone; its Node lingers, NotReady (the kubelet stopped posting).
    lingering = member.get(NODE, refs[0].name)
    assert lingering is not None
    status = {"conditions": [{"type": "Ready", "status": "Unknown"}]}
    member.put({**lingering, "status": {**lingering.get("status", {}), **status}})

    await scale_chat(1, "chat-1")
    assert world.pool_sizes("east")[POOL] == (2, 2), "the pool kept a node it no longer needs"
    assert [r.name for r in world.clouds["east"].node_refs(*POOL)] == [refs[2].name, refs[3].name]


async def test_a_grow_after_a_restart_reads_the_nodes_but_not_every_pod() -> None:
    """The first sizing after a restart reads the pool's Nodes (it may be a shrink), but a
    grow must not wait on a list of every pod of the cluster: pods are read only when the
    Nodes outnumber the request."""
    world = _world()
    await _shared_pool(world)
    member = world.members["east"]
    world.reconciler.ledger = PoolLedger()
    since = len(member.calls)
    world.set_spec(
        "code",
        replicas=world.deployments["code"].spec.replicas.model_copy(update={"min": 2, "max": 2}),
    )
    world.clock.advance(5)
    await world.reconcile("code")
    lists = [c.detail for c in member.calls[since:] if c.method == "list_owned"]
    assert [d for d in lists if d.startswith("nodes ")], "the pool's Nodes were not read"
    assert not [d for d in lists if d.startswith("pods ")], "a grow listed the pool's pods"
    assert world.pool_sizes("east")[POOL][1] == 4


async def test_after_a_restart_a_node_already_cordoned_for_removal_goes_first() -> None:
    """The operator removed a node and restarted at once: the instance is going but its
    Node still reads Ready, cordoned by the operator. The first shrink after the restart
    counts the pool by its Nodes (that one included), so it must name that node again (the
    cloud skips an instance already going), not another empty node (removed on top: the
    pool falls below what it was asked for) while uncordoning the one going away."""
    world = _world()
    await world.start()
    world.add(model_deployment("chat", replicas={"min": 3, "max": 3}))
    world.add(model_deployment("code", replicas={"min": 1, "max": 1}))
    await world.reconcile("chat")
    await world.reconcile("code")
    world.mark_ready("east")
    await world.reconcile("chat")
    await world.reconcile("code")
    refs = _register_nodes(world)
    member = world.members["east"]
    for i, ref in enumerate(refs[:3]):
        member.put(_pod(f"chat-{i}", ref.name))
    member.put(_pod("code-0", refs[3].name))
    md = world.deployments["chat"]
    world.set_spec("chat", replicas=md.spec.replicas.model_copy(update={"min": 2, "max": 2}))
    await world.reconcile("chat")
    world.mark_ready("east")
    member.remove(POD, "chat-2", "default")
    for _ in range(2):
        world.clock.advance(5)
        await world.reconcile("chat")
    assert _removed(world) == [refs[2].name]
    going = member.get(NODE, refs[2].name)
    assert going is not None and going["spec"].get("unschedulable") is True  # still Ready
    # chat's pod on the oldest node is being replaced (gone for a moment), and the
    # operator restarts.
    member.remove(POD, "chat-0", "default")
    world.reconciler.ledger = PoolLedger()
    world.clock.advance(5)
    await world.reconcile("chat")

    assert [r.name for r in world.clouds["east"].node_refs(*POOL)] == [
        refs[0].name,
        refs[1].name,
        refs[3].name,
    ], "an empty node the pool still needs was removed"
    going = member.get(NODE, refs[2].name)
    assert going is not None and going["spec"].get("unschedulable") is True, (
        "the node going away was uncordoned"
    )
