"""The NodePoolProvider interface: how modelfleet sizes GPU node pools in any cloud.

Deliberately narrow (five methods, after Karpenter's CloudProvider): discover what can be
bought, make a pool exist at a size, read pools back, delete one. Every implementation —
aws (EKS managed node groups), gcp (GKE node pools), azure (AKS agent pools), static
(pre-provisioned nodes, never resized) and simulated (in-process) — honours the same
contracts, raises only the typed errors of ``providers.errors``, and never touches a pool
that lacks modelfleet's ownership tag/label (``modelfleet.io/managed=true``). One optional
port, ``RemovesNodes``, removes chosen nodes of a pool (aws, gcp, azure, simulated); another,
``KnowsNodes``, says which Nodes are instances of a pool (read from the cloud).

What a provider can offer is the core's ``Offering`` (``core.types``): the one model of an
offering, returned as is by ``discover_offerings`` and carried by ``PoolSpec``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from modelfleet import labels
from modelfleet.api.common import CapacityType
from modelfleet.core.types import Offering
from modelfleet.labels import pool_id as pool_id

PoolState = Literal["Creating", "Active", "Updating", "Deleting", "Degraded", "Failed"]


@dataclass(frozen=True)
class PoolIssue:
    """A health problem the cloud reports on a pool, with the cloud's own code
    (e.g. AsgInstanceLaunchFailures, InsufficientFreeAddresses, ZONE_RESOURCE_POOL_EXHAUSTED)."""

    code: str
    message: str
    capacity: bool = False
    """True when the provider's classifier reads this issue as "no capacity or quota here"
    (the cloud accepted a resize and could not launch the nodes): the reconciler turns it
    into a stockout mark exactly as if ``ensure_pool`` had raised."""


def capacity_issue(pool: NodePool) -> PoolIssue | None:
    """The first issue of ``pool`` its provider classified as a capacity/quota problem."""
    return next((issue for issue in pool.issues if issue.capacity), None)


@dataclass(frozen=True)
class PoolSpec:
    """What a pool should look like. Pools are keyed by (cluster, instance type, capacity
    type): ``pool_id`` is the deterministic identity every provider derives its name from."""

    cluster: str
    offering: Offering
    capacity_type: CapacityType
    nodes: int
    zones: tuple[str, ...] = ()

    @property
    def pool_id(self) -> str:
        """12 hex chars identifying (cluster, instance type, capacity type), stable forever."""
        return labels.pool_id(self.cluster, self.offering.instance_type, self.capacity_type)

    def node_labels(self) -> dict[str, str]:
        """Labels every node of the pool carries; workloads select on them."""
        return labels.node_labels(self.cluster, self.offering.instance_type, self.capacity_type)

    def tags(self) -> dict[str, str]:
        """Cloud tags/labels marking the pool as modelfleet's (orphan GC keys on them)."""
        return {
            labels.MANAGED: "true",
            labels.CLUSTER: self.cluster,
            labels.OFFERING: self.offering.instance_type,
        }


