"""GcpNodePoolProvider: GKE node pools sized to modelfleet's plan.

One provider per FleetCluster with ``provider: gcp``. Pools are named ``mf-<pool_id>`` and
marked as modelfleet's by the ``modelfleet-io-managed=true`` resource label; pools without it
are never listed, resized or deleted. The GKE API has no request ids, so creation is
check-then-create with ``409 ALREADY_EXISTS`` treated as success (the pool is re-read).

GKE sizes node pools per zone (``initialNodeCount`` and ``setSize`` apply to each of the
pool's locations), while a PoolSpec asks for a total. modelfleet therefore pins each pool to
one zone, so the total is exact (GPU nodes of one pool also share a zone's interconnect).
The size a pool has now is read from its managed instance groups (``targetSize``; nodes with
no pending action count as ready), since GKE's NodePool resource does not carry it.

SDK calls are synchronous; each runs in a worker thread, is classified into a typed error in
``classify`` and, when Throttled, retried a bounded number of times with jittered backoff.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from modelfleet import labels
from modelfleet.api.fleetcluster import FleetCluster
from modelfleet.core.types import Offering
from modelfleet.providers.base import NodePool, NodeRef, PoolIssue, PoolSpec, PoolState
from modelfleet.providers.errors import InvalidConfiguration, NotFound
from modelfleet.providers.gcp import naming
from modelfleet.providers.gcp.catalog import (
    ACCELERATORS,
    GpuMachineType,
    accelerator_for_machine_type,
    available_quota,
    build_offerings,
    load_price_table,
)
from modelfleet.providers.gcp.classify import CallContext, capacity_issue_text, classify
from modelfleet.providers.gcp.sdk import Endpoints, GcpClients, load_sdk
from modelfleet.providers.offerings import merge_declared
from modelfleet.providers.retry import retry_throttled
from modelfleet.providers.sdkcall import LazyClient, classified

log = logging.getLogger(__name__)
T = TypeVar("T")

STATE_BY_STATUS: Mapping[str, PoolState] = {
    "PROVISIONING": "Creating",
    "RUNNING": "Active",
    "RECONCILING": "Updating",
    "STOPPING": "Deleting",
    "ERROR": "Failed",
    "RUNNING_WITH_ERROR": "Degraded",
}
BUSY_STATUSES = frozenset({"PROVISIONING", "RECONCILING", "STOPPING"})
MAX_BACKOFF_SECONDS = 20.0


class GcpNodePoolProvider:
    """NodePoolProvider for GKE (see ``providers.base.NodePoolProvider`` for the contracts).

    ``credentials`` is the FleetCluster's credentials Secret data (``service_account.json``);
    None uses Application Default Credentials (GKE workload identity). ``endpoint`` overrides
    both the GKE and the Compute Engine API endpoint (else MODELFLEET_GCP_CONTAINER_ENDPOINT /
    MODELFLEET_GCP_COMPUTE_ENDPOINT). ``sdk_credentials`` injects a google.auth credentials
    object (embedding, tests). ``sleep`` and ``rng`` drive the Throttled retry backoff;
    ``max_attempts`` bounds it; ``timeout`` is per API call, seconds.

    Raises ProviderUnavailable when the gcp extra is missing and InvalidConfiguration when
    the FleetCluster has no ``spec.gcp``.
    """

    def __init__(
        self,
        cluster: FleetCluster,
        *,
        credentials: Mapping[str, str] | None = None,
        endpoint: str | None = None,
        sdk_credentials: object = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_attempts: int = 4,
        timeout: float = 60.0,
    ) -> None:
        settings = cluster.spec.gcp
        if settings is None:
            raise InvalidConfiguration(f"FleetCluster {cluster.metadata.name} has no spec.gcp")
        self._sdk = load_sdk()
        self._clients = GcpClients(
            self._sdk,
            credentials,
            endpoints=Endpoints.resolve(endpoint),
            sdk_credentials=sdk_credentials,
        )
        self._cluster = cluster
        self._project = settings.project
        self._location = settings.location
        self._region = cluster.spec.region
        self._parent = (
            f"projects/{settings.project}/locations/{settings.location}"
            f"/clusters/{settings.cluster_name}"
        )
        self._prices = load_price_table()
        self._accelerator_of: dict[str, str] = {}  # machine type -> accelerator type, discovered
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._max_attempts = max(1, max_attempts)
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"GcpNodePoolProvider(cluster={self._parent!r})"

    # -- NodePoolProvider ------------------------------------------------------------------

    async def discover_offerings(self) -> list[Offering]:
        """GPU machine types of the cluster's zones (Compute Engine machineTypes with bundled
        accelerators whose type the zone lists), priced from the bundled table, max_nodes from
        the region's remaining on-demand GPU quota, merged with the declared offerings."""
        regions = self._client("regions")
        try:  # the contract: discovery never raises NotFound
            region = await self._call(
                CallContext("compute.regions.get"),
                lambda: regions.get(
                    project=self._project, region=self._region, retry=None, timeout=self._timeout
                ),
            )
            zones = list(
                self._cluster.spec.zones or [url.rsplit("/", 1)[-1] for url in region.zones]
            )
            per_zone = await asyncio.gather(*(self._zone_facts(zone) for zone in zones))
        except NotFound as err:
            raise InvalidConfiguration(
                f"project {self._project} / region {self._region}: {err.message}",
                cloud_code=err.cloud_code,
            ) from err
        machines = [machine for _accels, found in per_zone for machine in found]
        offerings = build_offerings(
            machines,
            region=self._region,
            zone_accelerators={
                zone: accels for zone, (accels, _m) in zip(zones, per_zone, strict=True)
            },
            quota=available_quota((q.metric, q.limit, q.usage) for q in region.quotas),
            prices=self._prices,
        )
        for machine in machines:
            self._accelerator_of.setdefault(machine.name, machine.accelerator_type)
        return merge_declared(offerings, self._cluster.spec.gpu_offerings)

    async def ensure_pool(self, spec: PoolSpec) -> NodePool:
        """Create the pool (one zone, ``spec.nodes`` nodes, autoscaling off) or resize it
        with setSize. A 409 on create counts as created. A pool busy with another operation
        is returned as it is and resized on a later call. Raises InvalidConfiguration when
        the name is taken by a pool modelfleet does not own or of another machine type."""
        if spec.nodes < 0:
            raise InvalidConfiguration(f"pool {spec.pool_id}: nodes must be >= 0")
        bad = naming.invalid_node_labels(spec.node_labels())
        if bad:
            raise InvalidConfiguration(f"node labels Kubernetes would reject: {', '.join(bad)}")
        if not naming.tags_round_trip(spec.tags()):
            raise InvalidConfiguration(
                f"cluster {spec.cluster!r} / {spec.offering.instance_type!r} cannot be stored in "
                "GCP labels unchanged (lowercase, at most 63 characters)"
            )
        name = naming.pool_name(spec.pool_id)
        pool = await self._find(name)
        if pool is None:
            created = await self._create(name, spec)
            pool = await self._get(name)
            if created:
                return await self._to_node_pool(pool)
        self._check_same_pool(pool, spec)
        current = await self._to_node_pool(pool)
        status = self._status(pool)
        if current.desired_nodes == spec.nodes or status in BUSY_STATUSES:
            return current
        per_zone = math.ceil(spec.nodes / max(1, len(pool.locations)))
        log.info(
            "resizing GKE node pool %s from %d to %d nodes", name, current.desired_nodes, spec.nodes
        )
        request = self._sdk.container.SetNodePoolSizeRequest(
            name=f"{self._parent}/nodePools/{name}", node_count=per_zone
        )
        manager = self._client("cluster_manager")
        operation = await self._call(
            self._mutation("container.nodePools.update", spec),
            lambda: manager.set_node_pool_size(request=request, retry=None, timeout=self._timeout),
        )
        self._raise_operation_error(operation, self._mutation("container.nodePools.update", spec))
        return await self._to_node_pool(await self._get(name))

    async def get_pool(self, spec: PoolSpec) -> NodePool:
        """The pool for ``spec`` with its GKE conditions as issues. Raises NotFound."""
        return await self._to_node_pool(await self._get(naming.pool_name(spec.pool_id)))

    async def list_pools(self) -> list[NodePool]:
        """Node pools of the cluster carrying ``modelfleet-io-managed=true``."""
        manager = self._client("cluster_manager")
        response = await self._call(
            CallContext("container.nodePools.list"),
            lambda: manager.list_node_pools(parent=self._parent, retry=None, timeout=self._timeout),
        )
        owned = [p for p in response.node_pools if naming.is_owned(p.config.resource_labels)]
        return list(await asyncio.gather(*(self._to_node_pool(pool) for pool in owned)))

    async def delete_pool(self, name: str) -> None:
        """Delete the owned pool ``name``; returns when it is gone or already stopping.
        Raises InvalidConfiguration for a pool without modelfleet's label."""
        pool = await self._find(name)
        if pool is None or self._status(pool) == "STOPPING":
            return
        if not naming.is_owned(pool.config.resource_labels):
            raise InvalidConfiguration(
                f"GKE node pool {name} is not labelled {naming.MANAGED_LABEL}=true; "
                "modelfleet does not delete pools it does not own"
            )
        manager = self._client("cluster_manager")
        log.info("deleting GKE node pool %s", name)
        try:
            await self._call(
                CallContext("container.nodePools.delete"),
                lambda: manager.delete_node_pool(
                    name=f"{self._parent}/nodePools/{name}", retry=None, timeout=self._timeout
                ),
            )
        except NotFound:
            return

    # -- RemovesNodes ---------------------------------------------------------------------

    async def remove_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> NodePool:
        """Delete exactly these nodes' VMs (contract in ``RemovesNodes``).

        One Compute Engine ``instanceGroupManagers.deleteInstances`` per managed instance
        group of the pool (one: modelfleet pins a pool to one zone), which deletes the named
        VMs and lowers the group's ``targetSize`` by as many; GKE reads the pool's size from
        its groups, so nothing else is resized. ``skipInstancesOnValidationError`` is set:
        a VM already being deleted (or gone) is skipped rather than failing the batch, and
        the call can only ever delete members of that group. A providerID of another
        project or of a zone where the pool has no group is refused (``InvalidConfiguration``,
        nothing deleted). ``spec.nodes`` is not needed: the group's size is the pool's.
        """
        name = naming.pool_name(spec.pool_id)
        pool = await self._get(name)
        self._check_same_pool(pool, spec)
        groups: dict[tuple[str, str], str] = {}
        for url in pool.instance_group_urls:
            parts = url.split("/")
            if len(parts) >= 6:
                groups[(parts[-5], parts[-3])] = parts[-1]
        by_group: dict[tuple[str, str, str], list[str]] = {}
        for node in nodes:
            where = naming.instance_of(node.provider_id)
            if where is None:
                raise InvalidConfiguration(
                    f"node {node.name}: providerID {node.provider_id!r} is not a GCE instance"
                )
            project, zone, instance = where
            group = groups.get((project, zone))
            if group is None:
                raise InvalidConfiguration(
                    f"node {node.name} ({project}/{zone}) is not in GKE node pool {name}, "
                    "whose instance groups are in "
                    + (", ".join(f"{p}/{z}" for p, z in sorted(groups)) or "no zone yet")
                )
            by_group.setdefault((project, zone, group), []).append(
                f"projects/{project}/zones/{zone}/instances/{instance}"
            )
        managers = self._client("instance_group_managers")
        context = self._mutation("compute.instanceGroupManagers.deleteInstances", spec)
        for (project, zone, group), instances in sorted(by_group.items()):
            body = self._sdk.compute.InstanceGroupManagersDeleteInstancesRequest(
                instances=sorted(instances), skip_instances_on_validation_error=True
            )
            log.info("deleting %s from GKE node pool %s (group %s)", instances, name, group)
            operation = await self._call(
                context,
                functools.partial(
                    managers.delete_instances_unary,
                    project=project,
                    zone=zone,
                    instance_group_manager=group,
                    instance_group_managers_delete_instances_request_resource=body,
                    retry=None,
                    timeout=self._timeout,
                ),
            )
            self._raise_compute_operation_error(operation, context)
        return await self._to_node_pool(await self._get(name))

    # -- KnowsNodes -----------------------------------------------------------------------

    async def owned_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> frozenset[str]:
        """The nodes whose VM is a managed instance of one of the pool's instance groups
        (Compute ``instanceGroupManagers.listManagedInstances``; contract in
        ``KnowsNodes``). A missing pool owns nothing."""
        try:
            pool = await self._get(naming.pool_name(spec.pool_id))
        except NotFound:
            return frozenset()
        members: set[tuple[str, str, str]] = set()
        managers = self._client("instance_group_managers")
        for url in pool.instance_group_urls:
            parts = url.split("/")
            if len(parts) < 6:
                continue
            project, zone, group = parts[-5], parts[-3], parts[-1]
            found = await self._call(
                CallContext("compute.instanceGroupManagers.listManagedInstances"),
                functools.partial(
                    lambda p, z, g: [
                        str(m.instance).rsplit("/", 1)[-1]
                        for m in managers.list_managed_instances(
                            project=p,
                            zone=z,
                            instance_group_manager=g,
                            retry=None,
                            timeout=self._timeout,
                        )
                    ],
                    project,
                    zone,
                    group,
                ),
            )
            members.update((project, zone, vm) for vm in found)
        return frozenset(n.name for n in nodes if naming.instance_of(n.provider_id) in members)

    # -- helpers ---------------------------------------------------------------------------

    def _raise_compute_operation_error(self, operation: Any, context: CallContext) -> None:
        """A Compute Operation's ``error.errors`` as a typed error (the call itself
        succeeded, the operation says what failed)."""
        errors = list(getattr(getattr(operation, "error", None), "errors", None) or [])
        if errors:
            message = "; ".join(f"{e.code}: {e.message}" for e in errors)
            raise classify(self._sdk.exceptions.FailedPrecondition(message), context)

    def _client(self, name: str) -> LazyClient:
        return LazyClient(self._clients, name)

    async def _zone_facts(self, zone: str) -> tuple[set[str], list[GpuMachineType]]:
        accelerator_types = self._client("accelerator_types")
        machine_types = self._client("machine_types")
        accels = await self._call(
            CallContext("compute.acceleratorTypes.list"),
            lambda: {
                a.name
                for a in accelerator_types.list(
                    project=self._project, zone=zone, retry=None, timeout=self._timeout
                )
            },
        )
        machines = await self._call(
            CallContext("compute.machineTypes.list"),
            lambda: [
                GpuMachineType(
                    m.name,
                    m.accelerators[0].guest_accelerator_type,
                    m.accelerators[0].guest_accelerator_count,
                    zone,
                )
                for m in machine_types.list(
                    project=self._project, zone=zone, retry=None, timeout=self._timeout
                )
                if m.accelerators
            ],
        )
        return accels, machines

    async def _get(self, name: str) -> Any:
        manager = self._client("cluster_manager")
        return await self._call(
            CallContext("container.nodePools.get"),
            lambda: manager.get_node_pool(
                name=f"{self._parent}/nodePools/{name}", retry=None, timeout=self._timeout
            ),
        )

    async def _find(self, name: str) -> Any | None:
        try:
            return await self._get(name)
        except NotFound:
            return None

    async def _create(self, name: str, spec: PoolSpec) -> bool:
        """Create the pool; False when it already existed (409 ALREADY_EXISTS)."""
        container = self._sdk.container
        machine_type = spec.offering.instance_type
        accelerator_type = self._accelerator_of.get(machine_type) or accelerator_for_machine_type(
            machine_type
        )
        if accelerator_type is None:
            raise InvalidConfiguration(
                f"{machine_type} has no bundled GPUs modelfleet knows (a2/a3/a4/g2 machine types)"
            )
        node_pool = container.NodePool(
            name=name,
            initial_node_count=spec.nodes,
            locations=[self._zone_for(spec)],
            config=container.NodeConfig(
                machine_type=machine_type,
                accelerators=[
                    container.AcceleratorConfig(
                        accelerator_count=spec.offering.gpus_per_node,
                        accelerator_type=accelerator_type,
                        gpu_driver_installation_config=container.GPUDriverInstallationConfig(
                            gpu_driver_version=container.GPUDriverInstallationConfig.GPUDriverVersion.LATEST
                        ),
                    )
                ],
                spot=spec.capacity_type == "Spot",
                labels=spec.node_labels(),
                taints=[
                    container.NodeTaint(
                        key=labels.GPU_TAINT_KEY,
                        value=labels.GPU_TAINT_VALUE,
                        effect=container.NodeTaint.Effect.NO_SCHEDULE,
                    )
                ],
                resource_labels=naming.resource_labels(spec.tags()),
            ),
            autoscaling=container.NodePoolAutoscaling(enabled=False),
            management=container.NodeManagement(auto_repair=True, auto_upgrade=True),
        )
        manager = self._client("cluster_manager")
        context = self._mutation("container.nodePools.create", spec)
        log.info(
            "creating GKE node pool %s (%s, %s, %d nodes)",
            name,
            machine_type,
            spec.capacity_type,
            spec.nodes,
        )
        try:
            operation = await self._call(
                context,
                lambda: manager.create_node_pool(
                    parent=self._parent, node_pool=node_pool, retry=None, timeout=self._timeout
                ),
            )
        except InvalidConfiguration as err:
            if err.cloud_code == "ALREADY_EXISTS":  # a retry after a lost response
                return False
            raise
        self._raise_operation_error(operation, context)
        return True

    def _zone_for(self, spec: PoolSpec) -> str:
        cluster_zones = tuple(self._cluster.spec.zones or ())
        offered = [z for z in spec.offering.zones if not cluster_zones or z in cluster_zones]
        # spec.zones may be the FleetCluster's zones (no zone restriction in the plan): pick
        # one of them where the machine type is offered, else GKE never starts a node.
        wanted = [z for z in spec.zones if z in offered]
        for candidates in (wanted, spec.zones, offered, cluster_zones):
            if candidates:
                return candidates[0]
        if self._location.count("-") == 2:  # a zonal cluster, e.g. us-central1-a
            return self._location
        raise InvalidConfiguration(
            "GKE sizes pools per zone: set spec.zones on the FleetCluster (or offering zones)"
        )

    def _check_same_pool(self, pool: Any, spec: PoolSpec) -> None:
        name = pool.name
        if not naming.is_owned(pool.config.resource_labels):
            raise InvalidConfiguration(
                f"GKE node pool {name} exists but is not labelled {naming.MANAGED_LABEL}=true"
            )
        spot = bool(pool.config.spot or pool.config.preemptible)
        if pool.config.machine_type != spec.offering.instance_type or spot != (
            spec.capacity_type == "Spot"
        ):
            raise InvalidConfiguration(
                f"GKE node pool {name} is {pool.config.machine_type} (spot={spot}), "
                f"not {spec.offering.instance_type} {spec.capacity_type}"
            )

    def _mutation(self, permission: str, spec: PoolSpec) -> CallContext:
        return CallContext(permission, spec.offering.instance_type, spec.capacity_type)

    def _raise_operation_error(self, operation: Any, context: CallContext) -> None:
        """GKE reports some failures in the returned Operation rather than as an HTTP error."""
        error = getattr(operation, "error", None)
        if error is not None and error.message:
            raise classify(
                self._sdk.exceptions.from_grpc_status(error.code, error.message), context
            )

    def _status(self, pool: Any) -> str:
        return str(self._sdk.container.NodePool.Status(pool.status).name)

    async def _to_node_pool(self, pool: Any) -> NodePool:
        desired, ready = await self._sizes(pool)
        config = pool.config
        accelerator = str(config.accelerators[0].accelerator_type) if config.accelerators else ""
        status = self._status(pool)
        issues = tuple(self._issue(condition) for condition in pool.conditions)
        if not issues and status in ("ERROR", "RUNNING_WITH_ERROR") and pool.status_message:
            issues = (
                PoolIssue(
                    status, pool.status_message, capacity_issue_text(status, pool.status_message)
                ),
            )
        resource_labels = dict(config.resource_labels)
        return NodePool(
            name=pool.name,
            instance_type=config.machine_type,
            capacity_type="Spot" if config.spot or config.preemptible else "OnDemand",
            desired_nodes=desired,
            ready_nodes=min(ready, desired),
            state=STATE_BY_STATUS.get(status, "Updating"),
            gpu=ACCELERATORS[accelerator].gpu if accelerator in ACCELERATORS else None,
            issues=issues,
            managed=naming.is_owned(resource_labels),
            tags=naming.canonical_tags(resource_labels),
        )

    def _issue(self, condition: Any) -> PoolIssue:
        code = condition.code.name if condition.code else ""
        if not code or code == "UNKNOWN":
            code = condition.canonical_code.name if condition.canonical_code else "UNKNOWN"
        return PoolIssue(code, condition.message, capacity_issue_text(code, condition.message))

    async def _sizes(self, pool: Any) -> tuple[int, int]:
        """(desired, ready) nodes summed over the pool's managed instance groups; before the
        groups exist, initialNodeCount per location and none ready."""
        groups = self._client("instance_group_managers")

        def read_group(project: str, zone: str, name: str) -> Any:
            return groups.get(
                project=project,
                zone=zone,
                instance_group_manager=name,
                retry=None,
                timeout=self._timeout,
            )

        desired = ready = found = 0
        for url in pool.instance_group_urls:
            parts = url.split("/")
            if len(parts) < 6:
                continue
            try:
                group = await self._call(
                    CallContext("compute.instanceGroupManagers.get"),
                    functools.partial(read_group, parts[-5], parts[-3], parts[-1]),
                )
            except NotFound:
                continue
            found += 1
            desired += group.target_size
            ready += group.current_actions.none
        if not found:
            return pool.initial_node_count * max(1, len(pool.locations)), 0
        return desired, ready

    async def _call(self, context: CallContext, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a worker thread; classify its errors; retry Throttled with
        jittered exponential backoff (at most ``max_attempts`` tries)."""
        return await retry_throttled(
            lambda: asyncio.to_thread(classified, fn, lambda err: classify(err, context)),
            max_attempts=self._max_attempts,
            sleep=self._sleep,
            rng=self._rng,
            max_wait=MAX_BACKOFF_SECONDS,
            label=f"GCP {context.permission}",
        )
