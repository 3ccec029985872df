"""Exact placement under coupling constraints: a mixed-integer program solved by HiGHS.

The greedy phases of ``core.placement`` are exact only when no constraint couples the
candidates. Spread (``minRegions``, ``maxReplicasPerRegion``), the on-demand base, warm
standby, spot spread, the budget, region-loss tolerance and stickiness under scale-in all
do, and committing one phase's nodes before the next is costed can cost more than the joint
optimum (docs/decisions.md, "Exact placement"). This module states the whole placement of
one deployment as one MILP and solves it with HiGHS through ``highspy``.

Variables, per pool ``i`` (cluster, instance type, capacity type):

- ``x_i`` replicas (integer), ``y_i`` nodes (integer), ``x_i <= slots_i * y_i``,
  ``y_i <= max_nodes_i`` (free quota plus the deployment's own nodes), and the nodes of an
  offering's on-demand and spot pools together within the limit they share;
- per region ``z_r`` (binary: the region holds a replica) when ``minRegions > 1``;
- slacks for every soft requirement, so the program is always feasible.

The objective is lexicographic, encoded as tiers of weights each larger than any change of
the tiers below: (1) place as many of ``main + standby`` replicas as possible; (2) meet the
soft requirements (on-demand base, minRegions, standby outside the largest region, spot
over two regions, region-loss headroom), one unit of shortfall each; (3) under
``spot: Preferred`` use as few on-demand replicas as possible; (4) least effective cost
(preferred regions discounted) plus a move cost for every sticky replica removed beyond
what a scale-in forces, plus the blast-radius price: each unit of ``spread_demand`` that
the worst single region's loss would leave without capacity elsewhere costs
``spread_price`` per hour (the default spread of the replicas already paid for; no
replica is added for it). Hard: per-region cap, quotas, budget, sticky-only pools.

Pure and deterministic: HiGHS runs single-threaded with a fixed seed and a node limit;
the wall-clock limit is a safety net, and when either stops the search the best solution
found is used and ``Solution.status`` says so.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import highspy
import numpy as np

SolveStatus = Literal["Optimal", "Limit", "NoSolution"]


@dataclass(frozen=True, slots=True)
class Pool:
    """One column of the program: a pool the deployment may use.

    ``price`` and ``effective`` are USD per node-hour (``effective`` is what the objective
    compares: the price discounted for preferred regions); ``slots`` replicas fit one node;
    ``max_nodes`` None means unlimited. ``sticky`` replicas run there now and are healthy;
    a pool with ``growth`` False may hold at most its sticky replicas. ``capacity`` is what
    one replica here carries, in the unit of ``Problem.demand`` (1.0: one replica; a
    per-offering capacity profile plugs in here).
    """

    key: tuple[str, str, str]
    region: str
    spot: bool
    price: float
    effective: float
    slots: int
    max_nodes: int | None
    sticky: int = 0
    growth: bool = True
    capacity: float = 1.0


@dataclass(frozen=True, slots=True)
class Problem:
    """The placement of one deployment (replica counts; ``demand`` in capacity units).

    ``main`` replicas carry the traffic, ``standby`` come on top outside the largest region.
    ``on_demand_base``, ``min_regions`` (already capped at ``main``), ``spot_spread`` (keep
    two or more spot replicas in two regions when spot is offered in two) and
    ``tolerate_region_loss`` (for every region, capacity outside it >= ``demand``) are soft;
    ``max_per_region`` and ``budget`` (USD per hour of real prices) are hard. ``move_cost``
    is charged per sticky replica removed beyond ``sticky total - (main + standby)``.
    """

    pools: tuple[Pool, ...]
    main: int
    standby: int = 0
    on_demand_base: int = 0
    min_regions: int = 1
    max_per_region: int | None = None
    budget: float | None = None
    spot_preferred: bool = False
    spot_spread: bool = False
    tolerate_region_loss: bool = False
    demand: float = 0.0
    move_cost: float = 0.0
    shared_nodes: tuple[tuple[tuple[str, str], int], ...] = ()
    """Most nodes the pools of one offering, keyed (cluster, instance type), may hold
    together: its on-demand and spot pools share ``maxNodes`` (``core.types.Offering``)."""
    spread_demand: float = 0.0
    spread_price: float = 0.0

    def spread_priced(self) -> bool:
        """True when the blast-radius spread applies: for every region, capacity outside
        it should carry ``spread_demand``; each unit the worst region leaves short costs
        ``spread_price`` per hour in the cost tier. Region-loss tolerance (full coverage, a soft requirement
        with headroom on top) replaces it."""
        return (
            not self.tolerate_region_loss
            and self.spread_demand > 0
            and self.spread_price > 0
            and len({p.region for p in self.pools}) > 1
        )


@dataclass(frozen=True, slots=True)
class Shortfall:
    """How far each soft requirement is from met in a solution (0: met)."""

    unplaced: int = 0
    on_demand_base: int = 0
    regions: int = 0
    standby: int = 0
    spot_spread: int = 0
    region_loss: Mapping[str, float] = field(default_factory=dict)
    spread: Mapping[str, float] = field(default_factory=dict)
    """Per region, demand (capacity units) that losing it would leave uncovered by the
    blast-radius spread; its largest value is priced in the cost tier, so not part of
    ``total``."""

    def total(self) -> float:
        """Units of soft shortfall (the second tier of the objective)."""
        return (
            self.on_demand_base
            + self.regions
            + self.standby
            + self.spot_spread
            + sum(self.region_loss.values())
        )


@dataclass(frozen=True, slots=True)
class Solution:
    """Replicas per pool key (pools with none left out), the shortfalls, and how the
    search ended: ``Optimal`` (proven within ``gap``), ``Limit`` (node or time limit hit:
    best found so far, ``gap`` is its proven relative gap), ``NoSolution`` (no solution
    within the limits: ``counts`` is empty)."""

    counts: dict[tuple[str, str, str], int]
    shortfall: Shortfall
    status: SolveStatus
    gap: float = 0.0
    nodes_explored: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """Search limits: ``nodes`` branch-and-bound nodes (deterministic), ``seconds`` of wall
    clock (a safety net; hitting it makes the result depend on machine speed)."""

    nodes: int = 20_000
    seconds: float = 1.0


def replicas_upper_bound(problem: Problem) -> int:
    """The most replicas any sensible solution places: main + standby, plus main again as
    region-loss headroom (no region needs more than the whole demand outside it)."""
    extra = problem.main if problem.tolerate_region_loss else 0
    return max(problem.main + problem.standby + extra, sum(p.sticky for p in problem.pools))


def tiers(problem: Problem) -> tuple[float, float, float]:
    """Weights (unplaced, soft shortfall, on-demand under Preferred) of the lexicographic
    objective: each exceeds the largest change the lower tiers can make."""
    top = replicas_upper_bound(problem) + 1
    dearest = max((p.effective for p in problem.pools), default=1.0)
    cost_range = top * (dearest + problem.move_cost) + 1.0
    if problem.spread_priced():
        cost_range += problem.spread_price * problem.spread_demand
    w_od = cost_range if problem.spot_preferred else 0.0
    w_soft = w_od * top + cost_range
    soft_units = (
        problem.on_demand_base
        + problem.min_regions
        + problem.standby
        + 1
        + (top * len({p.region for p in problem.pools}) if problem.tolerate_region_loss else 0)
    )
    w_unplaced = w_soft * (soft_units + 1)
    return w_unplaced, w_soft, w_od


class _Builder:
    """Columns and sparse rows of the program."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[bool] = []
        self.row_lo: list[float] = []
        self.row_hi: list[float] = []
        self.starts: list[int] = [0]
        self.index: list[int] = []
        self.value: list[float] = []

    def col(self, cost: float, lo: float, hi: float, *, integer: bool = True) -> int:
        self.cost.append(cost)
        self.lower.append(lo)
        self.upper.append(hi)
        self.integer.append(integer)
        return len(self.cost) - 1

    def row(self, terms: Mapping[int, float], lo: float, hi: float) -> None:
        for j, v in terms.items():
            if v:
                self.index.append(j)
                self.value.append(v)
        self.starts.append(len(self.index))
        self.row_lo.append(lo)
        self.row_hi.append(hi)


