"""Hard-constraint filtering: which (cluster, offering, capacity type) may take replicas.

Every candidate of the fleet is either eligible or carries exactly one Reason saying why not.
Two kinds of reasons matter differently:

- *static* ones (cloud, region, selector, cordon, GPU model/memory/count, spot policy):
  the deployment may not be there at all, so existing replicas there are replaced too;
- *transient* ones (unhealthy cluster, active stockout): no new capacity there now, but
  replicas already running there stay.

The fleet-wide part (indexes, used nodes) is built once per ``FleetSnapshot`` and the
per-constraint-set part is memoised on it, because a fleet plans many deployments with the
same constraints. Both are pure caches of immutable inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelfleet.core import reasons as R
from modelfleet.core.health import accepts_new_replicas
from modelfleet.core.reasons import Reason
from modelfleet.core.stockouts import pool_stockout
from modelfleet.core.types import (
    ON_DEMAND,
    SPOT,
    CapacityType,
    ClusterView,
    DeploymentSpec,
    ExistingPlacement,
    FleetSnapshot,
    Offering,
)

PoolKey = tuple[str, str, str]
"""(cluster, instance type, capacity type): one node pool of one deployment."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One place replicas may go, with what the planner needs to cost and pack it.

    ``max_nodes`` is the offering's quota, shared by both capacity types (None: unlimited);
    ``replicas_per_node`` is ``gpus_per_node // gpu.count`` of the deployment; ``effective``
    is the price the optimiser compares (``price`` discounted for preferred regions).
    ``order`` is the position in the fleet and breaks ties.
    """

    order: int
    key: PoolKey
    cluster: str
    cloud: str
    region: str
    gpu: str
    instance_type: str
    capacity_type: CapacityType
    price: float
    effective: float
    replicas_per_node: int
    max_nodes: int | None
    preferred: bool


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Result of filtering the fleet for one constraint set at one instant.

    - ``candidates``: open to new replicas with quota left, cheapest (effective) first.
    - ``exhausted``: eligible but every node of the quota is used (by someone).
    - ``known``: every pool the deployment may run on (eligible, exhausted or transient).
    - ``transient``: pools closed to new capacity for now (unhealthy cluster, stockout).
    - ``quota``: nodes still free per pool across the fleet (None: unlimited): the
      offering's ``max_nodes`` less the nodes held on its on-demand *and* spot pools (the
      limit is shared by both capacity types); a deployment may also use the nodes it
      already holds.
    - ``reasons``: every exclusion, for the plan, in fleet order.
    Pools the deployment may not use at all: see ``static_reason``.
    """

    candidates: tuple[Candidate, ...]
    exhausted: tuple[Candidate, ...]
    known: dict[PoolKey, Candidate]
    transient: dict[PoolKey, Reason]
    quota: dict[PoolKey, int | None]
    reasons: tuple[Reason, ...]
    excluded_clusters: dict[str, Reason]
    excluded_offerings: dict[tuple[str, str], Reason]
    spot_allowed: bool

    def static_reason(self, pool: PoolKey) -> Reason | None:
        """Why the deployment may not use ``pool`` at all (cloud, region, selector, cordon,
        GPU model/memory/count, spot policy), or None when it may."""
        cluster, instance_type, capacity_type = pool
        reason = self.excluded_clusters.get(cluster) or self.excluded_offerings.get(
            (cluster, instance_type)
        )
        if reason is None and capacity_type == SPOT and not self.spot_allowed:
            return Reason(R.SPOT_NOT_ALLOWED, "capacity.spot is Never", *pool)
        return reason


@dataclass(frozen=True, slots=True)
class _OfferingPass:
    """Per GPU need: the candidates of each cluster that pass the offering filter."""

    by_cluster: dict[str, tuple[Candidate, ...]]
    reasons: dict[str, tuple[Reason, ...]]
    excluded: dict[tuple[str, str], Reason]
    by_price: tuple[Candidate, ...]  # every candidate, cheapest (effective) first


