"""StaticNodePoolProvider: GPU capacity that already exists and never changes size.

Neoclouds, on-prem clusters and reserved fleets come with their GPU nodes pre-provisioned.
modelfleet can place replicas there but cannot buy more, so this provider only *reads*: it
groups the cluster's nodes by the labels every modelfleet pool carries —
``modelfleet.io/instance-type`` and ``modelfleet.io/capacity-type`` (set them by hand on
static nodes) — and reports each group as an unmanaged pool. It never creates, resizes or
deletes anything:

- ``ensure_pool`` returns the existing pool when it has at least ``spec.nodes`` ready,
  schedulable nodes, and otherwise raises ``InsufficientCapacity``: static capacity cannot
  grow, so the placement falls through to the next candidate like any stockout.
- ``delete_pool`` refuses (``InvalidConfiguration``) for a pool that exists, because such a
  pool is not modelfleet's; a name that matches nothing is already gone.

Offerings are the FleetCluster's declared ``gpuOfferings`` with ``maxNodes`` filled in from
the labelled nodes when not declared (on-demand and spot nodes of one instance type
together: the limit is shared by both capacity types); undeclared instance types found on
nodes are reported too when NVIDIA GPU feature discovery labels them
(``nvidia.com/gpu.product``), with no price: the planner places nothing on a capacity type
it has no price for (``core.types.Offering``), so they show in ``status.offerings`` and are
used once declared with a price (0 for capacity already paid for).

The provider reads nodes through a ``NodeSource`` port it owns (a member-cluster client
adapted by ``reconciler.node_source``), so providers never import the cluster clients.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Protocol

from modelfleet import labels
from modelfleet.api.common import CapacityType
from modelfleet.api.fleetcluster import FleetCluster
from modelfleet.core.from_api import declared_offerings
from modelfleet.core.types import Offering
from modelfleet.providers.base import NodePool, PoolSpec, pool_id
from modelfleet.providers.errors import InsufficientCapacity, InvalidConfiguration, NotFound

GFD_PRODUCT = "nvidia.com/gpu.product"
"""GPU feature discovery label: the GPU model, e.g. NVIDIA-H100-80GB-HBM3."""
GFD_MEMORY = "nvidia.com/gpu.memory"
"""GPU feature discovery label: memory per GPU in MiB."""


_CAPACITY_TYPES: dict[str, CapacityType] = {"on-demand": "OnDemand", "spot": "Spot"}
"""Node-label value -> capacity type (the inverse of ``labels.capacity_label``)."""


class NodeView(Protocol):
    """What the static provider reads of a Node."""

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def gpus(self) -> int:
        """Allocatable GPUs."""
        ...

    @property
    def usable(self) -> bool:
        """Ready and schedulable."""
        ...


class NodeSource(Protocol):
    """The static provider's port to the member cluster's Nodes.

    Raises only provider errors: ``Unreachable`` (the API server did not answer),
    ``PermissionDenied`` (nodes may not be listed) or ``ProviderError``.
    """

    async def list_nodes(self, selector: Mapping[str, str] | None = None) -> Sequence[NodeView]:
        """Nodes whose labels include every pair of ``selector`` (all nodes when None)."""
        ...


class StaticNodePoolProvider:
    """NodePoolProvider over pre-provisioned, labelled nodes; see the module docstring."""

    def __init__(self, cluster: FleetCluster, *, nodes: NodeSource) -> None:
        self._cluster = cluster
        self._name = cluster.metadata.name
        self._nodes = nodes

    async def discover_offerings(self) -> list[Offering]:
        groups = await self._groups()
        nodes_per_type: dict[str, list[NodeView]] = defaultdict(list)
        for (instance_type, _), nodes in groups.items():
            nodes_per_type[instance_type].extend(nodes)
        result: list[Offering] = []
        for declared in declared_offerings(self._cluster):
            if declared.max_nodes is None:
                count = len(nodes_per_type.get(declared.instance_type, []))
                declared = dataclasses.replace(declared, max_nodes=count)
            result.append(declared)
        known = {o.instance_type for o in result}
        for instance_type, nodes in sorted(nodes_per_type.items()):
            if instance_type in known:
                continue
            discovered = _discovered_offering(instance_type, nodes)
            if discovered is not None:
                result.append(discovered)
        return result

    async def ensure_pool(self, spec: PoolSpec) -> NodePool:
        if spec.nodes < 0:
            raise InvalidConfiguration(f"pool size must be >= 0, got {spec.nodes}")
        pool = _pool(
            self._name, spec.offering.instance_type, spec.capacity_type, await self._nodes_for(spec)
        )
        if pool.ready_nodes >= spec.nodes:
            return pool
        raise InsufficientCapacity(
            f"static capacity cannot grow: {pool.ready_nodes} ready node(s) labelled "
            f"{labels.NODE_INSTANCE_TYPE}={spec.offering.instance_type}, "
            f"{labels.NODE_CAPACITY_TYPE}={labels.capacity_label(spec.capacity_type)} in "
            f"cluster {self._name}, {spec.nodes} needed",
            instance_type=spec.offering.instance_type,
            capacity_type=spec.capacity_type,
        )

    async def get_pool(self, spec: PoolSpec) -> NodePool:
        nodes = await self._nodes_for(spec)
        if not nodes:
            raise NotFound(
                f"no nodes labelled {labels.NODE_INSTANCE_TYPE}={spec.offering.instance_type}, "
                f"{labels.NODE_CAPACITY_TYPE}={labels.capacity_label(spec.capacity_type)} in "
                f"cluster {self._name}"
            )
        return _pool(self._name, spec.offering.instance_type, spec.capacity_type, nodes)

    async def list_pools(self) -> list[NodePool]:
        groups = await self._groups()
        return [
            _pool(self._name, instance_type, capacity_type, nodes)
            for (instance_type, capacity_type), nodes in sorted(groups.items())
        ]

    async def delete_pool(self, name: str) -> None:
        if any(pool.name == name for pool in await self.list_pools()):
            raise InvalidConfiguration(
                f"pool {name} in cluster {self._name} is static capacity, not modelfleet's: "
                "it is never deleted"
            )

    async def _nodes_for(self, spec: PoolSpec) -> Sequence[NodeView]:
        selector = {
            labels.NODE_INSTANCE_TYPE: spec.offering.instance_type,
            labels.NODE_CAPACITY_TYPE: labels.capacity_label(spec.capacity_type),
        }
        return await self._nodes.list_nodes(selector)

    async def _groups(self) -> dict[tuple[str, CapacityType], list[NodeView]]:
        nodes = await self._nodes.list_nodes()
        groups: dict[tuple[str, CapacityType], list[NodeView]] = defaultdict(list)
        for node in nodes:
            instance_type = node.labels.get(labels.NODE_INSTANCE_TYPE)
            capacity_type = _CAPACITY_TYPES.get(node.labels.get(labels.NODE_CAPACITY_TYPE, ""))
            if instance_type and capacity_type:
                groups[(instance_type, capacity_type)].append(node)
        return dict(groups)


def _pool(
    cluster: str, instance_type: str, capacity_type: CapacityType, nodes: Sequence[NodeView]
) -> NodePool:
    usable = sum(1 for n in nodes if n.usable)
    gpu = next((n.labels[GFD_PRODUCT] for n in nodes if GFD_PRODUCT in n.labels), None)
    return NodePool(
        name=pool_id(cluster, instance_type, capacity_type),
        instance_type=instance_type,
        capacity_type=capacity_type,
        desired_nodes=len(nodes),
        ready_nodes=usable,
        state="Active" if usable == len(nodes) else "Degraded",
        gpu=gpu,
        managed=False,
    )


def _discovered_offering(instance_type: str, nodes: list[NodeView]) -> Offering | None:
    """An offering for labelled nodes nobody declared, when GPU feature discovery says what
    GPU they carry. No price (``Offering``: nothing is placed on it until one is declared);
    ``max_nodes`` counts its nodes of both capacity types."""
    labelled = next((n for n in nodes if GFD_PRODUCT in n.labels), None)
    if labelled is None:
        return None
    memory_mib = labelled.labels.get(GFD_MEMORY, "")
    gpus = max((n.gpus for n in nodes), default=0)
    if gpus <= 0 or not memory_mib.isdigit():
        return None
    return Offering(
        gpu=labelled.labels[GFD_PRODUCT],
        gpu_memory_gib=int(memory_mib) / 1024,
        gpus_per_node=gpus,
        instance_type=instance_type,
        on_demand_per_hour=None,
        max_nodes=len(nodes),
    )
