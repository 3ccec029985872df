"""Benchmark the gateway: latency it adds over calling the endpoint directly, at several
request rates, and the rate at which it saturates one core.

Target (product brief): under 2 ms p50 and 10 ms p99 added at 200 requests/s.

Three processes, all on loopback: an upstream stub engine (aiohttp, answers a small
OpenAI chat completion at once), the real gateway (`modelfleet gateway` with a static
endpoints file, scrapes off), and this load generator. At each rate the generator sends an
open-loop stream of requests (fixed spacing, not waiting for answers), in alternating
one-second blocks to the upstream directly and through the gateway, so both series see the
same machine load, and reports p50/p90/p99 of each, their difference, the gateway's CPU
seconds per request (from /proc/<pid>/stat; 1 / that is the rate that saturates one core)
and how late the generator itself sent (if that grows, the generator is the bottleneck).
"own" is the gateway handler's own time per request from its
modelfleet_gateway_overhead_seconds histogram (body, checks and routing before forwarding,
relaying the first byte after; bucket-interpolated like histogram_quantile). It leaves out
aiohttp's HTTP parsing and socket work (in the CPU figure) and the operating system's
scheduling of one more process hop (in the end-to-end figure). Then a closed loop (many requests in flight) pushes the gateway as hard as the generator
can. The machine's load average is printed with the figures: on a shared machine they move
with the neighbours.

    .venv/bin/python hack/bench_gateway.py                      # rates 50 100 200 400
    .venv/bin/python hack/bench_gateway.py --rates 200 --seconds 20
    .venv/bin/python hack/bench_gateway.py --stream             # streaming answers (TTFB)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

CHAT = {"model": "bench", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}
ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()
CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"bench",'
    b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the upstream stub (run in its own process) -----------------------------------------------


def serve_upstream(port: int) -> None:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return web.Response(body=ANSWER, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(4):
            await response.write(CHUNK)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def models(request: web.Request) -> web.StreamResponse:
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# -- measuring --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def one(session: aiohttp.ClientSession, url: str, body: dict[str, object]) -> float:
    """Seconds from sending to the last byte of the answer (the first chunk when streaming
    is measured by the caller's choice of body: streams are read to the end too)."""
    started = time.perf_counter()
    async with session.post(url, json=body) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: status {response.status}")
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def open_loop(
    session: aiohttp.ClientSession,
    direct: str,
    via: str,
    *,
    rate: float,
    seconds: float,
    body: dict[str, object],
    gateway_pid: int,
) -> dict[str, float]:
    """Direct and gateway requests at ``rate``/s, ``seconds`` of each, in alternating
    one-second blocks (so both see the same machine load and the generator sends only
    ``rate``/s at a time). Also records how late the generator sent (its own lag)."""
    times: dict[str, list[float]] = {"direct": [], "gateway": []}
    lag: list[float] = []
    errors = 0

    async def fire(which: str, url: str) -> None:
        nonlocal errors
        try:
            times[which].append(await one(session, url, body))
        except (aiohttp.ClientError, RuntimeError):
            errors += 1

    tasks = []
    cpu0 = cpu_seconds(gateway_pid)
    start = time.perf_counter() + 0.05
    spacing = 1.0 / rate
    per_block = max(1, int(rate))
    blocks = max(1, int(seconds))
    for block in range(2 * blocks):
        which, url = ("direct", direct) if block % 2 == 0 else ("gateway", via)
        for i in range(per_block):
            due = start + block + i * spacing
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lag.append(max(0.0, -delay))
            tasks.append(asyncio.create_task(fire(which, url)))
    await asyncio.gather(*tasks)
    # The gateway only works during the gateway blocks: CPU per request is the fair figure.
    cpu = (cpu_seconds(gateway_pid) - cpu0) / max(1, len(times["gateway"]))
    d, g = times["direct"], times["gateway"]
    return {
        "rate": rate,
        "n": min(len(d), len(g)),
        "errors": errors,
        "direct_p50": pct(d, 0.5) * 1e3,
        "direct_p99": pct(d, 0.99) * 1e3,
        "gateway_p50": pct(g, 0.5) * 1e3,
        "gateway_p99": pct(g, 0.99) * 1e3,
        "added_p50": (pct(g, 0.5) - pct(d, 0.5)) * 1e3,
        "added_p90": (pct(g, 0.9) - pct(d, 0.9)) * 1e3,
        "added_p99": (pct(g, 0.99) - pct(d, 0.99)) * 1e3,
        "gateway_cpu": cpu,
        "lag_p99": pct(lag, 0.99) * 1e3,
    }


async def closed_loop(
    session: aiohttp.ClientSession,
    url: str,
    *,
    concurrency: int,
    seconds: float,
    body: dict[str, object],
    pid: int,
) -> tuple[float, float]:
    """(requests/s achieved, gateway CPU fraction of one core) with ``concurrency`` in flight."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await one(session, url, body)
            done += 1

    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - wall0
    return done / wall, (cpu_seconds(pid) - cpu0) / wall


def picker_cost(rounds: int = 50_000) -> float:
    """Microseconds per routing decision (decide_route + pick_endpoint over 4 endpoints)."""
    from modelfleet.gateway.catalog import (
        DeploymentInfo,
        DeploymentKey,
        EndpointInfo,
        build_catalog,
    )
    from modelfleet.gateway.routing import EndpointLoad, RequestFacts, decide_route, pick_endpoint
    from modelfleet.gateway.settings import GatewaySettings

    settings = GatewaySettings(region="r1")
    key = DeploymentKey("ns", "d")
    catalog = build_catalog(
        [DeploymentInfo(key, "bench", (EndpointInfo("a", "http://a", "r1", True),))], []
    )
    loads = [EndpointLoad(f"http://e{i}", "r1" if i % 2 else "r2", i, ttft=0.1) for i in range(4)]
    facts = RequestFacts("bench", {}, 10)
    rng = random.Random(0)
    started = time.perf_counter()
    for _ in range(rounds):
        decide_route(catalog, facts, rng)
        pick_endpoint(loads, settings=settings, rng=rng)
    return (time.perf_counter() - started) / rounds * 1e6


def main(args: argparse.Namespace) -> None:
    """Start the upstream stub and the gateway as processes, measure, stop them."""
    upstream_port, gateway_port, management_port = free_port(), free_port(), free_port()
    upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(upstream_port)])
    with tempfile.TemporaryDirectory() as tmp:
        endpoints = Path(tmp) / "endpoints.yaml"
        endpoints.write_text(
            "deployments:\n- name: bench\n  model: bench\n  endpoints:\n"
            f"  - {{url: 'http://127.0.0.1:{upstream_port}', name: stub}}\n"
        )
        modelfleet = Path(sys.executable).with_name("modelfleet")
        command = [str(modelfleet), "gateway", "--endpoints-file", str(endpoints)]
        command += ["--host", "127.0.0.1", "--port", str(gateway_port)]
        command += ["--management-port", str(management_port), "--scrape-interval", "0"]
        gateway = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        try:
            asyncio.run(measure(args, upstream_port, gateway_port, management_port, gateway.pid))
        finally:
            gateway.terminate()
            upstream.terminate()
            gateway.wait(10)
            upstream.wait(10)
    cost = picker_cost()
    print(f"\nrouting decision alone: {cost:.1f} us (decide_route + pick_endpoint, 4 endpoints)")


async def overhead_buckets(session: aiohttp.ClientSession, url: str) -> dict[float, float]:
    """The gateway's own-time histogram: cumulative count per upper bound (seconds)."""
    from prometheus_client.parser import text_string_to_metric_families

    async with session.get(url) as response:
        text = await response.text()
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "modelfleet_gateway_overhead_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    out[bound] = out.get(bound, 0.0) + sample.value
    return out


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Quantile ``q`` of the observations between two scrapes, interpolated within buckets
    as PromQL's histogram_quantile does (milliseconds)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower * 1e3
            return (lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)) * 1e3
        lower, below = bound, count
    return lower * 1e3


