"""A spot node under an interruption notice is no warm node (``core.warm``, the ledger).

The cloud keeps counting a node Ready for the 30-120 s of its interruption notice (EC2
two minutes, GKE and Azure 30 s); a model start takes minutes, so a new replica sent there
for being "warm" never serves from it: the node vanishes first, and the replica waits a
whole node lead on a pool chosen for being ready. What the operator sees of a notice is the
member cluster's Node: the handler that drains it (GKE's graceful shutdown, the AWS Node
Termination Handler, Karpenter) taints or cordons it, and the FleetCluster probe (every
10 s) reads the Nodes. Here the member API is the in-memory client and the Nodes are stored
as such a handler leaves them."""

from __future__ import annotations

from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.api.modeldeployment import ReplicaRange
from modelfleet.clusters.objects import NODE
from modelfleet.core import reasons as R

EAST = ("east", "east-h100", "Spot")
SPOT_ONLY = {"capacity": {"spot": "Preferred", "onDemandBase": 0}}


async def _warm_east() -> World:
    """``b`` (east only) booked 1 spot node of 2 Ready in east; the other is kept by the
    scale-in delay: warm. West is a little cheaper and has nothing Ready."""
    world = World(
        [
            fleet_cluster(
                "east", region="us-east-1", price=None, spot=3.0, provisioning_seconds=300
            ),
            fleet_cluster(
                "west", region="us-west-2", price=None, spot=2.9, provisioning_seconds=300
            ),
        ]
    )
    await world.start()
    world.add(
        model_deployment(
            "b",
            replicas={"min": 2, "max": 2},
            placement={"regions": ["us-east-1"], **SPOT_ONLY},
        )
    )
    await world.reconcile("b")
    world.clock.advance(300)
    await world.reconcile("b")
    world.mark_ready("east")
    world.set_spec("b", replicas=ReplicaRange.model_validate({"min": 1, "max": 1}))
    await world.reconcile("b")
    # The scaled-in replica's node is booked until a pass sees the pod gone
    # (core.nodepools: a pool never shrinks under a serving replica; sc's rule).
    world.mark_ready("east")
    await world.reconcile("b")
    assert world.reconciler.ledger.idle_nodes() == ((EAST, 1),)
    return world


def _node(world: World, taint: str) -> None:
    world.members["east"].add_node(
        "east-2",
        instance_type="east-h100",
        capacity_type="Spot",
        gpus=1,
        taints=[{"key": taint, "effect": "NoSchedule"}],
    )


async def _scale_up_a(world: World) -> tuple[set[str], int, int]:
    """``a`` (anywhere, one spot replica) starts: its plan's reason codes and its replicas
    in east and west."""
    world.add(model_deployment("a", replicas={"min": 1, "max": 1}, placement=SPOT_ONLY))
    outcome = await world.reconcile("a")
    codes = {r.code for r in (*outcome.plan.reasons, *outcome.plan.changes)}
    return codes, world.replicas("east", "a"), world.replicas("west", "a")


async def test_a_node_under_an_interruption_notice_takes_no_new_replica() -> None:
    world = await _warm_east()
    # The notice: GKE taints the node; the next probe reads it.
    _node(world, "cloud.google.com/impending-node-termination")
    world.clock.advance(10)
    await world.probe()
    assert world.reconciler.ledger.idle_nodes() == ()

    codes, east, west = await _scale_up_a(world)
    assert R.WARM_NODES not in codes, "a replica sent to a node about to be reclaimed"
    assert (east, west) == (0, 1)


async def test_a_warm_node_without_a_notice_is_still_taken() -> None:
    """The control: the same Node with only the GPU taint every GPU pool has is warm, and
    the same scale-up takes it (east, dearer per hour but Ready now)."""
    world = await _warm_east()
    _node(world, "nvidia.com/gpu")
    world.clock.advance(10)
    await world.probe()
    assert world.reconciler.ledger.idle_nodes() == ((EAST, 1),)

    codes, east, west = await _scale_up_a(world)
    assert R.WARM_NODES in codes
    assert (east, west) == (1, 0)


async def test_the_notice_ends_with_the_node() -> None:
    """Once the Node is gone from the member cluster nothing is counted out any more (by
    then the cloud's own Ready count has dropped)."""
    world = await _warm_east()
    _node(world, "aws-node-termination-handler/spot-itn")
    world.clock.advance(10)
    await world.probe()
    assert world.reconciler.ledger.idle_nodes() == ()
    world.members["east"].remove(NODE, "east-2")
    world.clock.advance(10)
    await world.probe()
    assert world.reconciler.ledger.idle_nodes() == ((EAST, 1),)
