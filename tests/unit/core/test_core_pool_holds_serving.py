"""A node pool never shrinks below the nodes the deployment's serving replicas hold.

Pools are resized by count and the cloud picks which node goes (an AWS ASG without
scale-in protection, a GKE or AKS resize), so a pool shrunk while a Ready pod still runs on
it can lose that pod. The plan keeps the nodes of every replica Ready now until the
reconciler has removed it; a later pass, which no longer observes it, lets the node go.
"""

from __future__ import annotations

from core_builders import KEY, NOW, cluster, existing, offering, run, spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_core_properties import fleets, specs

from modelfleet.core import DeploymentSpec, ExistingPlacement, FleetSnapshot, Plan, is_lost
from modelfleet.core.candidates import PoolKey
from modelfleet.core.nodepools import PoolInfo, size_node_pools
from modelfleet.core.types import CapacityType

CAPACITY_TYPES: tuple[CapacityType, ...] = ("OnDemand", "Spot")


def _nodes(p: Plan) -> dict[tuple[str, str, str], int]:
    return {(n.cluster, n.instance_type, n.capacity_type): n.nodes for n in p.node_pools}


def test_a_scale_in_keeps_the_nodes_of_the_replicas_still_serving() -> None:
    """4 Ready replicas, the plan wants 2: the Deployment is scaled in this pass, and the
    pool keeps 4 nodes until a pass sees the 2 pods gone."""
    p = run(spec(2, 2), [cluster("a", offering())], placements=(existing("a", replicas=4),))
    assert sum(d.replicas for d in p.placements) == 2
    assert _nodes(p) == {("a", "g1", "OnDemand"): 4}
    assert p.cost_per_hour == 2 * 2.0, "cost counts the planned replicas only"


def test_once_the_removed_replicas_are_gone_the_pool_shrinks() -> None:
    p = run(spec(2, 2), [cluster("a", offering())], placements=(existing("a", replicas=2),))
    assert _nodes(p) == {("a", "g1", "OnDemand"): 2}


def test_replicas_not_ready_do_not_hold_nodes() -> None:
    """Pods still waiting for a node or loading serve nothing: a plan that drops them may
    release their nodes at once."""
    p = run(
        spec(2, 2),
        [cluster("a", offering())],
        placements=(existing("a", replicas=4, ready=2),),
    )
    assert _nodes(p) == {("a", "g1", "OnDemand"): 2}


def test_a_pool_the_plan_leaves_keeps_the_nodes_of_its_serving_replicas() -> None:
    """A scale-in that drops the dearer cluster's replicas: they keep their nodes while
    they serve (make-before-break holds them until the plan's replicas are Ready)."""
    p = run(
        spec(2, 2),
        [cluster("a", offering(od=2.0)), cluster("b", offering(od=3.0))],
        placements=(existing("a", replicas=2), existing("b", replicas=2)),
    )
    assert {(d.cluster, d.replicas) for d in p.placements} == {("a", 2)}
    assert _nodes(p) == {("a", "g1", "OnDemand"): 2, ("b", "g1", "OnDemand"): 2}


def test_size_node_pools_takes_the_larger_of_plan_and_serving() -> None:
    a: PoolKey = ("a", "g2", "OnDemand")
    b: PoolKey = ("b", "g2", "Spot")
    c: PoolKey = ("c", "g2", "OnDemand")
    info = {k: PoolInfo("L40S", 4.0, 2) for k in (a, b, c)}
    sizes = size_node_pools({a: 1, b: 4}, {}, info=info, serving={a: 3, b: 2, c: 1})
    assert [(s.cluster, s.nodes) for s in sizes] == [("a", 2), ("b", 2), ("c", 1)]
    assert size_node_pools({a: 1}, {}, info=info) == size_node_pools(
        {a: 1}, {}, info=info, serving={}
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=specs(), fleet=fleets(), data=st.data())
def test_every_serving_replica_keeps_its_node_in_any_plan(
    s: DeploymentSpec, fleet: FleetSnapshot, data: st.DataObject
) -> None:
    """Whatever the plan (scale-in, re-spread, stockouts, failing clusters, budgets), each
    pool holding Ready replicas of the deployment on a cluster that is not lost gets at
    least the nodes they fill."""
    existing: list[ExistingPlacement] = []
    for _ in range(data.draw(st.integers(1, 4))):
        c = data.draw(st.sampled_from(fleet.clusters))
        o = data.draw(st.sampled_from(c.offerings))
        ct = data.draw(st.sampled_from(CAPACITY_TYPES))
        n = data.draw(st.integers(1, 5))
        existing.append(
            ExistingPlacement(KEY, c.name, o.instance_type, ct, n, data.draw(st.integers(0, n)))
        )
    p = run(s, list(fleet.clusters), placements=tuple(existing))
    nodes = _nodes(p)
    by_name = {c.name: c for c in fleet.clusters}
    serving: dict[tuple[str, str, str], int] = {}
    for e in existing:
        if not is_lost(by_name[e.cluster], s.failover, NOW):
            key = (e.cluster, e.instance_type, e.capacity_type)
            serving[key] = serving.get(key, 0) + e.ready
    for (name, it, ct), ready in serving.items():
        if ready == 0:
            continue
        o = next(o for o in by_name[name].offerings if o.instance_type == it)
        rpn = max(1, o.gpus_per_node // s.gpu.count)
        assert nodes.get((name, it, ct), 0) >= -(-ready // rpn), (name, it, ct, ready, nodes)