@dataclass(frozen=True)
class NodePool:
    """A pool as the cloud reports it. ``managed`` is False for pools modelfleet did not
    create (they are reported by ``list_pools`` only for static capacity, and never changed)."""

    name: str
    instance_type: str
    capacity_type: CapacityType
    desired_nodes: int
    ready_nodes: int
    state: PoolState
    gpu: str | None = None
    issues: tuple[PoolIssue, ...] = ()
    managed: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class NodePoolProvider(Protocol):
    """Sizes GPU node pools of one member cluster in one cloud account and region.

    All methods are coroutines; implementations over synchronous SDKs run calls in a worker
    thread. Every method may raise ``Throttled`` or ``Unreachable`` (retryable),
    ``PermissionDenied`` (naming the permission) or ``InvalidConfiguration``.
    """

    async def discover_offerings(self) -> list[Offering]:
        """GPU offerings of the cluster's region, with prices and quota where the cloud
        exposes them (a price the provider does not know is None: see ``Offering``; its
        ``max_nodes`` is shared by both capacity types). May return an empty list (static
        and simulated providers return the declared offerings). Never raises NotFound."""
        ...

    async def ensure_pool(self, spec: PoolSpec) -> NodePool:
        """Make the pool for ``spec`` exist with ``spec.nodes`` desired nodes (min 0).

        Idempotent: creates the pool when missing (with a deterministic idempotency token),
        resizes it when the size differs, and otherwise does nothing. Returns the pool as the
        cloud now reports it (it may still be Creating/Updating). Raises
        ``InsufficientCapacity`` or ``QuotaExceeded`` when the cloud refuses for capacity.
        """
        ...

    async def get_pool(self, spec: PoolSpec) -> NodePool:
        """The current state of the pool for ``spec``, including the cloud's health issues
        (capacity problems surface here as issues after an accepted resize). Raises
        ``NotFound`` when the pool does not exist."""
        ...

    async def list_pools(self) -> list[NodePool]:
        """Every pool in the cluster carrying modelfleet's ownership tag. Pools without it
        are never listed, resized or deleted."""
        ...

    async def delete_pool(self, name: str) -> None:
        """Delete the modelfleet-owned pool ``name``. Idempotent: returns normally when it is
        already gone or being deleted. Refuses (``InvalidConfiguration``) to delete a pool
        without modelfleet's ownership tag."""
        ...


@dataclass(frozen=True)
class NodeRef:
    """One Kubernetes Node of a pool, as a provider needs it to remove that very node:
    its name and ``spec.providerID`` (``aws:///us-east-1a/i-0abc...``,
    ``gce://project/zone/instance``, ``azure:///subscriptions/.../virtualMachineScaleSets/
    <vmss>/virtualMachines/<n>``)."""

    name: str
    provider_id: str


@runtime_checkable
class RemovesNodes(Protocol):
    """A provider that can shrink a pool by removing chosen nodes rather than by count.

    A resize by count lets the cloud pick the instance that goes (EKS: the Auto Scaling
    group's termination policy; GKE, AKS: the instance group's choice), which on a shared
    pool may be a node that serves. The reconciler calls ``remove_nodes`` with the nodes it
    emptied and cordoned; providers without it (static, test fakes) are shrunk by count
    only when no node of the pool serves (``reconciler.shrink``).
    """

    async def remove_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> NodePool:
        """Delete exactly ``nodes`` (their cloud instances) from the pool of ``spec``,
        lowering its desired size by one per node removed, so that no other instance is
        touched; ``spec.nodes`` is the size the operator expects after the removal (where
        the cloud keeps a second desired size, EKS's node group, the provider sets it to
        what the cloud now holds). A node already gone is skipped. Returns the pool as the cloud now reports it. Raises ``NotFound`` when the pool is missing, ``InvalidConfiguration`` when a
        node's providerID cannot be read or names an instance outside this pool (nothing is
        removed then), and the usual retryable/permission errors."""
        ...


@runtime_checkable
class KnowsNodes(Protocol):
    """A provider that can tell, from the cloud's own list of a pool's instances, which
    Kubernetes Nodes are that pool's: a Node carrying the pool's labels is not proof (an
    instance of another group labelled alike, or one already gone whose Node lingers).
    The reconciler chooses nodes to remove only among those (``reconciler.shrink``), so
    such a Node never blocks the pool's shrink."""

    async def owned_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> frozenset[str]:
        """Names of those ``nodes`` whose providerID is a live instance of the pool of
        ``spec`` (EKS: an instance of the node group's Auto Scaling group; GKE: of the
        pool's managed instance groups; AKS: a machine of the agent pool). A providerID of
        another cloud, another group, or an instance the cloud no longer lists is left
        out; a missing pool owns nothing (empty set, not ``NotFound``). One or a few read
        calls; raises the usual retryable/permission errors."""
        ...