class FleetIndex:
    """Per-fleet precomputation: clusters by name, existing placements by deployment, nodes
    used per offering across all deployments and both capacity types (``offering_nodes``,
    keyed by (cluster, instance type): what ``max_nodes`` limits) and per deployment
    (``own_nodes``, keyed by (deployment, pool)), and a memo of filtering results."""

    def __init__(self, fleet: FleetSnapshot) -> None:
        self.clusters: dict[str, ClusterView] = {c.name: c for c in fleet.clusters}
        self.by_deployment: dict[str, list[ExistingPlacement]] = {}
        self.offering_nodes: dict[tuple[str, str], int] = {}
        self.own_nodes: dict[tuple[str, PoolKey], int] = {}
        self.offerings: dict[tuple[str, str], Offering] = {
            (c.name, o.instance_type): o for c in fleet.clusters for o in c.offerings
        }
        offerings = self.offerings
        for p in fleet.placements:
            self.by_deployment.setdefault(p.deployment, []).append(p)
            key = (p.cluster, p.instance_type, p.capacity_type)
            nodes = nodes_of(p, offerings.get((p.cluster, p.instance_type)))
            both = (p.cluster, p.instance_type)
            self.offering_nodes[both] = self.offering_nodes.get(both, 0) + nodes
            own = (p.deployment, key)
            self.own_nodes[own] = self.own_nodes.get(own, 0) + nodes
        self.memo: dict[Any, Any] = {}
        self._candidates: dict[Any, Candidate] = {}
        self._idle: dict[PoolKey, Reason] = {}
        self._reasons: dict[tuple[Any, ...], Reason] = {}
        self._order = {
            (c.name, o.instance_type): i
            for i, (c, o) in enumerate((c, o) for c in fleet.clusters for o in c.offerings)
        }

    def candidate(
        self,
        cluster: ClusterView,
        offering: Offering,
        capacity_type: CapacityType,
        gpus: int,
        preferred: bool,
        discount: float,
    ) -> Candidate:
        """The (interned) Candidate for a pool, packing ``gpus`` GPUs per replica."""
        ikey = (cluster.name, offering.instance_type, capacity_type, gpus, preferred, discount)
        cand = self._candidates.get(ikey)
        if cand is None:
            price = offering.price(capacity_type) or 0.0
            pos = self._order[(cluster.name, offering.instance_type)] * 2
            cand = Candidate(
                order=pos + (capacity_type == SPOT),
                key=(cluster.name, offering.instance_type, capacity_type),
                cluster=cluster.name,
                cloud=cluster.cloud,
                region=cluster.region,
                gpu=offering.gpu,
                instance_type=offering.instance_type,
                capacity_type=capacity_type,
                price=price,
                effective=price * (1.0 - discount) if preferred else price,
                replicas_per_node=offering.gpus_per_node // gpus,
                max_nodes=offering.max_nodes,
                preferred=preferred,
            )
            self._candidates[ikey] = cand
        return cand

    def reason(self, key: tuple[Any, ...], message: Callable[[], str]) -> Reason:
        """The interned Reason for ``key`` = (code, cluster, instance type, ...), its message
        built by ``message()`` the first time only."""
        reason = self._reasons.get(key)
        if reason is None:
            reason = Reason(key[0], message(), key[1], key[2])
            self._reasons[key] = reason
        return reason

    def idle_reason(self, cand: Candidate) -> Reason:
        """The (interned) NotCheapest reason of a candidate left without replicas."""
        reason = self._idle.get(cand.key)
        if reason is None:
            reason = Reason(
                R.NOT_CHEAPEST,
                f"cheaper candidates chosen (${cand.price:g}/node-hour here)",
                cand.cluster,
                cand.instance_type,
                cand.capacity_type,
            )
            self._idle[cand.key] = reason
        return reason


