"""A ready pod Prometheus does not scrape never reads as "no load", with the real
``prometheus`` binary.

Prometheus marks the series of a target it cannot scrape stale (a NetworkPolicy that
blocks it, a failing /metrics), so that pod drops out of every sum: the deployment's
request rate and queue then cover only the pods that report, while the operator divides
by the ready replicas it counts in Kubernetes. The signals all had data, so the
autoscaler scaled down on a third of the load missing. The source now counts the pods
that report (``queries.reporting_query``: ``count`` of the engine's queue gauge); fewer
than are ready makes the data incomplete, which never scales down (docs/metrics.md,
"Missing is not zero"). The same load with every ready pod reporting scales down."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.core import DecisionState, plan
from modelfleet.core import reasons as R
from modelfleet.core.from_api import deployment_from_api
from modelfleet.metrics.prometheus import PrometheusClient, PrometheusMetricsSource
from modelfleet.metrics.queries import QuerySettings
from modelfleet.reconciler.ledger import PoolLedger
from modelfleet.reconciler.memory import StockoutMemory
from modelfleet.reconciler.observe import ClusterObservation, Observation, ObservedWorkload
from modelfleet.reconciler.snapshot import fleet_snapshot, metrics_snapshot, own_placements

try:
    from prometheus_server import PrometheusServer, TextExporter, prometheus_binary
except ImportError:
    from tests.integration.prometheus_server import (
        PrometheusServer,
        TextExporter,
        prometheus_binary,
    )

pytestmark = pytest.mark.integration

NS = "team-a"
SETTINGS = QuerySettings(window="5s")
TTFT_BOUNDS = (0.05, 0.1, 0.2, 0.5, math.inf)


def _pod(deployment: str, name: str) -> str:
    return (
        f'modelfleet_io_deployment="{deployment}",modelfleet_io_namespace="{NS}",'
        f'pod="{deployment}-{name}"'
    )


def _render(origin: float) -> str:
    """Two deployments at 1 req/s per pod, TTFT well within 2 s, nothing queued: ``chat``
    with two of its three ready pods scraped, ``full`` with all three."""
    elapsed = time.time() - origin
    lines: list[str] = []
    for deployment, pods in (("chat", "ab"), ("full", "abc")):
        for name in pods:
            labels = _pod(deployment, name)
            for bound, share in zip(TTFT_BOUNDS, (0.5, 0.9, 1.0, 1.0, 1.0), strict=True):
                le = "+Inf" if math.isinf(bound) else repr(bound)
                lines.append(
                    f'vllm:time_to_first_token_seconds_bucket{{{labels},le="{le}"}} '
                    f"{share * elapsed}"
                )
            lines.append(f"vllm:request_success_total{{{labels}}} {elapsed}")
            lines.append(f"vllm:num_requests_waiting{{{labels}}} 0")
    return "".join(f"{line}\n" for line in lines)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    binary = prometheus_binary()
    origin = time.time() - 1000.0
    exporter = TextExporter(lambda: _render(origin))
    server = PrometheusServer(binary, tmp_path_factory.mktemp("prom"), targets=[exporter.target])
    try:
        server.start()
        server.wait_for(
            'count_over_time(vllm:num_requests_waiting{pod="full-c"}[1m])',
            lambda result: bool(result) and float(result[0]["value"][1]) >= 7,
            timeout_s=120,
        )
        yield server
    finally:
        server.stop()
        exporter.stop()


@pytest.fixture
async def source() -> AsyncIterator[PrometheusMetricsSource]:
    async with PrometheusClient(timeout_s=5.0) as client:
        yield PrometheusMetricsSource(client, settings=SETTINGS)


def _objects(url: str, name: str) -> tuple[ModelDeployment, FleetCluster]:
    md = ModelDeployment.model_validate(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "model": {"name": "llama-3.1-8b-instruct"},
                "runtime": {"engine": "vllm"},
                "resources": {"gpu": {"count": 1, "memoryGiB": 40, "types": ["H100"]}},
                "replicas": {"min": 1, "max": 8},
                "slo": {"ttftP95Ms": 2000},
                "scaling": {"downStabilizationSeconds": 0},
            },
        }
    )
    fc = FleetCluster.model_validate(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "FleetCluster",
            "metadata": {"name": "east"},
            "spec": {
                "provider": "static",
                "cloud": "aws",
                "region": "us-east-1",
                "prometheus": {"url": url},
                "gpuOfferings": [
                    {
                        "gpu": "H100",
                        "gpuMemoryGiB": 80,
                        "gpusPerNode": 1,
                        "instanceType": "p5",
                        "onDemandPerHour": 10.0,
                        "maxNodes": 8,
                    }
                ],
            },
        }
    )
    return md, fc


async def _plan(
    prometheus: PrometheusServer, source: PrometheusMetricsSource, name: str
) -> tuple[Any, int | None]:
    md, fc = _objects(prometheus.url, name)
    three = ObservedWorkload(
        name=name, instance_type="p5", capacity_type="OnDemand", replicas=3, ready=3
    )
    observation = Observation({"east": ClusterObservation("east", workloads=(three,))})
    now = datetime.fromtimestamp(math.floor(time.time()) - 1, tz=UTC)
    snapshot = await asyncio.wait_for(
        metrics_snapshot(md, [fc], observation, source, now=now), timeout=30
    )
    signals = snapshot.for_deployment(f"{NS}/{name}")["east"]
    mine = own_placements(md, observation)
    fleet = fleet_snapshot(md, [fc], mine, ledger=PoolLedger(), stockouts=StockoutMemory(), now=now)
    result = plan(
        deployment_from_api(md),
        fleet,
        metrics=snapshot,
        state=DecisionState(last_desired=3),
        now=now,
    )
    return result, signals.reporting_replicas


async def test_a_ready_pod_prometheus_does_not_scrape_holds_the_fleet(
    prometheus: PrometheusServer, source: PrometheusMetricsSource
) -> None:
    held, reporting = await _plan(prometheus, source, "chat")
    assert reporting == 2
    assert held.desired_replicas == 3
    assert [c.code for c in held.changes] == [R.METRICS_MISSING]


async def test_the_same_load_with_every_ready_pod_reporting_scales_down(
    prometheus: PrometheusServer, source: PrometheusMetricsSource
) -> None:
    lower, reporting = await _plan(prometheus, source, "full")
    assert reporting == 3
    assert lower.desired_replicas < 3
    assert lower.changes[0].code == R.SCALE_DOWN, lower.changes
