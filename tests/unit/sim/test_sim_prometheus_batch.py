"""The simulated Prometheus evaluates every cluster of a deployment at once per scrape
(``SimulatedMetricsSource._evaluate_all``): the very floats of the one-cluster evaluation it
replaced (kept here as the reference), bit for bit, or the simulator's decisions would move.

The served state covers what the batched path must get right: three clusters and three GPU
classes, clusters with no replica for whole windows, seconds with no capacity anywhere (the
masked division), replicas that served nothing for a whole window (no traffic: gauges but
no TTFT series), and a replayed trace.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest

from modelfleet.metrics.source import MetricsTarget
from modelfleet.sim.fleet import VirtualClock
from modelfleet.sim.load import LoadModel
from modelfleet.sim.prometheus import SimulatedMetricsSource, histogram_quantile
from modelfleet.sim.traffic import Traffic
from modelfleet.sim.world import World

GPUS = ("L4", "L40S", "H100")
CLUSTERS = ("a", "b", "c")


def _served(*, replay: bool, seed: int) -> LoadModel:
    """20 minutes of bursty traffic served in 5 s ticks by random replica mixes over three
    clusters and three GPU classes; twice no replica anywhere for half a minute."""
    rng = np.random.default_rng(seed)
    seconds = 1200
    rate = 10.0 + 8.0 * np.sin(np.arange(seconds) / 90.0) + rng.uniform(0, 5, seconds)
    rate[400:470] *= 5.0  # a burst: a queue builds and drains
    rate[700:820] = 0.0  # no request: replicas ready, nothing served (gauges, no TTFT)
    arrivals = rng.poisson(rate).astype(np.int64)
    total = int(arrivals.sum())
    traffic = Traffic(
        rate=rate,
        arrivals=arrivals,
        prompt_median=900,
        prompt_sigma=0.8,
        output_median=200,
        output_sigma=0.7,
        seed=seed,
        request_prompts=rng.integers(10, 8000, total) if replay else None,
        request_outputs=rng.integers(10, 600, total) if replay else None,
    )
    load = LoadModel(
        World(), {"ns/md": traffic}, {"ns/md": GPUS}, {"ns/md": 1}, CLUSTERS, seconds=seconds
    )
    for begin in range(0, seconds, 5):
        ready: dict[tuple[str, str, str], int] = {}
        if not (250 <= begin < 280 or 1000 <= begin < 1030):  # else no replica anywhere
            for cluster in CLUSTERS:
                if cluster == "c" and begin < 300:
                    continue  # no replica there for the first windows
                for gpu in GPUS:
                    n = int(rng.integers(0, 3)) if rng.random() < 0.6 else 0
                    if n:
                        ready[("ns/md", cluster, gpu)] = n
        load.advance(begin, begin + 5, ready)
    return load


def _evaluate_one(
    source: SimulatedMetricsSource, key: str, cluster: str, scrape: int
) -> dict[str, float | None]:
    """``SimulatedMetricsSource._evaluate`` as it was: one cluster at a time."""
    _sum = np.add.reduce
    load = source._load.deployments[key]
    window = int(source._load.world.monitoring.window_seconds)
    end = max(0, min(scrape, load.seconds))
    begin = max(0, end - window)
    c = source._load.cluster_index[cluster]
    empty: dict[str, float | None] = dict.fromkeys(
        ("ttft", "tpot", "queue", "rate", "tokens", "kv", "running")
    )
    if end <= begin:
        return empty
    window_ready = load.ready[begin:end, c, :]
    if not np.count_nonzero(window_ready):
        return empty
    ready = window_ready.astype(np.float64)
    mu, edges, edge_tuple = source._constants(key)
    capacity = load.capacity[begin:end, None]
    if capacity.min() > 0.0:
        share = np.divide(ready * mu, capacity)
    else:
        share = np.divide(ready * mu, capacity, out=np.zeros_like(ready), where=capacity > 0)
    counts = load.served[begin:end, None] * share
    total = float(_sum(counts, axis=None))
    if _sum(ready[-1], axis=None) == 0 and total == 0.0:
        return empty
    rate = total / (end - begin)
    tokens = rate * load.traffic.output_mean
    queue_share = float(_sum(share[-1], axis=None))
    queue = float(load.waiting[end - 1]) * queue_share
    batch = load.batch[end - 1]
    running = float(_sum(ready[-1] * batch, axis=None))
    kv = float(
        sum(
            n * m.kv_cache_usage(b)
            for n, m, b in zip(ready[-1].tolist(), load.models, batch.tolist(), strict=True)
        )
    )
    gauges = {"queue": queue, "kv": kv, "running": running}
    if total <= 0.0:
        return {**empty, **gauges, "rate": 0.0, "tokens": 0.0}
    cdf = source._bucket_cdf(key, scrape, begin, end, edges)
    cumulative = np.concatenate([(counts[:, :, None] * cdf).sum(axis=(0, 1)), [total]])
    ttft = histogram_quantile(0.95, edge_tuple, cumulative)
    used = counts.sum(axis=0) > 0
    return {
        "ttft": None if ttft is None else ttft * 1000.0,
        "tpot": source._tpot(key, begin, end, used),
        **gauges,
        "rate": rate,
        "tokens": tokens,
    }


def _bits(answer: dict[str, float | None]) -> list[tuple[str, str]]:
    """Every value by its repr: equal reprs are the same float64 bits (-0.0 included)."""
    return sorted((name, repr(value)) for name, value in answer.items())


@pytest.mark.parametrize(
    ("replay", "seed"),
    [(False, 1), (False, 2), (True, 3)],
    ids=["log-normal-1", "log-normal-2", "trace"],
)
def test_all_clusters_at_once_equal_one_cluster_at_a_time_bit_for_bit(
    replay: bool, seed: int
) -> None:
    load = _served(replay=replay, seed=seed)
    clock = VirtualClock(datetime(2026, 1, 5, tzinfo=UTC))
    batched = SimulatedMetricsSource(load, clock)  # one source over the run, as simulated
    reference = SimulatedMetricsSource(load, clock)
    order = np.random.default_rng(seed)
    kinds = {"ttft": 0, "gauges only": 0, "empty": 0}
    for now in range(0, load.seconds + 1, 5):  # every tick, as the reconciler asks
        scrape = now - now % 15
        asked = list(CLUSTERS)
        order.shuffle(asked)  # the first cluster asked evaluates the others too
        for cluster in asked:
            target = MetricsTarget("ns", "md", cluster, "vllm", None, ready_replicas=1)
            got = asyncio.run(batched.fetch(target, now=clock.at(now)))
            answer = batched._cache[("ns/md", cluster, scrape)]
            expected = _evaluate_one(reference, "ns/md", cluster, scrape)
            assert _bits(answer) == _bits(expected), f"{cluster} at {now} s"
            assert got.ttft_p95_ms == expected["ttft"]
            assert got.request_rate == expected["rate"]
            kinds[
                "ttft"
                if expected["ttft"] is not None
                else "gauges only"
                if expected["queue"] is not None
                else "empty"
            ] += 1
    # Every branch of the evaluation was compared, not only the common one.
    assert kinds["ttft"] > 300
    assert kinds["gauges only"] > 5
    assert kinds["empty"] > 20


def test_windows_without_capacity_in_some_seconds_were_compared() -> None:
    """The masked division (a window with seconds of no capacity) is among the cases the
    equivalence test above compares."""
    load = _served(replay=False, seed=1)
    window = int(load.world.monitoring.window_seconds)
    d = load.deployments["ns/md"]
    masked = 0
    for scrape in range(window, load.seconds + 1, 15):
        part = d.capacity[scrape - window : scrape]
        masked += bool(part.min() == 0.0 and part.max() > 0.0)
    assert masked > 5
