"""Benchmark the operator's own load at scale: requests, memory, probe latency.

Drives the real ``OperatorLoop`` (the same object the kopf handlers feed) over one FleetCluster
whose member API is ``hack/fake_apiserver.py`` in its own process (fast enough not to be the
bottleneck; KMock is not), with the simulated node-pool provider and static metrics. For
``--deployments`` N ModelDeployments:

1. burst: all N reconciled at once (as after ``kubectl apply`` of N objects), while the
   FleetCluster is probed every 0.5 s: time until every one was reconciled, probe latency
   (p50/p99/max), failed probes, and whether the cluster's health ever left Healthy;
2. steady: every deployment on its own 2-second timer (as the kopf timers tick) for
   ``--steady`` seconds: requests the operator sends to the member API per deployment per
   minute, by kind;
3. memory: the process's RSS growth per deployment after the burst (the operator side only:
   the API server is another process);
4. delete: all N finalized at once: time until done.

Scenarios, each in a fresh child process (so its RSS is its own) against the same API
server, printed side by side:

- ``watch``: bounded passes, isolated probes, member watches (``clusters.informer``: one
  LIST then one WATCH per namespace, reads from the informer store);
- ``list-cache``: the same without watches: the shared 2-second LIST cache (the baseline);
- ``unbounded`` (``--unbounded-baseline``): the old way, unbounded concurrent passes and
  probes sharing the reconcile client, LIST cache.

Steady-state requests are split into LISTs, watch connections opened, and the rest (GET,
PATCH, ...), per deployment per minute.

    .venv/bin/python hack/bench_scale.py --deployments 1000 --steady 60

Prints figures; asserts nothing (timing belongs in benchmarks, not tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]

from fake_apiserver import kubeconfig, request_counts  # noqa: E402 - hack/ is the script's folder
from modelfleet.api import FleetCluster, ModelDeployment  # noqa: E402
from modelfleet.clusters import ClusterClient, KubernetesClusterClient  # noqa: E402
from modelfleet.clusters.informer import ListWatchClient  # noqa: E402
from modelfleet.loop import LoopSettings, OperatorLoop  # noqa: E402
from modelfleet.metrics.source import StaticMetricsSource  # noqa: E402
from modelfleet.providers.simulated import SimulatedNodePoolProvider  # noqa: E402
from modelfleet.reconciler import (  # noqa: E402
    FleetSettings,
    ProviderRegistry,
    Reconciler,
    ReconcilerSettings,
    StockoutMemory,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def rss_mib() -> float:
    """This process's resident set size, MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.asynccontextmanager
