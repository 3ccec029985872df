"""Issue #5 end to end: the real operator over three real cloud providers.

A hub and three member clusters (KMock emulators over HTTP) and three FleetClusters:

- ``aws-use1``: provider aws, the real ``AwsNodePoolProvider`` (boto3) against a moto
  server holding the EKS cluster; the cheapest H100s, so every plan tries it first.
- ``gcp-usc1``: provider gcp, built by the operator itself from the FleetCluster (credentials
  Secret with a service-account key, endpoints from MODELFLEET_GCP_*_ENDPOINT) against the
  GKE + Compute REST stub; second choice.
- ``azure-eus``: provider azure against the ARM stub (MODELFLEET_AZURE_BASE_URL, live prices
  off); third choice.

AWS and Azure providers need seams the operator cannot build from a FleetCluster (a fault-
injecting boto3 session; a fixed Entra token), so the test makes them and hands them to the
operator with ``ProviderRegistry.install`` before kopf starts.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto.server")
pytest.importorskip("google.cloud.compute_v1")
pytest.importorskip("google.cloud.container_v1")
pytest.importorskip("azure.mgmt.containerservice")

from tests.integration.cloud_fixtures import (
    EksCluster,
    FaultySession,
    StaticToken,
    client_error,
    create_eks_cluster,
    fail,
    moto_server,
    no_google_access_boundary_lookup,
    seed_gcp,
    service_account_key,
    use_moto,
    warm_up_moto,
)
from tests.integration.cloud_stubs import CloudStub, Recorded
from tests.integration.operator_harness import (
    MD_PATH,
    SYSTEM_NS,
    Fleet,
    eventually,
    fleet_of,
    model_deployment,
    operator_prepared,
)

from modelfleet import labels
from modelfleet.api import FleetCluster
from modelfleet.providers.aws import AwsNodePoolProvider
from modelfleet.providers.azure import AzureNodePoolProvider
from modelfleet.providers.base import pool_id
from modelfleet.runtime import OperatorContext

pytestmark = pytest.mark.integration

AWS, GCP, AZURE = "aws-use1", "gcp-usc1", "azure-eus"
AWS_REGION = "us-east-1"
GCP_PROJECT, GCP_REGION, GCP_ZONE = "ml-prod-12345", "us-central1", "us-central1-a"
GKE_CLUSTER = f"/v1/projects/{GCP_PROJECT}/locations/{GCP_REGION}/clusters/serving"
AZURE_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"
# One 8-GPU H100 node per replica in every cloud; prices rank aws < gcp < azure for both
# on-demand and spot.
AWS_H100, GCP_H100, AZURE_H100 = "p5.48xlarge", "a3-highgpu-8g", "Standard_ND96isr_H100_v5"
ICE_MESSAGE = (
    "We currently do not have sufficient p5.48xlarge capacity in the Availability Zone you "
    "requested (us-east-1a). Our system will be working on provisioning additional capacity."
)
MD = MD_PATH.format(ns="default")


def _h100(instance_type: str, on_demand: float, spot: float) -> dict[str, Any]:
    return {
        "gpu": "H100",
        "gpuMemoryGiB": 80,
        "gpusPerNode": 8,
        "instanceType": instance_type,
        "onDemandPerHour": on_demand,
        "spotPerHour": spot,
        "maxNodes": 4,
    }


def _fleet_cluster(name: str, provider: str, region: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "FleetCluster",
        "metadata": {"name": name, "labels": {"tier": "prod"}},
        "spec": {
            "provider": provider,
            "region": region,
            "kubeconfigSecretRef": {"namespace": SYSTEM_NS, "name": name, "key": "kubeconfig"},
            **spec,
        },
    }


def _clusters(eks: EksCluster) -> dict[str, dict[str, Any]]:
    return {
        AWS: _fleet_cluster(
            AWS,
            "aws",
            AWS_REGION,
            aws={
                "clusterName": eks.name,
                "nodeRoleArn": eks.node_role_arn,
                "subnetIds": eks.subnet_ids,
            },
            gpuOfferings=[_h100(AWS_H100, 30.0, 12.0)],
        ),
        GCP: _fleet_cluster(
            GCP,
            "gcp",
            GCP_REGION,
            zones=[GCP_ZONE],
            gcp={"project": GCP_PROJECT, "location": GCP_REGION, "clusterName": "serving"},
            credentialsSecretRef={"namespace": SYSTEM_NS, "name": "gcp-credentials"},
            gpuOfferings=[_h100(GCP_H100, 40.0, 16.0)],
        ),
        AZURE: _fleet_cluster(
            AZURE,
            "azure",
            "eastus",
            azure={
                "subscriptionId": AZURE_SUBSCRIPTION,
                "resourceGroup": "ml-serving",
                "clusterName": "aks-prod",
            },
            gpuOfferings=[_h100(AZURE_H100, 50.0, 20.0)],
        ),
    }


# -- the clouds ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        warm_up_moto(url, region=AWS_REGION)
        yield url


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStub]:
    with CloudStub(tmp_path_factory.mktemp("cloud-stub")) as server:
        yield server


@dataclass
class Clouds:
    aws: FaultySession
    eks: EksCluster
    gcp: CloudStub

    def eks_nodegroups(self) -> list[str]:
        """Node groups in the EKS cluster, as moto holds them."""
        import boto3

        eks = boto3.client("eks", region_name=AWS_REGION)  # AWS_ENDPOINT_URL: moto
        groups: list[str] = eks.list_nodegroups(clusterName=self.eks.name)["nodegroups"]
        return groups

    def gke_creates(self) -> dict[str, dict[str, Any]]:
        """GKE nodePools create requests received, by pool name."""
        requests: list[Recorded] = self.gcp.calls("POST", GKE_CLUSTER + "/nodePools$")
        return {r.body["nodePool"]["name"]: r.body["nodePool"] for r in requests if r.body}

    def gke_set_size_requests(self, pool: str) -> list[int]:
        """Node counts of the setSize requests GKE received for ``pool``, in order (proto
        JSON leaves a count of 0 out)."""
        requests = self.gcp.calls("POST", f"{GKE_CLUSTER}/nodePools/{pool}:setSize$")
        return [int((r.body or {}).get("nodeCount", 0)) for r in requests]

    def gke_nodes(self, pool: str) -> int | None:
        """The pool's size as GKE holds it (its instance groups' target sizes)."""
        found = self.gcp.gke_pools.get((GCP_PROJECT, GCP_REGION, "serving"), {}).get(pool)
        if found is None:
            return None
        sizes = []
        for url in found["instanceGroupUrls"]:
            parts = url.split("/")
            sizes.append(self.gcp.igms[(parts[-5], parts[-3], parts[-1])]["targetSize"])
        return sum(sizes)


@pytest.fixture
def clouds(
    moto_url: str, stub: CloudStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Clouds:
    use_moto(monkeypatch, moto_url, tmp_path, AWS_REGION)
    eks = create_eks_cluster(moto_url, region=AWS_REGION, name="prod-use1")
    stub.gke_pools.clear()
    stub.igms.clear()
    stub.aks_pools.clear()
    stub.faults.clear()
    stub.clear_calls()
    seed_gcp(
        stub,
        project=GCP_PROJECT,
        region=GCP_REGION,
        zone=GCP_ZONE,
        machine_types={GCP_H100: ("nvidia-h100-80gb", 8)},
    )
    monkeypatch.setenv("MODELFLEET_GCP_CONTAINER_ENDPOINT", stub.http_url)
    monkeypatch.setenv("MODELFLEET_GCP_COMPUTE_ENDPOINT", stub.http_url)
    no_google_access_boundary_lookup(monkeypatch)
    monkeypatch.setenv("MODELFLEET_AZURE_BASE_URL", stub.https_url)
    monkeypatch.setenv("MODELFLEET_AZURE_LIVE_PRICES", "false")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stub.ca_file))
    return Clouds(aws=FaultySession(), eks=eks, gcp=stub)


@pytest.fixture
async def fleet(
    clouds: Clouds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Fleet]:
    async with fleet_of(tmp_path, monkeypatch, _clusters(clouds.eks)) as running:
        key = service_account_key(
            project=GCP_PROJECT, token_uri=f"{clouds.gcp.http_url}/oauth2/token"
        )
        running.hub.put(
            "v1/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "gcp-credentials",
                    "namespace": SYSTEM_NS,
                    "resourceVersion": "1",
                },
                "data": {"service_account.json": base64.b64encode(key.encode()).decode()},
            },
        )
        yield running


def install_providers(
    fleet: Fleet, aws_sessions: Callable[..., Any]
) -> Callable[[OperatorContext], Awaitable[None]]:
    """AWS with ``aws_sessions`` (the provider's ``session_factory`` seam: a fault-injecting
    session over moto), Azure with a fixed token; GCP is left to the operator (built from
    its FleetCluster and credentials Secret)."""

    async def install(context: OperatorContext) -> None:
        aws = FleetCluster.model_validate(await fleet.fc(AWS))
        await context.providers.install(aws, AwsNodePoolProvider(aws, session_factory=aws_sessions))
        azure = FleetCluster.model_validate(await fleet.fc(AZURE))
        await context.providers.install(
            azure, AzureNodePoolProvider(azure, sdk_credential=StaticToken())
        )

    return install


async def _ready(fleet: Fleet) -> None:
    """Every FleetCluster Healthy in the operator's own view (``Fleet.until_healthy``)."""
    await fleet.until_healthy(AWS, GCP, AZURE)


