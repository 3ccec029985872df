"""The gateway's start-up line says where it listens, and plainly when it serves no
management port (``--management-port 0``): it used to log ``(management: None)``."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from modelfleet.gateway.run import GatewayOptions, serve_gateway
from modelfleet.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


def _options(tmp_path: Path, management_port: int | None) -> GatewayOptions:
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text("deployments: []\n", encoding="utf-8")
    return GatewayOptions(
        host="127.0.0.1",
        port=0,
        management_port=management_port,
        endpoints_file=endpoints,
        route_status=False,
        settings=GatewaySettings(scrape_interval=0),
    )


def _listening(caplog: pytest.LogCaptureFixture) -> str:
    lines = [r.getMessage() for r in caplog.records if "gateway listening" in r.getMessage()]
    assert len(lines) == 1, lines
    return lines[0]


async def test_no_management_port_is_said_plainly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="modelfleet.gateway"):
        async with serve_gateway(_options(tmp_path, None)) as running:
            assert running.management_url is None
    line = _listening(caplog)
    assert "None" not in line, line
    assert (
        line == f"gateway listening on {running.url} (no management port: /metrics, "
        "/healthz and /readyz are not served)"
    ), line


async def test_a_management_port_is_logged_with_its_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="modelfleet.gateway"):
        async with serve_gateway(_options(tmp_path, 0)) as running:
            assert running.management_url is not None
            async with (
                aiohttp.ClientSession() as session,
                session.get(running.management_url + "/healthz") as response,
            ):
                assert response.status == 200
    assert _listening(caplog).endswith(f"(management: {running.management_url})")
