"""No Prometheus credential in a log line, with the real operator (kopf + handlers) on
KMock at debug level (``modelfleet run -v``, as one runs it to troubleshoot).

The only way the operator takes Prometheus credentials is ``user:password@`` in
``FleetCluster.spec.prometheus.url`` (docs/metrics.md). Our own messages drop them
(``redact_url``), but kopf logs every object it processes whole at debug ("Creation is in
progress: {body}", then each update's diff): the password went to the log, and from there
to whatever ships logs. The operator now redacts URL credentials in every kopf object
log record before any handler sees it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.integration.operator_harness import (
    FAST,
    Fleet,
    eventually,
    fleet_cluster,
    fleet_of,
    operator,
)

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-Pa55"
URL = f"http://scraper:{PASSWORD}@127.0.0.1:9/prom"


@pytest.fixture
async def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fleet]:
    east = fleet_cluster("east", region="us-east-1", cloud="aws", price=10.0)
    east["spec"]["prometheus"] = {"url": URL}
    async with fleet_of(tmp_path, monkeypatch, {"east": east}) as running:
        yield running


async def test_kopf_debug_logs_of_a_fleetcluster_hold_no_prometheus_password(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with operator(fleet, settings=FAST):

        def body_logged() -> bool:
            return any("is in progress" in r.getMessage() for r in caplog.records)

        await eventually(body_logged, what="kopf's debug dump of the FleetCluster")
        await eventually(
            lambda: any("127.0.0.1:9/prom" in r.getMessage() for r in caplog.records),
            what="the Prometheus URL in a debug line",
        )
    leaked = [r.getMessage() for r in caplog.records if PASSWORD in r.getMessage()]
    assert leaked == []
    assert any("***@127.0.0.1:9/prom" in r.getMessage() for r in caplog.records)
