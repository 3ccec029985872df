"""The simulator shows a spot interruption notice to the operator the way a member cluster
does (docs/simulation.md "Nodes and pods"): with ``spot.drainOnNotice`` the nodes to go get
a Node object in the cluster's API, tainted as GKE (gcp) or the AWS Node Termination
Handler (aws) taints them, or cordoned (any other cloud), from the notice until they go.
The FleetCluster probe reads them (``ClusterProbe.leaving_nodes``), and the planner then
takes no warm node from them (tests/unit/reconciler/test_warm_nodes_under_notice.py).
Without the drain (no handler in the fleet) nothing is shown, as in such a fleet."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from modelfleet.clusters.objects import NODE
from modelfleet.providers.base import PoolSpec
from modelfleet.sim.engine import SCENARIO_EPOCH
from modelfleet.sim.fleet import FleetWorld, VirtualClock
from modelfleet.sim.scenario import load_scenario

EXAMPLES = Path(__file__).parents[3] / "examples" / "scenarios"
NOTICE = 25 * 60.0


def _world(tmp_path: Path, *, cloud: str, drain: bool) -> FleetWorld:
    path = tmp_path / f"notice-{cloud}-{drain}.toml"
    path.write_text(
        f"""
name = "notice"
seed = 1
durationHours = 0.5
startHour = 14
fleet = ["{(EXAMPLES / "fleet").as_posix()}"]

[[deployments]]
manifest = "{(EXAMPLES / "deployments" / "code.yaml").as_posix()}"
[deployments.traffic]
peakRps = 1
troughRps = 1

[[events]]
type = "spotReclaim"
at = "0:25"
cloud = "{cloud}"
fraction = 0.5

[world.spot]
drainOnNotice = {"true" if drain else "false"}
"""
    )
    scenario = load_scenario(path)
    clock = VirtualClock(SCENARIO_EPOCH + timedelta(hours=14))
    return FleetWorld(
        scenario,
        world=scenario.spec.world,
        clock=clock,
        seed=1,
        offset=0,
        workloads_from_clients=True,
    )


async def _four_ready_spot_nodes(world: FleetWorld, cluster: str) -> str:
    """Grow the cluster's first spot offering to 4 nodes and let them get Ready."""
    twin = world.clusters[cluster]
    offering = next(
        o
        for o in twin.offerings.values()
        if o.spot_per_hour is not None and (o.max_nodes is None or o.max_nodes >= 4)
    )
    await twin.provider.ensure_pool(PoolSpec(cluster, offering, "Spot", 4))
    world.clock.set(NOTICE - 60.0)  # past any provisioning delay, before the notice
    assert twin.provider.node_counts()[offering.instance_type, "Spot"] == (4, 4)
    return offering.instance_type


@pytest.mark.parametrize(
    ("cloud", "taint"),
    [
        ("gcp", "cloud.google.com/impending-node-termination"),
        ("aws", "aws-node-termination-handler/spot-itn"),
        ("azure", None),
    ],
)
async def test_the_nodes_to_go_are_marked_from_the_notice_until_they_go(
    tmp_path: Path, cloud: str, taint: str | None
) -> None:
    world = _world(tmp_path, cloud=cloud, drain=True)
    twin = next(t for t in world.twins() if t.cloud == cloud)
    instance_type = await _four_ready_spot_nodes(world, twin.name)
    assert (await twin.client.probe()).leaving_nodes == {}

    notice = world.offset + NOTICE
    world.clock.set(notice)
    world.fire_events(notice)
    probe = await twin.client.probe()
    assert probe.leaving_nodes == {(instance_type, "Spot"): 2}  # half of 4
    nodes = await twin.client.list_nodes()
    if taint is None:
        assert all(not n.schedulable for n in nodes)
    else:
        for node in nodes:
            stored = twin.client.get(NODE, node.name)
            assert stored is not None
            assert {"key": taint, "effect": "NoSchedule"} in stored["spec"]["taints"]

    gone = notice + world.world.spot.notice(cloud)
    world.clock.set(gone)
    world.fire_events(gone)
    assert (await twin.client.probe()).leaving_nodes == {}
    assert twin.provider.node_counts()[instance_type, "Spot"][0] == 2


async def test_without_a_drain_nothing_shows_the_notice(tmp_path: Path) -> None:
    world = _world(tmp_path, cloud="gcp", drain=False)
    twin = next(t for t in world.twins() if t.cloud == "gcp")
    await _four_ready_spot_nodes(world, twin.name)
    notice = world.offset + NOTICE
    world.clock.set(notice)
    world.fire_events(notice)
    assert (await twin.client.probe()).leaving_nodes == {}
