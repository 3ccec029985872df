"""Benchmark the decision core: plan 1,000 deployments over a 300-offering fleet.

Two paths, printed side by side in one run:

- *without coupling constraints* (minRegions 1, no per-region cap, no on-demand base, no
  standby, no budget): the greedy fast path, provably optimal there. Target: the whole
  fleet under 1 s, under 5 ms for any one deployment.
- *with coupling constraints* (the random mix of spread, caps, base, standby, spot
  policies and budgets below): deployments whose greedy plan breaks a coupling constraint
  go through the MILP (core.solver). Target: p99 under 20 ms per solver deployment.

Figures are wall clock (perf_counter) and this process's CPU time (process_time); on a
shared machine the CPU time is the steadier of the two. The fleet and deployments are generated from a fixed
seed with realistic shapes: 60 clusters over 4 clouds and 20 regions, 5 GPU offerings each
(1-, 2-, 4- and 8-GPU nodes, on-demand and spot prices, quotas, a few stockouts and
unhealthy clusters), deployments with varied GPU needs, spread, spot policies, budgets,
existing placements and metrics.

    .venv/bin/python hack/bench_planner.py                 # defaults: 1000 x 300
    .venv/bin/python hack/bench_planner.py --distinct      # every constraint set unique
    .venv/bin/python hack/bench_planner.py --profile       # cProfile top functions

``--distinct`` gives each deployment its own GPU memory floor, so no deployment reuses
another's candidate filtering (the memo on the fleet snapshot never hits): the worst case.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from modelfleet.core import (
    ClusterSignals,
    ClusterView,
    DecisionState,
    DeploymentSpec,
    ExistingPlacement,
    FailoverPolicy,
    FleetSnapshot,
    GpuNeed,
    MetricsSnapshot,
    Offering,
    PlacementPolicy,
    ScalingPolicy,
    StockoutMark,
    plan,
)
from modelfleet.core.planner import clear_memos

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CLOUDS = {
    "aws": ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "us-east-2"],
    "gcp": ["us-central1", "europe-west4", "asia-east1", "us-east4", "us-west1"],
    "azure": ["eastus", "westeurope", "japaneast", "westus3", "northeurope"],
    "neocloud": ["us-east-04", "us-west-01", "eu-north-02", "us-central-03", "eu-west-05"],
}
# (gpu, memory GiB, base on-demand price per GPU-hour)
GPUS = [
    ("H100", 80, 11.0),
    ("A100-80GB", 80, 5.0),
    ("L40S", 48, 1.9),
    ("L4", 24, 0.85),
    ("H200", 141, 13.0),
]


def make_fleet(rng: random.Random, *, clusters: int = 60, offerings: int = 5) -> FleetSnapshot:
    """A fleet of ``clusters`` clusters with ``offerings`` GPU offerings each."""
    views = []
    regions = [(cloud, region) for cloud, rs in CLOUDS.items() for region in rs]
    for i in range(clusters):
        cloud, region = regions[i % len(regions)]
        offers = []
        for j in range(offerings):
            gpu, mem, per_gpu = GPUS[(i + j) % len(GPUS)]
            per_node = [1, 2, 4, 8][(i * 7 + j) % 4]
            price = round(per_gpu * per_node * rng.uniform(0.8, 1.25), 3)
            spot = round(price * rng.uniform(0.3, 0.5), 3) if cloud != "neocloud" else None
            offers.append(
                Offering(
                    gpu,
                    mem,
                    per_node,
                    f"{gpu.lower()}-{per_node}x-{j}",
                    price,
                    spot,
                    rng.choice([4, 8, 16, 32, None]),
                )
            )
        health = "Healthy" if i % 17 else rng.choice(["Suspect", "Failed", "Recovering"])
        stockouts = ()
        if i % 7 == 0:
            o = offers[0]
            stockouts = (StockoutMark(o.gpu, "Spot", NOW + timedelta(minutes=3)),)
        views.append(
            ClusterView(
                name=f"{cloud}-{region}-{i}",
                cloud=cloud,
                region=region,
                offerings=tuple(offers),
                labels={"tier": "prod" if i % 3 else "dev"},
                health=health,  # type: ignore[arg-type]
                health_since=NOW - timedelta(minutes=10),
                last_success=NOW - timedelta(minutes=2),
                stockouts=stockouts,
            )
        )
    return FleetSnapshot(clusters=tuple(views))


def make_deployments(
    rng: random.Random, fleet: FleetSnapshot, n: int, *, distinct: bool, coupled: bool = True
) -> tuple[list[DeploymentSpec], FleetSnapshot, MetricsSnapshot]:
    """``n`` deployments, a fleet carrying their existing placements, and their metrics."""
    specs = []
    placements = []
    signals = {}
    type_sets = [
        None,
        frozenset({"H100", "H200"}),
        frozenset({"A100-80GB", "H100"}),
        frozenset({"L40S", "L4"}),
    ]
    cloud_sets = [None, frozenset({"aws", "gcp"}), frozenset({"aws", "gcp", "azure"})]
    for i in range(n):
        key = f"team-{i % 20}/model-{i}"
        count = rng.choice([1, 1, 1, 2, 4])
        memory = 24.0 + (i * 0.001 if distinct else 0.0)
        lo = rng.choice([0, 1, 2, 2, 4])
        spec = DeploymentSpec(
            key=key,
            gpu=GpuNeed(count, memory, rng.choice(type_sets)),
            scaling=ScalingPolicy(
                lo,
                lo + rng.choice([4, 8, 16]),
                ttft_p95_ms=200,
                tpot_p95_ms=50,
                max_queue_per_replica=4,
            ),
            placement=PlacementPolicy(
                clouds=rng.choice(cloud_sets),
                min_regions=rng.choice([1, 1, 2, 3]),
                max_replicas_per_region=rng.choice([None, None, 4, 8]),
                spot=rng.choice(["Never", "Allowed", "Preferred"]),
                on_demand_base=rng.choice([0, 1, 2]),
                max_cost_per_hour=rng.choice([None, None, 200.0, 1000.0]),
            ),
            failover=FailoverPolicy(warm_standby_replicas=rng.choice([0, 0, 1])),
        )
        if not coupled:
            spec = replace(
                spec,
                placement=replace(
                    spec.placement,
                    min_regions=1,
                    max_replicas_per_region=None,
                    spot="Never",  # spot spread over two regions couples candidates
                    on_demand_base=0,
                    max_cost_per_hour=None,
                ),
                failover=FailoverPolicy(),
            )
        specs.append(spec)
        if i % 2:  # half already run somewhere: stickiness and scale decisions apply
            cluster = fleet.clusters[rng.randrange(len(fleet.clusters))]
            offering = cluster.offerings[rng.randrange(len(cluster.offerings))]
            reps = rng.randint(1, 4)
            placements.append(
                ExistingPlacement(key, cluster.name, offering.instance_type, "OnDemand", reps, reps)
            )
            signals[key] = {
                cluster.name: ClusterSignals(
                    reps,
                    rng.uniform(80, 500),
                    rng.uniform(20, 80),
                    rng.uniform(0, 10),
                    rng.uniform(0, 50),
                )
            }
    return (
        specs,
        FleetSnapshot(fleet.clusters, tuple(placements)),
        MetricsSnapshot(signals, observed_at=NOW),
    )


def run_path(args: argparse.Namespace, base: FleetSnapshot, *, coupled: bool) -> None:
    """Plan every deployment ``args.rounds`` times (fresh snapshot each round) and print the
    whole-fleet time, per-deployment percentiles and, for the solver path, the figures of
    the deployments the MILP planned."""
    rng = random.Random(43)
    specs, _, metrics = make_deployments(
        rng, base, args.deployments, distinct=args.distinct, coupled=coupled
    )
    state = DecisionState()
    fleet_times = []
    per_dep: list[float] = []
    per_cpu: list[float] = []
    solver_wall: list[float] = []
    solver_cpu: list[float] = []
    methods: dict[str, int] = {}
    first: list[float] = []
    gc_before = sum(g["collections"] for g in gc.get_stats())
    for _ in range(args.rounds):
        # A fresh snapshot each round: its index and memo are rebuilt, as in a reconcile.
        _, fleet, _ = make_deployments(
            random.Random(7), base, args.deployments, distinct=args.distinct, coupled=coupled
        )
        clear_memos()  # cold: no solver answer or offering filter kept from the last round
        t0 = time.perf_counter()
        for i, spec in enumerate(specs):
            s = time.perf_counter()
            c = time.process_time()
            p = plan(spec, fleet, metrics=metrics, state=state, now=NOW)
            wall = time.perf_counter() - s
            cpu = time.process_time() - c
            (first if i == 0 else per_dep).append(wall)
            per_cpu.append(cpu)
            methods[p.placement_method] = methods.get(p.placement_method, 0) + 1
            if p.placement_method != "greedy":
                solver_wall.append(wall)
                solver_cpu.append(cpu)
        fleet_times.append(time.perf_counter() - t0)
    collections = sum(g["collections"] for g in gc.get_stats()) - gc_before
    name = "WITH coupling constraints" if coupled else "WITHOUT coupling constraints"
    print(f"-- {name}: placement methods over {args.rounds} rounds: {methods}")
    print(
        f"whole fleet: best {min(fleet_times):.3f} s, median "
        f"{statistics.median(fleet_times):.3f} s over {args.rounds} rounds"
        + ("" if coupled else " (target < 1 s)")
    )
    print(f"per deployment (wall): {_pcts(per_dep)}")
    print(f"per deployment (CPU):  {_pcts(per_cpu)}")
    if solver_wall:
        print(f"solver deployments (wall): {_pcts(solver_wall)} (target p99 < 20 ms)")
        print(f"solver deployments (CPU):  {_pcts(solver_cpu)}")
    print(
        f"first deployment of each round (builds the fleet index): max "
        f"{max(first) * 1000:.3f} ms; garbage collections during the run: {collections}"
    )
    if args.profile:
        _, fleet, _ = make_deployments(
            random.Random(7), base, args.deployments, distinct=args.distinct, coupled=coupled
        )
        prof = cProfile.Profile()
        prof.enable()
        for spec in specs:
            plan(spec, fleet, metrics=metrics, state=state, now=NOW)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


def _pcts(seconds: list[float]) -> str:
    ms = sorted(t * 1000 for t in seconds)
    return (
        f"n {len(ms)}, mean {statistics.fmean(ms):.3f} ms, p50 {ms[len(ms) // 2]:.3f} ms, "
        f"p99 {ms[int(len(ms) * 0.99)]:.3f} ms, max {ms[-1]:.3f} ms"
    )


def main() -> None:
    """Run the benchmark on both paths and print per-deployment and per-fleet timings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=60)
    parser.add_argument("--offerings", type=int, default=5, help="offerings per cluster")
    parser.add_argument("--distinct", action="store_true", help="no shared constraint sets")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--only", choices=["plain", "coupled"], help="run one path only")
    args = parser.parse_args()

    base = make_fleet(random.Random(42), clusters=args.clusters, offerings=args.offerings)
    offers = sum(len(c.offerings) for c in base.clusters)
    print(
        f"fleet: {len(base.clusters)} clusters, {offers} offerings "
        f"({offers * 2} offering x capacity-type candidates); "
        f"{args.deployments} deployments{' (distinct constraints)' if args.distinct else ''}"
    )
    if args.only != "coupled":
        run_path(args, base, coupled=False)
    if args.only != "plain":
        run_path(args, base, coupled=True)


if __name__ == "__main__":
    main()
