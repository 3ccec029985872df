"""Cost-minimising placement of replicas on eligible candidates.

Input: how many replicas (main + warm standby), the eligible candidates, the replicas that
stay where they are (stickiness), per-pool node quotas (net of nodes other deployments
hold). Output: replicas per pool and the reasons behind the choices.

``place`` first solves the *relaxation* without any coupling constraint: sticky replicas
stay (on scale-in the cheapest-to-keep nodes stay, an exact cover), the rest is an exact
cheapest cover (``core.cover``; spot first under ``Preferred``). If that plan already meets
every coupling constraint (minRegions, maxReplicasPerRegion, on-demand base, standby
outside the largest region, spot over two regions, budget, region-loss tolerance, and no
region whose loss would leave the spread demand uncovered) it is optimal for the full
problem, which only adds constraints or prices met at zero: the fast path. Otherwise the
placement is solved exactly as a MILP (``core.solver``), seeded with the plan of the
greedy phases below, which also remain the fallback if the solver finds nothing within its
limits (reported as ``SolverLimit``):

1. keep sticky replicas; trim the most expensive first when there are too many;
2. put ``onDemandBase`` replicas on on-demand;
3. fill the rest (spot first under ``Preferred``), honouring ``maxReplicasPerRegion``;
4. reach ``spread.minRegions``: one replica in the cheapest new region, trim the dearest;
5. spread spot replicas over two regions when all sit in one and another region has spot;
6. put ``warmStandbyReplicas`` outside the region holding most replicas;
7. trim to ``maxCostPerHour``.

docs/decisions.md ("Exact placement") has the formulation and an example where these
phases pay $14/h for an $11/h optimum; tests/unit/core/test_core_exact.py checks the
plan against brute force under every coupling constraint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from modelfleet.core import reasons as R
from modelfleet.core.candidates import Candidate, PoolKey
from modelfleet.core.cover import Option, cheapest_cover
from modelfleet.core.reasons import Reason
from modelfleet.core.solver import (
    Limits,
    Pool,
    Problem,
    Solution,
    cost,
    prune,
    replicas_upper_bound,
    solve,
)
from modelfleet.core.types import ON_DEMAND, SPOT, DeploymentSpec


@dataclass
class Allocation:
    """Mutable scratch space of one placement run (never escapes ``place``)."""

    known: Mapping[PoolKey, Candidate]
    counts: dict[PoolKey, int] = field(default_factory=dict)
    placed: int = 0

    def add(self, cand: Candidate, n: int) -> None:
        if n:
            self.counts[cand.key] = self.counts.get(cand.key, 0) + n
            self.placed += n

    def remove(self, key: PoolKey, n: int = 1) -> None:
        left = self.counts[key] - n
        self.placed -= min(n, self.counts[key])
        if left > 0:
            self.counts[key] = left
        else:
            del self.counts[key]

    def total(self) -> int:
        return self.placed

    def nodes(self, key: PoolKey) -> int:
        rpn = self.known[key].replicas_per_node
        return -(-self.counts.get(key, 0) // rpn)

    def cost(self) -> float:
        return sum(self.nodes(k) * self.known[k].price for k in self.counts)

    def by_region(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for k, n in self.counts.items():
            region = self.known[k].region
            out[region] = out.get(region, 0) + n
        return out

    def of_type(self, capacity_type: str) -> int:
        return sum(n for k, n in self.counts.items() if k[2] == capacity_type)


@dataclass(frozen=True, slots=True)
class PlacementResult:
    """Replicas per pool, and the reasons (deployment- and candidate-level) behind them."""

    counts: dict[PoolKey, int]
    reasons: tuple[Reason, ...]
    budget_bound: bool
    full_regions: frozenset[str]
    method: str = "greedy"
    """How the counts were found: ``greedy`` (fast path, provably optimal), ``solver``
    (MILP optimum), ``solver-limit`` (MILP stopped at its limit: best found) or
    ``greedy-fallback`` (the solver found nothing; greedy phases, maybe not optimal)."""


def node_limit(
    key: PoolKey, free: Mapping[PoolKey, int | None], own_nodes: Mapping[PoolKey, int]
) -> int | None:
    """Nodes a deployment may hold on pool ``key``: the fleet's free quota there, never
    below 0, plus the nodes it already holds (None: no quota). A pool whose fleet is over
    its quota (``free`` < 0: a lowered ``maxNodes``, another deployment's nodes) closes to
    growth, but the deployment keeps the use of its own nodes: they are billed already and
    taking them adds no node. The one rule for the fast path (``Placer``) and the MILP
    (``_solve``), which had diverged: the fast path counted another's overuse against the
    deployment's own nodes."""
    left = free.get(key)
    return None if left is None else max(0, left) + own_nodes.get(key, 0)


class Placer:
    """One placement run: holds the inputs shared by the phases. Use ``place``."""

    def __init__(
        self,
        spec: DeploymentSpec,
        growth: Sequence[Candidate],
        known: Mapping[PoolKey, Candidate],
        free: Mapping[PoolKey, int | None],
        own_nodes: Mapping[PoolKey, int],
        base: int,
    ) -> None:
        self.spec = spec
        self.base = base
        self.growth = growth
        self.alloc = Allocation(known)
        self.free = free
        self.own_nodes = own_nodes
        self.cap = spec.placement.max_replicas_per_region
        self.reasons: list[Reason] = []
        self.full_regions: set[str] = set()

    # -- the cover primitive, with node quotas, free slots and per-region caps --------------
    def cover(self, want: int, cands: Iterable[Candidate]) -> int:
        """Add up to ``want`` replicas on ``cands`` at least cost; returns how many fit."""
        pool = list(cands)
        placed = 0
        while want - placed > 0 and pool:
            room = self._room()
            usable = [c for c in pool if room.get(c.region, want) > 0]
            if not usable:
                break
            added = self._cover_once(want - placed, usable)
            over = [
                (added_n - room[r], r)
                for r, added_n in self._regions_of(added).items()
                if r in room and added_n > room[r]
            ]
            if not over:
                for cand, n in added:
                    self.alloc.add(cand, n)
                placed += sum(n for _, n in added)
                break
            # A region overflowed its cap: fill it to the cap alone, close it, go round again.
            _, region = max(over)
            in_region = [c for c in usable if c.region == region]
            for cand, n in self._cover_once(room[region], in_region):
                self.alloc.add(cand, n)
                placed += n
            self.full_regions.add(region)
            pool = [c for c in pool if c.region != region]
        return placed

    def _room(self) -> dict[str, int]:
        if self.cap is None:
            return {}
        used = self.alloc.by_region()
        regions = {c.region for c in self.growth} | set(used)
        return {r: self.cap - used.get(r, 0) for r in regions}

    def _regions_of(self, added: list[tuple[Candidate, int]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for cand, n in added:
            out[cand.region] = out.get(cand.region, 0) + n
        return out

    def limit(self, c: Candidate) -> int | None:
        """Nodes the deployment may hold on ``c``'s pool (``node_limit``)."""
        return node_limit(c.key, self.free, self.own_nodes)

    def _cover_once(self, want: int, cands: Sequence[Candidate]) -> list[tuple[Candidate, int]]:
        """Cheapest cover of ``want`` on ``cands`` (sorted cheapest first), not committed.

        Prunes as it goes: once the candidates seen can supply ``ceil(want / size)`` nodes
        of an effective size, dearer ones of that size cannot be in an optimum.
        """
        opts: list[Option] = []
        refs: list[Candidate] = []
        gathered: dict[int, int] = {}
        counts = self.alloc.counts
        for c in cands:
            rpn = c.replicas_per_node
            n = counts.get(c.key, 0)
            nodes = -(-n // rpn)
            free = nodes * rpn - n
            if free:
                opts.append(Option(1, 0.0, free))
                refs.append(c)
            size = rpn if rpn < want else want
            need = -(-want // size)
            have = gathered.get(size, 0)
            if have >= need:
                continue
            limit = self.limit(c)
            grow = None if limit is None else max(0, limit - nodes)
            if grow != 0:
                opts.append(Option(rpn, c.effective, grow))
                refs.append(c)
                gathered[size] = have + (need if grow is None else grow)
        result = cheapest_cover(want, opts)
        left = result.covered
        added: dict[PoolKey, tuple[Candidate, int]] = {}
        for opt, cand, nodes in zip(opts, refs, result.nodes, strict=True):
            if not nodes or not left:
                continue
            n = min(nodes * opt.slots, left)
            left -= n
            prev = added.get(cand.key, (cand, 0))[1]
            added[cand.key] = (cand, prev + n)
        return list(added.values())

    # -- phases ------------------------------------------------------------------------------
    def trim(self, target: int, *, only_region: str | None = None) -> None:
        """Remove replicas until ``target`` remain, most expensive first (the one whose removal
        saves most, i.e. empties the dearest node, then the dearest per replica), keeping the
        on-demand base and the minimum region count where possible."""
        pol = self.spec.placement
        while self.alloc.total() > target:
            regions = self.alloc.by_region()
            best: tuple[tuple[bool, bool, float, float, int], PoolKey] | None = None
            for key, n in self.alloc.counts.items():
                c = self.alloc.known[key]
                if only_region is not None and c.region != only_region:
                    continue
                # The on-demand base outranks the region minimum: a base replica goes last.
                keeps_base = key[2] == ON_DEMAND and self.alloc.of_type(ON_DEMAND) <= self.base
                keeps_region = regions[c.region] == 1 and len(regions) <= pol.min_regions
                saves = c.price if n % c.replicas_per_node == 1 or c.replicas_per_node == 1 else 0.0
                rank = (
                    not keeps_base,
                    not keeps_region,
                    saves,
                    c.price / c.replicas_per_node,
                    -c.order,
                )
                if best is None or rank > best[0]:
                    best = (rank, key)
            if best is None:
                return
            self.alloc.remove(best[1])

    def spread_regions(self, target: int, cands: Sequence[Candidate]) -> None:
        """Reach ``min(minRegions, target)`` regions: add one replica in the cheapest new
        region, then trim the dearest replica elsewhere, until enough regions hold replicas.

        A candidate whose replica the trim takes straight back (everything else protected,
        e.g. by the on-demand base) is not tried again, so this always terminates.
        """
        want = min(self.spec.placement.min_regions, target)
        tried: set[PoolKey] = set()
        while len(self.alloc.by_region()) < want:
            used = self.alloc.by_region()
            best = next(
                (
                    c
                    for c in cands
                    if c.region not in used and c.key not in tried and self._can_grow(c)
                ),
                None,
            )
            if best is None:
                self.reasons.append(
                    Reason(
                        R.SPREAD_UNSATISFIED,
                        f"spread.minRegions is {want} but only {len(used)} region(s) could "
                        "take a replica",
                    )
                )
                return
            tried.add(best.key)
            self.alloc.add(best, 1)
            if self.alloc.total() > target:
                self.trim(target)

    def _can_grow(self, c: Candidate) -> bool:
        limit = self.limit(c)
        return (
            limit is None
            or self.alloc.nodes(c.key) < limit
            or (self.alloc.nodes(c.key) * c.replicas_per_node > self.alloc.counts.get(c.key, 0))
        )

    def spread_spot(self) -> None:
        """Move one spot replica to a second region when all spot sits in one region."""
        spot = {k: n for k, n in self.alloc.counts.items() if k[2] == SPOT}
        if sum(spot.values()) < 2:
            return
        regions = {self.alloc.known[k].region for k in spot}
        if len(regions) > 1:
            return
        (region,) = regions
        dest = next(
            (
                c
                for c in self.growth
                if c.capacity_type == SPOT and c.region != region and self._can_grow(c)
            ),
            None,
        )
        if dest is None:
            self.reasons.append(
                Reason(
                    R.SPOT_SPREAD_UNAVAILABLE,
                    f"all spot replicas in {region}: no spot capacity in another region",
                )
            )
            return
        src = max(
            spot,
            key=lambda k: (self.alloc.known[k].price / self.alloc.known[k].replicas_per_node, k),
        )
        self.alloc.remove(src)
        self.alloc.add(dest, 1)

    def standby(self, standby: int, total_target: int) -> None:
        """Keep ``standby`` replicas outside the region holding most replicas."""
        if standby <= 0:
            return
        regions = self.alloc.by_region()
        if not regions:
            return
        major = min(regions, key=lambda r: (-regions[r], r))
        outside = sum(n for r, n in regions.items() if r != major)
        need = max(total_target - self.alloc.total(), 0)
        # Standby replicas come on top of the main ones; if sticky replicas already reach the
        # total but too few sit outside the major region, move the shortfall out of it.
        shortfall = max(0, standby - outside - need)
        cands = [c for c in self.growth if c.region != major]
        got = self.cover(need + shortfall, cands)
        if got > need:
            self.trim(self.alloc.total() - (got - need), only_region=major)
        if got < need + shortfall:
            self.reasons.append(
                Reason(
                    R.STANDBY_UNAVAILABLE,
                    f"{need + shortfall - got} warm standby replica(s) found no capacity "
                    f"outside {major}",
                )
            )

    def fit_budget(self) -> bool:
        """Drop whole nodes, dearest first, until the cost is within ``maxCostPerHour``."""
        budget = self.spec.placement.max_cost_per_hour
        if budget is None or self.alloc.cost() <= budget + 1e-9:
            return False
        while self.alloc.counts and self.alloc.cost() > budget + 1e-9:
            key = max(self.alloc.counts, key=lambda k: (self.alloc.known[k].price, k))
            c = self.alloc.known[key]
            n = self.alloc.counts[key]
            on_last = n - (self.alloc.nodes(key) - 1) * c.replicas_per_node
            self.alloc.remove(key, on_last)
        return True


def _greedy_phases(
    pl: Placer, *, main: int, standby: int, sticky: Mapping[PoolKey, int]
) -> PlacementResult:
    """The greedy phases (module doc) on a fresh Placer: the fallback when the solver
    finds no solution within its limits (``PlaceOptions.greedy`` forces them). Replicas
    per pool for ``main + standby`` replicas; always deterministic."""
    spec, growth, known, on_demand_base = pl.spec, pl.growth, pl.alloc.known, pl.base
    pol = spec.placement
    total_target = main + standby
    for key, n in sorted(sticky.items()):
        if n > 0 and key in known:
            pl.alloc.add(known[key], n)
    pl.trim(total_target)
    od = [c for c in growth if c.capacity_type == ON_DEMAND]
    base_missing = min(on_demand_base, main) - pl.alloc.of_type(ON_DEMAND)
    if base_missing > 0:
        pl.cover(base_missing, od)
    missing = main - pl.alloc.total()
    if missing > 0 and pol.spot == "Preferred":
        missing -= pl.cover(missing, [c for c in growth if c.capacity_type == SPOT])
    if missing > 0:
        pl.cover(missing, growth)
    if main > 0 and pol.min_regions > 1:
        spot_first = [c for c in growth if c.capacity_type == SPOT] + od
        pl.spread_regions(
            main,
            growth if pol.spot == "Allowed" else spot_first if pol.spot == "Preferred" else od,
        )
    if pol.spot != "Never":
        pl.spread_spot()
    pl.standby(standby, total_target)
    budget_bound = pl.fit_budget()
    return PlacementResult(
        dict(pl.alloc.counts), tuple(pl.reasons), budget_bound, frozenset(pl.full_regions)
    )


@dataclass(frozen=True, slots=True)
class PlaceOptions:
    """Inputs of ``place`` beyond the candidates: region-loss tolerance, the move cost
    factor (a removed sticky replica costs this many node-hours of the dearest pool the
    deployment holds), solver limits, and optional capacity per replica per pool (in
    replica-equivalents; default 1.0) for the region-loss requirement."""

    tolerate_region_loss: bool = False
    move_cost_factor: float = 1.0
    limits: Limits = field(default_factory=Limits)
    capacity: Mapping[PoolKey, float] | None = None
    greedy: bool = False
    """Use the greedy phases only (what ``place`` did before the solver; for comparison)."""
    spread_demand: float = 0.0
    """Blast-radius spread: replicas of demand (without headroom) that capacity outside
    every region should carry, within ``main + standby`` (0: off)."""
    spread_price_factor: float = 0.0
    """Price of one replica of ``spread_demand`` left uncovered, as a multiple of the
    dearest per-replica price among the pools (USD/h; 0: off)."""


def place(
    spec: DeploymentSpec,
    *,
    main: int,
    standby: int,
    growth: Sequence[Candidate],
    known: Mapping[PoolKey, Candidate],
    sticky: Mapping[PoolKey, int],
    free: Mapping[PoolKey, int | None],
    own_nodes: Mapping[PoolKey, int],
    on_demand_base: int,
    options: PlaceOptions = PlaceOptions(),
) -> PlacementResult:
    """Replicas per pool for ``main + standby`` replicas at the least cost under every
    constraint (module doc: the fast path, then the MILP of ``core.solver``).

    ``growth`` are the candidates that may take new replicas, cheapest (effective price)
    first; ties go to the earlier one. ``known`` maps every pool the deployment may touch
    (growth and sticky) to its candidate, ``sticky`` the replicas that stay. A pool may hold
    ``free[pool]`` nodes (None: unlimited) plus the ``own_nodes`` the deployment already has
    there. Never places on a pool outside ``growth`` beyond its sticky replicas.
    Deterministic for equal inputs (unless the solver's wall-clock limit is hit, which the
    reasons say).

    Memoised (``_PLACED``): a call whose inputs are those of an earlier call (the same
    spec and candidate objects, equal counts, quotas and options) gets that call's answer,
    its counts a fresh dict.
    """
    key = _memo_key(
        spec, main, standby, growth, known, sticky, free, own_nodes, on_demand_base, options
    )
    if key is None:
        return _place(
            spec, main, standby, growth, known, sticky, free, own_nodes, on_demand_base, options
        )
    hit = _PLACED.get(key)
    if hit is None:
        result = _place(
            spec, main, standby, growth, known, sticky, free, own_nodes, on_demand_base, options
        )
        if len(_PLACED) >= _PLACED_SIZE:
            _PLACED.clear()
        # The entry holds the objects whose ids its key names, so no id is reused while
        # it is remembered.
        hit = _PLACED[key] = ((spec, tuple(growth), tuple(known.values())), result)
    return replace(hit[1], counts=dict(hit[1].counts))


_PLACED: dict[tuple[object, ...], tuple[tuple[object, ...], PlacementResult]] = {}
"""``place``'s answers by ``_memo_key``. A reconcile plans every deployment every pass
and most passes place the same replicas on the same candidates (in a simulated day, ~97%
of the calls repeat an earlier call): the fast path and, more so, building the MILP are
then done once."""

_PLACED_SIZE = 1024
"""Entries kept before the memo starts afresh."""


def _memo_key(
    spec: DeploymentSpec,
    main: int,
    standby: int,
    growth: Sequence[Candidate],
    known: Mapping[PoolKey, Candidate],
    sticky: Mapping[PoolKey, int],
    free: Mapping[PoolKey, int | None],
    own_nodes: Mapping[PoolKey, int],
    on_demand_base: int,
    options: PlaceOptions,
) -> tuple[object, ...] | None:
    """Everything ``place`` reads, cheaply: the spec and the candidates by identity (they
    are immutable, and the planner hands out the same objects while the fleet and the
    deployment are unchanged), the pool counts, quotas and options by value, every
    mapping in its order. None (no memo) with per-pool capacities in the options."""
    if options.capacity is not None:
        return None
    return (
        id(spec),
        main,
        standby,
        on_demand_base,
        options,
        tuple(map(id, growth)),
        tuple(known),
        tuple(map(id, known.values())),
        tuple(sticky.items()),
        tuple(free.items()),
        tuple(own_nodes.items()),
    )


def clear_place_memo() -> None:
    """Forget ``place``'s answers (benchmarks measure cold plans with it)."""
    _PLACED.clear()


def _place(
    spec: DeploymentSpec,
    main: int,
    standby: int,
    growth: Sequence[Candidate],
    known: Mapping[PoolKey, Candidate],
    sticky: Mapping[PoolKey, int],
    free: Mapping[PoolKey, int | None],
    own_nodes: Mapping[PoolKey, int],
    on_demand_base: int,
    options: PlaceOptions,
) -> PlacementResult:
    """``place`` itself (unmemoised)."""
    if options.greedy:
        pl = Placer(spec, growth, known, free, own_nodes, on_demand_base)
        return _greedy_phases(pl, main=main, standby=standby, sticky=sticky)
    pol = spec.placement
    target = main + standby
    kept = {k: n for k, n in sorted(sticky.items()) if n > 0 and k in known}
    excess = sum(kept.values()) > target
    if (not excess or pol.spot != "Preferred") and options.capacity is None:
        pl = Placer(spec, growth, known, free, own_nodes, on_demand_base)
        pl.cap = None  # the relaxation: no coupling constraint at all
        if excess:
            _keep_cheapest(pl, kept, target)
        else:
            for key, n in kept.items():
                pl.alloc.add(known[key], n)
        missing = target - pl.alloc.total()
        if missing > 0 and pol.spot == "Preferred":
            missing -= pl.cover(missing, [c for c in growth if c.capacity_type == SPOT])
        if missing > 0:
            pl.cover(missing, growth)
        base = min(on_demand_base, main)
        if _coupling_met(pl, main=main, standby=standby, base=base, options=options):
            return PlacementResult(
                dict(pl.alloc.counts),
                tuple(_spot_spread_reason(pl.alloc.counts, known, growth)),
                False,
                frozenset(),
            )
    return _solve(
        spec, main, standby, growth, known, kept, free, own_nodes, on_demand_base, options
    )


def _keep_cheapest(pl: Placer, kept: Mapping[PoolKey, int], target: int) -> None:
    """Scale-in without coupling constraints: keep the ``target`` sticky replicas whose
    nodes cost least (an exact cover over the nodes they occupy: full nodes, and the last
    partly filled node of each pool). Removing only forced replicas and never moving one
    is optimal because a move costs more than the node it could free."""
    opts: list[Option] = []
    refs: list[Candidate] = []
    for key, n in kept.items():
        c = pl.alloc.known[key]
        full, part = divmod(n, c.replicas_per_node)
        if full:
            opts.append(Option(c.replicas_per_node, c.effective, full))
            refs.append(c)
        if part:
            opts.append(Option(part, c.effective, 1))
            refs.append(c)
    chosen = cheapest_cover(target, opts)
    left = target
    for opt, cand, nodes in zip(opts, refs, chosen.nodes, strict=True):
        n = min(nodes * opt.slots, left)
        pl.alloc.add(cand, n)
        left -= n


def _coupling_met(pl: Placer, *, main: int, standby: int, base: int, options: PlaceOptions) -> bool:
    """True when the relaxed (greedy, coupling-free) plan already meets every coupling
    constraint: then it is optimal for the full problem too, since the full problem only
    adds constraints to the relaxation and this plan satisfies them."""
    pol = pl.spec.placement
    alloc = pl.alloc
    regions = alloc.by_region()
    if main > 0 and len(regions) < min(pol.min_regions, main):
        return False
    if pol.max_replicas_per_region is not None and any(
        n > pol.max_replicas_per_region for n in regions.values()
    ):
        return False
    if base > 0 and alloc.of_type(ON_DEMAND) < base:
        return False
    if standby > 0 and alloc.total() - max(regions.values(), default=0) < standby:
        return False
    if pol.max_cost_per_hour is not None and alloc.cost() > pol.max_cost_per_hour + 1e-9:
        return False
    # Headroom only adds replicas (and cost): a plan already tolerant is optimal.
    if (
        options.tolerate_region_loss
        and main > 0
        and (len(regions) < 2 or any(alloc.total() - n < main for n in regions.values()))
    ):
        return False
    for offering, most in _shared_nodes([c.key for c in pl.growth], pl.free, pl.own_nodes).items():
        if sum(alloc.nodes(k) for k in alloc.counts if k[:2] == offering) > most:
            return False
    # The spread is priced: a plan leaving demand uncovered by a region's loss may not be
    # the cheapest once that price counts, while another region could take a replica.
    if (
        not options.tolerate_region_loss
        and options.spread_demand > 0
        and options.spread_price_factor > 0
        and len({c.region for c in pl.growth} | set(regions)) > 1
        and any(alloc.total() - n < options.spread_demand - 1e-9 for n in regions.values())
    ):
        return False
    return not _spot_spread_possible(alloc.counts, alloc.known, pl.growth)


def _shared_nodes(
    keys: Iterable[PoolKey], free: Mapping[PoolKey, int | None], own_nodes: Mapping[PoolKey, int]
) -> dict[tuple[str, str], int]:
    """Per offering (cluster, instance type) with both its on-demand and spot pools among
    ``keys`` and a quota: the most nodes the deployment may hold on the two together (the
    fleet's free quota, which ``core.candidates`` counts over both capacity types, plus its
    own nodes on either). The per-pool limits alone would let each pool take it all."""
    groups: dict[tuple[str, str], list[PoolKey]] = {}
    for key in dict.fromkeys(keys):
        groups.setdefault((key[0], key[1]), []).append(key)
    out: dict[tuple[str, str], int] = {}
    for offering, group in groups.items():
        left = [free.get(k) for k in group]
        if len(group) > 1 and all(n is not None for n in left):
            out[offering] = max(0, min(n or 0 for n in left)) + sum(
                own_nodes.get(k, 0) for k in group
            )
    return out


def _spot_regions(counts: Mapping[PoolKey, int], known: Mapping[PoolKey, Candidate]) -> set[str]:
    return {known[k].region for k, n in counts.items() if k[2] == SPOT and n > 0}


def _spot_spread_possible(
    counts: Mapping[PoolKey, int], known: Mapping[PoolKey, Candidate], growth: Sequence[Candidate]
) -> bool:
    """Two or more spot replicas all in one region while another region offers spot."""
    spot = sum(n for k, n in counts.items() if k[2] == SPOT)
    regions = _spot_regions(counts, known)
    if spot < 2 or len(regions) != 1:
        return False
    return any(c.capacity_type == SPOT and c.region not in regions for c in growth)


def _spot_spread_reason(
    counts: Mapping[PoolKey, int], known: Mapping[PoolKey, Candidate], growth: Sequence[Candidate]
) -> list[Reason]:
    spot = sum(n for k, n in counts.items() if k[2] == SPOT)
    regions = _spot_regions(counts, known)
    if spot < 2 or len(regions) != 1 or _spot_spread_possible(counts, known, growth):
        return []
    (region,) = regions
    return [
        Reason(
            R.SPOT_SPREAD_UNAVAILABLE,
            f"all spot replicas in {region}: no spot capacity in another region",
        )
    ]


def _solve(
    spec: DeploymentSpec,
    main: int,
    standby: int,
    growth: Sequence[Candidate],
    known: Mapping[PoolKey, Candidate],
    sticky: Mapping[PoolKey, int],
    free: Mapping[PoolKey, int | None],
    own_nodes: Mapping[PoolKey, int],
    on_demand_base: int,
    options: PlaceOptions,
) -> PlacementResult:
    """The exact path: build the MILP of ``core.solver`` from the candidates and solve it."""
    pol = spec.placement
    capacity = options.capacity or {}
    pools: list[Pool] = []
    seen: set[PoolKey] = set()

    def limit(c: Candidate) -> int | None:
        return node_limit(c.key, free, own_nodes)

    for c in growth:
        if c.key in seen:
            continue
        seen.add(c.key)
        pools.append(
            Pool(
                c.key,
                c.region,
                c.capacity_type == SPOT,
                c.price,
                c.effective,
                c.replicas_per_node,
                limit(c),
                sticky.get(c.key, 0),
                True,
                capacity.get(c.key, 1.0),
            )
        )
    for key, n in sticky.items():
        if key in seen:
            continue
        c = known[key]
        pools.append(
            Pool(
                key,
                c.region,
                c.capacity_type == SPOT,
                c.price,
                c.effective,
                c.replicas_per_node,
                -(-n // c.replicas_per_node),
                n,
                False,
                capacity.get(key, 1.0),
            )
        )
    dearest_sticky = max((p.effective for p in pools if p.sticky), default=0.0)
    shared = _shared_nodes([p.key for p in pools], free, own_nodes)
    problem = Problem(
        pools=(),
        main=main,
        standby=standby,
        on_demand_base=min(on_demand_base, main),
        min_regions=min(pol.min_regions, main) if main > 0 else 0,
        max_per_region=pol.max_replicas_per_region,
        budget=pol.max_cost_per_hour,
        spot_preferred=pol.spot == "Preferred",
        spot_spread=pol.spot != "Never",
        tolerate_region_loss=options.tolerate_region_loss,
        demand=float(main),
        move_cost=options.move_cost_factor * dearest_sticky + 0.01 if dearest_sticky else 0.0,
        shared_nodes=tuple(sorted(shared.items())),
        spread_demand=options.spread_demand,
        spread_price=options.spread_price_factor
        * max((p.effective / p.slots for p in pools), default=0.0),
    )
    top = replicas_upper_bound(problem)
    problem = replace(problem, pools=tuple(prune(pools, top, shared=shared)))
    placer = Placer(spec, growth, known, free, own_nodes, on_demand_base)
    fallback = _greedy_phases(placer, main=main, standby=standby, sticky=sticky)
    sol = solve(problem, options.limits, start=fallback.counts)
    if sol.status == "NoSolution":
        why = Reason(
            R.SOLVER_LIMIT,
            f"the placement solver found no solution within {options.limits.nodes} nodes / "
            f"{options.limits.seconds:g}s: greedy placement used (may cost more than optimal)",
        )
        return replace(fallback, reasons=(*fallback.reasons, why), method="greedy-fallback")
    return PlacementResult(
        sol.counts,
        tuple(_solution_reasons(problem, sol, known, growth)),
        _budget_bound(problem, sol, growth),
        _full_regions(sol.counts, known, pol.max_replicas_per_region),
        "solver" if sol.status == "Optimal" else "solver-limit",
    )


def _solution_reasons(
    problem: Problem, sol: Solution, known: Mapping[PoolKey, Candidate], growth: Sequence[Candidate]
) -> list[Reason]:
    out: list[Reason] = []
    short = sol.shortfall
    by_region: dict[str, int] = {}
    for k, n in sol.counts.items():
        by_region[known[k].region] = by_region.get(known[k].region, 0) + n
    if short.on_demand_base:
        out.append(
            Reason(
                R.ON_DEMAND_BASE_UNSATISFIED,
                f"capacity.onDemandBase is {problem.on_demand_base} but only "
                f"{problem.on_demand_base - short.on_demand_base} on-demand replica(s) fit",
            )
        )
    if short.regions:
        out.append(
            Reason(
                R.SPREAD_UNSATISFIED,
                f"spread.minRegions is {problem.min_regions} but only {len(by_region)} "
                "region(s) could take a replica",
            )
        )
    if short.standby:
        major = min(by_region, key=lambda r: (-by_region[r], r)) if by_region else "any region"
        out.append(
            Reason(
                R.STANDBY_UNAVAILABLE,
                f"{short.standby} warm standby replica(s) found no capacity outside {major}",
            )
        )
    out.extend(_spot_spread_reason(sol.counts, known, growth))
    for region, missing in sorted(short.region_loss.items()):
        out.append(
            Reason(
                R.REGION_LOSS_UNCOVERED,
                f"losing {region} would leave {missing:g} replica(s) of demand without "
                "capacity elsewhere (no eligible capacity, quota or budget for the headroom)",
            )
        )
    if sol.status == "Limit":
        # HiGHS reports an infinite gap when no lower bound was proven before the limit.
        bound = (
            f"within {sol.gap:.2%} of the optimum"
            if math.isfinite(sol.gap)
            else "no bound on its distance from the optimum proven"
        )
        out.append(
            Reason(
                R.SOLVER_LIMIT,
                f"the placement solver stopped at its limit after {sol.nodes_explored} "
                f"node(s): best plan found used, {bound}",
            )
        )
    return out


def _budget_bound(problem: Problem, sol: Solution, growth: Sequence[Candidate]) -> bool:
    """True when the budget is what stopped more replicas (or a soft requirement)."""
    if problem.budget is None:
        return False
    if not sol.shortfall.unplaced and not sol.shortfall.total():
        return False
    cheapest = min((c.price for c in growth), default=0.0)
    return cost(problem, sol.counts) + cheapest > problem.budget + 1e-9


def _full_regions(
    counts: Mapping[PoolKey, int], known: Mapping[PoolKey, Candidate], cap: int | None
) -> frozenset[str]:
    if cap is None:
        return frozenset()
    by_region: dict[str, int] = {}
    for k, n in counts.items():
        by_region[known[k].region] = by_region.get(known[k].region, 0) + n
    return frozenset(r for r, n in by_region.items() if n >= cap)