async def measure(
    args: argparse.Namespace, upstream_port: int, gateway_port: int, management_port: int, pid: int
) -> None:
    """The open-loop rates, then the closed loop; prints a table."""
    metrics_url = f"http://127.0.0.1:{management_port}/metrics"
    direct = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
    via = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
    body = {**CHAT, "stream": True} if args.stream else CHAT
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for _ in range(100):  # wait for both to listen
            try:
                await one(session, direct, body)
                await one(session, via, body)
                break
            except (aiohttp.ClientError, RuntimeError):
                await asyncio.sleep(0.1)
        for _ in range(200):  # warm connections on both paths
            await one(session, direct, body)
            await one(session, via, body)
        print(f"machine: {os.cpu_count()} CPUs, load average {loadavg()} (before)")
        kind = "streaming (4 chunks)" if args.stream else "whole JSON"
        print(f"answers: {kind}; {args.seconds:g} s per rate and path, alternating 1 s blocks\n")
        print(
            f"{'rate/s':>7} {'n':>6} {'err':>4} | {'direct p50':>10} {'p99':>7} | "
            f"{'gateway p50':>11} {'p99':>7} | {'added p50':>9} {'p90':>6} {'p99':>6} ms | "
            f"{'gw CPU/req':>10} {'gen lag p99':>11} | {'own p50':>7} {'p99':>6} ms"
        )
        for rate in args.rates:
            before = await overhead_buckets(session, metrics_url)
            r = await open_loop(
                session, direct, via, rate=rate, seconds=args.seconds, body=body, gateway_pid=pid
            )
            after = await overhead_buckets(session, metrics_url)
            print(
                f"{r['rate']:>7.0f} {r['n']:>6.0f} {r['errors']:>4.0f} | "
                f"{r['direct_p50']:>10.2f} {r['direct_p99']:>7.2f} | "
                f"{r['gateway_p50']:>11.2f} {r['gateway_p99']:>7.2f} | "
                f"{r['added_p50']:>9.2f} {r['added_p90']:>6.2f} {r['added_p99']:>6.2f}    | "
                f"{r['gateway_cpu'] * 1e3:>7.2f} ms {r['lag_p99']:>8.1f} ms | "
                f"{bucket_quantile(before, after, 0.5):>7.2f} "
                f"{bucket_quantile(before, after, 0.99):>6.2f}"
            )
        print(f"\nload average {loadavg()} (after the open-loop runs)")
        print("\nclosed loop through the gateway (saturation):")
        for concurrency in args.concurrency:
            rate, cpu = await closed_loop(
                session, via, concurrency=concurrency, seconds=args.seconds, body=body, pid=pid
            )
            print(
                f"  {concurrency:>3} in flight: {rate:7.0f} req/s, gateway CPU {cpu:4.0%} "
                f"-> {rate / max(cpu, 1e-9):6.0f} req/s per core"
            )
        print(f"load average {loadavg()} (after)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--stream", action="store_true", help="streaming answers")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_upstream:
        serve_upstream(arguments.serve_upstream)
    else:
        main(arguments)
