"""``AwsNodePoolProvider``: GPU node pools as EKS managed node groups, through boto3.

One provider per FleetCluster (one EKS cluster, one region, one identity). Node groups are
named ``mf-<pool_id>`` so the same PoolSpec always finds the same group; creates carry a
deterministic ``clientRequestToken`` so a create retried after a lost response cannot make a
second group; every group carries the ``modelfleet.io/managed=true`` tag and nothing without
it is ever resized or deleted. Calls, retries and error classification live in ``calls``;
the EKS request/response shapes in ``nodegroups``; EC2 discovery rules in ``discovery``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from modelfleet.api.fleetcluster import AwsSettings, FleetCluster
from modelfleet.core.types import Offering
from modelfleet.providers.aws import discovery, nodegroups
from modelfleet.providers.aws.calls import AwsApi, Redactor, Sleep, chunks
from modelfleet.providers.aws.prices import PriceTable, load_price_table
from modelfleet.providers.aws.sdk import SessionFactory, default_session_factory
from modelfleet.providers.base import NodePool, NodeRef, PoolSpec
from modelfleet.providers.errors import InvalidConfiguration, NotFound, ProviderError, Throttled

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AwsNodePoolProvider:
    """NodePoolProvider over EKS managed node groups (see ``providers.base`` for contracts).

    ``credentials``: a credentials Secret's data (``aws_access_key_id``,
    ``aws_secret_access_key``, optional ``aws_session_token``), or None for boto3's default
    chain (IRSA, instance profile). ``session_factory`` builds the boto3 session (tests
    inject fault-injecting wrappers); ``price_table`` replaces the bundled on-demand prices;
    ``families`` are the instance families discovered; ``sleep``/``rng``/``clock`` make
    backoff and tokens deterministic in tests. Construction does no network I/O. Raises
    ``ProviderUnavailable`` without boto3 and ``InvalidConfiguration`` for a cluster without
    ``spec.aws`` or a credentials mapping lacking a key.
    """

    def __init__(
        self,
        cluster: FleetCluster,
        *,
        credentials: Mapping[str, str] | None = None,
        session_factory: SessionFactory = default_session_factory,
        price_table: PriceTable | None = None,
        families: Sequence[str] = discovery.GPU_FAMILIES,
        max_attempts: int = 3,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if cluster.spec.aws is None:
            raise InvalidConfiguration(f"FleetCluster {cluster.metadata.name}: spec.aws is unset")
        self._name = cluster.metadata.name
        self._region = cluster.spec.region
        self._settings: AwsSettings = cluster.spec.aws
        self._cluster_zones = tuple(cluster.spec.zones or ())
        self._declared = tuple(cluster.spec.gpu_offerings or ())
        self._families = tuple(families)
        self._prices = price_table
        self._clock = clock
        self._api = AwsApi(
            session_factory(self._region, credentials),
            redactor=Redactor(credentials),
            label=self._name,
            max_attempts=max_attempts,
            sleep=sleep,
            rng=rng,
        )
        self._gpu_by_type: dict[str, str] = {o.instance_type: o.gpu for o in self._declared}

    def __repr__(self) -> str:
        return f"AwsNodePoolProvider(cluster={self._name!r}, region={self._region!r})"

    @property
    def _cluster(self) -> str:
        return self._settings.cluster_name

    # -- NodePoolProvider ------------------------------------------------------------------

    async def discover_offerings(self) -> list[Offering]:
        """GPU offerings of the region merged with ``spec.gpuOfferings`` (declared wins).

        Calls DescribeInstanceTypes (``<family>.*``), DescribeInstanceTypeOfferings (zones),
        DescribeSpotPriceHistory (latest, max over zones) and, best effort, Service Quotas
        GetServiceQuota. On-demand prices come from the price table. Only offerings in one
        of ``spec.zones`` (when set) are kept.
        """
        items = await self._api.paginate(
            "ec2:DescribeInstanceTypes",
            "ec2",
            "describe_instance_types",
            "InstanceTypes",
            Filters=[{"Name": "instance-type", "Values": [f"{f}.*" for f in self._families]}],
        )
        types = discovery.parse_instance_types(items)
        names = sorted(types)
        zone_items: list[Any] = []
        spot_items: list[Any] = []
        for chunk in chunks(names, 50):
            # Exact names, not wildcards: every implementation (moto too) accepts those.
            zone_items += await self._api.paginate(
                "ec2:DescribeInstanceTypeOfferings",
                "ec2",
                "describe_instance_type_offerings",
                "InstanceTypeOfferings",
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": chunk}],
            )
            spot_items += await self._api.paginate(
                "ec2:DescribeSpotPriceHistory",
                "ec2",
                "describe_spot_price_history",
                "SpotPriceHistory",
                InstanceTypes=chunk,
                ProductDescriptions=list(discovery.SPOT_PRODUCTS),
                StartTime=self._clock(),
            )
        zones = discovery.parse_zone_offerings(zone_items)
        if self._prices is None:
            self._prices = await asyncio.to_thread(load_price_table)
        prices = self._prices
        on_demand = {t: p for t in names if (p := prices.on_demand(self._region, t)) is not None}
        found = discovery.build_offerings(
            types,
            zones,
            on_demand=on_demand,
            spot=discovery.spot_prices(spot_items, zones=zones),
            vcpu_quota=await self._vcpu_quotas({discovery.quota_family(t) for t in names}),
            cluster_zones=self._cluster_zones,
        )
        merged = discovery.merge_offerings(found, self._declared)
        self._gpu_by_type.update({o.instance_type: o.gpu for o in merged})
        log.info("aws %s: %d GPU offerings (%d discovered)", self._name, len(merged), len(found))
        return merged

    async def ensure_pool(self, spec: PoolSpec) -> NodePool:
        """Create or resize node group ``mf-<pool_id>`` (contract in ``NodePoolProvider``).

        Reads the group first; creates it when missing (a ResourceInUseException on create
        means it appeared meanwhile: it is read back); resizes with UpdateNodegroupConfig
        only when the desired size differs and EKS accepts updates (ACTIVE/DEGRADED).
        Raises ``InvalidConfiguration`` for a group of that name modelfleet does not own.
        """
        if spec.cluster != self._name:
            raise InvalidConfiguration(
                f"pool for FleetCluster {spec.cluster} asked of the provider for {self._name}"
            )
        if spec.nodes < 0:
            raise InvalidConfiguration(f"pool {spec.pool_id}: negative node count {spec.nodes}")
        name = nodegroups.nodegroup_name(spec.pool_id)
        group = await self._describe(name)
        if group is None:
            group = await self._create(spec)
        self._check_owned(group)
        group = await self._set_size(group, spec)
        return (await self._to_pools([group], gpu=spec.offering.gpu))[0]

    async def get_pool(self, spec: PoolSpec) -> NodePool:
        """The node group of ``spec`` with its health issues; ``NotFound`` when missing."""
        name = nodegroups.nodegroup_name(spec.pool_id)
        group = await self._describe(name)
        if group is None:
            raise NotFound(f"node group {name} not found in EKS cluster {self._cluster}")
        return (await self._to_pools([group], gpu=spec.offering.gpu))[0]

    async def list_pools(self) -> list[NodePool]:
        """Node groups tagged ``modelfleet.io/managed=true`` for this FleetCluster, by name.

        Groups tagged for another FleetCluster (two FleetClusters on one EKS cluster) are
        left out too, so that one's orphan GC never deletes the other's pools.
        """
        names = await self._api.paginate(
            "eks:ListNodegroups",
            "eks",
            "list_nodegroups",
            "nodegroups",
            token_in="nextToken",
            token_out="nextToken",
            clusterName=self._cluster,
        )
        groups = await asyncio.gather(*(self._describe(str(n)) for n in names))
        owned = [g for g in groups if g is not None and nodegroups.owned_by(g, self._name)]
        return sorted(await self._to_pools(owned), key=lambda p: p.name)

    async def delete_pool(self, name: str) -> None:
        """Delete node group ``name``: idempotent, refuses groups modelfleet does not own."""
        group = await self._describe(name)
        if group is None or group.get("status") == "DELETING":
            return
        self._check_owned(group)
        log.info("aws %s: deleting node group %s", self._name, name)
        try:
            await self._api.call(
                "eks:DeleteNodegroup",
                "eks",
                "delete_nodegroup",
                clusterName=self._cluster,
                nodegroupName=name,
            )
        except NotFound:
            return

    # -- RemovesNodes ---------------------------------------------------------------------

    async def remove_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> NodePool:
        """Terminate exactly these nodes' instances (contract in ``RemovesNodes``).

        As cluster-autoscaler does for managed node groups: each instance goes through
        Auto Scaling ``TerminateInstanceInAutoScalingGroup`` with
        ``ShouldDecrementDesiredCapacity=True``, so the group's Auto Scaling group shrinks by
        that instance and picks nothing itself. Every instance is checked first (Auto Scaling
        ``DescribeAutoScalingInstances``) to belong to this node group's Auto Scaling group:
        an instance of another group refuses the whole call (``InvalidConfiguration``), one
        Auto Scaling no longer knows is skipped. The node group's own ``desiredSize`` (which
        EKS does not lower with the Auto Scaling group) is then set to the Auto Scaling
        group's new desired capacity with ``UpdateNodegroupConfig`` (equal to ``spec.nodes``
        when the operator's count was right; never below what the group holds, which would
        shrink it by count), so that a later grow back to the old size is not read as
        "nothing to do".
        """
        name = nodegroups.nodegroup_name(spec.pool_id)
        group = await self._describe(name)
        if group is None:
            raise NotFound(f"node group {name} not found in EKS cluster {self._cluster}")
        self._check_owned(group)
        ids: dict[str, str] = {}
        for node in nodes:
            instance = nodegroups.instance_id(node.provider_id)
            if instance is None:
                raise InvalidConfiguration(
                    f"node {node.name}: providerID {node.provider_id!r} is not an EC2 instance"
                )
            ids[instance] = node.name
        owners = set(nodegroups.asg_names([group]))
        found = await self._asg_instances(ids)
        strangers = sorted(
            f"{ids[str(i['InstanceId'])]} ({i['InstanceId']} in {i['AutoScalingGroupName']})"
            for i in found
            if str(i["AutoScalingGroupName"]) not in owners
        )
        if strangers:
            raise InvalidConfiguration(
                f"node group {name}: refusing to remove nodes of another group: "
                + ", ".join(strangers)
            )
        terminated = 0
        try:
            for item in sorted(found, key=lambda i: str(i["InstanceId"])):
                if str(item.get("LifecycleState", "")).startswith("Terminat"):
                    continue
                log.info(
                    "aws %s: terminating %s (node %s) of %s, decrementing its size",
                    self._name,
                    item["InstanceId"],
                    ids[str(item["InstanceId"])],
                    name,
                )
                await self._api.call(
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                    "autoscaling",
                    "terminate_instance_in_auto_scaling_group",
                    InstanceId=str(item["InstanceId"]),
                    ShouldDecrementDesiredCapacity=True,
                )
                terminated += 1
        except ProviderError:
            # Half done: the instances terminated so far lowered the Auto Scaling group's
            # desired capacity; the node group's desiredSize must follow before the error
            # goes up, or a later grow back to the old size reads as "no change" (and the
            # pool stays one node short). Best effort: the retry repeats it anyway.
            if terminated:
                try:
                    await self._follow_asg(group, spec, owners)
                except ProviderError as also:
                    log.warning("aws %s: %s desiredSize not updated: %s", self._name, name, also)
            raise
        group = await self._follow_asg(group, spec, owners)
        return (await self._to_pools([group], gpu=spec.offering.gpu))[0]

    # -- KnowsNodes -----------------------------------------------------------------------

    async def owned_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> frozenset[str]:
        """The nodes whose EC2 instance Auto Scaling lists in this node group's Auto Scaling
        group (``DescribeAutoScalingInstances``; contract in ``KnowsNodes``)."""
        group = await self._describe(nodegroups.nodegroup_name(spec.pool_id))
        if group is None or not nodegroups.owned_by(group, self._name):
            return frozenset()
        names: dict[str, list[str]] = {}
        for node in nodes:
            instance = nodegroups.instance_id(node.provider_id)
            if instance is not None:
                names.setdefault(instance, []).append(node.name)
        owners = set(nodegroups.asg_names([group]))
        found = await self._asg_instances(names)
        return frozenset(
            name
            for item in found
            if str(item.get("AutoScalingGroupName")) in owners
            for name in names.get(str(item["InstanceId"]), ())
        )

    # -- helpers ---------------------------------------------------------------------------

    async def _asg_instances(self, instance_ids: Iterable[str]) -> list[Any]:
        """Auto Scaling's record of each of ``instance_ids`` it knows (one
        ``DescribeAutoScalingInstances`` per 50 ids, sorted; items with ``InstanceId``,
        ``AutoScalingGroupName``, ``LifecycleState``); an id it does not know is absent.
        The one place ``remove_nodes`` and ``owned_nodes`` learn which group holds an
        instance. Raises the typed errors of ``AwsApi.paginate``."""
        found: list[Any] = []
        for chunk in chunks(sorted(instance_ids), 50):
            found += await self._api.paginate(
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling",
                "describe_auto_scaling_instances",
                "AutoScalingInstances",
                InstanceIds=chunk,
            )
        return found

    async def _follow_asg(
        self, group: dict[str, Any], spec: PoolSpec, owners: set[str]
    ) -> dict[str, Any]:
        """Set the node group's desiredSize to its Auto Scaling groups' desired capacity
        (``spec.nodes`` when they cannot be read); returns the group as then described."""
        # The node group's desiredSize follows what Auto Scaling now holds (not spec.nodes:
        # setting less than that would make EKS shrink the group by count after all).
        asgs: list[Any] = []
        if owners:  # no names would describe every group of the account
            asgs = await self._api.paginate(
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling",
                "describe_auto_scaling_groups",
                "AutoScalingGroups",
                AutoScalingGroupNames=sorted(owners),
            )
        size = sum(int(a.get("DesiredCapacity") or 0) for a in asgs) if asgs else spec.nodes
        sized = PoolSpec(spec.cluster, spec.offering, spec.capacity_type, size, spec.zones)
        return await self._set_size(group, sized)

    async def _set_size(self, group: dict[str, Any], spec: PoolSpec) -> dict[str, Any]:
        """Set node group ``group``'s desired size to ``spec.nodes`` with
        UpdateNodegroupConfig (bounds widened as ``nodegroups.scaling_update`` says) when it
        differs; returns the group as EKS then describes it (``group`` when it has no
        change to make). The one writer of a node group's size: resize and removal."""
        update = nodegroups.scaling_update(group, spec, cluster_name=self._cluster)
        if update is None:
            return group
        name = str(group["nodegroupName"])
        log.info(
            "aws %s: sizing %s from %s to %d nodes",
            self._name,
            name,
            (group.get("scalingConfig") or {}).get("desiredSize"),
            spec.nodes,
        )
        await self._api.call(
            "eks:UpdateNodegroupConfig",
            "eks",
            "update_nodegroup_config",
            instance_type=spec.offering.instance_type,
            capacity_type=spec.capacity_type,
            **update,
        )
        return await self._describe(name) or group

    async def _describe(self, name: str) -> dict[str, Any] | None:
        """The node group ``name``, None when absent; a missing *cluster* is configuration."""
        try:
            response = await self._api.call(
                "eks:DescribeNodegroup",
                "eks",
                "describe_nodegroup",
                clusterName=self._cluster,
                nodegroupName=name,
            )
        except NotFound as exc:
            if "no cluster found" in exc.message.lower():
                raise InvalidConfiguration(
                    f"EKS cluster {self._cluster} not found in {self._region}",
                    cloud_code=exc.cloud_code,
                ) from exc
            return None
        group: dict[str, Any] = response["nodegroup"]
        return group

    async def _create(self, spec: PoolSpec) -> dict[str, Any]:
        role = self._settings.node_role_arn
        if not role:
            raise InvalidConfiguration(
                f"FleetCluster {self._name}: spec.aws.nodeRoleArn is required to create node groups"
            )
        request = nodegroups.create_request(
            spec,
            settings=self._settings,
            node_role_arn=role,
            subnets=await self._subnets(_group_zones(spec)),
            hour=self._clock().strftime("%Y%m%d%H"),
        )
        log.info(
            "aws %s: creating node group %s (%s %s, %d nodes)",
            self._name,
            request["nodegroupName"],
            spec.offering.instance_type,
            request["capacityType"],
            spec.nodes,
        )
        try:
            response = await self._api.call(
                "eks:CreateNodegroup",
                "eks",
                "create_nodegroup",
                instance_type=spec.offering.instance_type,
                capacity_type=spec.capacity_type,
                **request,
            )
        except Throttled as exc:
            if exc.cloud_code != "ResourceInUseException":
                raise
            existing = await self._describe(request["nodegroupName"])
            if existing is None:
                raise
            return existing
        group: dict[str, Any] = response["nodegroup"]
        return group

    async def _subnets(self, zones: Sequence[str]) -> list[str]:
        """Subnets for a new group: spec.aws.subnetIds, else the cluster's; only in ``zones``.

        Restricting to the offering's zones keeps the group out of zones where EC2 does not
        sell the instance type (EKS would otherwise fail launches there).
        """
        subnets = list(self._settings.subnet_ids or ())
        if not subnets:
            response = await self._api.call(
                "eks:DescribeCluster", "eks", "describe_cluster", name=self._cluster
            )
            subnets = list(response["cluster"]["resourcesVpcConfig"].get("subnetIds") or ())
        if not subnets:
            raise InvalidConfiguration(
                f"EKS cluster {self._cluster} has no subnets; set spec.aws.subnetIds"
            )
        if not zones:
            return sorted(subnets)
        response = await self._api.call(
            "ec2:DescribeSubnets", "ec2", "describe_subnets", SubnetIds=subnets
        )
        usable = sorted(
            s["SubnetId"] for s in response["Subnets"] if s.get("AvailabilityZone") in zones
        )
        if not usable:
            raise InvalidConfiguration(
                f"no subnet of EKS cluster {self._cluster} lies in zones {', '.join(zones)}"
            )
        return usable

    def _check_owned(self, group: Mapping[str, Any]) -> None:
        if not nodegroups.owned_by(group, self._name):
            raise InvalidConfiguration(
                f"node group {group.get('nodegroupName')} in EKS cluster {self._cluster} is not "
                f"tagged modelfleet.io/managed=true for FleetCluster {self._name}; "
                "refusing to touch it"
            )

    async def _to_pools(
        self, groups: Sequence[Mapping[str, Any]], *, gpu: str | None = None
    ) -> list[NodePool]:
        """NodePools for ``groups``, ready counts from their Auto Scaling groups.

        ``ready_nodes`` is EC2's view (InService and Healthy); whether a node joined
        Kubernetes and is Ready is the member-cluster client's business.
        """
        owners = nodegroups.asg_names(groups)
        asgs: list[Any] = []
        for chunk in chunks(sorted(owners), 50):
            asgs += await self._api.paginate(
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling",
                "describe_auto_scaling_groups",
                "AutoScalingGroups",
                AutoScalingGroupNames=chunk,
            )
        ready = nodegroups.ready_counts(asgs, owners=owners)
        pools = []
        for group in groups:
            name = str(group["nodegroupName"])
            instance_types = group.get("instanceTypes") or [""]
            pools.append(
                nodegroups.to_node_pool(
                    group,
                    cluster=self._name,
                    ready_nodes=ready.get(name, 0),
                    gpu=gpu or self._gpu_by_type.get(str(instance_types[0])),
                )
            )
        return pools

    async def _vcpu_quotas(self, families: set[str | None]) -> dict[str, float]:
        """On-demand vCPU quota per family; families whose quota cannot be read are absent.

        Service Quotas is optional: without ``servicequotas:GetServiceQuota`` (or where the
        API does not answer, like moto) offerings simply carry no ``max_nodes``.
        """
        out: dict[str, float] = {}
        for family in sorted(f for f in families if f is not None):
            code = discovery.QUOTA_CODES[family][0]
            try:
                response = await self._api.call(
                    "servicequotas:GetServiceQuota",
                    "service-quotas",
                    "get_service_quota",
                    ServiceCode="ec2",
                    QuotaCode=code,
                )
            except ProviderError as exc:
                log.info("aws %s: EC2 quota %s unknown (%s)", self._name, code, exc.code)
                continue
            out[family] = float(response["Quota"]["Value"])
        return out


def _group_zones(spec: PoolSpec) -> tuple[str, ...]:
    """Zones for a new group: ``spec.zones`` (the plan's open zones, or the FleetCluster's
    when the plan does not restrict the pool) where EC2 sells the instance type; the
    offering's zones when ``spec.zones`` is empty; ``spec.zones`` as given when the
    offering reports no zones or none of them is wanted."""
    if not spec.zones:
        return tuple(spec.offering.zones)
    sold = tuple(z for z in spec.zones if z in spec.offering.zones)
    return sold or tuple(spec.zones)
