"""The simulated Prometheus reuses the last scrape's TTFT bucket rows: the same floats as a
window computed from scratch (the simulator's decisions must not move by one ulp)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest

from modelfleet.metrics.source import MetricsTarget
from modelfleet.sim.fleet import VirtualClock
from modelfleet.sim.load import LoadModel
from modelfleet.sim.prometheus import SimulatedMetricsSource
from modelfleet.sim.traffic import Traffic
from modelfleet.sim.world import World

GPUS = ("L40S", "H100")
CLUSTERS = ("c1", "c2")


def _served(*, replay: bool, shared: bool = False) -> LoadModel:
    """15 minutes of bursty traffic served in 5 s ticks by a changing mix of replicas
    over two clusters and two GPU classes (a queue builds up and drains); ``shared``: each
    cluster also runs the other's class, so both often serve the same set of classes."""
    rng = np.random.default_rng(7)
    seconds = 900
    rate = 8.0 + 6.0 * np.sin(np.arange(seconds) / 60.0) + rng.uniform(0, 4, seconds)
    rate[300:360] *= 4.0  # a burst the fleet cannot serve at once
    arrivals = rng.poisson(rate).astype(np.int64)
    total = int(arrivals.sum())
    traffic = Traffic(
        rate=rate,
        arrivals=arrivals,
        prompt_median=1200,
        prompt_sigma=0.7,
        output_median=150,
        output_sigma=0.8,
        seed=3,
        request_prompts=rng.integers(10, 8000, total) if replay else None,
        request_outputs=rng.integers(10, 600, total) if replay else None,
    )
    load = LoadModel(
        World(), {"ns/md": traffic}, {"ns/md": GPUS}, {"ns/md": 1}, CLUSTERS, seconds=seconds
    )
    for begin in range(0, seconds, 5):
        step = begin // 5
        ready = {
            ("ns/md", "c1", "L40S"): 1 + step % 3,
            ("ns/md", "c2", "H100"): (step // 7) % 3,
        }
        if shared:
            ready[("ns/md", "c1", "H100")] = 1
            ready[("ns/md", "c2", "L40S")] = step % 2
        load.advance(begin, begin + 5, ready)
    return load


@pytest.mark.parametrize("replay", [False, True], ids=["log-normal", "trace"])
def test_window_rows_kept_across_scrapes_equal_a_fresh_window_bit_for_bit(replay: bool) -> None:
    load = _served(replay=replay)
    clock = VirtualClock(datetime(2026, 1, 5, tzinfo=UTC))
    edges = np.asarray(load.world.monitoring.ttft_buckets_seconds)
    window = int(load.world.monitoring.window_seconds)
    kept = SimulatedMetricsSource(load, clock)  # one source over the run: rows reused
    reused = 0
    for scrape in range(15, load.seconds + 1, 15):
        begin = max(0, scrape - window)
        warm = kept._bucket_cdf("ns/md", scrape, begin, scrape, edges)
        cold = SimulatedMetricsSource(load, clock)._bucket_cdf(
            "ns/md", scrape, begin, scrape, edges
        )
        assert warm.shape == cold.shape == (scrape - begin, len(GPUS), len(edges))
        assert np.array_equal(warm, cold), f"window ending at {scrape} s"
        reused += scrape - begin > 15
    assert reused > 40  # the windows overlapped: rows were kept, not recomputed


@pytest.mark.parametrize("replay", [False, True], ids=["log-normal", "trace"])
def test_signals_over_a_run_equal_those_of_a_fresh_source_at_each_scrape(replay: bool) -> None:
    load = _served(replay=replay)
    clock = VirtualClock(datetime(2026, 1, 5, tzinfo=UTC))
    kept = SimulatedMetricsSource(load, clock)
    seen = 0
    for now in range(20, load.seconds, 5):  # every tick, as the reconciler asks
        for cluster in CLUSTERS:
            target = MetricsTarget("ns", "md", cluster, "vllm", None, ready_replicas=2)
            warm = asyncio.run(kept.fetch(target, now=clock.at(now)))
            fresh = SimulatedMetricsSource(load, clock)
            cold = asyncio.run(fresh.fetch(target, now=clock.at(now)))
            assert warm == cold, f"{cluster} at {now} s"
            seen += warm.ttft_p95_ms is not None
    assert seen > 100  # TTFT series existed: the bucket rows were used


def test_tpot_shared_by_clusters_serving_the_same_classes_equals_a_fresh_source() -> None:
    """TPOT depends on the deployment's serving state and the classes a cluster used, not
    on the cluster: clusters of one scrape with the same classes share one computation,
    which must be the fresh source's value for each of them."""
    load = _served(replay=False, shared=True)
    clock = VirtualClock(datetime(2026, 1, 5, tzinfo=UTC))
    kept = SimulatedMetricsSource(load, clock)
    shared = 0
    for now in range(20, load.seconds, 5):
        values = {}
        for cluster in CLUSTERS:
            target = MetricsTarget("ns", "md", cluster, "vllm", None, ready_replicas=2)
            warm = asyncio.run(kept.fetch(target, now=clock.at(now)))
            cold = asyncio.run(SimulatedMetricsSource(load, clock).fetch(target, now=clock.at(now)))
            assert warm == cold, f"{cluster} at {now} s"
            values[cluster] = warm.tpot_p95_ms
        _, answers = kept._tpots["ns/md"]
        shared += len(answers) == 1 and values["c1"] is not None and values["c2"] is not None
    assert shared > 20  # both clusters used the same classes and shared the answer
