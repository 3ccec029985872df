"""The one owner of node-pool sizes: every deployment's booking of every pool, in nodes.

A node pool (cluster, instance type, capacity type) is shared by every ModelDeployment that
places replicas on it, so its size is a fleet-wide decision: the sum of all deployments'
current plans, never above the offering's ``maxNodes`` (shared by its on-demand and spot
pools). Deciding it per deployment from the
neighbours' last status (as Karpenter would call "stale cluster state") lets two passes that
run at the same time book the same free nodes. The ledger is kept in process, updated
synchronously right after each plan (no ``await`` between reading the bookings and writing
the new one, so two passes on one event loop never book the same node), and fed back to the
planner as the other deployments' ``FleetSnapshot.placements``. A restarted operator seeds
it from each deployment's ``status.placements`` until that deployment is planned again.

It also remembers what each pool was last asked for and when a grow began, so that the
pools stage can tell "obtained what it asked for" (the only event that clears a stockout
mark) from "kept its size", and notice nodes that never become Ready (launch timeout).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from modelfleet.api.common import CapacityType
from modelfleet.core import ExistingPlacement, Plan

if TYPE_CHECKING:
    from modelfleet.providers import NodeRef

PoolKey = tuple[str, str, CapacityType]
"""(cluster, instance type, capacity type): one node pool."""


@dataclass(frozen=True)
class Booking:
    """What one deployment holds on one pool: replicas planned there and nodes for them
    (nodes include replicas that keep running until their replacements are ready)."""

    replicas: int
    nodes: int
    zones: tuple[str, ...] = ()
    """Zones the plan restricted the pool to (its open zones when some are stocked out);
    empty: all the cluster's zones."""


def _nodes(booking: Booking | None) -> int:
    return booking.nodes if booking is not None else 0


@dataclass(frozen=True)
class Launch:
    """A grow in flight: the pool was asked for ``nodes`` at ``since`` and has fewer Ready."""

    nodes: int
    since: datetime


