"""Scale from zero with a demand query Prometheus cannot answer, with the real operator
(kopf + handlers) against KMock emulators and the real ``prometheus`` binary.

A ``replicas.min: 0`` deployment whose ``spec.metrics.demand`` Prometheus rejects (a typo
in the PromQL) used to hold at zero in silence: its status said nothing a human could act
on (SLOMet "no data for TTFT p95", as for any deployment at zero) and no Event named the
query. Now the pass posts a ``DemandUnknown`` Warning and says in Degraded which cluster
answered what; once the query is fixed the deployment starts on the demand it reads and
Degraded clears. A demand query with no series (an idle gateway's ``sum(...)``) is not an
error: it holds at zero without a warning (docs/decisions.md, "Scale from zero")."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.operator_harness import (
    FAST,
    MD_PATH,
    Fleet,
    eventually,
    fleet_cluster,
    fleet_of,
    model_deployment,
    operator,
)
from tests.integration.prometheus_server import PrometheusServer, TextExporter, prometheus_binary

from modelfleet.metrics.prometheus import PrometheusClient, PrometheusMetricsSource

pytestmark = pytest.mark.integration

SLOW_TIMER = dataclasses.replace(FAST, interval_seconds=2.0)
BROKEN = 'sum(rate(gateway_waiting{deployment="$deployment"}[1m]'  # unclosed parentheses
IDLE = 'sum(gateway_waiting{deployment="nobody"})'  # valid, no series
WORKING = 'sum(gateway_waiting{deployment="$deployment"})'


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Prometheus scraping a gateway-like gauge: 3 requests waiting for ``coder``."""
    binary = prometheus_binary()
    exporter = TextExporter(lambda: 'gateway_waiting{deployment="coder"} 3\n')
    server = PrometheusServer(binary, tmp_path_factory.mktemp("prom"), targets=[exporter.target])
    try:
        server.start()
        server.wait_for('gateway_waiting{deployment="coder"}', timeout_s=120)
        yield server
    finally:
        server.stop()
        exporter.stop()


@pytest.fixture
async def fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prometheus: PrometheusServer
) -> AsyncIterator[Fleet]:
    east = fleet_cluster("east", region="us-east-1", cloud="aws", price=10.0)
    east["spec"]["prometheus"] = {"url": prometheus.url}
    async with fleet_of(tmp_path, monkeypatch, {"east": east}) as running:
        yield running


def _condition(body: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for condition in ((body or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_:
            return dict(condition)
    return {}


async def test_a_demand_query_prometheus_rejects_is_reported_not_held_in_silence(
    fleet: Fleet,
) -> None:
    async with (
        PrometheusClient(timeout_s=5.0) as client,
        operator(fleet, settings=SLOW_TIMER, metrics_source=PrometheusMetricsSource(client)),
    ):
        path = MD_PATH.format(ns="default")
        await fleet.kubectl.create(
            path,
            model_deployment("coder", replicas={"min": 0, "max": 2}, metrics={"demand": BROKEN}),
        )

        async def degraded_names_the_query() -> dict[str, Any]:
            found = _condition(await fleet.md("coder"), "Degraded")
            return found if "spec.metrics.demand" in found.get("message", "") else {}

        degraded = await eventually(degraded_names_the_query, what="Degraded naming the demand")
        assert degraded["status"] == "True"
        assert "east: bad_data" in degraded["message"], degraded
        warnings = fleet.events("DemandUnknown")
        assert warnings and warnings[0]["type"] == "Warning"
        assert "east: bad_data" in warnings[0]["message"]
        assert fleet.replicas("east") == 0

        # A valid query with no series: no demand, no warning.
        await fleet.kubectl.patch(path + "/coder", {"spec": {"metrics": {"demand": IDLE}}})

        async def clean() -> bool:
            return _condition(await fleet.md("coder"), "Degraded").get("status") == "False"

        await eventually(clean, what="Degraded False once the query answers")
        seen = len(fleet.events("DemandUnknown"))
        stamps: list[str] = []

        async def two_more_passes() -> bool:
            stamp = ((await fleet.md("coder")) or {}).get("status", {}).get("lastReconcileTime")
            if stamp and stamp not in stamps:
                stamps.append(stamp)
            return len(stamps) > 2

        await eventually(two_more_passes, what="two more timed passes")
        assert len(fleet.events("DemandUnknown")) == seen
        assert fleet.replicas("east") == 0

        # The gateway's gauge: 3 requests waiting -> the deployment starts.
        await fleet.kubectl.patch(path + "/coder", {"spec": {"metrics": {"demand": WORKING}}})
        await eventually(lambda: fleet.replicas("east") >= 1, what="a replica on the demand")
