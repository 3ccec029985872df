"""The simulated provider on a virtual clock: provisioning delay, stockouts, quota, outages,
spot reclaim — what the reconciler and the simulator observe through the provider contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelfleet.api import FleetCluster
from modelfleet.api.common import CapacityType
from modelfleet.clusters.fake import InMemoryClusterClient
from modelfleet.core import Offering
from modelfleet.core.from_api import declared_offerings
from modelfleet.providers import (
    InsufficientCapacity,
    InvalidConfiguration,
    NotFound,
    PoolSpec,
    QuotaExceeded,
    Throttled,
    Unreachable,
)
from modelfleet.providers.factory import provider_for
from modelfleet.providers.simulated import SimulatedNodePoolProvider

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class VirtualClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def cluster(*, provisioning_seconds: float = 120, max_nodes: int | None = 4) -> FleetCluster:
    return FleetCluster.model_validate(
        {
            "metadata": {"name": "sim-use1"},
            "spec": {
                "provider": "simulated",
                "region": "us-east-1",
                "simulated": {"provisioningSeconds": provisioning_seconds},
                "gpuOfferings": [
                    {
                        "gpu": "H100",
                        "gpuMemoryGiB": 80,
                        "gpusPerNode": 8,
                        "instanceType": "p5.48xlarge",
                        "onDemandPerHour": 98.32,
                        "spotPerHour": 39.2,
                        "maxNodes": max_nodes,
                    },
                    {
                        "gpu": "L40S",
                        "gpuMemoryGiB": 48,
                        "gpusPerNode": 4,
                        "instanceType": "g6e.12xlarge",
                        "onDemandPerHour": 10.5,
                    },
                ],
            },
        }
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def provider(clock: VirtualClock) -> SimulatedNodePoolProvider:
    return SimulatedNodePoolProvider(cluster(), clock=clock)


def spec(
    nodes: int, capacity: CapacityType = "OnDemand", instance_type: str = "p5.48xlarge"
) -> PoolSpec:
    offering = next(o for o in declared_offerings(cluster()) if o.instance_type == instance_type)
    return PoolSpec(cluster="sim-use1", offering=offering, capacity_type=capacity, nodes=nodes)


def test_factory_builds_it_and_it_honours_the_protocol(clock: VirtualClock) -> None:
    built = provider_for(cluster(), nodes=InMemoryClusterClient(), clock=clock)

    assert type(built) is SimulatedNodePoolProvider  # the contract: test_provider_contract.py


async def test_offerings_are_the_declared_ones(provider: SimulatedNodePoolProvider) -> None:
    offerings = await provider.discover_offerings()

    assert [(o.instance_type, o.gpu, o.max_nodes) for o in offerings] == [
        ("p5.48xlarge", "H100", 4),
        ("g6e.12xlarge", "L40S", None),
    ]


async def test_nodes_become_ready_after_the_provisioning_delay(
    provider: SimulatedNodePoolProvider, clock: VirtualClock
) -> None:
    created = await provider.ensure_pool(spec(2))
    clock.advance(119)
    almost = await provider.get_pool(spec(2))
    clock.advance(1)
    ready = await provider.get_pool(spec(2))

    assert (created.desired_nodes, created.ready_nodes, created.state) == (2, 0, "Creating")
    assert almost.ready_nodes == 0
    assert (ready.ready_nodes, ready.state) == (2, "Active")
    assert ready.managed and ready.tags["modelfleet.io/managed"] == "true"


async def test_ensure_pool_is_idempotent_and_resizes(
    provider: SimulatedNodePoolProvider, clock: VirtualClock
) -> None:
    await provider.ensure_pool(spec(2))
    clock.advance(300)
    same = await provider.ensure_pool(spec(2))
    grown = await provider.ensure_pool(spec(3))
    clock.advance(300)
    shrunk = await provider.ensure_pool(spec(1))

    assert (same.desired_nodes, same.ready_nodes) == (2, 2)
    assert (grown.desired_nodes, grown.ready_nodes, grown.state) == (3, 2, "Updating")
    assert (shrunk.desired_nodes, shrunk.ready_nodes) == (1, 1)
    assert len(await provider.list_pools()) == 1


async def test_stockout_refuses_growth_until_it_ends_but_allows_shrinking(
    provider: SimulatedNodePoolProvider, clock: VirtualClock
) -> None:
    await provider.ensure_pool(spec(2, "Spot"))
    provider.inject_stockout("p5.48xlarge", "Spot", until=T0 + timedelta(minutes=10))

    with pytest.raises(InsufficientCapacity) as caught:
        await provider.ensure_pool(spec(3, "Spot"))
    assert (caught.value.instance_type, caught.value.capacity_type) == ("p5.48xlarge", "Spot")
    assert (await provider.ensure_pool(spec(1, "Spot"))).desired_nodes == 1
    assert (await provider.ensure_pool(spec(1, "OnDemand"))).desired_nodes == 1  # other capacity

    clock.advance(600)
    assert (await provider.ensure_pool(spec(3, "Spot"))).desired_nodes == 3


async def test_a_stocked_out_pool_is_not_created(provider: SimulatedNodePoolProvider) -> None:
    provider.inject_stockout("p5.48xlarge", "OnDemand", until=T0 + timedelta(hours=1))

    with pytest.raises(InsufficientCapacity):
        await provider.ensure_pool(spec(1))
    with pytest.raises(NotFound):
        await provider.get_pool(spec(1))


async def test_max_nodes_is_a_quota_across_capacity_types(
    provider: SimulatedNodePoolProvider,
) -> None:
    await provider.ensure_pool(spec(3, "OnDemand"))

    with pytest.raises(QuotaExceeded) as caught:
        await provider.ensure_pool(spec(2, "Spot"))
    assert caught.value.instance_type == "p5.48xlarge"
    assert (await provider.ensure_pool(spec(1, "Spot"))).desired_nodes == 1


async def test_outage_makes_every_call_unreachable_until_it_ends(
    provider: SimulatedNodePoolProvider, clock: VirtualClock
) -> None:
    provider.inject_outage(until=T0 + timedelta(seconds=60))

    with pytest.raises(Unreachable):
        await provider.ensure_pool(spec(1))
    with pytest.raises(Unreachable):
        await provider.list_pools()
    clock.advance(60)
    assert (await provider.ensure_pool(spec(1))).desired_nodes == 1

    provider.inject_outage()
    with pytest.raises(Unreachable):
        await provider.discover_offerings()
    provider.clear_outage()
    assert await provider.discover_offerings()


async def test_spot_reclaim_drops_nodes_and_reports_the_issue_until_replaced(
    provider: SimulatedNodePoolProvider, clock: VirtualClock
) -> None:
    await provider.ensure_pool(spec(3, "Spot"))
    clock.advance(120)

    assert provider.reclaim_spot("p5.48xlarge", nodes=2) == 2
    hit = await provider.get_pool(spec(3, "Spot"))
    clock.advance(120)
    healed = await provider.get_pool(spec(3, "Spot"))

    assert (hit.desired_nodes, hit.ready_nodes, hit.state) == (3, 1, "Updating")
    assert [i.code for i in hit.issues] == ["SpotReclaimed"]
    assert (healed.ready_nodes, healed.issues) == (3, ())


async def test_spot_replacements_wait_for_a_stockout_to_end(
    provider: SimulatedNodePoolProvider, clock: VirtualClock
) -> None:
    await provider.ensure_pool(spec(2, "Spot"))
    await provider.ensure_pool(spec(1, "OnDemand"))
    clock.advance(120)
    provider.inject_stockout("p5.48xlarge", "Spot", until=clock.now + timedelta(minutes=30))

    assert provider.reclaim_spot() == 2  # on-demand nodes are never reclaimed
    clock.advance(600)
    starved = await provider.get_pool(spec(2, "Spot"))
    clock.advance(1200 + 120)
    back = await provider.get_pool(spec(2, "Spot"))

    assert starved.ready_nodes == 0
    assert {i.code for i in starved.issues} == {"SpotReclaimed", "InsufficientCapacity"}
    assert back.ready_nodes == 2
    assert (await provider.get_pool(spec(1, "OnDemand"))).ready_nodes == 1


async def test_invalid_requests_are_invalid_configuration(
    provider: SimulatedNodePoolProvider,
) -> None:
    unknown = PoolSpec(
        cluster="sim-use1",
        offering=Offering(
            gpu="A100", gpu_memory_gib=80, gpus_per_node=8, instance_type="p4d.24xlarge",
            on_demand_per_hour=32.0,
        ),
        capacity_type="OnDemand",
        nodes=1,
    )  # fmt: skip

    with pytest.raises(InvalidConfiguration, match=r"offers no p4d\.24xlarge"):
        await provider.ensure_pool(unknown)
    with pytest.raises(InvalidConfiguration, match="no spot market"):
        await provider.ensure_pool(spec(1, "Spot", instance_type="g6e.12xlarge"))


async def test_calls_are_recorded_and_the_next_error_injected(
    provider: SimulatedNodePoolProvider,
) -> None:
    provider.fail_next(Throttled("slow down", retry_after=2))

    with pytest.raises(Throttled):
        await provider.ensure_pool(spec(1))
    pool = await provider.ensure_pool(spec(1))
    await provider.delete_pool(pool.name)
    await provider.delete_pool(pool.name)  # idempotent

    assert [c.method for c in provider.calls] == [
        "ensure_pool", "ensure_pool", "delete_pool", "delete_pool",
    ]  # fmt: skip
    assert await provider.list_pools() == []
