"""A Node with a pool's labels that is not one of the pool's instances never blocks its shrink.

Labels are not proof of membership: an instance of another group labelled alike (a
hand-made node group copying modelfleet's labels), or one already gone whose Node lingers,
carries the pool's labels but is not an instance the cloud lists in the pool. The shrink
used to choose such a Node (empty, and sorting first by name): the provider refused the
whole removal (``InvalidConfiguration``, a Warning every pass), and after that failure the
pool, counted by its Nodes, asked to remove it again with the real empty node: the pool
never shrank. Now the provider says which Nodes are its pool's (``KnowsNodes``), the
shrink names only those, and the foreign Node is said once in a ``NodeNotInPool`` Event.

World of ``test_shared_pool_loses_the_empty_node`` (reconciler level, in-package fakes:
the simulated cloud lists its pool's instances by providerID).
"""

from __future__ import annotations

from collections.abc import Sequence

from test_shared_pool_loses_the_empty_node import (
    POOL,
    _removed,
    _scale_chat_in,
    _shared_pool,
    _world,
)

from modelfleet import labels
from modelfleet.clusters.objects import NODE, POD
from modelfleet.providers import NodeRef, PermissionDenied, PoolSpec
from modelfleet.providers.simulated import SimulatedNodePoolProvider


async def test_a_labelled_node_the_cloud_does_not_list_is_ignored_and_said_once() -> None:
    world = _world()
    refs = await _shared_pool(world)
    member = world.members["east"]
    # Another group's instance with the pool's labels, empty: it sorts first by name.
    foreign = member.add_node(
        "a-foreign",
        instance_type=POOL[0],
        gpus=1,
        extra_labels=labels.node_labels("east", *POOL),
    )
    member.put({**foreign, "spec": {"providerID": "aws:///us-east-1a/i-0abc"}})
    await _scale_chat_in(world)
    member.remove(POD, "chat-a", "default")  # the oldest node of the pool is empty now

    events = []
    for _ in range(4):
        world.clock.advance(5)
        outcome = await world.reconcile("chat")
        events += list(outcome.events)

    left = [r.name for r in world.clouds["east"].node_refs(*POOL)]
    assert left == [refs[1].name, refs[2].name], "the pool's empty node was never removed"
    assert world.pool_sizes("east")[POOL] == (2, 2)
    assert _removed(world) == [refs[0].name], "the foreign node was named for removal"
    said = [e for e in events if e.reason == "NodeNotInPool"]
    assert len(said) == 1 and "a-foreign" in said[0].message, [e.reason for e in events]
    refused = [e for e in events if "is not a node of pool" in e.message]
    assert refused == [], "the provider refused a removal (a Warning every pass)"
    node = member.get(NODE, "a-foreign")
    assert node is not None and not node["spec"].get("unschedulable"), "foreign node cordoned"


class _RoleWithoutTheRead(SimulatedNodePoolProvider):
    """A cloud identity granted before ``owned_nodes``'s read existed (e.g. an Azure role
    without ``agentPools/machines/read``): that read is refused."""

    async def owned_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> frozenset[str]:
        raise PermissionDenied("not authorized", permission="agentPools/machines/read")


async def test_without_permission_to_list_the_pools_instances_the_shrink_works_as_before() -> None:
    world = _world()
    world.clouds["east"] = _RoleWithoutTheRead(world.fleet["east"], clock=world.clock)
    refs = await _shared_pool(world)
    await _scale_chat_in(world)
    world.members["east"].remove(POD, "chat-a", "default")
    world.clock.advance(5)
    outcome = await world.reconcile("chat")

    assert [r.name for r in world.clouds["east"].node_refs(*POOL)] == [refs[1].name, refs[2].name]
    assert _removed(world) == [refs[0].name]
    denied = [e for e in outcome.events if "machines/read" in e.message]
    assert len(denied) == 1 and denied[0].type == "Warning"
