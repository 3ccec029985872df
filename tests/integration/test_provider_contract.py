"""One contract suite run against every NodePoolProvider: AWS on moto's EKS, GCP and Azure
through their real SDK clients on the local REST stubs, static over an in-memory member
cluster, and simulated. Each provider has its own test file for what is specific to its
cloud (naming, error tables, discovery); this file holds what ``providers.base`` promises
of all of them, so a new provider is checked by adding one factory here.

The static provider is read-only by contract (pre-provisioned capacity): it is checked on
everything but resizing and deletion.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto.server")

from tests.integration import test_e2e_clouds as e2e
from tests.integration.cloud_fixtures import (
    StaticToken,
    create_eks_cluster,
    seed_gcp,
    use_moto,
)
from tests.integration.cloud_stubs import CloudStub
from tests.integration.test_e2e_clouds import (
    AWS,
    AWS_H100,
    AWS_REGION,
    AZURE,
    AZURE_H100,
    GCP,
    GCP_H100,
    GCP_PROJECT,
    GCP_REGION,
    GCP_ZONE,
    _clusters,
)

from modelfleet.api import FleetCluster
from modelfleet.clusters.fake import InMemoryClusterClient
from modelfleet.core import Offering
from modelfleet.core.from_api import declared_offerings
from modelfleet.providers import (
    InvalidConfiguration,
    NodePool,
    NodePoolProvider,
    NodeRef,
    NotFound,
    PoolSpec,
    RemovesNodes,
)
from modelfleet.providers.aws import AwsNodePoolProvider
from modelfleet.providers.azure import AzureNodePoolProvider
from modelfleet.providers.gcp import GcpNodePoolProvider
from modelfleet.providers.simulated import SimulatedNodePoolProvider
from modelfleet.providers.static import StaticNodePoolProvider
from modelfleet.reconciler.node_source import ClusterNodeSource

pytestmark = pytest.mark.integration


@dataclass
class Case:
    """A provider under test and a pool spec it can hold."""

    provider: NodePoolProvider
    cluster: FleetCluster
    offering: Offering
    resizable: bool = True
    settle: Callable[[], object] = lambda: None
    """Let the cloud finish its pending operations (the GKE stub completes them on demand)."""

    def spec(self, nodes: int, capacity_type: str = "OnDemand") -> PoolSpec:
        return PoolSpec(
            cluster=self.cluster.metadata.name,
            offering=self.offering,
            capacity_type=capacity_type,  # type: ignore[arg-type]
            nodes=nodes,
            zones=tuple(self.cluster.spec.zones or ()),
        )


# The e2e test's moto server and cloud stub, one of each per module.
moto_url, stub = e2e.moto_url, e2e.stub


def _offering(cluster: FleetCluster, instance_type: str) -> Offering:
    return next(o for o in declared_offerings(cluster) if o.instance_type == instance_type)


def _aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **_: Any) -> Case:
    use_moto(monkeypatch, moto_url, tmp_path, AWS_REGION)
    eks = create_eks_cluster(moto_url, region=AWS_REGION, name="prod-use1")
    cluster = FleetCluster.model_validate(_clusters(eks)[AWS])
    return Case(AwsNodePoolProvider(cluster), cluster, _offering(cluster, AWS_H100))


def _gcp(stub: CloudStub, **_: Any) -> Case:
    from google.auth.credentials import AnonymousCredentials

    stub.gke_pools.clear()
    stub.igms.clear()
    stub.igm_instances.clear()
    stub.faults.clear()
    seed_gcp(
        stub,
        project=GCP_PROJECT,
        region=GCP_REGION,
        zone=GCP_ZONE,
        machine_types={GCP_H100: ("nvidia-h100-80gb", 8)},
    )
    raw = _clusters(_NoEks())[GCP]
    raw["spec"].pop("credentialsSecretRef")
    cluster = FleetCluster.model_validate(raw)
    provider = GcpNodePoolProvider(
        cluster, endpoint=stub.http_url, sdk_credentials=AnonymousCredentials()
    )
    return Case(provider, cluster, _offering(cluster, GCP_H100), settle=stub.settle_gke)


def _azure(stub: CloudStub, monkeypatch: pytest.MonkeyPatch, **_: Any) -> Case:
    stub.aks_pools.clear()
    stub.aks_machines.clear()
    stub.faults.clear()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stub.ca_file))
    cluster = FleetCluster.model_validate(_clusters(_NoEks())[AZURE])
    provider = AzureNodePoolProvider(
        cluster,
        base_url=stub.https_url,
        sdk_credential=StaticToken(),
        live_prices=False,
        operation_wait=10,
    )
    return Case(provider, cluster, _offering(cluster, AZURE_H100))


def _static(**_: Any) -> Case:
    cluster = FleetCluster.model_validate(
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
    nodes = InMemoryClusterClient("onprem-1")
    for i in range(2):
        nodes.add_node(f"dgx-{i}", instance_type="dgx-h100")
    provider = StaticNodePoolProvider(cluster, nodes=ClusterNodeSource(nodes, cluster="onprem-1"))
    return Case(provider, cluster, _offering(cluster, "dgx-h100"), resizable=False)


def _simulated(**_: Any) -> Case:
    cluster = FleetCluster.model_validate(
        {
            "metadata": {"name": "sim-1"},
            "spec": {
                "provider": "simulated",
                "region": "us-east-1",
                "gpuOfferings": [
                    {
                        "gpu": "H100",
                        "gpuMemoryGiB": 80,
                        "gpusPerNode": 8,
                        "instanceType": "p5.48xlarge",
                        "onDemandPerHour": 98.0,
                        "spotPerHour": 40.0,
                    }
                ],
            },
        }
    )
    provider = SimulatedNodePoolProvider(cluster, clock=lambda: datetime.now(UTC))
    return Case(provider, cluster, _offering(cluster, "p5.48xlarge"))


@dataclass
class _NoEks:
    """The e2e fleet's EKS fields, unused by the GCP and Azure clusters."""

    name: str = "unused"
    node_role_arn: str = "arn:aws:iam::123456789012:role/unused"
    subnet_ids: tuple[str, ...] = ("subnet-unused",)