async def api_server() -> AsyncIterator[str]:
    """The fake API server in its own process (its CPU is not the operator's)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "hack" / "fake_apiserver.py"),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await proc.stdout.readline()).decode()
        yield line.strip().rsplit(" ", 1)[-1]
    finally:
        proc.terminate()
        await proc.wait()


def fleet_cluster(n: int) -> FleetCluster:
    return FleetCluster.model_validate(
        {
            "metadata": {"name": "hub", "uid": "uid-hub", "generation": 1},
            "spec": {
                "provider": "simulated",
                "region": "us-east-1",
                "simulated": {"provisioningSeconds": 0},
                "gpuOfferings": [
                    {
                        "gpu": "H100",
                        "gpuMemoryGiB": 80,
                        "gpusPerNode": 1,
                        "instanceType": "h100-1g",
                        "onDemandPerHour": 10.0,
                        "maxNodes": 2 * n + 10,
                    }
                ],
            },
        }
    )


def deployment(i: int) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {
                "name": f"md-{i:05d}",
                "namespace": f"team-{i % 10}",
                "uid": f"uid-{i:05d}",
                "generation": 1,
            },
            "spec": {
                "model": {"name": "llama-3.1-8b-instruct"},
                "runtime": {"engine": "vllm"},
                "resources": {"gpu": {"count": 1, "memoryGiB": 40, "types": ["H100"]}},
                "replicas": {"min": 1, "max": 1},
                "slo": {"ttftP95Ms": 200},
            },
        }
    )


@dataclass
class Figures:
    label: str
    burst_seconds: float = 0.0
    probes: list[float] = field(default_factory=list)
    probe_failures: int = 0
    health_seen: set[str] = field(default_factory=set)
    rss_per_md_kib: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    steady_seconds: float = 0.0
    delete_seconds: float = 0.0
    open_watches: int = 0
    rss_mib: float = 0.0


PROBE_REQUESTS = frozenset({"GET version", "LIST nodes", "LIST pods"})
"""What one FleetCluster probe sends (counted apart: it does not grow with deployments)."""

SCENARIOS = {
    "watch": "member watches (informers), bounded, isolated probes",
    "list-cache": "baseline: shared 2 s LIST cache, bounded, isolated probes",
    "unbounded": "old baseline: LIST cache, unbounded, probes share the client",
}


async def scenario(url: str, n: int, *, name: str, steady: float) -> Figures:
    isolated = name != "unbounded"
    watching = name == "watch"
    figures = Figures(SCENARIOS[name])
    session = aiohttp.ClientSession()
    async with session.post(url + "/_reset"):
        pass
    reconcile_client = await KubernetesClusterClient.from_kubeconfig(kubeconfig(url), name="hub")
    probe_client = (
        await KubernetesClusterClient.from_kubeconfig(kubeconfig(url), name="hub")
        if isolated
        else reconcile_client
    )

    async def client_for(_: FleetCluster) -> ClusterClient:
        return reconcile_client

    async def probe_for(_: FleetCluster) -> ClusterClient:
        return probe_client

    watch_client = (
        await KubernetesClusterClient.from_kubeconfig(kubeconfig(url), name="hub")
        if watching
        else None
    )

    async def watch_for(_: FleetCluster) -> ListWatchClient | None:
        return watch_client

    cluster = fleet_cluster(n)
    providers = ProviderRegistry(clusters=client_for, secrets=None, clock=utcnow)
    await providers.install(cluster, SimulatedNodePoolProvider(cluster, clock=utcnow))
    reconciler = Reconciler(
        clusters=client_for,
        providers=providers,
        metrics=StaticMetricsSource(),
        stockouts=StockoutMemory(),
        clock=utcnow,
        settings=ReconcilerSettings(cluster_timeout_seconds=60.0),
        watch_clients=watch_for if watching else None,
    )
    loop = OperatorLoop(
        reconciler=reconciler,
        providers=providers,
        probe_clients=probe_for,
        settings=LoopSettings(
            interval_seconds=15.0,
            max_concurrent_reconciles=16 if isolated else 1_000_000,
            fleet=FleetSettings(probe_timeout_seconds=5.0, fail_after_seconds=45.0),
        ),
        clock=utcnow,
    )
    first = await loop.probe(cluster)
    fleet = [cluster.model_copy(update={"status": first.status})]
    deployments = {f"uid-{i:05d}": deployment(i) for i in range(n)}
    stop = asyncio.Event()

    async def prober() -> None:
        nonlocal fleet
        while not stop.is_set():
            started = time.monotonic()
            outcome = await loop.probe(fleet[0])
            figures.probes.append(time.monotonic() - started)
            reachable = next(c for c in outcome.status.conditions or [] if c.type == "Reachable")
            figures.probe_failures += reachable.status != "True"
            figures.health_seen.add(outcome.status.health)
            fleet = [fleet[0].model_copy(update={"status": outcome.status})]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    async def reconcile(uid: str) -> None:
        md = deployments[uid]
        outcome = await loop.reconcile(uid, md, fleet=fleet, others=list(deployments.values()))
        if outcome is not None:
            deployments[uid] = md.model_copy(update={"status": outcome.status})

    rss_before = rss_mib()
    probing = asyncio.create_task(prober())
    started = time.monotonic()
    await asyncio.gather(*(reconcile(uid) for uid in list(deployments)))
    figures.burst_seconds = time.monotonic() - started
    figures.rss_per_md_kib = (rss_mib() - rss_before) * 1024 / n

    # Steady state: every object on its own 2-second timer, as kopf ticks them.
    before = await request_counts(session, url)
    steady_stop = asyncio.Event()

    async def timer(uid: str) -> None:
        while not steady_stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(steady_stop.wait(), 2.0)
            if not steady_stop.is_set() and loop.deployment_due(uid):
                await reconcile(uid)

    timers = [asyncio.create_task(timer(uid)) for uid in deployments]
    started = time.monotonic()
    await asyncio.sleep(steady)
    steady_stop.set()
    await asyncio.gather(*timers)
    figures.steady_seconds = time.monotonic() - started
    after = await request_counts(session, url)
    figures.open_watches = after.pop("open watches", 0)
    before.pop("open watches", None)
    figures.requests = after - before
    stop.set()
    await probing

    started = time.monotonic()
    others = list(deployments.values())
    await asyncio.gather(
        *(loop.finalize(uid, md, fleet=fleet, others=others) for uid, md in deployments.items())
    )
    figures.delete_seconds = time.monotonic() - started
    figures.rss_mib = rss_mib()
    await reconciler.observations.close()
    if watch_client is not None:
        await watch_client.close()
    await reconcile_client.close()
    if probe_client is not reconcile_client:
        await probe_client.close()
    await session.close()
    return figures


def report(f: Figures, n: int) -> None:
    probes = sorted(f.probes)
    p99 = probes[min(len(probes) - 1, int(0.99 * len(probes)))] if probes else float("nan")
    total = sum(v for k, v in f.requests.items() if k not in PROBE_REQUESTS)
    per_min = total / n / (f.steady_seconds / 60) if f.steady_seconds else float("nan")
    print(f"\n== {f.label} ==")
    print(f"  burst: {n} deployments reconciled in {f.burst_seconds:.1f} s")
    print(
        f"  probe latency during the burst and steady state: p50 "
        f"{statistics.median(probes) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max "
        f"{probes[-1] * 1000:.0f} ms over {len(probes)} probes; {f.probe_failures} failed; "
        f"health seen: {sorted(f.health_seen)}"
    )
    print(
        f"  memory: {f.rss_per_md_kib:.1f} KiB RSS per deployment (after the burst); "
        f"process {f.rss_mib:.0f} MiB at the end"
    )
    minutes = f.steady_seconds / 60

    def rate(kinds: list[str]) -> float:
        return sum(f.requests[k] for k in kinds) / n / minutes

    probes = [k for k in f.requests if k in PROBE_REQUESTS]
    lists = [k for k in f.requests if k.startswith("LIST ") and k not in probes]
    watches = [k for k in f.requests if k.startswith("WATCH ")]
    others = [k for k in f.requests if k not in lists + watches + probes]
    print(f"  steady: {per_min:.3f} member-API requests per deployment per minute (probes apart):")
    print(f"    LISTs of workloads           {rate(lists):7.3f} /md/min")
    print(
        f"    watch connections opened     {rate(watches):7.3f} /md/min "
        f"({f.open_watches} open at the end)"
    )
    print(f"    other (get, patch, delete)   {rate(others):7.3f} /md/min")
    print(f"    health probes (every 0.5 s)  {rate(probes):7.3f} /md/min (not per deployment)")
    for kind, count in f.requests.most_common():
        print(f"      {kind:<26} {count / n / minutes:7.3f} /md/min")
    print(f"  delete: all {n} finalized in {f.delete_seconds:.1f} s")


def child(url: str, n: int, name: str, steady: float) -> None:
    """One scenario in this (fresh) process; prints its figures as one JSON line."""
    figures = asyncio.run(scenario(url, n, name=name, steady=steady))
    data = {f.name: getattr(figures, f.name) for f in dataclasses.fields(figures)}
    data["health_seen"] = sorted(figures.health_seen)
    data["requests"] = dict(figures.requests)
    print("FIGURES " + json.dumps(data), flush=True)


async def run_child(url: str, n: int, name: str, steady: float) -> Figures:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        name,
        "--api-url",
        url,
        "--deployments",
        str(n),
        "--steady",
        str(steady),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    for line in out.decode().splitlines():
        if line.startswith("FIGURES "):
            data = json.loads(line.removeprefix("FIGURES "))
            data["health_seen"] = set(data["health_seen"])
            data["requests"] = Counter(data["requests"])
            return Figures(**data)
    raise RuntimeError(f"scenario {name} printed no figures (exit {proc.returncode})")


async def main(n: int, steady: float, names: list[str]) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {n} deployments")
    async with api_server() as url:
        for name in names:
            report(await run_child(url, n, name, steady), n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--steady", type=float, default=60.0, help="steady-state seconds")
    parser.add_argument("--no-baseline", action="store_true", help="only the watch scenario")
    parser.add_argument(
        "--unbounded-baseline", action="store_true", help="also the old unbounded scenario"
    )
    parser.add_argument(
        "--baseline-first", action="store_true", help="run the LIST-cache baseline first"
    )
    parser.add_argument("--child", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.api_url, args.deployments, args.child, args.steady)
    else:
        chosen = ["watch"] + ([] if args.no_baseline else ["list-cache"])
        if args.baseline_first:
            chosen.reverse()
        chosen += ["unbounded"] if args.unbounded_baseline else []
        asyncio.run(main(args.deployments, args.steady, chosen))