def nodes_of(placement: ExistingPlacement, offering: Offering | None, *, gpus: int = 1) -> int:
    """Nodes an existing placement holds: its recorded count, else tight packing assuming
    ``gpus`` GPUs per replica (1 for other deployments, whose GPU count is unknown here)."""
    if placement.nodes is not None:
        return placement.nodes
    per_node = max(1, (offering.gpus_per_node // gpus) if offering else 1)
    return math.ceil(placement.replicas / per_node)


def fleet_index(fleet: FleetSnapshot) -> FleetIndex:
    """The index of ``fleet``, built on first use and memoised on the (immutable) snapshot."""
    cached = fleet.__dict__.get("_index")
    if cached is None:
        cached = FleetIndex(fleet)
        fleet.__dict__["_index"] = cached
    assert isinstance(cached, FleetIndex)
    return cached


def _cluster_static(cluster: ClusterView, spec: DeploymentSpec) -> Reason | None:
    pol = spec.placement
    name = cluster.name
    if pol.clouds is not None and cluster.cloud not in pol.clouds:
        return Reason(R.EXCLUDED_BY_CLOUD, f"cloud {cluster.cloud} not in placement.clouds", name)
    if pol.regions is not None and cluster.region not in pol.regions:
        return Reason(
            R.EXCLUDED_BY_REGION, f"region {cluster.region} not in placement.regions", name
        )
    if pol.selector is not None and not pol.selector.matches(cluster.labels):
        return Reason(R.EXCLUDED_BY_SELECTOR, "labels do not match clusterSelector", name)
    if cluster.cordoned:
        return Reason(R.CLUSTER_CORDONED, "cluster is cordoned (draining)", name)
    return None


def _offering_static(
    index: FleetIndex, cluster: str, offering: Offering, spec: DeploymentSpec
) -> Reason | None:
    """Why ``offering`` cannot hold a replica of ``spec`` (GPU model, memory, count), or
    None. Cheap comparisons first; the Reason objects are interned per pool on the index."""
    gpu = spec.gpu
    it = offering.instance_type
    if gpu.types is not None and offering.gpu not in gpu.types:
        return index.reason(
            (R.GPU_TYPE_MISMATCH, cluster, it, gpu.types),
            lambda: (
                f"GPU {offering.gpu} not in resources.gpu.types "
                f"({', '.join(sorted(gpu.types or ()))})"
            ),
        )
    if gpu.memory_gib is not None and offering.gpu_memory_gib < gpu.memory_gib:
        return index.reason(
            (R.GPU_MEMORY_TOO_SMALL, cluster, it),
            lambda: (
                f"{offering.gpu} has {offering.gpu_memory_gib:g} GiB per GPU, less than "
                "resources.gpu.memoryGiB"
            ),
        )
    if offering.gpus_per_node < gpu.count:
        return index.reason(
            (R.TOO_MANY_GPUS_PER_REPLICA, cluster, it),
            lambda: f"node has {offering.gpus_per_node} GPU(s), fewer than resources.gpu.count",
        )
    return None


def _cluster_pass(
    index: FleetIndex, spec: DeploymentSpec, now: datetime
) -> list[tuple[ClusterView, Reason | None, Reason | None]]:
    """Per cluster: (cluster, static reason, health reason); memoised per constraint key."""
    pol = spec.placement
    key = ("clusters", pol.clouds, pol.regions, pol.selector, spec.failover, now)
    hit = index.memo.get(key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    out: list[tuple[ClusterView, Reason | None, Reason | None]] = []
    for cluster in index.clusters.values():
        creason = _cluster_static(cluster, spec)
        hreason = None
        if creason is None:
            health = accepts_new_replicas(cluster, spec.failover, now)
            if health is not None:
                code = (
                    R.CLUSTER_FAILING_BACK
                    if cluster.health in ("Recovering", "Healthy")
                    else R.CLUSTER_UNHEALTHY
                )
                hreason = Reason(code, health, cluster.name)
        out.append((cluster, creason, hreason))
    index.memo[key] = out
    return out


_OFFERING_PASSES: dict[tuple[Any, ...], _OfferingPass] = {}
"""``_offering_pass`` results across snapshots, keyed by everything they read: the fleet's
clusters (name, cloud, region, offerings, in order) and the deployment's GPU need, spot
policy, preferred regions and discount. A reconcile builds a new snapshot every pass (health,
stockouts and bookings change), but the offerings rarely do. Bounded."""


def clear_offering_passes() -> None:
    """Forget the offering passes kept across snapshots (see ``_OFFERING_PASSES``)."""
    _OFFERING_PASSES.clear()


def _offering_pass(index: FleetIndex, spec: DeploymentSpec, discount: float) -> _OfferingPass:
    """Offering-level filtering (GPU model, memory, count) and candidate construction,
    memoised per (GPU need, spot policy, preferred regions, discount) on the index, and
    across indexes of fleets with the same clusters and offerings (``_OFFERING_PASSES``)."""
    pol = spec.placement
    key = ("offerings", spec.gpu, pol.spot, pol.preferred_regions, discount)
    hit = index.memo.get(key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    fleet_key = (
        key,
        tuple((c.name, c.cloud, c.region, c.offerings) for c in index.clusters.values()),
    )
    shared = _OFFERING_PASSES.get(fleet_key)
    if shared is not None:
        index.memo[key] = shared
        return shared
    types: tuple[CapacityType, ...] = (ON_DEMAND, SPOT) if pol.spot != "Never" else (ON_DEMAND,)
    by_cluster: dict[str, tuple[Candidate, ...]] = {}
    reasons: dict[str, tuple[Reason, ...]] = {}
    excluded: dict[tuple[str, str], Reason] = {}
    for cluster in index.clusters.values():
        preferred = cluster.region in pol.preferred_regions
        cands: list[Candidate] = []
        why: list[Reason] = []
        for offering in cluster.offerings:
            oreason = _offering_static(index, cluster.name, offering, spec)
            if oreason is not None:
                why.append(oreason)
                excluded[(cluster.name, offering.instance_type)] = oreason
                continue
            for ct in types:
                if offering.price(ct) is not None:  # no spot market: not a candidate
                    cands.append(
                        index.candidate(cluster, offering, ct, spec.gpu.count, preferred, discount)
                    )
        by_cluster[cluster.name] = tuple(cands)
        reasons[cluster.name] = tuple(why)
    every = [c for cands in by_cluster.values() for c in cands]
    every.sort(key=_by_price)
    result = _OfferingPass(by_cluster, reasons, excluded, tuple(every))
    index.memo[key] = result
    if len(_OFFERING_PASSES) >= 256:
        _OFFERING_PASSES.clear()
    _OFFERING_PASSES[fleet_key] = result
    return result


def eligibility(
    fleet: FleetSnapshot, spec: DeploymentSpec, now: datetime, *, discount: float = 0.05
) -> Eligibility:
    """Filter every (cluster, offering, capacity type) of ``fleet`` for ``spec`` at ``now``.

    Deterministic: candidates sorted by (effective price, fleet order); cluster and offering
    reasons in fleet order, stockout and quota reasons in candidate order. Memoised per (constraints, now, discount) on the fleet's index; ``discount`` is
    the preferred-region price advantage (0.05: 5%).
    """
    index = fleet_index(fleet)
    pol = spec.placement
    key = (
        spec.gpu,
        pol.clouds,
        pol.regions,
        pol.selector,
        pol.preferred_regions,
        pol.spot,
        spec.failover,
        now,
        discount,
    )
    hit = index.memo.get(key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    offers = _offering_pass(index, spec, discount)
    open_: list[Candidate] = []
    exhausted: list[Candidate] = []
    known: dict[PoolKey, Candidate] = {}
    transient: dict[PoolKey, Reason] = {}
    quota: dict[PoolKey, int | None] = {}
    reasons: list[Reason] = []
    excluded_clusters: dict[str, Reason] = {}
    used = index.offering_nodes
    health: dict[str, Reason | None] = {}
    for cluster, creason, hreason in _cluster_pass(index, spec, now):
        name = cluster.name
        if creason is not None:
            reasons.append(creason)
            excluded_clusters[name] = creason
            continue
        health[name] = hreason
        if hreason is not None:
            reasons.append(hreason)
        reasons.extend(offers.reasons[name])
    clusters = index.clusters
    for cand in offers.by_price:  # cheapest first, so open_ needs no sort
        name = cand.cluster
        if name not in health:
            continue
        pool = cand.key
        known[pool] = cand
        hreason = health[name]
        if hreason is not None:
            transient[pool] = hreason
            continue
        stockouts = clusters[name].stockouts
        if stockouts:
            mark = pool_stockout(
                stockouts,
                cand.gpu,
                capacity_type=cand.capacity_type,
                instance_type=cand.instance_type,
                zones=index.offerings[(name, cand.instance_type)].zones,
                now=now,
            )
            if mark is not None:
                where = " in any zone" if mark.zone is not None else ""
                r = Reason(
                    R.STOCKOUT,
                    f"no {cand.gpu} {cand.capacity_type} capacity{where} until "
                    f"{mark.until.isoformat()} ({mark.failures} capacity error(s))",
                    name,
                    cand.instance_type,
                    cand.capacity_type,
                )
                transient[pool] = r
                reasons.append(r)
                continue
        if cand.max_nodes is None:
            quota[pool] = None
            open_.append(cand)
            continue
        left = cand.max_nodes - used.get((name, cand.instance_type), 0)
        quota[pool] = left
        (exhausted if left <= 0 else open_).append(cand)
    for cand in exhausted:
        reasons.append(
            Reason(
                R.QUOTA_EXHAUSTED,
                f"all {cand.max_nodes} node(s) of the quota are in use",
                cand.cluster,
                cand.instance_type,
                cand.capacity_type,
            )
        )
    result = Eligibility(
        tuple(open_),
        tuple(exhausted),
        known,
        transient,
        quota,
        tuple(reasons),
        excluded_clusters,
        offers.excluded,
        pol.spot != "Never",
    )
    index.memo[key] = result
    return result


def _by_price(c: Candidate) -> tuple[float, int]:
    return (c.effective, c.order)