def _workloads(fleet: Fleet, member: str) -> list[dict[str, Any]]:
    emulator = fleet.members[member]
    return [
        obj
        for resource in ("apps/v1/deployments", "v1/services", "policy/v1/poddisruptionbudgets")
        for obj in emulator.objects(resource, namespace="default")
    ]


def _h100_deployment(name: str, **spec: Any) -> dict[str, Any]:
    """A ModelDeployment of whole-node (8 x H100) replicas: one node per replica."""
    return model_deployment(
        name,
        resources={"gpu": {"count": 8, "memoryGiB": 80, "types": ["H100"]}},
        replicas={"min": 2, "max": 4},
        **spec,
    )


# -- the tests -------------------------------------------------------------------------------


async def test_aws_stockout_falls_through_to_gke_in_one_reconcile(
    fleet: Fleet, clouds: Clouds
) -> None:
    # EKS refuses every node group: no p5.48xlarge capacity, on-demand or spot.
    clouds.aws.sticky["create_nodegroup"] = fail(
        client_error("InsufficientInstanceCapacity", ICE_MESSAGE, operation="CreateNodegroup")
    )
    async with operator_prepared(fleet, install_providers(fleet, clouds.aws.factory)):
        await _ready(fleet)
        md = _h100_deployment(
            "llama", placement={"capacity": {"spot": "Allowed", "onDemandBase": 1}}
        )
        started = time.monotonic()
        await fleet.kubectl.create(MD, md)
        await eventually(lambda: fleet.replicas(GCP) == 2, what="two replicas in gcp")
        elapsed = time.monotonic() - started
        print(f"\napply -> workloads in gcp after the aws stockout: {elapsed:.2f}s")

        # AWS was asked first (it is the cheapest) and refused.
        asked = {c["instanceTypes"][0] for c in clouds.aws.called("create_nodegroup")}
        assert asked == {AWS_H100}
        [stockout, *_] = await eventually(lambda: fleet.events("Stockout"), what="a Stockout event")
        assert stockout["type"] == "Warning"
        assert stockout["involvedObject"]["kind"] == "ModelDeployment"
        assert stockout["involvedObject"]["name"] == "llama"
        assert AWS in stockout["message"] and AWS_H100 in stockout["message"]

        async def aws_stockouts() -> list[dict[str, Any]]:
            fc = await fleet.fc(AWS)
            return list(((fc or {}).get("status") or {}).get("stockouts") or [])

        marks = await eventually(aws_stockouts, what="status.stockouts on the aws FleetCluster")
        assert {(m["gpu"], m["instanceType"]) for m in marks} == {("H100", AWS_H100)}

        async def placed() -> list[dict[str, Any]] | None:
            body = await fleet.md("llama")
            placements = ((body or {}).get("status") or {}).get("placements") or []
            return placements if sum(p["replicas"] for p in placements) == 2 else None

        placements = await eventually(placed, what="status.placements of both replicas")
        assert {p["cluster"] for p in placements} == {GCP}
        assert {p["cloud"] for p in placements} == {"gcp"}
        # The capacity asked of AWS is the capacity obtained from GKE instead.
        assert {m["capacityType"] for m in marks} == {p["capacityType"] for p in placements}

        # One GKE node pool per (machine type, capacity type), named mf-<pool id>, with the
        # H100s attached, spot exactly for Spot placements, pinned to the cluster's zone.
        creates = clouds.gke_creates()
        assert len(creates) == len(placements)
        deployments = {
            d["spec"]["template"]["spec"]["nodeSelector"][labels.NODE_CAPACITY_TYPE]: d
            for d in fleet.deployments(GCP)
        }
        for placement in placements:
            name = "mf-" + pool_id(GCP, placement["instanceType"], placement["capacityType"])
            pool = creates[name]
            config = pool["config"]
            assert config["machineType"] == GCP_H100
            [accelerator] = config["accelerators"]
            assert accelerator["acceleratorType"] == "nvidia-h100-80gb"
            assert int(accelerator["acceleratorCount"]) == 8
            assert bool(config.get("spot", False)) is (placement["capacityType"] == "Spot")
            assert int(pool["initialNodeCount"]) == placement["replicas"]
            assert pool["locations"] == [GCP_ZONE]
            assert config["resourceLabels"]["modelfleet-io-managed"] == "true"
            # The workload lands on exactly this pool's nodes.
            capacity = labels.capacity_label(placement["capacityType"])
            selector = deployments[capacity]["spec"]["template"]["spec"]["nodeSelector"]
            assert selector.items() <= config["labels"].items()

        # Deployment, Service and PDB in gcp; nothing in aws (or azure); no EKS group left.
        await eventually(
            lambda: (
                {w["kind"] for w in _workloads(fleet, GCP)}
                == {"Deployment", "Service", "PodDisruptionBudget"}
            ),
            what="Deployment, Service and PDB in gcp",
        )
        assert _workloads(fleet, AWS) == []
        assert _workloads(fleet, AZURE) == []
        assert clouds.gcp.calls("PUT", "/agentPools/") == []
        assert clouds.eks_nodegroups() == []