def solve(
    problem: Problem,
    limits: Limits = Limits(),
    start: Mapping[tuple[str, str, str], int] | None = None,
) -> Solution:
    """Solve ``problem`` exactly (within a relative gap of 1e-6) or to the limits.

    ``start``, replicas per pool key of a plan meeting the hard constraints (e.g. the
    greedy phases' plan), seeds the search: HiGHS completes it to a first incumbent, which
    often lets the root bound prove optimality at once. A seeded answer whose own objective
    is not within the gaps of HiGHS's dual bound is not optimal (HiGHS 1.16 can report it
    so): the program is then solved again without the seed. Deterministic for equal inputs
    unless ``limits.seconds`` is hit. Raises nothing for a valid problem: the program is
    always feasible (zero replicas with full shortfall).

    Memoised (bounded LRU) on the immutable inputs: reconciles every few seconds mostly
    ask the same question again, and a pure function may answer from memory.
    """
    seed = tuple(sorted(start.items())) if start else ()
    sol = _solve_memo(problem, limits, seed)
    return replace(sol, counts=dict(sol.counts))


@functools.lru_cache(maxsize=4096)
def _solve_memo(
    problem: Problem, limits: Limits, start: tuple[tuple[tuple[str, str, str], int], ...]
) -> Solution:
    return _solve(problem, limits, dict(start) if start else None)


