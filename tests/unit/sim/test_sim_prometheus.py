"""The metrics the autoscaler sees are computed the way PromQL computes them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest

from modelfleet.metrics.source import MetricsTarget, SignalValues
from modelfleet.sim.fleet import VirtualClock
from modelfleet.sim.load import LoadModel
from modelfleet.sim.prometheus import SimulatedMetricsSource, histogram_quantile
from modelfleet.sim.serving import Workload, replica_model
from modelfleet.sim.traffic import Traffic, lognormal_mean, normal_cdf
from modelfleet.sim.world import World


def test_histogram_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    edges = (0.1, 0.25, 0.5, 1.0)
    # 100 requests: 50 <= 0.1 s, 40 in (0.1, 0.25], 10 in (0.25, 0.5]; +Inf total 100.
    cumulative = np.array([50.0, 90.0, 100.0, 100.0, 100.0])
    # rank 95 lies half-way into the (0.25, 0.5] bucket.
    assert histogram_quantile(0.95, edges, cumulative) == pytest.approx(0.375)
    assert histogram_quantile(0.5, edges, cumulative) == pytest.approx(0.1)


def test_empty_histogram_is_missing_not_zero() -> None:
    assert histogram_quantile(0.95, (0.1, 1.0), np.zeros(3)) is None


def test_tail_beyond_the_last_bucket_reads_as_the_last_edge() -> None:
    assert histogram_quantile(0.95, (0.1, 1.0), np.array([0.0, 0.0, 10.0])) == 1.0


def test_normal_cdf() -> None:
    z = np.array([-1.6448536, 0.0, 1.6448536])
    assert normal_cdf(z) == pytest.approx([0.05, 0.5, 0.95], abs=1e-5)


# --- Saturation gauges: KV-cache use and running requests ----------------------------------


def _steady_load(fraction: float, *, replicas: int, gpu: str, seconds: int) -> LoadModel:
    """``seconds`` of steady traffic at ``fraction`` of the saturation throughput of
    ``replicas`` ready replicas of ``gpu`` in cluster c1, served (``LoadModel.advance``)."""
    world = World()
    workload = Workload(lognormal_mean(1200, 0.6), lognormal_mean(120, 0.8))
    mu = replica_model(world, gpu, workload).mu_max
    rate = np.full(seconds, fraction * mu * replicas)
    traffic = Traffic(
        rate=rate,
        arrivals=np.round(rate).astype(np.int64),
        prompt_median=1200,
        prompt_sigma=0.6,
        output_median=120,
        output_sigma=0.8,
        seed=1,
    )
    load = LoadModel(
        world, {"ns/md": traffic}, {"ns/md": (gpu,)}, {"ns/md": 1}, ("c1",), seconds=seconds
    )
    load.advance(0, seconds, {("ns/md", "c1", gpu): replicas})
    return load


def _served(fraction: float, *, replicas: int = 2, gpu: str = "L40S") -> SignalValues:
    """Serve 120 s of steady traffic at ``fraction`` of the fleet's saturation throughput
    on ``replicas`` ready replicas of ``gpu`` in one cluster; the signals at second 90."""
    load = _steady_load(fraction, replicas=replicas, gpu=gpu, seconds=120)
    clock = VirtualClock(datetime(2025, 6, 1, tzinfo=UTC))
    source = SimulatedMetricsSource(load, clock)
    target = MetricsTarget("ns", "md", "c1", "vllm", None, ready_replicas=replicas)
    return asyncio.run(source.fetch(target, now=clock.at(90)))


def test_kv_cache_use_follows_the_running_batch_of_the_serving_model() -> None:
    world = World()
    workload = Workload(lognormal_mean(1200, 0.6), lognormal_mean(120, 0.8))
    model = replica_model(world, "L40S", workload)
    for fraction in (0.5, 0.95):
        values = _served(fraction)
        batch = model.batch(fraction * model.mu_max)
        # Per replica: batch x mean context / KV tokens, summed over 2 replicas by the
        # query and divided back by the ready count.
        expected = batch * workload.context_mean / model.kv_tokens
        assert values.running_per_replica == pytest.approx(batch, rel=1e-6)
        assert values.kv_cache_per_replica == pytest.approx(expected, rel=1e-6)
        assert values.kv_cache_usage == pytest.approx(2 * expected, rel=1e-6)
    low, high = _served(0.5), _served(0.95)
    assert low.kv_cache_per_replica is not None and high.kv_cache_per_replica is not None
    assert low.kv_cache_per_replica < 0.2 < 0.5 < high.kv_cache_per_replica <= 1.0


def test_an_overloaded_fleet_reads_a_full_batch_and_a_clamped_kv_cache() -> None:
    values = _served(1.5)
    model = replica_model(
        World(), "L40S", Workload(lognormal_mean(1200, 0.6), lognormal_mean(120, 0.8))
    )
    assert values.running_per_replica == pytest.approx(model.concurrency)
    assert values.kv_cache_per_replica is not None and 0.9 < values.kv_cache_per_replica <= 1.0
    assert values.queue_per_replica is not None and values.queue_per_replica > 0


# --- Answers kept per scrape and ready count ----------------------------------------------


def test_a_repeated_question_gets_the_answer_a_fresh_source_gives() -> None:
    """The source keeps each answer per (deployment, cluster, scrape, ready replicas): a
    different ready count or a later scrape is a new answer, equal to what a source that
    never answered before gives (queue, KV-cache and running per replica divide by it)."""
    load = _steady_load(0.8, replicas=2, gpu="L40S", seconds=300)
    clock = VirtualClock(datetime(2025, 6, 1, tzinfo=UTC))
    source = SimulatedMetricsSource(load, clock)

    def ask(on: SimulatedMetricsSource, ready: int, at: float) -> SignalValues:
        target = MetricsTarget("ns", "md", "c1", "vllm", None, ready_replicas=ready)
        return asyncio.run(on.fetch(target, now=clock.at(at)))

    two = ask(source, 2, 90)
    one = ask(source, 1, 90)  # the same scrape, another ready count
    assert one.queue_per_replica is not None and two.queue_per_replica is not None
    assert one.running_per_replica == pytest.approx(2 * (two.running_per_replica or 0.0))
    assert one == ask(SimulatedMetricsSource(load, clock), 1, 90)
    assert ask(source, 2, 91) == two  # within the same scrape interval: the same answer
    later = ask(source, 2, 200)
    assert later.observed_at > two.observed_at
    assert later == ask(SimulatedMetricsSource(load, clock), 2, 200)