async def test_gke_pool_follows_replicas_and_shrinks_to_zero_on_delete(
    fleet: Fleet, clouds: Clouds
) -> None:
    async with operator_prepared(fleet, install_providers(fleet, clouds.aws.factory)):
        await _ready(fleet)
        await fleet.kubectl.create(MD, _h100_deployment("llama", placement={"clouds": ["gcp"]}))
        pool = "mf-" + pool_id(GCP, GCP_H100, "OnDemand")
        await eventually(lambda: fleet.replicas(GCP) == 2, what="two replicas in gcp")
        assert clouds.gke_nodes(pool) == 2
        clouds.gcp.settle_gke()  # GKE finishes creating the pool

        await fleet.kubectl.patch(f"{MD}/llama", {"spec": {"replicas": {"min": 3, "max": 4}}})
        await eventually(lambda: fleet.replicas(GCP) == 3, what="three replicas in gcp")
        await eventually(lambda: clouds.gke_nodes(pool) == 3, what="GKE pool resized to 3 nodes")
        assert clouds.gke_set_size_requests(pool) == [3]
        clouds.gcp.settle_gke()  # the resize finished

        await fleet.kubectl.delete(f"{MD}/llama")
        await eventually(lambda: not _workloads(fleet, GCP), what="workloads removed from gcp")
        await eventually(lambda: clouds.gke_nodes(pool) == 0, what="GKE pool shrunk to 0 nodes")
        assert clouds.gke_set_size_requests(pool) == [3, 0]
        await eventually(lambda: _gone(fleet), what="ModelDeployment removed from the hub")
        # Nothing was ever placed elsewhere.
        assert clouds.aws.called("create_nodegroup") == []
        assert clouds.gcp.calls("PUT", "/agentPools/") == []


async def _gone(fleet: Fleet) -> bool:
    return await fleet.md("llama") is None
