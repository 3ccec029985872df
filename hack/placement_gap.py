"""How far the old greedy placement phases are from the optimum, on random small fleets.

Draws the same random fleets and specs as tests/unit/core/test_core_exact.py (hypothesis,
derandomized: the same cases every run), and for every case where some assignment meets
every constraint compares the effective cost of (a) the planner, (b) the greedy phases
(``core.placement.place`` with ``PlaceOptions(greedy=True)``, what ``place`` did before
the MILP) against the brute force optimum. Region-loss cases are left out for (b): the phases do not know the option.

    .venv/bin/python hack/placement_gap.py [--examples 1000]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/unit/core"))

import test_core_exact as t
from hypothesis import HealthCheck, given, settings

import modelfleet.core.planner as planner
from modelfleet.core import placement


def effective_cost(s: Any, fleet: Any, counts: dict[tuple[str, str, str], int]) -> float:
    main = s.scaling.min_replicas
    by = {q.key: q for q in t.pools_of(s, fleet, 3 * main + 1)}
    return sum(math.ceil(n / by[k].slots) * t.effective(s, by[k]) for k, n in counts.items())


def main() -> None:
    """Print how often, and by how much, each path misses the brute-force optimum."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=1000)
    args = parser.parse_args()
    stats: dict[str, Any] = {"cases": 0, "with_solution": 0, "compared": 0}
    worse = {"planner": 0, "phases": 0}
    gap = {"planner": 0.0, "phases": 0.0}
    worst: list[Any] = []

    @settings(
        max_examples=args.examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(s=t.specs(), fleet=t.fleets())
    def case(s: Any, fleet: Any) -> None:
        stats["cases"] += 1
        best = t.brute_force(s, fleet)
        if best is None:
            return
        stats["with_solution"] += 1
        if s.failover.tolerate_region_loss:
            return
        stats["compared"] += 1
        main_ = s.scaling.min_replicas
        pools = t.pools_of(s, fleet, 3 * main_ + 1)
        for name in ("planner", "phases"):
            if name == "phases":
                original = planner.place
                planner.place = lambda spec, *, options=None, **kw: placement.place(
                    spec, options=placement.PlaceOptions(greedy=True), **kw
                )
                try:
                    p = t.run(s, fleet)
                finally:
                    planner.place = original
            else:
                p = t.run(s, fleet)
            x = {(d.cluster, d.instance_type, d.capacity_type): d.replicas for d in p.placements}
            od = sum(n for k, n in x.items() if k[2] == "OnDemand")
            ok = t.meets_everything(s, pools, x) and (
                s.placement.spot != "Preferred" or od == best[1]
            )
            cost = effective_cost(s, fleet, x)
            if not ok or cost > best[0] * 1.005 + 1e-9:
                worse[name] += 1
                g = cost / best[0] - 1 if best[0] else math.inf
                if ok and g > gap[name]:
                    gap[name] = g
                    if name == "phases":
                        worst[:] = [s, fleet, x, cost, best[0]]

    case()
    print(
        f"{stats['cases']} cases, {stats['with_solution']} with an assignment meeting "
        f"everything, {stats['compared']} of them without region-loss tolerance compared"
    )
    for name in ("planner", "phases"):
        print(
            f"{name}: misses the optimum (or a requirement) in {worse[name]} case(s); "
            f"largest cost gap {gap[name]:.1%}"
        )
    if worst:
        s, fleet, x, cost, best = worst
        print(f"worst phases case: {s.scaling.min_replicas} replicas, {s.placement}, {s.failover}")
        for c in fleet.clusters:
            print(f"  {c.name} {c.region} {c.offerings}")
        print(f"  booked {fleet.placements}")
        print(f"  phases {x} ${cost:g} vs optimum ${best:g}")


if __name__ == "__main__":
    main()
