"""AzureNodePoolProvider: AKS agent pools sized to modelfleet's plan.

One provider per FleetCluster with ``provider: azure``. Pools are named ``mf`` + 10 chars of
the pool id and marked as modelfleet's by the ``modelfleet.io-managed=true`` tag; pools
without it are never listed, resized or deleted. Creation sends ``If-None-Match: *``, so a
retry after a lost response can never replace a pool (412 means it exists: re-read);
resizing is a GET-modify-PUT of the whole agent pool with the new count, sent only when the
count differs and no other operation runs on the pool.

AKS mutations are long-running operations. The provider waits for one at most
``operation_wait`` seconds: failures ARM reports quickly (SKU not available, quota,
allocation failures in a zone) surface as typed errors in the same reconcile; slower ones
are read back later from the pool's provisioning state and ``status.provisioningError``
(the SDK's poller thread finishes on its own in the background).

Spot pools use eviction policy Delete and ``spotMaxPrice: -1`` (pay up to the on-demand
price; evicted only when Azure needs the capacity back): a price cap would add evictions on
price moves, and the planner already prices Spot from the offering.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from modelfleet import labels
from modelfleet.api.fleetcluster import FleetCluster
from modelfleet.core.types import Offering
from modelfleet.providers.azure import naming
from modelfleet.providers.azure.catalog import (
    available_vcpus,
    build_offerings,
    gpu_for_size,
    load_price_table,
    usable_gpu_skus,
)
from modelfleet.providers.azure.classify import (
    PRECONDITION_FAILED,
    CallContext,
    capacity_code,
    classify,
)
from modelfleet.providers.azure.prices import (
    Prices,
    PricesUnavailable,
    RetailPricesClient,
    live_prices_enabled,
)
from modelfleet.providers.azure.sdk import AzureClients, load_sdk
from modelfleet.providers.base import NodePool, NodeRef, PoolIssue, PoolSpec, PoolState
from modelfleet.providers.errors import InvalidConfiguration, NotFound
from modelfleet.providers.offerings import merge_declared
from modelfleet.providers.retry import retry_throttled
from modelfleet.providers.sdkcall import LazyClient, classified

log = logging.getLogger(__name__)
T = TypeVar("T")

POOLS_READ = "Microsoft.ContainerService/managedClusters/agentPools/read"
POOLS_WRITE = "Microsoft.ContainerService/managedClusters/agentPools/write"
POOLS_DELETE = "Microsoft.ContainerService/managedClusters/agentPools/delete"
MACHINES_READ = "Microsoft.ContainerService/managedClusters/agentPools/machines/read"
MACHINES_DELETE = "Microsoft.ContainerService/managedClusters/agentPools/deleteMachines/action"
SKUS_READ = "Microsoft.Compute/skus/read"
USAGES_READ = "Microsoft.Compute/locations/usages/read"

STATE_BY_PROVISIONING: Mapping[str, PoolState] = {
    "Succeeded": "Active",
    "Creating": "Creating",
    "Updating": "Updating",
    "Scaling": "Updating",
    "Upgrading": "Updating",
    "Starting": "Updating",
    "Stopping": "Updating",
    "Deleting": "Deleting",
    "Failed": "Failed",
    "Canceled": "Degraded",
}
BUSY_STATES = frozenset(
    {"Creating", "Updating", "Scaling", "Upgrading", "Starting", "Stopping", "Deleting"}
)
GPU_TAINT = f"{labels.GPU_TAINT_KEY}={labels.GPU_TAINT_VALUE}:{labels.GPU_TAINT_EFFECT}"
MAX_BACKOFF_SECONDS = 20.0
PRICE_CACHE_SECONDS = 6 * 3600.0


class AzureNodePoolProvider:
    """NodePoolProvider for AKS (see ``providers.base.NodePoolProvider`` for the contracts).

    ``credentials`` is the FleetCluster's credentials Secret data (tenant_id, client_id,
    client_secret); None uses DefaultAzureCredential (AKS workload identity). ``base_url``
    overrides the ARM endpoint (else MODELFLEET_AZURE_BASE_URL; HTTPS only).
    ``sdk_credential`` injects an azure TokenCredential (embedding, tests). ``live_prices``
    switches the Retail Prices API on/off (None: MODELFLEET_AZURE_LIVE_PRICES, default on);
    ``prices_url`` overrides its URL. ``operation_wait`` bounds the wait for a long-running
    operation, seconds. ``sleep``, ``rng`` and ``max_attempts`` drive the Throttled retry.

    Raises ProviderUnavailable when the azure extra is missing and InvalidConfiguration when
    the FleetCluster has no ``spec.azure``.
    """

    def __init__(
        self,
        cluster: FleetCluster,
        *,
        credentials: Mapping[str, str] | None = None,
        base_url: str | None = None,
        sdk_credential: object = None,
        live_prices: bool | None = None,
        prices_url: str | None = None,
        operation_wait: float = 20.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_attempts: int = 4,
    ) -> None:
        settings = cluster.spec.azure
        if settings is None:
            raise InvalidConfiguration(f"FleetCluster {cluster.metadata.name} has no spec.azure")
        self._sdk = load_sdk()
        self._clients = AzureClients(
            self._sdk,
            credentials,
            subscription_id=settings.subscription_id,
            base_url=base_url,
            sdk_credential=sdk_credential,
        )
        self._cluster = cluster
        self._group = settings.resource_group
        self._aks = settings.cluster_name
        self._region = cluster.spec.region
        self._table = load_price_table()
        self._retail = RetailPricesClient(prices_url) if live_prices_enabled(live_prices) else None
        self._price_cache: tuple[float, Prices] | None = None
        self._operation_wait = max(0.0, operation_wait)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._max_attempts = max(1, max_attempts)

    def __repr__(self) -> str:
        return f"AzureNodePoolProvider(cluster={self._group}/{self._aks})"

    # -- NodePoolProvider ------------------------------------------------------------------

    async def discover_offerings(self) -> list[Offering]:
        """GPU VM sizes usable in the region (resource SKUs minus restrictions), max_nodes
        from the family's and the region's remaining vCPU quota, prices from the Retail
        Prices API (bundled table when off or unreachable), merged with declared offerings."""
        compute = LazyClient(self._clients, "compute")
        try:  # the contract: discovery never raises NotFound
            skus = await self._call(
                CallContext(SKUS_READ),
                lambda: list(compute.resource_skus.list(filter=f"location eq '{self._region}'")),
            )
            usages = await self._call(
                CallContext(USAGES_READ),
                lambda: [
                    (u.name.value or "", float(u.limit), float(u.current_value))
                    for u in compute.usage.list(self._region)
                    if u.name is not None
                ],
            )
        except NotFound as err:
            raise InvalidConfiguration(
                f"subscription / region {self._region}: {err.message}", cloud_code=err.cloud_code
            ) from err
        gpu_skus = usable_gpu_skus(skus, region=self._region)
        sizes = sorted(s.name for s in gpu_skus if gpu_for_size(s.name) is not None)
        offerings = build_offerings(
            gpu_skus,
            cluster_zones=tuple(self._cluster.spec.zones or ()),
            vcpus_left=available_vcpus(usages),
            prices=await self._prices(sizes),
        )
        return merge_declared(offerings, self._cluster.spec.gpu_offerings)

    async def ensure_pool(self, spec: PoolSpec) -> NodePool:
        """Create the agent pool (If-None-Match: *) or set its count; wait for the operation
        at most ``operation_wait`` seconds. A pool busy with another operation is returned
        as it is. Raises InvalidConfiguration when the name is taken by a pool modelfleet
        does not own or of another VM size / priority."""
        if spec.nodes < 0:
            raise InvalidConfiguration(f"pool {spec.pool_id}: nodes must be >= 0")
        name = naming.pool_name(spec.pool_id)
        pool = await self._find(name)
        if pool is None:
            created = await self._create(name, spec)
            pool = await self._get(name)
            if created:
                return self._to_node_pool(pool)
        self._check_same_pool(pool, spec)
        if pool.count == spec.nodes or _text(pool.provisioning_state) in BUSY_STATES:
            return self._to_node_pool(pool)
        log.info("scaling AKS agent pool %s from %s to %d nodes", name, pool.count, spec.nodes)
        pool.count = spec.nodes
        containers = LazyClient(self._clients, "containers")
        context = self._mutation(POOLS_WRITE, spec)
        poller = await self._call(
            context,
            lambda: containers.agent_pools.begin_create_or_update(
                self._group, self._aks, name, pool
            ),
        )
        await self._settle(poller, context)
        return self._to_node_pool(await self._get(name))

    async def get_pool(self, spec: PoolSpec) -> NodePool:
        """The agent pool for ``spec`` with its provisioning error as an issue. Raises
        NotFound."""
        return self._to_node_pool(await self._get(naming.pool_name(spec.pool_id)))

    async def list_pools(self) -> list[NodePool]:
        """Agent pools of the cluster tagged ``modelfleet.io-managed=true``."""
        containers = LazyClient(self._clients, "containers")
        pools = await self._call(
            CallContext(POOLS_READ),
            lambda: list(containers.agent_pools.list(self._group, self._aks)),
        )
        return [self._to_node_pool(p) for p in pools if naming.is_owned(p.tags)]

    async def delete_pool(self, name: str) -> None:
        """Delete the owned agent pool ``name``; returns when it is gone or deleting.
        Raises InvalidConfiguration for a pool without modelfleet's tag."""
        pool = await self._find(name)
        if pool is None or _text(pool.provisioning_state) == "Deleting":
            return
        if not naming.is_owned(pool.tags):
            raise InvalidConfiguration(
                f"AKS agent pool {name} is not tagged {naming.MANAGED_TAG}=true; "
                "modelfleet does not delete pools it does not own"
            )
        containers = LazyClient(self._clients, "containers")
        context = CallContext(POOLS_DELETE)
        log.info("deleting AKS agent pool %s", name)
        try:
            poller = await self._call(
                context,
                lambda: containers.agent_pools.begin_delete(self._group, self._aks, name),
            )
            await self._settle(poller, context)
        except NotFound:
            return

    # -- RemovesNodes ---------------------------------------------------------------------

    async def remove_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> NodePool:
        """Delete exactly these nodes' machines (contract in ``RemovesNodes``).

        AKS ``agentPools/deleteMachines`` (SDK ``agent_pools.begin_delete_machines``): the
        named machines go and the pool's ``count`` drops by as many, in one long-running
        operation, waited for like a resize. A VMSS pool's machine names are its Nodes'
        names (``aks-<pool>-<hash>-vmss00000a``). Each node's providerID must name a scale
        set of this pool (``aks-<pool>-...``); otherwise the call is refused
        (``InvalidConfiguration``) and nothing is deleted. ``spec.nodes`` is not needed:
        AKS lowers the count itself.
        """
        name = naming.pool_name(spec.pool_id)
        pool = await self._get(name)
        self._check_same_pool(pool, spec)
        prefix = f"aks-{name}-".lower()
        for node in nodes:
            scale_set = naming.scale_set_of(node.provider_id)
            if scale_set is None or not scale_set.startswith(prefix):
                raise InvalidConfiguration(
                    f"node {node.name}: providerID {node.provider_id!r} is not a machine of "
                    f"AKS agent pool {name}"
                )
        if not nodes:
            return self._to_node_pool(pool)
        containers = LazyClient(self._clients, "containers")
        parameter = self._sdk.container_models.AgentPoolDeleteMachinesParameter(
            machine_names=sorted(node.name for node in nodes)
        )
        context = self._mutation(MACHINES_DELETE, spec)
        log.info("deleting machines %s of AKS agent pool %s", parameter.machine_names, name)
        poller = await self._call(
            context,
            lambda: containers.agent_pools.begin_delete_machines(
                self._group, self._aks, name, parameter
            ),
        )
        await self._settle(poller, context)
        return self._to_node_pool(await self._get(name))

    # -- KnowsNodes -----------------------------------------------------------------------

    async def owned_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> frozenset[str]:
        """The nodes that are machines of the agent pool (AKS ``agentPools/machines``
        list, SDK ``machines.list``: a VMSS pool's machine names are its Nodes' names)
        whose providerID names a scale set of the pool (contract in ``KnowsNodes``). A
        missing pool owns nothing."""
        name = naming.pool_name(spec.pool_id)
        if await self._find(name) is None:
            return frozenset()
        containers = LazyClient(self._clients, "containers")
        machines = await self._call(
            CallContext(MACHINES_READ),
            lambda: {str(m.name) for m in containers.machines.list(self._group, self._aks, name)},
        )
        prefix = f"aks-{name}-".lower()
        return frozenset(
            n.name
            for n in nodes
            if n.name in machines and (naming.scale_set_of(n.provider_id) or "").startswith(prefix)
        )

    # -- helpers ---------------------------------------------------------------------------

    async def _prices(self, sizes: list[str]) -> Prices:
        """Table prices overlaid with Retail Prices API figures (cached for 6 hours)."""
        merged: Prices = {size: self._table.price(self._region, size) for size in sizes}
        if self._retail is None or not sizes:
            return merged
        now = time.monotonic()
        cached = self._price_cache
        if cached is None or now - cached[0] > PRICE_CACHE_SECONDS or set(sizes) - set(cached[1]):
            retail = self._retail
            try:
                live = await asyncio.to_thread(retail.fetch, self._region, sizes)
            except PricesUnavailable as err:
                log.warning("using bundled Azure prices (as of %s): %s", self._table.as_of, err)
                return merged
            cached = (now, live)
            self._price_cache = cached
        for size, (on_demand, spot) in cached[1].items():
            table_od, table_spot = merged.get(size, (None, None))
            merged[size] = (
                table_od if on_demand is None else on_demand,
                table_spot if spot is None else spot,
            )
        return merged

    async def _get(self, name: str) -> Any:
        containers = LazyClient(self._clients, "containers")
        return await self._call(
            CallContext(POOLS_READ),
            lambda: containers.agent_pools.get(self._group, self._aks, name),
        )

    async def _find(self, name: str) -> Any | None:
        try:
            return await self._get(name)
        except NotFound:
            return None

    async def _create(self, name: str, spec: PoolSpec) -> bool:
        """Create the pool; False when it already existed (412 on If-None-Match: *)."""
        models = self._sdk.container_models
        properties = models.AgentPoolManagedClusterAgentPoolProfileProperties(
            count=spec.nodes,
            vm_size=spec.offering.instance_type,
            mode="User",
            os_type="Linux",
            type_properties_type="VirtualMachineScaleSets",
            enable_auto_scaling=False,
            node_labels=spec.node_labels(),
            node_taints=[GPU_TAINT],
            tags=naming.arm_tags(spec.tags()),
        )
        zones = self._zones_for(spec)
        if zones:
            properties.availability_zones = list(zones)
        if spec.capacity_type == "Spot":
            properties.scale_set_priority = "Spot"
            properties.scale_set_eviction_policy = "Delete"
            properties.spot_max_price = -1.0
        parameters = models.AgentPool(properties=properties)
        containers = LazyClient(self._clients, "containers")
        context = self._mutation(POOLS_WRITE, spec)
        if_missing = self._sdk.match_conditions.IfMissing
        log.info(
            "creating AKS agent pool %s (%s, %s, %d nodes)",
            name,
            spec.offering.instance_type,
            spec.capacity_type,
            spec.nodes,
        )
        try:
            poller = await self._call(
                context,
                lambda: containers.agent_pools.begin_create_or_update(
                    self._group, self._aks, name, parameters, match_condition=if_missing
                ),
            )
        except InvalidConfiguration as err:
            if err.cloud_code == PRECONDITION_FAILED:  # exists: a retry after a lost response
                return False
            raise
        await self._settle(poller, context)
        return True

    async def _settle(self, poller: Any, context: CallContext) -> None:
        """Wait for a long-running operation at most ``operation_wait`` seconds; raise its
        failure (classified) when it finished badly."""
        wait = self._operation_wait

        def settle() -> None:
            poller.wait(timeout=wait)
            if poller.done():
                poller.result()

        await self._call(context, settle, retry=False)

    def _zones_for(self, spec: PoolSpec) -> tuple[str, ...]:
        cluster_zones = tuple(self._cluster.spec.zones or ())
        if spec.zones:
            # spec.zones may be the FleetCluster's zones (no restriction in the plan): keep
            # those where the SKU is offered, when any.
            sold = tuple(z for z in spec.zones if z in spec.offering.zones)
            return sold or spec.zones
        offered = tuple(z for z in spec.offering.zones if not cluster_zones or z in cluster_zones)
        return offered or cluster_zones

    def _check_same_pool(self, pool: Any, spec: PoolSpec) -> None:
        if not naming.is_owned(pool.tags):
            raise InvalidConfiguration(
                f"AKS agent pool {pool.name} exists but is not tagged {naming.MANAGED_TAG}=true"
            )
        spot = _text(pool.scale_set_priority) == "Spot"
        if (pool.vm_size or "").lower() != spec.offering.instance_type.lower() or spot != (
            spec.capacity_type == "Spot"
        ):
            raise InvalidConfiguration(
                f"AKS agent pool {pool.name} is {pool.vm_size} (spot={spot}), "
                f"not {spec.offering.instance_type} {spec.capacity_type}"
            )

    def _mutation(self, action: str, spec: PoolSpec) -> CallContext:
        return CallContext(action, spec.offering.instance_type, spec.capacity_type)

    def _to_node_pool(self, pool: Any) -> NodePool:
        """The SDK's AgentPool as a NodePool. AKS reports no per-node readiness: ready_nodes
        is the count once the pool has Succeeded and is Running, else 0."""
        provisioning = _text(pool.provisioning_state)
        power = _text(pool.power_state.code) if pool.power_state else ""
        state = STATE_BY_PROVISIONING.get(provisioning, "Updating")
        issues: list[PoolIssue] = []
        error = pool.status.provisioning_error if pool.status else None
        if error is not None:
            code = str(error.code or "ProvisioningError")
            details = [d for d in error.details or () if d.code]
            capacity = capacity_code(code) or any(capacity_code(str(d.code)) for d in details)
            issues.append(PoolIssue(code, str(error.message), capacity))
            issues.extend(
                PoolIssue(str(d.code), str(d.message), capacity_code(str(d.code))) for d in details
            )
        if state == "Active" and power == "Stopped":
            state = "Degraded"
            issues.append(PoolIssue("PowerStateStopped", "the agent pool is stopped"))
        count = int(pool.count or 0)
        vm_size = str(pool.vm_size or "")
        gpu = gpu_for_size(vm_size)
        return NodePool(
            name=str(pool.name),
            instance_type=vm_size,
            capacity_type="Spot" if _text(pool.scale_set_priority) == "Spot" else "OnDemand",
            desired_nodes=count,
            ready_nodes=count if state == "Active" and power in ("", "Running") else 0,
            state=state,
            gpu=gpu[0] if gpu else None,
            issues=tuple(issues),
            managed=naming.is_owned(pool.tags),
            tags=naming.canonical_tags(pool.tags),
        )

    async def _call(self, context: CallContext, fn: Callable[[], T], *, retry: bool = True) -> T:
        """Run ``fn`` in a worker thread; classify its errors; retry Throttled (when
        ``retry``) with jittered exponential backoff, at most ``max_attempts`` tries."""
        return await retry_throttled(
            lambda: asyncio.to_thread(classified, fn, lambda err: classify(err, context)),
            max_attempts=self._max_attempts if retry else 1,
            sleep=self._sleep,
            rng=self._rng,
            max_wait=MAX_BACKOFF_SECONDS,
            label=f"Azure {context.action}",
        )


def _text(value: object) -> str:
    """An SDK enum or string as its wire value ("Running", not "Code.RUNNING")."""
    return str(getattr(value, "value", value) or "")
