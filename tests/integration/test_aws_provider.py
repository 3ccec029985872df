"""The AWS provider against moto in server mode: real boto3/botocore over real HTTP.

A ThreadedMotoServer on a free loopback port plays EC2, EKS, IAM and Auto Scaling; the
provider finds it through ``AWS_ENDPOINT_URL`` exactly as it would find AWS. What moto does
not do (capacity errors, throttling, access denied, health issues, EC2 quotas) is injected
by a fault-injecting session that wraps the real clients (or botocore's Stubber), so every
error still travels through botocore's real exception types.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto.server")

import boto3
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.stub import Stubber
from tests.integration.cloud_fixtures import (
    FaultySession,
    RecordingSleep,
    client_error,
    edit,
    fail,
    moto_server,
    use_moto,
)

from modelfleet import labels
from modelfleet.api.fleetcluster import FleetCluster
from modelfleet.core import Offering
from modelfleet.providers.aws import (
    AwsNodePoolProvider,
    capacity_issue,
    nodegroup_name,
)
from modelfleet.providers.base import KnowsNodes, NodeRef, PoolSpec, RemovesNodes
from modelfleet.providers.errors import (
    InsufficientCapacity,
    InvalidConfiguration,
    NotFound,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    Throttled,
    Unreachable,
)
from modelfleet.providers.gc import plan_orphan_gc, zero_size_spec

pytestmark = pytest.mark.integration

REGION = "us-east-1"
ACCOUNT = "123456789012"
EKS_CLUSTER = "prod-use1"
FLEET_CLUSTER = "aws-use1"
NODE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/modelfleet-nodes"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRETzz"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKENvalue0123456789"
H100 = Offering(
    gpu="H100",
    gpu_memory_gib=80,
    gpus_per_node=8,
    instance_type="p5.48xlarge",
    on_demand_per_hour=55.04,
    max_nodes=4,
    zones=("us-east-1a", "us-east-1b"),
)
L40S = Offering(
    gpu="L40S",
    gpu_memory_gib=44.7,
    gpus_per_node=1,
    instance_type="g6e.xlarge",
    on_demand_per_hour=1.861,
)


# -- moto server and the AWS world it holds ------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@dataclass
class World:
    """What the fixture made in moto: subnets by zone and a raw client factory."""

    url: str
    subnets: dict[str, str]
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=REGION, endpoint_url=self.url)
        return self.clients[service]


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    """An empty moto, found through AWS_ENDPOINT_URL with fake keys, no profile or IRSA."""
    use_moto(monkeypatch, moto_url, tmp_path, REGION)
    return moto_url


@pytest.fixture
def world(aws_env: str) -> World:
    """moto holding a VPC, three subnets, IAM roles and the EKS cluster ``prod-use1``."""
    moto_url = aws_env
    world = World(url=moto_url, subnets={})
    ec2 = world.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    for i, zone in enumerate(("us-east-1a", "us-east-1b", "us-east-1c")):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)
        world.subnets[zone] = subnet["Subnet"]["SubnetId"]
    iam = world.client("iam")
    trust = '{"Version":"2012-10-17","Statement":[]}'
    cluster_role = iam.create_role(RoleName="eks-cluster", AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName="modelfleet-nodes", AssumeRolePolicyDocument=trust)
    world.client("eks").create_cluster(
        name=EKS_CLUSTER,
        roleArn=cluster_role["Role"]["Arn"],
        resourcesVpcConfig={"subnetIds": sorted(world.subnets.values())},
    )
    return world


def fleet_cluster(
    *,
    name: str = FLEET_CLUSTER,
    cluster_name: str = EKS_CLUSTER,
    zones: list[str] | None = None,
    offerings: list[dict[str, Any]] | None = None,
    node_role: str | None = NODE_ROLE,
    subnet_ids: list[str] | None = None,
) -> FleetCluster:
    aws: dict[str, Any] = {"clusterName": cluster_name}
    if node_role:
        aws["nodeRoleArn"] = node_role
    if subnet_ids:
        aws["subnetIds"] = subnet_ids
    spec: dict[str, Any] = {"provider": "aws", "region": REGION, "aws": aws}
    if zones:
        spec["zones"] = zones
    if offerings:
        spec["gpuOfferings"] = offerings
    return FleetCluster.model_validate({"metadata": {"name": name}, "spec": spec})


def pool_spec(offering: Offering = H100, *, nodes: int = 2, capacity: str = "OnDemand") -> PoolSpec:
    return PoolSpec(
        cluster=FLEET_CLUSTER,
        offering=offering,
        capacity_type="Spot" if capacity == "Spot" else "OnDemand",
        nodes=nodes,
    )


# -- fault injection -------------------------------------------------------------------------


def lost_response(real: Callable[..., Any], params: dict[str, Any]) -> Any:
    """The call reaches AWS and takes effect, but the response never arrives."""
    real(**params)
    raise ReadTimeoutError(endpoint_url="https://eks.us-east-1.amazonaws.com")


def provider_with(
    session: FaultySession,
    cluster: FleetCluster | None = None,
    *,
    credentials: Mapping[str, str] | None = None,
    sleeps: RecordingSleep | None = None,
    clock: Callable[[], datetime] | None = None,
) -> AwsNodePoolProvider:
    return AwsNodePoolProvider(
        cluster or fleet_cluster(),
        credentials=credentials,
        session_factory=session.factory,
        sleep=sleeps or RecordingSleep(),
        rng=random.Random(7),
        clock=clock or (lambda: datetime(2025, 7, 1, 12, 0, tzinfo=UTC)),
    )


def nodegroups_in_eks(world: World) -> list[str]:
    return sorted(world.client("eks").list_nodegroups(clusterName=EKS_CLUSTER)["nodegroups"])


# -- construction ----------------------------------------------------------------------------


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "boto3", None)
    with pytest.raises(ProviderUnavailable, match=re.escape('"modelfleet[aws]"')):
        AwsNodePoolProvider(fleet_cluster())


def test_credentials_secret_missing_a_key_names_the_key_not_the_value() -> None:
    with pytest.raises(InvalidConfiguration) as caught:
        AwsNodePoolProvider(fleet_cluster(), credentials={"aws_access_key_id": SECRET_KEY})
    assert "aws_secret_access_key" in str(caught.value)
    assert SECRET_KEY not in str(caught.value)


# -- discovery -------------------------------------------------------------------------------


async def test_discovery_maps_gpus_zones_and_prices(world: World) -> None:
    offerings = await AwsNodePoolProvider(fleet_cluster()).discover_offerings()
    by_type = {o.instance_type: o for o in offerings}

    expected = {
        "p5.48xlarge": ("H100", 80.0, 8),
        "p5en.48xlarge": ("H200", 141.0, 8),
        "p4d.24xlarge": ("A100", 40.0, 8),
        "p4de.24xlarge": ("A100-80GB", 80.0, 8),
        "g6e.xlarge": ("L40S", 44.7, 1),
        "g6e.48xlarge": ("L40S", 44.7, 8),
        "g6.xlarge": ("L4", 22.35, 1),
        "g5.xlarge": ("A10G", 22.35, 1),
    }
    for instance_type, (gpu, memory, count) in expected.items():
        offering = by_type[instance_type]
        assert (offering.gpu, offering.gpu_memory_gib, offering.gpus_per_node) == (
            gpu,
            memory,
            count,
        )
    # On-demand from the bundled price table; spot from moto's DescribeSpotPriceHistory
    # (moto answers a placeholder price, the same in every zone).
    assert by_type["p5.48xlarge"].on_demand_per_hour == 55.04
    assert by_type["g6e.xlarge"].on_demand_per_hour == 1.861
    assert by_type["p5.48xlarge"].spot_per_hour == pytest.approx(0.00001)
    assert by_type["p4de.24xlarge"].zones == ("us-east-1b", "us-east-1c")
    assert all(o.max_nodes is None for o in offerings)  # moto has no EC2 quotas
    assert offerings == sorted(offerings, key=lambda o: o.instance_type)


async def test_discovery_merges_declared_offerings_field_by_field(world: World) -> None:
    cluster = fleet_cluster(
        zones=["us-east-1a", "us-east-1b"],
        offerings=[
            {
                "gpu": "H100",
                "gpuMemoryGiB": 80,
                "gpusPerNode": 8,
                "instanceType": "p5.48xlarge",
                "onDemandPerHour": 40.0,  # a negotiated price
                "maxNodes": 4,
            },
            {
                "gpu": "B200",
                "gpuMemoryGiB": 180,
                "gpusPerNode": 8,
                "instanceType": "p6-b200.48xlarge",  # not discovered: fills a gap
                "onDemandPerHour": 113.93,
                "spotPerHour": 60.0,
            },
        ],
    )
    offerings = await AwsNodePoolProvider(cluster).discover_offerings()
    by_type = {o.instance_type: o for o in offerings}

    h100 = by_type["p5.48xlarge"]
    assert h100.on_demand_per_hour == 40.0  # declared wins
    assert h100.max_nodes == 4  # declared wins
    assert h100.spot_per_hour == pytest.approx(0.00001)  # not declared: discovered kept
    assert h100.zones == ("us-east-1a", "us-east-1b")  # discovered, cut to spec.zones
    assert by_type["p6-b200.48xlarge"] == Offering(
        gpu="B200",
        gpu_memory_gib=180,
        gpus_per_node=8,
        instance_type="p6-b200.48xlarge",
        on_demand_per_hour=113.93,
        spot_per_hour=60.0,
    )
    assert by_type["p4de.24xlarge"].zones == ("us-east-1b",)
    assert by_type["p5en.48xlarge"].zones == ("us-east-1a",)  # offered in a and c only


async def test_discovery_reads_ec2_vcpu_quotas_into_max_nodes(world: World) -> None:
    def stub_quotas(client: Any) -> Any:
        stubber = Stubber(client)
        for code, value in (("L-DB2E81BA", 96.0), ("L-417A185B", 384.0)):  # G, then P
            stubber.add_response(
                "get_service_quota",
                {"Quota": {"QuotaCode": code, "Value": value}},
                {"ServiceCode": "ec2", "QuotaCode": code},
            )
        stubber.activate()
        return client

    session = FaultySession(stubbed={"service-quotas": stub_quotas})
    provider = AwsNodePoolProvider(
        fleet_cluster(), session_factory=session.factory, families=("p5", "g6e")
    )
    by_type = {o.instance_type: o for o in await provider.discover_offerings()}
    assert by_type["p5.48xlarge"].max_nodes == 2  # 384 vCPUs / 192
    assert by_type["g6e.xlarge"].max_nodes == 24  # 96 / 4
    assert by_type["g6e.48xlarge"].max_nodes == 0  # 96 < 192: quota too small for one


async def test_discovery_survives_quota_api_denied(world: World) -> None:
    denied = client_error("AccessDeniedException", "not authorized", operation="GetServiceQuota")
    session = FaultySession(sticky={"get_service_quota": fail(denied)})
    provider = AwsNodePoolProvider(
        fleet_cluster(), session_factory=session.factory, families=("g6e",)
    )
    offerings = await provider.discover_offerings()
    assert offerings
    assert all(o.max_nodes is None for o in offerings)


# -- pools: create, resize, read, delete -----------------------------------------------------


async def test_create_resize_delete(world: World) -> None:
    session = FaultySession()
    provider = provider_with(session)
    name = nodegroup_name(pool_spec().pool_id)

    created = await provider.ensure_pool(pool_spec(nodes=2))
    assert (created.name, created.state, created.desired_nodes) == (name, "Active", 2)
    assert (created.instance_type, created.capacity_type, created.gpu) == (
        "p5.48xlarge",
        "OnDemand",
        "H100",
    )
    assert created.managed
    group = world.client("eks").describe_nodegroup(clusterName=EKS_CLUSTER, nodegroupName=name)
    group = group["nodegroup"]
    assert group["scalingConfig"] == {"minSize": 0, "maxSize": 4, "desiredSize": 2}
    assert group["capacityType"] == "ON_DEMAND"
    assert group["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group["nodeRole"] == NODE_ROLE
    assert group["instanceTypes"] == ["p5.48xlarge"]
    # The offering is sold in us-east-1a/b only: the us-east-1c subnet is left out.
    assert sorted(group["subnets"]) == sorted(
        [world.subnets["us-east-1a"], world.subnets["us-east-1b"]]
    )
    assert group["labels"] == pool_spec().node_labels()
    assert group["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
    ]
    assert group["tags"][labels.MANAGED] == "true"
    assert group["tags"][labels.CLUSTER] == FLEET_CLUSTER

    resized = await provider.ensure_pool(pool_spec(nodes=6))
    assert resized.desired_nodes == 6
    update = session.called("update_nodegroup_config")
    assert len(update) == 1
    assert update[0]["scalingConfig"] == {"minSize": 0, "maxSize": 6, "desiredSize": 6}

    assert (await provider.get_pool(pool_spec())).desired_nodes == 6
    assert [p.name for p in await provider.list_pools()] == [name]

    await provider.delete_pool(name)
    assert nodegroups_in_eks(world) == []
    with pytest.raises(NotFound):
        await provider.get_pool(pool_spec())
    await provider.delete_pool(name)  # idempotent


async def test_spot_pool_and_cluster_subnets_without_zones(world: World) -> None:
    provider = AwsNodePoolProvider(fleet_cluster())
    pool = await provider.ensure_pool(pool_spec(L40S, nodes=0, capacity="Spot"))
    assert (pool.capacity_type, pool.desired_nodes) == ("Spot", 0)
    group = world.client("eks").describe_nodegroup(clusterName=EKS_CLUSTER, nodegroupName=pool.name)
    assert group["nodegroup"]["capacityType"] == "SPOT"
    assert group["nodegroup"]["scalingConfig"] == {"minSize": 0, "maxSize": 1, "desiredSize": 0}
    assert sorted(group["nodegroup"]["subnets"]) == sorted(world.subnets.values())


async def test_zone_stockout_plan_creates_the_group_in_the_open_zone(world: World) -> None:
    """Zone fall-through end to end: an InsufficientInstanceCapacity naming us-east-1a marks
    that zone only; the decision core keeps the pool, restricted to us-east-1b, and the
    node group EKS creates from that plan has only the us-east-1b subnet."""
    from modelfleet.core import (
        ClusterView,
        DecisionState,
        DeploymentSpec,
        FleetSnapshot,
        GpuNeed,
        MetricsSnapshot,
        ScalingPolicy,
        plan,
        record_capacity_error,
    )
    from modelfleet.core import Offering as CoreOffering
    from modelfleet.providers.aws.errors import classify

    now = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    error = classify(
        client_error(
            "InsufficientInstanceCapacity",
            "We currently do not have sufficient p5.48xlarge capacity in the Availability "
            "Zone you requested (us-east-1a). Our system will be working on provisioning "
            "additional capacity.",
        ),
        operation="eks:CreateNodegroup",
        instance_type=H100.instance_type,
        capacity_type="OnDemand",
    )
    assert isinstance(error, InsufficientCapacity) and error.zone == "us-east-1a"
    marks = record_capacity_error(
        (), "H100", capacity_type="OnDemand", now=now, instance_type="p5.48xlarge", zone=error.zone
    )
    offering = CoreOffering("H100", 80, 8, "p5.48xlarge", 55.04, None, 4, H100.zones)
    view = ClusterView(FLEET_CLUSTER, "aws", REGION, (offering,), stockouts=marks)
    spec = DeploymentSpec("default/llama", GpuNeed(8, 80), ScalingPolicy(2, 2))
    result = plan(
        spec, FleetSnapshot((view,)), metrics=MetricsSnapshot(), state=DecisionState(), now=now
    )
    [pool] = result.node_pools
    assert (pool.cluster, pool.nodes, pool.zones) == (FLEET_CLUSTER, 2, ("us-east-1b",))

    provider = AwsNodePoolProvider(fleet_cluster())
    created = await provider.ensure_pool(
        PoolSpec(FLEET_CLUSTER, H100, "OnDemand", pool.nodes, zones=pool.zones)
    )
    group = world.client("eks").describe_nodegroup(
        clusterName=EKS_CLUSTER, nodegroupName=created.name
    )
    assert group["nodegroup"]["subnets"] == [world.subnets["us-east-1b"]]


async def test_ready_nodes_count_healthy_instances_of_the_groups_asg(world: World) -> None:
    provider = AwsNodePoolProvider(fleet_cluster())
    pool = await provider.ensure_pool(pool_spec(nodes=2))
    assert pool.ready_nodes == 0  # moto makes no instances for a node group
    group = world.client("eks").describe_nodegroup(clusterName=EKS_CLUSTER, nodegroupName=pool.name)
    asg_name = group["nodegroup"]["resources"]["autoScalingGroups"][0]["name"]
    world.client("ec2").create_launch_template(
        LaunchTemplateName="gpu-nodes",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "p5.48xlarge"},
    )
    world.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=asg_name,
        LaunchTemplate={"LaunchTemplateName": "gpu-nodes"},
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=2,
        AvailabilityZones=["us-east-1a"],
    )
    assert (await provider.get_pool(pool_spec())).ready_nodes == 2


async def test_missing_node_role_or_cluster_is_configuration(world: World) -> None:
    with pytest.raises(InvalidConfiguration, match="nodeRoleArn"):
        await AwsNodePoolProvider(fleet_cluster(node_role=None)).ensure_pool(pool_spec())
    with pytest.raises(InvalidConfiguration, match="EKS cluster nope not found"):
        await AwsNodePoolProvider(fleet_cluster(cluster_name="nope")).ensure_pool(pool_spec())


# -- idempotency -----------------------------------------------------------------------------


async def test_ensure_twice_makes_one_group_and_no_update(world: World) -> None:
    session = FaultySession()
    provider = provider_with(session)
    first = await provider.ensure_pool(pool_spec())
    second = await provider.ensure_pool(pool_spec())
    assert first.name == second.name
    assert nodegroups_in_eks(world) == [first.name]
    assert len(session.called("create_nodegroup")) == 1
    assert session.called("update_nodegroup_config") == []


async def test_create_retried_after_a_lost_request_reuses_the_token(world: World) -> None:
    timeout = ConnectTimeoutError(endpoint_url="https://eks.us-east-1.amazonaws.com")
    session = FaultySession(faults={"create_nodegroup": [fail(timeout)]})
    provider = provider_with(session)
    with pytest.raises(Unreachable):
        await provider.ensure_pool(pool_spec())
    assert nodegroups_in_eks(world) == []
    pool = await provider.ensure_pool(pool_spec())  # the reconciler's retry
    tokens = [c["clientRequestToken"] for c in session.called("create_nodegroup")]
    assert len(tokens) == 2
    assert tokens[0] == tokens[1]
    assert nodegroups_in_eks(world) == [pool.name]


async def test_create_whose_response_was_lost_is_not_repeated(world: World) -> None:
    session = FaultySession(faults={"create_nodegroup": [lost_response]})
    provider = provider_with(session)
    with pytest.raises(Unreachable):
        await provider.ensure_pool(pool_spec())
    pool = await provider.ensure_pool(pool_spec())
    assert len(session.called("create_nodegroup")) == 1
    assert nodegroups_in_eks(world) == [pool.name]


async def test_group_created_concurrently_is_read_back(world: World) -> None:
    other = AwsNodePoolProvider(fleet_cluster())

    def concurrent_create(real: Callable[..., Any], params: dict[str, Any]) -> Any:
        # Another reconcile creates the group between our describe and our create.
        world.client("eks").create_nodegroup(**{**params, "clientRequestToken": "other"})
        return real(**params)  # moto: ResourceInUseException

    session = FaultySession(faults={"create_nodegroup": [concurrent_create]})
    pool = await provider_with(session).ensure_pool(pool_spec())
    assert pool.desired_nodes == 2
    assert nodegroups_in_eks(world) == [pool.name]
    assert (await other.get_pool(pool_spec())).name == pool.name


async def test_resize_token_differs_for_a_size_used_before(world: World) -> None:
    session = FaultySession()
    provider = provider_with(session)
    await provider.ensure_pool(pool_spec(nodes=3))
    await provider.ensure_pool(pool_spec(nodes=5))
    await provider.ensure_pool(pool_spec(nodes=3))
    await provider.ensure_pool(pool_spec(nodes=5))
    tokens = [c["clientRequestToken"] for c in session.called("update_nodegroup_config")]
    assert len(tokens) == 3
    assert len(set(tokens)) == 3


# -- ownership -------------------------------------------------------------------------------


def create_raw_nodegroup(world: World, name: str, tags: dict[str, str] | None = None) -> None:
    world.client("eks").create_nodegroup(
        clusterName=EKS_CLUSTER,
        nodegroupName=name,
        nodeRole=NODE_ROLE,
        subnets=[world.subnets["us-east-1a"]],
        scalingConfig={"minSize": 0, "maxSize": 2, "desiredSize": 1},
        instanceTypes=["g5.xlarge"],
        tags=tags or {"team": "ml"},
    )


async def test_untagged_groups_are_never_listed_resized_or_deleted(world: World) -> None:
    provider = AwsNodePoolProvider(fleet_cluster())
    create_raw_nodegroup(world, "legacy-gpu")
    # Even one that happens to bear the name modelfleet would use.
    create_raw_nodegroup(world, nodegroup_name(pool_spec(L40S).pool_id))
    other_fleet = {labels.MANAGED: "true", labels.CLUSTER: "someone-else"}
    create_raw_nodegroup(world, "mf-otherfleet", other_fleet)
    ours = await provider.ensure_pool(pool_spec())

    assert [p.name for p in await provider.list_pools()] == [ours.name]
    with pytest.raises(InvalidConfiguration, match="refusing"):
        await provider.delete_pool("legacy-gpu")
    with pytest.raises(InvalidConfiguration, match="refusing"):
        await provider.delete_pool("mf-otherfleet")
    with pytest.raises(InvalidConfiguration, match="refusing"):
        await provider.ensure_pool(pool_spec(L40S, nodes=5))
    squatter = world.client("eks").describe_nodegroup(
        clusterName=EKS_CLUSTER, nodegroupName=nodegroup_name(pool_spec(L40S).pool_id)
    )
    assert squatter["nodegroup"]["scalingConfig"]["desiredSize"] == 1
    assert "legacy-gpu" in nodegroups_in_eks(world)
    assert "mf-otherfleet" in nodegroups_in_eks(world)


async def test_orphan_gc_end_to_end(world: World) -> None:
    provider = AwsNodePoolProvider(fleet_cluster())
    create_raw_nodegroup(world, "legacy-gpu")
    needed = await provider.ensure_pool(pool_spec(H100, nodes=2))
    orphan = await provider.ensure_pool(pool_spec(L40S, nodes=3))
    now = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    grace = timedelta(minutes=15)

    first = plan_orphan_gc(
        await provider.list_pools(), {needed.name}, orphan_since={}, now=now, grace=grace
    )
    assert [p.name for p in first.scale_to_zero] == [orphan.name]
    assert first.delete == ()
    for pool in first.scale_to_zero:
        await provider.ensure_pool(zero_size_spec(pool))
    assert (await provider.get_pool(pool_spec(L40S))).desired_nodes == 0

    later = plan_orphan_gc(
        await provider.list_pools(),
        {needed.name},
        orphan_since=first.orphan_since,
        now=now + grace,
        grace=grace,
    )
    assert [p.name for p in later.delete] == [orphan.name]
    for pool in later.delete:
        await provider.delete_pool(pool.name)

    assert nodegroups_in_eks(world) == sorted(["legacy-gpu", needed.name])
    assert (await provider.get_pool(pool_spec(H100))).desired_nodes == 2


# -- error classification --------------------------------------------------------------------

ICE_MESSAGE = (
    "We currently do not have sufficient p5.48xlarge capacity in the Availability Zone you "
    "requested (us-east-1a). Our system will be working on provisioning additional capacity."
)

# (AWS error code, HTTP status, expected typed error)
ERROR_CODES: list[tuple[str, int, type[ProviderError]]] = [
    ("InsufficientInstanceCapacity", 400, InsufficientCapacity),
    ("InsufficientCapacityError", 400, InsufficientCapacity),
    ("InsufficientFreeAddresses", 400, InsufficientCapacity),
    ("AsgInstanceLaunchFailures", 400, InsufficientCapacity),
    ("InstanceLimitExceeded", 400, QuotaExceeded),
    ("VcpuLimitExceeded", 400, QuotaExceeded),
    ("ResourceLimitExceededException", 400, QuotaExceeded),
    ("ServiceQuotaExceededException", 402, QuotaExceeded),
    ("Throttling", 400, Throttled),
    ("ThrottlingException", 400, Throttled),
    ("RequestLimitExceeded", 503, Throttled),
    ("TooManyRequestsException", 429, Throttled),
    ("ResourceInUseException", 409, Throttled),
    ("ResourceNotFoundException", 404, NotFound),
    ("AccessDenied", 403, PermissionDenied),
    ("AccessDeniedException", 403, PermissionDenied),
    ("UnauthorizedOperation", 403, PermissionDenied),
    ("ExpiredTokenException", 403, PermissionDenied),
    ("InvalidParameterException", 400, InvalidConfiguration),
    ("ServerException", 500, Unreachable),
    ("SomethingNew", 502, Unreachable),
    ("SomethingNew", 400, ProviderError),
]


@pytest.mark.parametrize(("code", "status", "expected"), ERROR_CODES)
async def test_aws_error_codes_become_typed_errors(
    aws_env: str, code: str, status: int, expected: type[ProviderError]
) -> None:
    error = client_error(code, ICE_MESSAGE if "Capacity" in code else "", status=status)
    absent = client_error("ResourceNotFoundException", "No node group found for name: x.")
    session = FaultySession(
        sticky={"describe_nodegroup": fail(absent), "create_nodegroup": fail(error)}
    )
    sleeps = RecordingSleep()
    cluster = fleet_cluster(subnet_ids=["subnet-0a1b2c3d"])
    provider = provider_with(session, cluster, sleeps=sleeps)
    with pytest.raises(ProviderError) as caught:
        await provider.ensure_pool(pool_spec(replace(H100, zones=()), capacity="Spot"))
    assert type(caught.value) is expected
    assert caught.value.cloud_code == code
    if isinstance(caught.value, InsufficientCapacity):
        assert (caught.value.instance_type, caught.value.capacity_type) == ("p5.48xlarge", "Spot")
    if code == "InsufficientInstanceCapacity":
        assert isinstance(caught.value, InsufficientCapacity)
        assert caught.value.zone == "us-east-1a"
    # Only real throttling is retried inside the provider (3 tries), nothing else.
    retried = code in {"Throttling", "ThrottlingException", "RequestLimitExceeded"} or (
        code == "TooManyRequestsException"
    )
    assert len(session.called("create_nodegroup")) == (3 if retried else 1)
    assert len(sleeps.delays) == (2 if retried else 0)


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://eks.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://eks.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://eks.us-east-1.amazonaws.com"),
    ],
    ids=["EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"],
)
async def test_network_errors_are_unreachable(aws_env: str, error: Exception) -> None:
    session = FaultySession(sticky={"list_nodegroups": fail(error)})
    with pytest.raises(Unreachable) as caught:
        await provider_with(session).list_pools()
    assert caught.value.retryable


async def test_throttling_is_retried_with_bounded_jittered_backoff(world: World) -> None:
    provider = AwsNodePoolProvider(fleet_cluster())
    await provider.ensure_pool(pool_spec())
    throttle = fail(client_error("ThrottlingException", "Rate exceeded"))
    session = FaultySession(faults={"describe_nodegroup": [throttle, throttle]})
    sleeps = RecordingSleep()
    pool = await provider_with(session, sleeps=sleeps).get_pool(pool_spec())
    assert pool.desired_nodes == 2
    assert len(session.called("describe_nodegroup")) == 3
    assert len(sleeps.delays) == 2
    assert 0.25 <= sleeps.delays[0] <= 0.5
    assert 0.5 <= sleeps.delays[1] <= 1.0


async def test_throttling_gives_up_after_three_tries(aws_env: str) -> None:
    throttle = fail(client_error("RequestLimitExceeded", "Request limit exceeded."))
    session = FaultySession(sticky={"describe_instance_types": throttle})
    with pytest.raises(Throttled) as caught:
        await provider_with(session).discover_offerings()
    assert caught.value.retryable
    assert len(session.called("describe_instance_types")) == 3


async def test_permission_denied_names_the_permission_and_leaks_no_secret(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = {
        "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key": SECRET_KEY,
        "aws_session_token": SESSION_TOKEN,
    }
    denied = client_error(
        "AccessDeniedException",
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/modelfleet/op is not authorized to "
        f"perform: eks:CreateNodegroup on resource: arn:aws:eks:{REGION}:{ACCOUNT}:cluster/x",
        status=403,
    )
    session = FaultySession(faults={"create_nodegroup": [fail(denied)]})
    provider = provider_with(session, credentials=credentials)
    with pytest.raises(PermissionDenied) as caught:
        await provider.ensure_pool(pool_spec())
    assert caught.value.permission == "eks:CreateNodegroup"
    assert "eks:CreateNodegroup" in str(caught.value)
    assert session.credentials == credentials  # the Secret's keys did reach the session

    # A denial without the action in AWS's text names the operation's IAM action.
    plain = fail(client_error("UnauthorizedOperation", "You are not authorized.", status=403))
    session.faults["describe_instance_types"] = [plain]
    with pytest.raises(PermissionDenied) as caught_plain:
        await provider.discover_offerings()
    assert caught_plain.value.permission == "ec2:DescribeInstanceTypes"

    # Even an AWS message that echoed a credential is scrubbed.
    echo = fail(client_error("InvalidParameterException", f"bad value {SECRET_KEY}"))
    session.faults["create_nodegroup"] = [echo]
    with pytest.raises(InvalidConfiguration) as caught_echo:
        await provider.ensure_pool(pool_spec())

    for error in (caught.value, caught_plain.value, caught_echo.value):
        for secret in (SECRET_KEY, SESSION_TOKEN):
            assert secret not in str(error)
            assert secret not in repr(error.args)
    assert SECRET_KEY not in repr(provider)
    # The secret key never leaves the process (requests are signed with it), so no log
    # line of any library may carry it; modelfleet's own logs carry no credential at all.
    assert SECRET_KEY not in caplog.text
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("modelfleet"))
    assert ours
    assert SESSION_TOKEN not in ours


# -- health issues ---------------------------------------------------------------------------

# (issue code, message, expected capacity_issue type or None)
ISSUES: list[tuple[str, str, type[ProviderError] | None]] = [
    (
        "AsgInstanceLaunchFailures",
        "Could not launch On-Demand Instances. InsufficientInstanceCapacity - " + ICE_MESSAGE,
        InsufficientCapacity,
    ),
    (
        "AsgInstanceLaunchFailures",
        "Could not launch Spot Instances. VcpuLimitExceeded - You have requested more vCPU "
        "capacity than your current vCPU limit of 0 allows.",
        QuotaExceeded,
    ),
    ("AsgInstanceLaunchFailures", "Could not launch instances.", InsufficientCapacity),
    (
        "InsufficientFreeAddresses",
        "One or more subnets has no free addresses.",
        InsufficientCapacity,
    ),
    ("IamNodeRoleNotFound", "The node role was not found.", None),
    ("NodeCreationFailure", "Instances failed to join the kubernetes cluster", None),
]


@pytest.mark.parametrize(("code", "message", "expected"), ISSUES)
async def test_health_issues_are_returned_and_capacity_ones_recognised(
    world: World, code: str, message: str, expected: type[ProviderError] | None
) -> None:
    await AwsNodePoolProvider(fleet_cluster()).ensure_pool(pool_spec())

    def degrade(result: dict[str, Any]) -> None:
        result["nodegroup"]["status"] = "DEGRADED"
        result["nodegroup"]["health"] = {"issues": [{"code": code, "message": message}]}

    session = FaultySession(sticky={"describe_nodegroup": edit(degrade)})
    pool = await provider_with(session).get_pool(pool_spec())  # returned, not raised
    assert pool.state == "Degraded"
    assert [(i.code, i.message) for i in pool.issues] == [(code, message)]
    error = capacity_issue(pool)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert error is not None
        assert error.instance_type == "p5.48xlarge"
        assert error.capacity_type == "OnDemand"


async def test_cluster_zones_do_not_put_the_group_where_the_type_is_not_sold(
    world: World,
) -> None:
    """Without a zone restriction in the plan the reconciler passes the FleetCluster's zones;
    the group must still leave out zones where EC2 does not sell the instance type."""
    provider = AwsNodePoolProvider(fleet_cluster())
    created = await provider.ensure_pool(
        PoolSpec(FLEET_CLUSTER, H100, "OnDemand", 1, zones=("us-east-1a", "us-east-1c"))
    )
    group = world.client("eks").describe_nodegroup(
        clusterName=EKS_CLUSTER, nodegroupName=created.name
    )
    assert group["nodegroup"]["subnets"] == [world.subnets["us-east-1a"]]


# -- removing chosen nodes -------------------------------------------------------------------


def _asg_with_instances(world: World, asg_name: str, count: int) -> list[str]:
    """The node group's Auto Scaling group in moto (moto makes none for a node group) with
    ``count`` running instances; their ids, sorted."""
    world.client("ec2").create_launch_template(
        LaunchTemplateName=f"lt-{asg_name}",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "p5.48xlarge"},
    )
    world.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=asg_name,
        LaunchTemplate={"LaunchTemplateName": f"lt-{asg_name}"},
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=count,
        AvailabilityZones=["us-east-1a"],
    )
    group = world.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[asg_name]
    )["AutoScalingGroups"][0]
    return sorted(i["InstanceId"] for i in group["Instances"])


async def test_remove_nodes_terminates_exactly_the_chosen_instance(world: World) -> None:
    provider = AwsNodePoolProvider(fleet_cluster())
    assert isinstance(provider, RemovesNodes)
    pool = await provider.ensure_pool(pool_spec(nodes=3))
    group = world.client("eks").describe_nodegroup(clusterName=EKS_CLUSTER, nodegroupName=pool.name)
    asg_name = group["nodegroup"]["resources"]["autoScalingGroups"][0]["name"]
    instances = _asg_with_instances(world, asg_name, 3)
    chosen = instances[1]  # neither the oldest nor the newest: no termination policy picks it
    after = await provider.remove_nodes(
        pool_spec(nodes=2), [NodeRef("node-b", f"aws:///us-east-1a/{chosen}")]
    )
    asg = world.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[asg_name]
    )["AutoScalingGroups"][0]
    assert asg["DesiredCapacity"] == 2
    left = sorted(i["InstanceId"] for i in asg["Instances"])
    assert left == [instances[0], instances[2]]
    assert after.desired_nodes == 2  # the node group's own desiredSize follows
    # Gone already: skipped, nothing else terminated.
    await provider.remove_nodes(
        pool_spec(nodes=2), [NodeRef("node-b", f"aws:///us-east-1a/{chosen}")]
    )
    asg = world.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[asg_name]
    )["AutoScalingGroups"][0]
    assert sorted(i["InstanceId"] for i in asg["Instances"]) == [instances[0], instances[2]]


async def test_remove_nodes_refuses_another_groups_instance_and_foreign_provider_ids(
    world: World,
) -> None:
    provider = AwsNodePoolProvider(fleet_cluster())
    await provider.ensure_pool(pool_spec(nodes=1))
    others = _asg_with_instances(world, "someone-elses-asg", 2)
    with pytest.raises(InvalidConfiguration, match="another group"):
        await provider.remove_nodes(
            pool_spec(nodes=0), [NodeRef("theirs", f"aws:///us-east-1a/{others[0]}")]
        )
    with pytest.raises(InvalidConfiguration, match="not an EC2 instance"):
        await provider.remove_nodes(pool_spec(nodes=0), [NodeRef("n", "gce://p/z/vm-1")])
    asg = world.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["someone-elses-asg"]
    )["AutoScalingGroups"][0]
    assert asg["DesiredCapacity"] == 2 and len(asg["Instances"]) == 2
    with pytest.raises(NotFound):
        await provider.remove_nodes(pool_spec(L40S, nodes=0), [])


def _asg(world: World, name: str) -> dict[str, Any]:
    group: dict[str, Any] = world.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[name]
    )["AutoScalingGroups"][0]
    return group


def _node_group_size(world: World, name: str) -> int:
    group = world.client("eks").describe_nodegroup(clusterName=EKS_CLUSTER, nodegroupName=name)
    return int(group["nodegroup"]["scalingConfig"]["desiredSize"])


def _passes(real: Callable[..., Any], params: dict[str, Any]) -> Any:
    return real(**params)


async def test_owned_nodes_are_the_instances_auto_scaling_lists_in_the_group(
    world: World,
) -> None:
    provider = AwsNodePoolProvider(fleet_cluster())
    assert isinstance(provider, KnowsNodes)
    pool = await provider.ensure_pool(pool_spec(nodes=2))
    group = world.client("eks").describe_nodegroup(clusterName=EKS_CLUSTER, nodegroupName=pool.name)
    ours = _asg_with_instances(
        world, group["nodegroup"]["resources"]["autoScalingGroups"][0]["name"], 2
    )
    theirs = _asg_with_instances(world, "someone-elses-asg", 1)
    nodes = [
        NodeRef("a", f"aws:///us-east-1a/{ours[0]}"),
        NodeRef("b", f"aws:///us-east-1a/{ours[1]}"),
        NodeRef("labelled-alike", f"aws:///us-east-1a/{theirs[0]}"),
        NodeRef("gone", "aws:///us-east-1a/i-0000000000000dead"),
        NodeRef("other-cloud", "gce://p/z/vm-1"),
    ]
    assert await provider.owned_nodes(pool_spec(nodes=2), nodes) == {"a", "b"}
    assert await provider.owned_nodes(pool_spec(L40S, nodes=0), nodes) == frozenset()


@pytest.mark.parametrize("failing", ["second-terminate", "node-group-update"])
async def test_a_removal_that_fails_halfway_loses_nothing_and_is_retried(
    world: World, failing: str
) -> None:
    """Two nodes to remove; the second termination fails (or, both terminated, the node
    group's UpdateNodegroupConfig does). Nothing else is terminated, the node group's
    desiredSize follows what Auto Scaling holds, and the same call on the next pass
    finishes the job (the instance already gone is skipped)."""
    session = FaultySession()
    provider = provider_with(session)
    pool = await provider.ensure_pool(pool_spec(nodes=3))
    group = world.client("eks").describe_nodegroup(clusterName=EKS_CLUSTER, nodegroupName=pool.name)
    asg_name = group["nodegroup"]["resources"]["autoScalingGroups"][0]["name"]
    instances = _asg_with_instances(world, asg_name, 3)
    chosen = [NodeRef(f"node-{i}", f"aws:///us-east-1a/{i}") for i in instances[:2]]
    denied = client_error("AccessDenied", "not authorized", status=403)
    if failing == "second-terminate":
        session.faults["terminate_instance_in_auto_scaling_group"] = [_passes, fail(denied)]
    else:
        session.faults["update_nodegroup_config"] = [fail(denied)]

    with pytest.raises(PermissionDenied):
        await provider.remove_nodes(pool_spec(nodes=1), chosen)
    asg = _asg(world, asg_name)
    left = sorted(i["InstanceId"] for i in asg["Instances"])
    if failing == "second-terminate":
        assert left == instances[1:], "an instance other than the first was terminated"
        assert asg["DesiredCapacity"] == 2
        assert _node_group_size(world, pool.name) == 2, "node group desiredSize left behind"
    else:
        assert left == instances[2:]
        assert asg["DesiredCapacity"] == 1
        assert _node_group_size(world, pool.name) == 3  # the update itself failed

    after = await provider.remove_nodes(pool_spec(nodes=1), chosen)  # the next pass
    asg = _asg(world, asg_name)
    assert sorted(i["InstanceId"] for i in asg["Instances"]) == instances[2:]
    assert asg["DesiredCapacity"] == 1
    assert after.desired_nodes == 1 and _node_group_size(world, pool.name) == 1