class PoolLedger:
    """Bookings per deployment key, plus per-pool request memory. Not thread-safe: used from
    the operator's event loop only (its methods never await)."""

    def __init__(self) -> None:
        self._bookings: dict[str, dict[PoolKey, Booking]] = {}
        self._requested: dict[PoolKey, int] = {}
        self._launches: dict[PoolKey, Launch] = {}
        self._dirty: set[PoolKey] = set()
        self._ready: dict[PoolKey, int] = {}
        self._shrinking: dict[PoolKey, datetime] = {}
        self._others: dict[str, tuple[ExistingPlacement, ...]] = {}
        """``placements(exclude=...)`` per ``exclude``, cleared whenever a booking changes."""
        self._leaving: dict[PoolKey, int] = {}
        self._cordoned: set[PoolKey] = set()
        self._removed: dict[PoolKey, frozenset[NodeRef]] = {}
        self._foreign: dict[PoolKey, frozenset[str]] = {}
        self._sized: set[PoolKey] = set()
        self._wants: dict[str, frozenset[tuple[str, str, str]]] = {}
        """Per deployment planned in this process: the pools whose idle nodes its
        scale-up could take (``Plan.warm_pools``); a deployment absent here wants every
        pool."""
        self._firsts: dict[str, tuple[str, str, str] | None] = {}
        """Per deployment planned in this process: its cheapest growth candidate
        (``Plan.first_pool``)."""
        self._held: dict[PoolKey, int] = {}
        """After a failed call: the most the pool may hold of what this process asked
        (``held``), for the scale-in delay only."""

    # -- bookings -----------------------------------------------------------------------

    def knows(self, deployment: str) -> bool:
        return deployment in self._bookings

    def seed(self, deployment: str, placements: Iterable[ExistingPlacement]) -> None:
        """Adopt a deployment's recorded placements unless it was booked in this process."""
        if deployment in self._bookings:
            return
        self._others.clear()
        bookings: dict[PoolKey, Booking] = {}
        for p in placements:
            key: PoolKey = (p.cluster, p.instance_type, p.capacity_type)
            nodes = p.nodes if p.nodes is not None else p.replicas
            old = bookings.get(key, Booking(0, 0))
            bookings[key] = Booking(old.replicas + p.replicas, old.nodes + nodes)
        self._bookings[deployment] = bookings

    def book(self, deployment: str, plan: Plan) -> set[PoolKey]:
        """Replace ``deployment``'s bookings with ``plan``'s pools; returns the pools whose
        total changed (they need resizing)."""
        replicas: dict[PoolKey, int] = {}
        for p in plan.placements:
            key: PoolKey = (p.cluster, p.instance_type, p.capacity_type)
            replicas[key] = replicas.get(key, 0) + p.replicas
        new = {
            (n.cluster, n.instance_type, n.capacity_type): Booking(
                replicas.get((n.cluster, n.instance_type, n.capacity_type), 0),
                n.nodes,
                tuple(n.zones),
            )
            for n in plan.node_pools
        }
        old = self._bookings.get(deployment, {})
        self._bookings[deployment] = new
        if plan.warm_pools is None:
            self._wants.pop(deployment, None)
            self._firsts.pop(deployment, None)
        else:
            self._wants[deployment] = plan.warm_pools
            self._firsts[deployment] = plan.first_pool
        if new != old:
            self._others.clear()
        changed = {k for k in set(old) | set(new) if _nodes(old.get(k)) != _nodes(new.get(k))}
        self._dirty |= {k for k in changed if self._requested.get(k) != self.total(k)}
        return changed

    def release(self, deployment: str) -> set[PoolKey]:
        """Forget ``deployment`` (deleted); returns the pools whose total changed."""
        old = self._bookings.pop(deployment, {})
        self._wants.pop(deployment, None)
        self._firsts.pop(deployment, None)
        self._others.clear()
        changed = {k for k, b in old.items() if b.nodes}
        self._dirty |= changed
        return changed

    def bookings(self, deployment: str) -> dict[PoolKey, Booking]:
        return dict(self._bookings.get(deployment, {}))

    def total(self, pool: PoolKey) -> int:
        """Nodes every deployment together books on ``pool``."""
        nodes = 0
        for pools in self._bookings.values():
            booking = pools.get(pool)
            if booking is not None:
                nodes += booking.nodes
        return nodes

    def _totals(self) -> dict[PoolKey, int]:
        """``total`` of every booked pool, in one pass over the bookings."""
        totals: dict[PoolKey, int] = {}
        for pools in self._bookings.values():
            for pool, booking in pools.items():
                totals[pool] = totals.get(pool, 0) + booking.nodes
        return totals

    def within_quota(self, pool: PoolKey, max_nodes: int | None) -> int:
        """Nodes to ask ``pool`` for: its total, less what would take the offering's two
        pools (on-demand and spot) together past ``max_nodes`` (the limit is shared by
        both capacity types: ``core.types.Offering``). The other pool counts with the size
        it was last asked for (what the cloud holds), or its booking when that is unknown.
        None: no limit."""
        total = self.total(pool)
        if max_nodes is None:
            return total
        cluster, instance_type, capacity_type = pool
        other: PoolKey = (
            cluster,
            instance_type,
            "Spot" if capacity_type == "OnDemand" else "OnDemand",
        )
        held = self._requested.get(other)
        if held is None:
            held = self.total(other)
        return max(0, min(total, max_nodes - held))

    def zones(self, pool: PoolKey) -> tuple[str, ...]:
        """Zones to ask ``pool`` for: the union of its bookings' zones, or every zone (empty)
        when any booking leaves them open."""
        found: set[str] = set()
        for pools in self._bookings.values():
            booking = pools.get(pool)
            if booking is None or booking.nodes <= 0:
                continue
            if not booking.zones:
                return ()
            found.update(booking.zones)
        return tuple(sorted(found))

    def placements(self, *, exclude: str) -> tuple[ExistingPlacement, ...]:
        """Every other deployment's bookings, as the planner's existing placements (the
        capacity they hold counts against each pool's quota). Kept per ``exclude`` until a
        booking changes (most passes book what they held)."""
        kept = self._others.get(exclude)
        if kept is not None:
            return kept
        kept = self._others[exclude] = tuple(
            ExistingPlacement(
                deployment=deployment,
                cluster=key[0],
                instance_type=key[1],
                capacity_type=key[2],
                replicas=booking.replicas,
                nodes=booking.nodes,
            )
            for deployment, pools in sorted(self._bookings.items())
            if deployment != exclude
            for key, booking in sorted(pools.items())
            if booking.nodes > 0 or booking.replicas > 0
        )
        return kept

    def idle_nodes(self) -> tuple[tuple[PoolKey, int], ...]:
        """Ready nodes per pool that no deployment books: the pool was last asked for more
        than its bookings (its scale-in delay keeps them) and the cloud reported them Ready,
        less the nodes the member cluster says are going (``leaving``: a spot interruption
        notice gives 30-120 s, less than a model start, so such a node is no warm node even
        while the cloud still counts it). Sorted; pools without such nodes left out
        (``FleetSnapshot.idle_nodes``)."""
        out = []
        totals: dict[PoolKey, int] | None = None  # every pool's total, once per call
        for pool, requested in sorted(self._requested.items()):
            ready = self._ready.get(pool)
            if ready is None:
                continue
            if totals is None:
                totals = self._totals()
            ready -= self._leaving.get(pool, 0)
            idle = min(requested, ready) - totals.get(pool, 0)
            if idle > 0:
                out.append((pool, idle))
        return tuple(out)

    def wanted(self, pool: PoolKey) -> bool:
        """Some deployment's scale-up could take an idle node of ``pool``
        (``Plan.warm_pools``), or it is not known: a deployment only seeded from its status,
        or planned without that answer, wants every pool."""
        for deployment in self._bookings:
            wants = self._wants.get(deployment)
            if wants is None or pool in wants:
                return True
        return False

    def first_choice(self, pool: PoolKey) -> bool:
        """``pool`` is some deployment's cheapest growth candidate (``Plan.first_pool``),
        where its next scale-up grows first, or that is not known (as for ``wanted``)."""
        for deployment in self._bookings:
            if deployment not in self._wants or self._firsts.get(deployment) == pool:
                return True
        return False

    def needed(self, cluster: str) -> set[tuple[str, str]]:
        """(instance type, capacity type) of every pool of ``cluster`` some deployment books."""
        return {
            (key[1], key[2])
            for pools in self._bookings.values()
            for key, booking in pools.items()
            if key[0] == cluster and booking.nodes > 0
        }

    # -- requests -----------------------------------------------------------------------

    def dirty(self) -> set[PoolKey]:
        """Pools whose total differs from what they were last asked for (or unknown)."""
        return set(self._dirty)

    def requested(self, pool: PoolKey) -> int | None:
        """The size ``pool`` was last asked for by this process (None: unknown)."""
        return self._requested.get(pool)

    def launch(self, pool: PoolKey) -> Launch | None:
        return self._launches.get(pool)

    def asked(self, pool: PoolKey, nodes: int) -> None:
        """``pool`` accepted a request for ``nodes``."""
        self._requested[pool] = nodes
        self._held.pop(pool, None)
        if nodes == self.total(pool):
            self._dirty.discard(pool)
        launch = self._launches.get(pool)
        if launch is not None and nodes < launch.nodes:
            # A shrink below a pending grow ends (part of) that grow.
            self._launches[pool] = Launch(nodes, launch.since)

    def start_launch(self, pool: PoolKey, nodes: int, now: datetime) -> Launch:
        """Nodes of ``pool`` are not all Ready: the launch clock runs from its first sight."""
        launch = self._launches.get(pool)
        if launch is None:
            launch = Launch(nodes, now)
        elif nodes != launch.nodes:
            launch = Launch(nodes, launch.since)
        self._launches[pool] = launch
        return launch

    def end_launch(self, pool: PoolKey) -> Launch | None:
        """The pool is whole again (or gave up): forget its launch; returns it."""
        return self._launches.pop(pool, None)

    def saw(self, pool: PoolKey, ready_nodes: int) -> None:
        """The cloud reported ``ready_nodes`` Ready nodes in ``pool``."""
        self._ready[pool] = ready_nodes

    def leaving(self, cluster: str, counts: Mapping[tuple[str, str], int]) -> None:
        """The member cluster ``cluster`` says these nodes are going, per (instance type,
        capacity type) (its last probe: ``ClusterProbe.leaving_nodes``); replaces what it
        said before. Counted out of the warm nodes (``idle_nodes``), nothing else."""
        for key in [k for k in self._leaving if k[0] == cluster]:
            del self._leaving[key]
        for (instance_type, capacity_type), n in counts.items():
            if n > 0 and capacity_type in ("OnDemand", "Spot"):
                self._leaving[cluster, instance_type, capacity_type] = n  # type: ignore[index]

    def ready(self, pool: PoolKey) -> int | None:
        """Ready nodes ``pool`` last reported (None: never read back)."""
        return self._ready.get(pool)

    def shrink_since(self, pool: PoolKey, now: datetime) -> datetime:
        """When the pool's total first dropped below its Ready nodes (the scale-in clock)."""
        return self._shrinking.setdefault(pool, now)

    def no_shrink(self, pool: PoolKey) -> None:
        self._shrinking.pop(pool, None)

    def shrinking(self, pool: PoolKey) -> datetime | None:
        """The scale-in clock of ``pool`` (None: not running); published in the
        FleetCluster's ``status.nodePools[].scaleInSince``."""
        return self._shrinking.get(pool)

    def sized(self, pool: PoolKey) -> bool:
        """``pool`` has been sized in this process (``first_sizing`` was asked)."""
        return pool in self._sized

    def first_sizing(self, pool: PoolKey) -> bool:
        """True the first time it is asked for ``pool`` in this process (then False): the
        pool's scale-in state is then read back from the FleetCluster's status."""
        if pool in self._sized:
            return False
        self._sized.add(pool)
        return True

    def cordoned(self, pool: PoolKey) -> bool:
        """Nodes of ``pool`` were cordoned for a removal not known to have happened."""
        return pool in self._cordoned

    def set_cordoned(self, pool: PoolKey, cordoned: bool) -> None:
        if cordoned:
            self._cordoned.add(pool)
        else:
            self._cordoned.discard(pool)

    def removed(self, pool: PoolKey) -> frozenset[NodeRef]:
        """``pool``'s nodes this process had removed and may still see listed."""
        return self._removed.get(pool, frozenset())

    def set_removed(self, pool: PoolKey, nodes: frozenset[NodeRef]) -> None:
        if nodes:
            self._removed[pool] = nodes
        else:
            self._removed.pop(pool, None)

    def foreign(self, pool: PoolKey) -> frozenset[str]:
        """Names of Nodes with ``pool``'s labels its cloud does not list (already said)."""
        return self._foreign.get(pool, frozenset())

    def set_foreign(self, pool: PoolKey, names: frozenset[str]) -> None:
        self._foreign[pool] = names

    def forget_request(self, pool: PoolKey, asking: int | None = None) -> None:
        """What the pool holds is unknown again (an error, or the cloud says otherwise), so
        the next pass asks again. ``asking``: the size the failed call asked for (or the
        cloud now reports); the lower of it and the size known before is kept as ``held``.
        None (the pool is gone): nothing is kept."""
        known = self._requested.pop(pool, None)
        if known is None:
            known = self._held.get(pool)
        if known is None or asking is None:
            self._held.pop(pool, None)
        else:
            self._held[pool] = min(known, asking)
        self._dirty.add(pool)

    def held(self, pool: PoolKey) -> int | None:
        """The most ``pool`` may hold of what this process asked, while its size is
        unknown after a failed call: the size known before the failure, or what the failed
        call asked if lower (a shrink that failed may still have happened). None: known
        (``requested``), or never known. The scale-in delay keeps Ready nodes up to it, so
        a failure does not release warm nodes early, and a hold never grows the pool."""
        return self._held.get(pool)

    def forget_cluster(self, cluster: str) -> None:
        for key in [k for k in self._requested if k[0] == cluster]:
            del self._requested[key]
        for key in [k for k in self._held if k[0] == cluster]:
            del self._held[key]
        for key in [k for k in self._launches if k[0] == cluster]:
            del self._launches[key]
        for key in [k for k in self._ready if k[0] == cluster]:
            del self._ready[key]
        for key in [k for k in self._shrinking if k[0] == cluster]:
            del self._shrinking[key]
        for key in [k for k in self._leaving if k[0] == cluster]:
            del self._leaving[key]
        self._dirty = {k for k in self._dirty if k[0] != cluster}
