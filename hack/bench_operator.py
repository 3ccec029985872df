"""Benchmark the operator: apply -> workloads latency, and memory with many deployments.

Runs the real operator (``modelfleet run`` in a subprocess, so its RSS is its own) against
KMock Kubernetes API emulators on loopback: one hub and ``--members`` member clusters
registered as simulated FleetClusters. Then:

1. latency: creates ``--samples`` ModelDeployments one at a time and times each from the
   create request until its Deployment exists in a member cluster;
2. memory: stores deployments up to ``--deployments`` in the hub, starts a fresh operator,
   waits until every one has been reconciled (status.placements set), and reports the
   operator process's peak RSS. The periodic interval is set long in this phase: KMock
   serves a few hundred requests per second, so the emulator, not the operator, would be
   the bottleneck of a steady 1,000-deployment load.

Prints figures; asserts nothing (timing belongs in benchmarks, not tests).

    .venv/bin/python hack/bench_operator.py --deployments 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.operator_harness import (  # noqa: E402
    MD_PATH,
    fleet_cluster,
    model_deployment,
    start_hub,
)


async def trim_request_logs(*emulators: object) -> None:
    """KMock keeps every request and scans the whole log on each new one (quadratic): keep
    only the recent ones so the emulators, not the operator, stop being the bottleneck.
    Long-lived watch requests were matched when they started, so trimming is safe."""
    while True:
        for emulator in emulators:
            log = emulator.handler._requests  # type: ignore[attr-defined]
            if len(log) > 300:
                del log[:-300]
        await asyncio.sleep(0.5)


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        clusters = {}
        for i in range(args.members):
            body = fleet_cluster(f"member-{i}", region=f"region-{i}", cloud="aws", price=10.0 + i)
            body["spec"]["gpuOfferings"][0]["maxNodes"] = 100_000
            clusters[body["metadata"]["name"]] = body
        hub, kubectl, members = await start_hub(stack, clusters)

        trimmer = asyncio.create_task(trim_request_logs(hub, *members.values()))
        stack.callback(trimmer.cancel)
        kubeconfig = Path(tempfile.mkdtemp()) / "hub.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(hub.kubeconfig()))
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        env.pop("KUBERNETES_SERVICE_HOST", None)

        def start_operator(interval: float) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [
                    str(ROOT / ".venv/bin/modelfleet"),
                    "run",
                    "--liveness-port",
                    "0",
                    "--metrics-port",
                    "0",
                    "--interval",
                    str(interval),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        def stop_operator(proc: subprocess.Popen[bytes]) -> None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

        def deployments_for(name: str) -> bool:
            return any(
                d["metadata"]["labels"].get("modelfleet.io/deployment") == name
                for m in members.values()
                for d in m.objects("apps/v1/deployments", namespace="default")
            )

        # Phase 1: latency of apply -> workloads, one deployment at a time.
        proc = start_operator(args.interval)
        await asyncio.sleep(3)  # let kopf log in and list the FleetClusters
        latencies = []
        for i in range(args.samples):
            name = f"lat-{i}"
            started = time.monotonic()
            md = model_deployment(name, replicas={"min": 1, "max": 2})
            await kubectl.create(MD_PATH.format(ns="default"), md)
            while not deployments_for(name):
                await asyncio.sleep(0.01)
                if time.monotonic() - started > 30:
                    stop_operator(proc)
                    raise SystemExit(f"{name}: no workloads after 30 s")
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.2)
        stop_operator(proc)
        print(
            f"apply -> workloads ({args.samples} samples): "
            f"p50 {statistics.median(latencies):.3f}s  "
            f"p95 {statistics.quantiles(latencies, n=20)[-1]:.3f}s  max {max(latencies):.3f}s"
        )

        # Phase 2: memory with N deployments. They are stored in the hub directly (as if
        # applied while the operator was down) and a fresh operator reconciles them all.
        for i in range(args.samples, args.deployments):
            md = model_deployment(f"md-{i}", replicas={"min": 1, "max": 2})
            md["metadata"].update(uid=f"uid-md-{i}", resourceVersion="1", generation=1)
            hub.put("modelfleet.io/v1alpha1/modeldeployments", md)
        proc = start_operator(3600.0)  # one full pass at full size; no periodic load
        started = time.monotonic()
        peak, done = 0.0, 0
        try:
            while time.monotonic() - started < args.timeout:
                objs = hub.objects("modelfleet.io/v1alpha1/modeldeployments", namespace="default")
                done = sum(1 for o in objs if (o.get("status") or {}).get("placements"))
                peak = max(peak, rss_mib(proc.pid))
                if done >= args.deployments:
                    break
                await asyncio.sleep(1)
            print(
                f"reconciled {done}/{args.deployments} deployments in "
                f"{time.monotonic() - started:.1f}s after operator start"
            )
            for _ in range(10):
                peak = max(peak, rss_mib(proc.pid))
                await asyncio.sleep(1)
            print(
                f"operator RSS with {args.deployments} ModelDeployments: peak {peak:.0f} MiB, "
                f"now {rss_mib(proc.pid):.0f} MiB"
            )
        finally:
            stop_operator(proc)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    asyncio.run(main(parser.parse_args()))