FACTORIES: dict[str, Callable[..., Case]] = {
    "aws": _aws,
    "gcp": _gcp,
    "azure": _azure,
    "static": _static,
    "simulated": _simulated,
}


@pytest.fixture(params=sorted(FACTORIES))
def case(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Case:
    name = request.param
    kwargs: dict[str, Any] = {"monkeypatch": monkeypatch, "tmp_path": tmp_path}
    if name == "aws":
        kwargs["moto_url"] = request.getfixturevalue("moto_url")
    if name in ("gcp", "azure"):
        kwargs["stub"] = request.getfixturevalue("stub")
    if name == "azure":
        monkeypatch.setenv("MODELFLEET_AZURE_LIVE_PRICES", "false")
    return FACTORIES[name](**kwargs)


async def _eventually(case: Case, call: Callable[[], Awaitable[NodePool]], nodes: int) -> NodePool:
    """Pools may take a new size only once the cloud's running operation is done."""
    pool = await call()
    for _ in range(5):
        if pool.desired_nodes == nodes:
            break
        case.settle()
        pool = await call()
    return pool


# -- the contract -------------------------------------------------------------------------


async def test_discovery_returns_offerings_never_not_found(case: Case) -> None:
    offerings = await case.provider.discover_offerings()
    assert all(isinstance(o, Offering) for o in offerings)
    types = {o.instance_type for o in offerings}
    assert case.offering.instance_type in types, f"declared offering missing: {types}"


async def test_ensure_pool_is_idempotent_and_get_pool_reads_it_back(case: Case) -> None:
    spec = case.spec(1)
    first = await case.provider.ensure_pool(spec)
    again = await case.provider.ensure_pool(spec)
    assert first.name == again.name
    assert (first.instance_type, first.capacity_type) == (spec.offering.instance_type, "OnDemand")
    read = await _eventually(case, lambda: case.provider.get_pool(spec), 1 if case.resizable else 2)
    assert read.name == first.name
    if case.resizable:
        assert read.desired_nodes == 1
        assert read.managed
    listed = {p.name for p in await case.provider.list_pools()}
    assert first.name in listed


async def test_get_pool_of_a_pool_never_made_is_not_found(case: Case) -> None:
    other = case.spec(1, capacity_type="Spot")
    with pytest.raises(NotFound):
        await case.provider.get_pool(other)


async def test_listed_pools_are_modelfleets_only(case: Case) -> None:
    await case.provider.ensure_pool(case.spec(1))
    for pool in await case.provider.list_pools():
        if case.resizable:
            assert pool.managed, f"{pool.name} listed without the ownership tag"
            assert pool.tags.get("modelfleet.io/managed") == "true"


async def test_negative_sizes_are_refused(case: Case) -> None:
    with pytest.raises(InvalidConfiguration):
        await case.provider.ensure_pool(case.spec(-1))


async def test_resize_to_zero_then_delete_is_idempotent(case: Case) -> None:
    if not case.resizable:
        pytest.skip("static capacity is never resized or deleted (read-only by contract)")
    spec = case.spec(2)
    made = await case.provider.ensure_pool(spec)
    zero = await _eventually(case, lambda: case.provider.ensure_pool(case.spec(0)), 0)
    assert zero.desired_nodes == 0
    await case.provider.delete_pool(made.name)
    await case.provider.delete_pool(made.name)  # already gone or going: fine
    try:
        gone = await case.provider.get_pool(spec)
    except NotFound:
        return
    assert gone.state == "Deleting"


async def test_remove_nodes_needs_the_pool_and_refuses_a_node_it_cannot_name(case: Case) -> None:
    """Every resizable provider removes chosen nodes (``RemovesNodes``); a providerID that is
    not one of its pool's instances is refused and changes nothing. Removing exactly the
    chosen node is checked per cloud (test_<cloud>_provider.py), where the test can see the
    instances."""
    if not case.resizable:
        assert not isinstance(case.provider, RemovesNodes)
        return
    assert isinstance(case.provider, RemovesNodes)
    with pytest.raises(NotFound):
        await case.provider.remove_nodes(case.spec(0), [])
    await case.provider.ensure_pool(case.spec(1))
    case.settle()
    stranger = NodeRef("elsewhere", "kind://not/a/cloud/instance")
    with pytest.raises(InvalidConfiguration):
        await case.provider.remove_nodes(case.spec(0), [stranger])
    pool = await _eventually(case, lambda: case.provider.get_pool(case.spec(1)), 1)
    assert pool.desired_nodes == 1
