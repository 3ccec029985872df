"""SimulatedNodePoolProvider: an in-process cloud for tests, the simulator and demos.

It honours the NodePoolProvider contracts exactly as the cloud providers do, so the
reconciler cannot tell it apart, and it models the behaviours that matter for placement
and failover, each on the injected clock (``clock() -> datetime``; it never reads the real
clock, so the simulator can run it on virtual time):

- **Provisioning delay**: a node requested at T is ready at T + ``spec.simulated.
  provisioningSeconds`` of the FleetCluster, or a delay drawn per node from the
  ``provisioning`` sampler the simulator passes (called with the node's pool: instance
  type and capacity type, so each pool can have its own random stream).
- **Stockouts** (``inject_stockout``): growing a pool of (instance type, capacity type)
  before ``until`` raises ``InsufficientCapacity``; shrinking still works.
- **Quota**: an offering's ``maxNodes`` caps the nodes of that instance type across both
  capacity types; asking for more raises ``QuotaExceeded``.
- **Outages** (``inject_outage``): every call raises ``Unreachable`` until cleared or until
  the given time.
- **Spot reclaim** (``reclaim_spot``): spot nodes vanish; the pool keeps its desired size
  and replacements start at once (or when the stockout ends), and ``get_pool`` reports the
  issue ``SpotReclaimed`` until the pool is whole again.
- **Removing chosen nodes** (``remove_nodes``, the ``RemovesNodes`` port): every node has an
  identity (``node_refs``: name ``<pool>-n<serial>``, providerID
  ``sim:///<cluster>/<pool>/n<serial>``); removing one lowers the desired size by one and
  touches no other node, as the clouds' instance-level deletes do. The simulator's member
  clusters hold no Node objects for these (its pools are GPU counts), so there the
  reconciler shrinks by count, as it does for any pool whose nodes serve no visible pod.

Like Karpenter's fake provider it records every call (``calls``) and can fail the next one
(``fail_next``). Its state lives in the instance: keep one provider per FleetCluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelfleet.api.common import CapacityType
from modelfleet.api.fleetcluster import FleetCluster
from modelfleet.core.from_api import declared_offerings
from modelfleet.core.types import Offering
from modelfleet.providers.base import NodePool, NodeRef, PoolIssue, PoolSpec, PoolState
from modelfleet.providers.errors import (
    InsufficientCapacity,
    InvalidConfiguration,
    NotFound,
    ProviderError,
    QuotaExceeded,
    Unreachable,
)

SPOT_RECLAIMED = "SpotReclaimed"
"""Pool issue code: spot nodes were reclaimed and the pool is not whole again yet."""
INSUFFICIENT_CAPACITY = "InsufficientCapacity"
"""Pool issue code: replacement nodes wait for a stockout to end."""


@dataclass(frozen=True)
class ProviderCall:
    """One recorded call: the method and a short description of its argument."""

    method: str
    detail: str = ""


@dataclass
class _Pool:
    spec: PoolSpec
    node_ready_at: list[datetime] = field(default_factory=list)
    node_ids: list[int] = field(default_factory=list)  # serial of each node, same order
    reclaimed: int = 0  # nodes lost to spot reclaim since the pool was last whole
    ever_ready: bool = False

    @property
    def name(self) -> str:
        return f"mf-{self.spec.pool_id}"


class SimulatedNodePoolProvider:
    """NodePoolProvider simulated in memory; see the module docstring."""

    def __init__(
        self,
        cluster: FleetCluster,
        *,
        clock: Callable[[], datetime],
        provisioning: Callable[[str, CapacityType], float] | None = None,
    ) -> None:
        """``provisioning``, when given, draws each new node's provisioning seconds (the
        simulator's per-cloud distribution), called with the node's (instance type,
        capacity type); otherwise every node takes the cluster's
        ``spec.simulated.provisioningSeconds``."""
        self._cluster = cluster
        self._name = cluster.metadata.name
        self._clock = clock
        settings = cluster.spec.simulated
        fixed = settings.provisioning_seconds if settings else 0.0
        self._sample = provisioning or (lambda _type, _capacity: fixed)
        self._offerings = {o.instance_type: o for o in declared_offerings(cluster)}
        self._pools: dict[str, _Pool] = {}
        self._stockouts: dict[tuple[str, CapacityType], datetime] = {}
        self._outage: tuple[bool, datetime | None] = (False, None)
        self._next_errors: list[ProviderError] = []
        self._serials = 0
        self.calls: list[ProviderCall] = []

    # -- fault injection ---------------------------------------------------------------

    def inject_stockout(
        self, instance_type: str, capacity_type: CapacityType, *, until: datetime
    ) -> None:
        """No new nodes of (instance type, capacity type) until ``until``."""
        self._stockouts[(instance_type, capacity_type)] = until

    def clear_stockout(self, instance_type: str, capacity_type: CapacityType) -> None:
        """End a stockout now."""
        self._stockouts.pop((instance_type, capacity_type), None)

    def inject_outage(self, *, until: datetime | None = None) -> None:
        """Every call raises Unreachable until ``until`` (or until ``clear_outage``)."""
        self._outage = (True, until)

    def clear_outage(self) -> None:
        """End an outage now."""
        self._outage = (False, None)

    def fail_next(self, error: ProviderError) -> None:
        """The next call raises ``error`` (queued, first in first out)."""
        self._next_errors.append(error)

    def reclaim_spot(self, instance_type: str | None = None, *, nodes: int | None = None) -> int:
        """Reclaim up to ``nodes`` (default: all) ready spot nodes, of ``instance_type`` or
        of every type. Replacements start now, or when a stockout of that spot offering
        ends. Returns how many nodes were reclaimed."""
        now = self._clock()
        reclaimed = 0
        for pool in self._pools.values():
            if pool.spec.capacity_type != "Spot":
                continue
            if instance_type is not None and pool.spec.offering.instance_type != instance_type:
                continue
            ready = sorted(t for t in pool.node_ready_at if t <= now)
            count = len(ready) if nodes is None else min(len(ready), nodes - reclaimed)
            if count <= 0:
                continue
            for ready_at in ready[:count]:
                del pool.node_ids[pool.node_ready_at.index(ready_at)]
                pool.node_ready_at.remove(ready_at)
            start = max(now, self._stockout_until(pool.spec) or now)
            for _ in range(count):
                self._add_node(pool, start + self._delay(pool.spec))
            pool.reclaimed += count
            reclaimed += count
        return reclaimed

    def node_counts(self) -> dict[tuple[str, CapacityType], tuple[int, int]]:
        """(ready, desired) nodes per (instance type, capacity type) at the clock's now: the
        machines themselves, as the simulator's kubelet model sees them (no call is
        recorded and no injected fault applies)."""
        now = self._clock()
        return {
            (p.spec.offering.instance_type, p.spec.capacity_type): (
                sum(1 for t in p.node_ready_at if t <= now),
                len(p.node_ready_at),
            )
            for p in self._pools.values()
        }

    def ready_node_times(self, instance_type: str, capacity_type: CapacityType) -> list[datetime]:
        """When each Ready node of the pool (instance type, capacity type) became Ready,
        earliest first (empty without such a pool): the simulator's kubelet model binds a
        waiting pod at the time its node got Ready. No call is recorded."""
        now = self._clock()
        for p in self._pools.values():
            if (
                p.spec.offering.instance_type == instance_type
                and p.spec.capacity_type == capacity_type
            ):
                return sorted(t for t in p.node_ready_at if t <= now)
        return []

    # -- NodePoolProvider ----------------------------------------------------------------

    async def discover_offerings(self) -> list[Offering]:
        self._enter("discover_offerings")
        return list(self._offerings.values())

    async def ensure_pool(self, spec: PoolSpec) -> NodePool:
        self._enter(
            "ensure_pool", f"{spec.offering.instance_type}/{spec.capacity_type}={spec.nodes}"
        )
        if spec.nodes < 0:
            raise InvalidConfiguration(f"pool size must be >= 0, got {spec.nodes}")
        offering = self._offerings.get(spec.offering.instance_type)
        if offering is None:
            raise InvalidConfiguration(
                f"cluster {self._name} offers no {spec.offering.instance_type} "
                f"(declared: {', '.join(sorted(self._offerings)) or 'none'})"
            )
        if spec.capacity_type == "Spot" and offering.spot_per_hour is None:
            raise InvalidConfiguration(
                f"{spec.offering.instance_type} has no spot market in cluster {self._name}"
            )
        pool = self._pools.get(spec.pool_id)
        current = len(pool.node_ready_at) if pool is not None else 0
        if spec.nodes > current:
            self._check_quota(spec, offering)
            until = self._stockout_until(spec)
            if until is not None:
                raise InsufficientCapacity(
                    f"simulated stockout of {spec.offering.instance_type} "
                    f"({spec.capacity_type}) in {self._cluster.spec.region} until "
                    f"{until.isoformat()}",
                    instance_type=spec.offering.instance_type,
                    capacity_type=spec.capacity_type,
                    cloud_code="SimulatedStockout",
                )
        if pool is None:
            pool = self._pools[spec.pool_id] = _Pool(spec)
        pool.spec = spec
        now = self._clock()
        if spec.nodes > current:
            for _ in range(spec.nodes - current):
                self._add_node(pool, now + self._delay(spec))
        elif spec.nodes < current:
            # Scale in the nodes that would be ready last (pending ones first).
            kept = sorted(zip(pool.node_ready_at, pool.node_ids, strict=True))[: spec.nodes]
            pool.node_ready_at = [t for t, _ in kept]
            pool.node_ids = [i for _, i in kept]
        return self._report(pool)

    def reassert(self, spec: PoolSpec) -> bool:
        """``ensure_pool(spec)`` for a pool that is already as ``spec`` asks, without
        its call record and its ``NodePool``: True when the pool of ``spec`` exists with
        exactly ``spec.nodes`` nodes and an equal spec, and no outage or injected error
        would make the call raise; then it makes the call's one change (the report's
        bookkeeping: ever ready, the spot reclaim count once whole) and no other. False,
        with nothing done, when the call would do more (ask ``ensure_pool``). The
        simulator's baselines re-assert every pool's size at every tick."""
        down, until = self._outage
        if (down and (until is None or self._clock() < until)) or self._next_errors:
            return False
        pool = self._pools.get(spec.pool_id)
        if pool is None or len(pool.node_ready_at) != spec.nodes or pool.spec != spec:
            return False
        now = self._clock()
        ready = sum(1 for t in pool.node_ready_at if t <= now)  # as _report counts
        pool.ever_ready = pool.ever_ready or ready > 0
        if ready >= spec.nodes:
            pool.reclaimed = 0
        return True

    async def get_pool(self, spec: PoolSpec) -> NodePool:
        self._enter("get_pool", spec.pool_id)
        pool = self._pools.get(spec.pool_id)
        if pool is None:
            raise NotFound(f"no pool for {spec.offering.instance_type}/{spec.capacity_type}")
        return self._report(pool)

    async def list_pools(self) -> list[NodePool]:
        self._enter("list_pools")
        return [self._report(pool) for pool in sorted(self._pools.values(), key=lambda p: p.name)]

    async def delete_pool(self, name: str) -> None:
        self._enter("delete_pool", name)
        for key, pool in list(self._pools.items()):
            if pool.name == name:
                del self._pools[key]

    # -- RemovesNodes ------------------------------------------------------------------

    async def remove_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> NodePool:
        """Remove exactly ``nodes`` (by providerID, see ``node_refs``), lowering the desired
        size by one each; a node already gone is skipped. Raises ``NotFound`` without the
        pool and ``InvalidConfiguration`` for a providerID of another pool or cloud."""
        self._enter("remove_nodes", ",".join(sorted(n.name for n in nodes)))
        pool = self._pools.get(spec.pool_id)
        if pool is None:
            raise NotFound(f"no pool for {spec.offering.instance_type}/{spec.capacity_type}")
        prefix = f"sim:///{self._name}/{pool.name}/n"
        serials: list[int] = []
        for node in nodes:
            digits = node.provider_id.removeprefix(prefix)
            if not node.provider_id.startswith(prefix) or not digits.isdigit():
                raise InvalidConfiguration(
                    f"node {node.name}: providerID {node.provider_id!r} is not a node of "
                    f"pool {pool.name} in cluster {self._name}"
                )
            serials.append(int(digits))
        for serial in serials:
            if serial in pool.node_ids:
                at = pool.node_ids.index(serial)
                del pool.node_ids[at]
                del pool.node_ready_at[at]
        return self._report(pool)

    async def owned_nodes(self, spec: PoolSpec, nodes: Sequence[NodeRef]) -> frozenset[str]:
        """The nodes whose providerID is a node of the pool of ``spec`` still there
        (``KnowsNodes``); a missing pool owns nothing. Recorded as a call and failed by an
        outage; ``fail_next`` is left for the pool calls (the tests aim it at a resize or a
        removal, which this read precedes)."""
        self.calls.append(ProviderCall("owned_nodes", ",".join(sorted(n.name for n in nodes))))
        down, until = self._outage
        if down and (until is None or self._clock() < until):
            raise Unreachable(f"simulated outage of the {self._cluster.spec.region} cloud API")
        pool = self._pools.get(spec.pool_id)
        if pool is None:
            return frozenset()
        prefix = f"sim:///{self._name}/{pool.name}/n"
        alive = {str(i) for i in pool.node_ids}
        return frozenset(
            n.name
            for n in nodes
            if n.provider_id.startswith(prefix) and n.provider_id.removeprefix(prefix) in alive
        )

    def node_refs(self, instance_type: str, capacity_type: CapacityType) -> list[NodeRef]:
        """The Ready nodes of the pool (instance type, capacity type), earliest Ready first,
        as a member cluster's Node objects would name them. No call is recorded."""
        now = self._clock()
        for p in self._pools.values():
            if (p.spec.offering.instance_type, p.spec.capacity_type) == (
                instance_type,
                capacity_type,
            ):
                ready = sorted(
                    (t, i) for t, i in zip(p.node_ready_at, p.node_ids, strict=True) if t <= now
                )
                return [
                    NodeRef(f"{p.name}-n{i}", f"sim:///{self._name}/{p.name}/n{i}")
                    for _, i in ready
                ]
        return []

    # -- internals ---------------------------------------------------------------------

    def _add_node(self, pool: _Pool, ready_at: datetime) -> None:
        self._serials += 1
        pool.node_ready_at.append(ready_at)
        pool.node_ids.append(self._serials)

    def _enter(self, method: str, detail: str = "") -> None:
        self.calls.append(ProviderCall(method, detail))
        down, until = self._outage
        if down and (until is None or self._clock() < until):
            raise Unreachable(f"simulated outage of the {self._cluster.spec.region} cloud API")
        if self._next_errors:
            raise self._next_errors.pop(0)

    def _delay(self, spec: PoolSpec) -> timedelta:
        return timedelta(seconds=self._sample(spec.offering.instance_type, spec.capacity_type))

    def _stockout_until(self, spec: PoolSpec) -> datetime | None:
        until = self._stockouts.get((spec.offering.instance_type, spec.capacity_type))
        return until if until is not None and self._clock() < until else None

    def _check_quota(self, spec: PoolSpec, offering: Offering) -> None:
        if offering.max_nodes is None:
            return
        others = sum(
            len(p.node_ready_at)
            for key, p in self._pools.items()
            if key != spec.pool_id and p.spec.offering.instance_type == offering.instance_type
        )
        if others + spec.nodes > offering.max_nodes:
            raise QuotaExceeded(
                f"{offering.instance_type}: {others + spec.nodes} nodes requested, quota is "
                f"{offering.max_nodes} in cluster {self._name}",
                instance_type=offering.instance_type,
                capacity_type=spec.capacity_type,
            )

    def _report(self, pool: _Pool) -> NodePool:
        now = self._clock()
        desired = len(pool.node_ready_at)
        ready = sum(1 for t in pool.node_ready_at if t <= now)
        pool.ever_ready = pool.ever_ready or ready > 0
        if ready >= desired:
            pool.reclaimed = 0
        issues: list[PoolIssue] = []
        if pool.reclaimed:
            issues.append(
                PoolIssue(SPOT_RECLAIMED, f"{pool.reclaimed} spot node(s) reclaimed; replacing")
            )
        until = self._stockout_until(pool.spec)
        if until is not None and ready < desired:
            issues.append(
                PoolIssue(
                    INSUFFICIENT_CAPACITY,
                    f"no capacity for new nodes until {until.isoformat()}",
                    capacity=True,
                )
            )
        state: PoolState = (
            "Active" if ready >= desired else "Updating" if pool.ever_ready else "Creating"
        )
        return NodePool(
            name=pool.name,
            instance_type=pool.spec.offering.instance_type,
            capacity_type=pool.spec.capacity_type,
            desired_nodes=desired,
            ready_nodes=ready,
            state=state,
            gpu=pool.spec.offering.gpu,
            issues=tuple(issues),
            managed=True,
            tags=pool.spec.tags(),
        )
