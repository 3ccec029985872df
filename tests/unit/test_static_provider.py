"""The static provider reads pre-provisioned nodes through a ClusterClient and never changes
anything: capacity it does not have is a stockout, so placement falls through."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelfleet.api import FleetCluster
from modelfleet.clusters.errors import ClusterForbidden
from modelfleet.clusters.fake import InMemoryClusterClient
from modelfleet.core.from_api import declared_offerings
from modelfleet.providers import (
    InsufficientCapacity,
    InvalidConfiguration,
    NotFound,
    PermissionDenied,
    PoolSpec,
    Unreachable,
)
from modelfleet.providers.base import pool_id
from modelfleet.providers.factory import provider_for
from modelfleet.providers.static import StaticNodePoolProvider
from modelfleet.reconciler.node_source import ClusterNodeSource


def cluster() -> FleetCluster:
    return FleetCluster.model_validate(
        {
            "metadata": {"name": "onprem-1"},
            "spec": {
                "provider": "static",
                "region": "eu-west-onprem",
                "gpuOfferings": [
                    {
                        "gpu": "H100",
                        "gpuMemoryGiB": 80,
                        "gpusPerNode": 8,
                        "instanceType": "dgx-h100",
                        "onDemandPerHour": 30.0,
                    }
                ],
            },
        }
    )


@pytest.fixture
def nodes() -> InMemoryClusterClient:
    client = InMemoryClusterClient("onprem-1")
    client.add_node("dgx-1", instance_type="dgx-h100")
    client.add_node("dgx-2", instance_type="dgx-h100")
    client.add_node("dgx-3", instance_type="dgx-h100", ready=False)
    client.add_node("cpu-1", instance_type="cpu-only", gpus=0)
    # Labelled but undeclared, with GPU feature discovery labels: discovered without a price.
    client.add_node(
        "l40s-1",
        instance_type="l40s-box",
        capacity_type="Spot",
        gpus=4,
        extra_labels={"nvidia.com/gpu.product": "NVIDIA-L40S", "nvidia.com/gpu.memory": "46068"},
    )
    client.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "unlabelled"}})
    return client


@pytest.fixture
def provider(nodes: InMemoryClusterClient) -> StaticNodePoolProvider:
    built = provider_for(
        cluster(),
        nodes=ClusterNodeSource(nodes, cluster="onprem-1"),
        clock=lambda: datetime.now(UTC),
    )
    assert type(built) is StaticNodePoolProvider  # the contract: test_provider_contract.py
    return built


def spec(nodes: int) -> PoolSpec:
    return PoolSpec(
        cluster="onprem-1",
        offering=declared_offerings(cluster())[0],
        capacity_type="OnDemand",
        nodes=nodes,
    )


async def test_offerings_count_the_labelled_nodes_and_discover_undeclared_gpus(
    provider: StaticNodePoolProvider,
) -> None:
    offerings = {o.instance_type: o for o in await provider.discover_offerings()}

    assert offerings["dgx-h100"].max_nodes == 3
    assert offerings["dgx-h100"].on_demand_per_hour == 30.0
    l40s = offerings["l40s-box"]
    assert (l40s.gpu, l40s.gpus_per_node, l40s.max_nodes, l40s.on_demand_per_hour) == (
        "NVIDIA-L40S", 4, 1, None,
    )  # fmt: skip
    assert round(l40s.gpu_memory_gib) == 45
    assert "cpu-only" not in offerings  # no GPU labels: nothing to offer


async def test_ensure_pool_returns_the_pool_when_enough_nodes_are_ready(
    provider: StaticNodePoolProvider, nodes: InMemoryClusterClient
) -> None:
    pool = await provider.ensure_pool(spec(2))

    assert pool.name == pool_id("onprem-1", "dgx-h100", "OnDemand")
    assert (pool.desired_nodes, pool.ready_nodes, pool.state) == (3, 2, "Degraded")
    assert not pool.managed
    assert {c.method for c in nodes.calls} == {"list_nodes"}  # read only


async def test_static_capacity_cannot_grow_so_more_is_a_stockout(
    provider: StaticNodePoolProvider,
) -> None:
    with pytest.raises(InsufficientCapacity, match="cannot grow: 2 ready") as caught:
        await provider.ensure_pool(spec(3))

    assert (caught.value.instance_type, caught.value.capacity_type) == ("dgx-h100", "OnDemand")


async def test_pools_are_listed_per_instance_and_capacity_type_and_never_deleted(
    provider: StaticNodePoolProvider,
) -> None:
    pools = await provider.list_pools()

    assert [(p.instance_type, p.capacity_type, p.ready_nodes) for p in pools] == [
        ("cpu-only", "OnDemand", 1),
        ("dgx-h100", "OnDemand", 2),
        ("l40s-box", "Spot", 1),
    ]
    with pytest.raises(InvalidConfiguration, match="never deleted"):
        await provider.delete_pool(pools[1].name)
    await provider.delete_pool("no-such-pool")  # already gone: fine


async def test_get_pool_of_missing_capacity_is_not_found(provider: StaticNodePoolProvider) -> None:
    missing = PoolSpec(
        cluster="onprem-1",
        offering=declared_offerings(cluster())[0],
        capacity_type="Spot",
        nodes=1,
    )

    with pytest.raises(NotFound):
        await provider.get_pool(missing)
    assert (await provider.get_pool(spec(1))).ready_nodes == 2


async def test_cluster_errors_become_provider_errors(
    provider: StaticNodePoolProvider, nodes: InMemoryClusterClient
) -> None:
    nodes.set_unreachable()
    with pytest.raises(Unreachable):
        await provider.list_pools()
    nodes.set_unreachable(False)
    nodes.fail_next(ClusterForbidden("nodes is forbidden", verb="list", resource="nodes"))
    with pytest.raises(PermissionDenied) as caught:
        await provider.ensure_pool(spec(1))
    assert caught.value.permission is not None and "nodes" in caught.value.permission