def clear_memo() -> None:
    """Forget memoised solutions (benchmarks measure cold solves with it)."""
    _solve_memo.cache_clear()


def _solve(
    problem: Problem,
    limits: Limits,
    start: Mapping[tuple[str, str, str], int] | None,
) -> Solution:
    pools = problem.pools
    inf = highspy.kHighsInf
    b = _Builder()
    top = replicas_upper_bound(problem)
    w_unplaced, w_soft, w_od = tiers(problem)
    target = problem.main + problem.standby
    regions = sorted({p.region for p in pools})
    cap = problem.max_per_region

    xs: list[int] = []
    ys: list[int] = []
    for p in pools:
        hi_x = top if p.growth else p.sticky
        if cap is not None:
            hi_x = min(hi_x, cap)
        hi_y = math.ceil(hi_x / p.slots)
        if p.max_nodes is not None:
            hi_y = min(hi_y, p.max_nodes)
        hi_x = min(hi_x, hi_y * p.slots)
        xs.append(b.col(w_od if not p.spot else 0.0, 0, hi_x))
        ys.append(b.col(p.effective, 0, hi_y))
        b.row({xs[-1]: 1.0, ys[-1]: -float(p.slots)}, -inf, 0.0)
    for offering, most in problem.shared_nodes:
        group = [y for p, y in zip(pools, ys, strict=True) if p.key[:2] == offering]
        if len(group) > 1:
            b.row(dict.fromkeys(group, 1.0), -inf, float(most))

    # Aggregates (continuous, integral by construction) keep the rows sparse: the total,
    # and replicas per region.
    total = b.col(0.0, 0, inf, integer=False)
    b.row({**dict.fromkeys(xs, 1.0), total: -1.0}, 0.0, 0.0)
    in_region: dict[str, list[int]] = {r: [] for r in regions}
    for p, x in zip(pools, xs, strict=True):
        in_region[p.region].append(x)
    per_region: dict[str, int] = {}
    for r in regions:
        per_region[r] = b.col(0.0, 0, inf if cap is None else cap, integer=False)
        b.row({**dict.fromkeys(in_region[r], 1.0), per_region[r]: -1.0}, 0.0, 0.0)

    unplaced = b.col(w_unplaced, 0, target)
    standby_short = b.col(w_soft, 0, problem.standby)
    # A hair of cost on headroom keeps idle slots of paid nodes empty.
    headroom = b.col(1e-4, 0, top - target) if problem.tolerate_region_loss else None
    # Placed + unplaced covers main + standby, less the standby that found no other region;
    # placed never exceeds that by more than the region-loss headroom.
    b.row({total: 1.0, unplaced: 1.0, standby_short: 1.0}, target, inf)
    upper = {total: 1.0, standby_short: 1.0}
    if headroom is not None:
        upper[headroom] = -1.0
    b.row(upper, -inf, target)
    if problem.standby > 0:
        for r in regions:
            b.row({total: 1.0, per_region[r]: -1.0, standby_short: 1.0}, problem.standby, inf)

    base_short = None
    if problem.on_demand_base > 0:
        base_short = b.col(w_soft, 0, problem.on_demand_base)
        od = {x: 1.0 for p, x in zip(pools, xs, strict=True) if not p.spot}
        b.row({**od, base_short: 1.0}, problem.on_demand_base, inf)

    region_short = None
    if problem.min_regions > 1:
        used: list[int] = []
        for r in regions:
            z = b.col(0.0, 0, 1)
            used.append(z)
            b.row({z: 1.0, per_region[r]: -1.0}, -inf, 0.0)
        region_short = b.col(w_soft, 0, problem.min_regions)
        b.row({**dict.fromkeys(used, 1.0), region_short: 1.0}, problem.min_regions, inf)

    spread_short = None
    spot_regions = sorted({p.region for p in pools if p.spot and p.growth})
    if problem.spot_spread and len(spot_regions) > 1:
        spot_x = {x: 1.0 for p, x in zip(pools, xs, strict=True) if p.spot}
        many = b.col(0.0, 0, 1)  # 1 when two or more spot replicas
        b.row({**spot_x, many: -float(top)}, -inf, 1.0)
        flags = []
        for r in sorted({p.region for p in pools if p.spot}):
            q = b.col(0.0, 0, 1)
            flags.append(q)
            members = {x: -1.0 for p, x in zip(pools, xs, strict=True) if p.spot and p.region == r}
            b.row({q: 1.0, **members}, -inf, 0.0)
        spread_short = b.col(w_soft, 0, 1)
        b.row({**dict.fromkeys(flags, 1.0), spread_short: 1.0, many: -2.0}, 0.0, inf)

    # Region loss: for every region, capacity outside it >= the demand to cover; the
    # slack is soft (tolerance: tier 2, headroom allowed above) or priced (the default
    # blast-radius spread: cost tier, no replica beyond main + standby).
    loss_demand, loss_weight = 0.0, 0.0
    if problem.tolerate_region_loss and problem.demand > 0:
        loss_demand, loss_weight = problem.demand, w_soft
    elif problem.spread_priced():
        loss_demand, loss_weight = problem.spread_demand, problem.spread_price
    if loss_demand > 0:
        uniform = all(p.capacity == 1.0 for p in pools)
        carried = total
        if not uniform:
            carried = b.col(0.0, 0, inf, integer=False)
            b.row({**{x: p.capacity for p, x in zip(pools, xs, strict=True)}, carried: -1.0}, 0, 0)
        # The spread prices the blast radius: one slack shared by every region, i.e. the
        # most demand any single region's loss leaves uncovered (a sum would rate 4/1/1
        # replicas over three regions as well spread as 2/2/2).
        shared = (
            None
            if problem.tolerate_region_loss
            else b.col(loss_weight, 0, loss_demand, integer=False)
        )
        for r in regions:
            s = shared if shared is not None else b.col(loss_weight, 0, loss_demand, integer=False)
            if uniform:
                inside = {per_region[r]: -1.0}
            else:
                inside = {x: -p.capacity for p, x in zip(pools, xs, strict=True) if p.region == r}
            b.row({carried: 1.0, **inside, s: 1.0}, loss_demand, inf)

    if problem.budget is not None:
        b.row(
            {y: p.price for p, y in zip(pools, ys, strict=True) if p.price > 0},
            -inf,
            problem.budget + 1e-9,
        )

    sticky_total = sum(p.sticky for p in pools)
    if sticky_total and problem.move_cost > 0:
        removed = []
        for p, x in zip(pools, xs, strict=True):
            if p.sticky:
                s = b.col(0.0, 0, p.sticky)
                removed.append(s)
                b.row({s: 1.0, x: 1.0}, p.sticky, inf)
        forced = max(0, sticky_total - target)
        moves = b.col(problem.move_cost, 0, sticky_total)
        b.row({moves: 1.0, **{s: -1.0 for s in removed}}, -forced, inf)

    seed: list[tuple[int, float]] = []
    if start is not None:
        for p, x, y in zip(pools, xs, ys, strict=True):
            n = start.get(p.key, 0)
            seed += [(x, float(n)), (y, float(-(-n // p.slots)))]
    values, status, gap, explored = _run(b, limits, seed)
    if values is None:
        return Solution({}, Shortfall(unplaced=target), "NoSolution", gap, explored)
    counts = {p.key: n for p, x in zip(pools, xs, strict=True) if (n := round(values[x])) > 0}
    return Solution(counts, evaluate(problem, counts), status, gap, explored)


def _new_highs() -> Any:
    """A HiGHS instance that prints nothing. ``highspy.Highs()`` enables its Python
    callbacks in the constructor, before any option can be set, and that writes the HiGHS
    banner on stdout (ERGO-Code/HiGHS#2749): it would corrupt ``modelfleet plan -o json``.
    The pybind class underneath has the same methods without the callbacks we do not use."""
    cls = getattr(getattr(highspy, "_core", None), "_Highs", highspy.Highs)
    return cls()


def _run(
    b: _Builder, limits: Limits, seed: Sequence[tuple[int, float]]
) -> tuple[list[float] | None, SolveStatus, float, int]:
    h = _new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("threads", 1)
    h.setOptionValue("mip_rel_gap", 1e-6)
    h.setOptionValue("mip_abs_gap", 1e-6)
    # Feasibility jump costs ~5 ms per call whatever the size; our root LP finds solutions.
    h.setOptionValue("mip_heuristic_run_feasibility_jump", False)
    h.setOptionValue("mip_max_nodes", limits.nodes)
    h.setOptionValue("time_limit", limits.seconds)
    lp = highspy.HighsLp()
    lp.num_col_ = len(b.cost)
    lp.num_row_ = len(b.row_lo)
    lp.col_cost_ = np.asarray(b.cost, dtype=np.float64)
    lp.col_lower_ = np.asarray(b.lower, dtype=np.float64)
    lp.col_upper_ = np.asarray(b.upper, dtype=np.float64)
    lp.row_lower_ = np.asarray(b.row_lo, dtype=np.float64)
    lp.row_upper_ = np.asarray(b.row_hi, dtype=np.float64)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.asarray(b.starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(b.index, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(b.value, dtype=np.float64)
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in b.integer
    ]
    h.passModel(lp)
    if seed:
        h.setSolution(
            len(seed),
            np.asarray([j for j, _ in seed], dtype=np.int32),
            np.asarray([v for _, v in seed], dtype=np.float64),
        )
    h.run()
    model_status = h.getModelStatus()
    info = h.getInfo()
    if seed and model_status == highspy.HighsModelStatus.kOptimal:
        # HiGHS 1.16 with presolve can return a seeded start as "Optimal" under an
        # objective it misreports (the seed costs 13.5 in the program, HiGHS says 7.0 and
        # the true optimum is 8.25: test_core_exact.py's spot-Preferred regression). An
        # optimum is within the gaps of the dual bound; when the answer's own objective is
        # not, it is not optimal: solve again without the seed.
        values = np.asarray(h.getSolution().col_value, dtype=np.float64)
        objective = float(np.dot(lp.col_cost_, values))
        bound = float(info.mip_dual_bound)
        if objective - bound > max(1e-6, 1e-6 * abs(objective)) + 1e-9:
            return _run(b, limits, ())
    explored = int(info.mip_node_count)
    gap = float(info.mip_gap) if math.isfinite(info.mip_gap) else math.inf
    if info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible:
        return None, "NoSolution", gap, explored
    status: SolveStatus = (
        "Optimal" if model_status == highspy.HighsModelStatus.kOptimal else "Limit"
    )
    return list(h.getSolution().col_value), status, (0.0 if status == "Optimal" else gap), explored


def evaluate(problem: Problem, counts: Mapping[tuple[str, str, str], int]) -> Shortfall:
    """Shortfall of every soft requirement of ``problem`` for replicas ``counts``.

    Used for the solver's answer and by the fast path to prove the greedy plan optimal (a
    plan that is optimal without the coupling requirements and meets them all is optimal
    with them).
    """
    by_key = {p.key: p for p in problem.pools}
    placed = sum(counts.values())
    by_region: dict[str, int] = {}
    cap_by_region: dict[str, float] = {}
    od = 0
    spot_regions: set[str] = set()
    spot = 0
    for key, n in counts.items():
        p = by_key[key]
        by_region[p.region] = by_region.get(p.region, 0) + n
        cap_by_region[p.region] = cap_by_region.get(p.region, 0.0) + n * p.capacity
        if p.spot:
            spot += n
            spot_regions.add(p.region)
        else:
            od += n
    regions = {p.region for p in problem.pools}
    largest = max(by_region.values(), default=0)
    outside = placed - largest
    standby_short = max(0, problem.standby - outside)
    unplaced = max(0, problem.main + problem.standby - standby_short - placed)
    offered_spot = {p.region for p in problem.pools if p.spot and p.growth}
    spread = int(
        problem.spot_spread and len(offered_spot) > 1 and spot >= 2 and len(spot_regions) < 2
    )
    total_cap = sum(cap_by_region.values())

    def uncovered(demand: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in sorted(regions):
            short = demand - (total_cap - cap_by_region.get(r, 0.0))
            if short > 1e-9:
                out[r] = short
        return out

    loss = uncovered(problem.demand) if problem.tolerate_region_loss and problem.demand else {}
    spread_short = uncovered(problem.spread_demand) if problem.spread_priced() else {}
    return Shortfall(
        unplaced=unplaced,
        on_demand_base=max(0, problem.on_demand_base - od),
        regions=max(0, problem.min_regions - len(by_region)),
        standby=standby_short,
        spot_spread=spread,
        region_loss=loss,
        spread=spread_short,
    )


def cost(problem: Problem, counts: Mapping[tuple[str, str, str], int]) -> float:
    """Real cost per hour (USD) of ``counts``: whole nodes at real prices."""
    by_key = {p.key: p for p in problem.pools}
    return sum(math.ceil(n / by_key[k].slots) * by_key[k].price for k, n in counts.items())


def prune(
    pools: Sequence[Pool], top: int, *, shared: Collection[tuple[str, str]] = ()
) -> list[Pool]:
    """Drop pools that cannot be needed by an optimum placing at most ``top`` replicas.

    Pools of one group (region, capacity type, capacity per replica) differ only in price,
    replicas per node and quota. A pool is dominated when the pools kept before it (no
    dearer, holding at least as many of the ``top`` replicas per node) can supply ``top``
    nodes: no solution uses more than ``top`` nodes in a group (each holds a replica), so
    every node of the dominated pool can be swapped for an unused dominating node at no
    more cost, without changing any per-region or per-capacity-type count. Sticky and
    non-growth pools are always kept, and so are the pools of a ``shared`` offering
    (keyed (cluster, instance type): a limit shared with another pool makes their supply
    conditional). Result order: cheapest first (stable).
    """
    out: list[Pool] = []
    kept: dict[tuple[str, bool, float], list[tuple[int, int]]] = {}  # (size, nodes)
    for p in sorted(pools, key=lambda p: (p.effective, -p.slots, p.key)):
        if p.sticky or not p.growth or p.key[:2] in shared:
            out.append(p)
            continue
        size = min(p.slots, top)
        group = kept.setdefault((p.region, p.spot, p.capacity), [])
        supply = sum(n for s, n in group if s >= size)
        if supply >= top:
            continue
        group.append((size, top if p.max_nodes is None else p.max_nodes))
        out.append(p)
    return out
