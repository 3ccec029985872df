"""`modelfleet simulate` as a user runs it: a short scenario with a stockout and a region
outage, all three policies, and what the report shows about them.

The simulator drives the real Reconciler, decision core and FleetCluster probe on virtual
time, so these are end-to-end checks of the decision path under the simulated world.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

SCENARIO = """
name = "short"
description = "3 hours of the morning ramp: an H100 stockout in europe-west4, then eastus goes down"
seed = 5
durationHours = 3
startHour = 10
fleet = ["fleet"]

[[deployments]]
manifest = "deployments/chat.yaml"
[deployments.traffic]
peakRps = 150
troughRps = 30
peakHour = 15

[[events]]
type = "stockout"
at = "0:20"
durationMinutes = 60
region = "europe-west4"
gpu = "H100"

[[events]]
type = "regionOutage"
at = "2:00"
durationMinutes = 30
region = "eastus"
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    folder = tmp_path_factory.mktemp("sim")
    shutil.copytree(ROOT / "examples/scenarios/fleet", folder / "fleet")
    shutil.copytree(ROOT / "examples/scenarios/deployments", folder / "deployments")
    (folder / "short.toml").write_text(SCENARIO)
    out = folder / "out"
    result = runner.invoke(
        app, ["simulate", str(folder / "short.toml"), "--compare", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text()), out, result.output


def test_report_has_every_policy_with_the_documented_fields(
    report: tuple[dict[str, Any], Path, str],
) -> None:
    data, out, output = report
    assert data["scenario"] == "short" and data["seed"] == 5
    assert set(data["policies"]) == {"modelfleet", "static-peak", "hpa-failover", "oracle"}
    for figures in data["policies"].values():
        for key in (
            "sloAttainment",
            "ttftP95Ms",
            "requestsTotal",
            "requestsFailed",
            "gpuHours",
            "costUsd",
            "failovers",
            "stockouts",
        ):
            assert key in figures
        assert 0.0 <= figures["sloAttainment"] <= 1.0
    totals = {p["requestsTotal"] for p in data["policies"].values()}
    assert len(totals) == 1, "every policy must see the same requests"
    assert (out / "report.png").stat().st_size > 10_000
    rows = list(csv.DictReader((out / "timeline.csv").open()))
    assert len(rows) == 4 * 180 and {r["policy"] for r in rows} == set(data["policies"])
    for name in data["policies"]:
        assert name in output  # the summary table


def test_outage_is_failed_over_and_its_rto_reported(
    report: tuple[dict[str, Any], Path, str],
) -> None:
    policies = report[0]["policies"]
    [mf] = policies["modelfleet"]["failovers"]
    assert mf["event"] == "regionOutage#1" and mf["at"].endswith("12:00:00Z")
    assert mf["clusters"] == ["azure-eus"]
    # modelfleet restores capacity elsewhere; static-peak never moves, so it waits for the
    # region to come back (30 minutes) plus node and model start.
    assert mf["rtoSeconds"] is not None and mf["rtoSeconds"] < 1200
    [static] = policies["static-peak"]["failovers"]
    assert static["rtoSeconds"] is None or static["rtoSeconds"] > 1800
    [hpa] = policies["hpa-failover"]["failovers"]
    assert hpa["rtoSeconds"] is None or hpa["rtoSeconds"] > mf["rtoSeconds"]


def test_stockout_is_reported(report: tuple[dict[str, Any], Path, str]) -> None:
    [stockout] = report[0]["policies"]["modelfleet"]["stockouts"]
    assert stockout["event"] == "stockout#0" and stockout["at"].endswith("10:20:00Z")
    # A stockout no placement ran into costs nothing to recover from. One that was hit
    # is timed from its first refused request, inside the stockout's window, until every
    # deployment it refused has the replicas it wanted then (None: never). That can be 0:
    # a refused grow for capacity on its way (a forecast, a move to a cheaper pool) while
    # the replicas wanted at that moment were all ready (seen on this scenario, seed 5).
    if stockout["hit"]:
        assert stockout["firstRefusedAt"] >= stockout["at"]
        per = stockout["perDeployment"]
        assert per and all(d["needed"] > 0 for d in per.values())
        times = [d["recoverySeconds"] for d in per.values()]
        if None in times:
            assert stockout["recoverySeconds"] is None
        else:
            assert stockout["recoverySeconds"] == max(times) >= 0
    else:
        assert stockout["recoverySeconds"] == 0


def test_stockout_falls_through_and_recovery_is_reported(
    report: tuple[dict[str, Any], Path, str],
) -> None:
    [stockout] = report[0]["policies"]["modelfleet"]["stockouts"]
    assert stockout["hit"] is True
    assert stockout["recoverySeconds"] is not None
    # One reconcile interval plus node provisioning and model start (p90s): the stockout
    # is skipped in the same pass and capacity comes from the next region.
    assert stockout["recoverySeconds"] <= 15 + 540 + 240


@pytest.mark.xfail(
    strict=True,
    reason="on the 24 h default scenario modelfleet now uses 0.56-0.64x static peak's "
    "GPU-hours (seeds 1-3), but this 3 h scenario is the morning ramp with a stockout and an "
    "outage, where new capacity is starting, replicas are moved make-before-break and fail "
    "over onto half-empty 8-GPU nodes: nodes without a ready replica (docs/simulation.md, "
    "'Measured').",
)
def test_modelfleet_uses_fewer_gpu_hours_than_static_peak(
    report: tuple[dict[str, Any], Path, str],
) -> None:
    policies = report[0]["policies"]
    assert policies["modelfleet"]["gpuHours"] < policies["static-peak"]["gpuHours"]


def _run_in_process(tmp: Path, name: str, *args: str, hash_seed: str) -> dict[str, Any]:
    out = tmp / name
    subprocess.run(
        [str(Path(sys.executable).parent / "modelfleet"), "simulate", *args, "--out", str(out)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        cwd=ROOT,
    )
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    data.pop("wallSeconds")
    return data


def test_same_seed_same_report_in_any_process_other_seed_other_traffic(tmp_path: Path) -> None:
    scenario = str(ROOT / "examples/scenarios/spot-reclaim.toml")
    args = (scenario, "--hours", "1.25")
    first = _run_in_process(tmp_path, "a", *args, hash_seed="1")
    again = _run_in_process(tmp_path, "b", *args, hash_seed="2")
    other = _run_in_process(tmp_path, "c", *args, "--seed", "99", hash_seed="1")
    assert first == again
    assert first["policies"]["modelfleet"]["spotReclaims"][0]["replicasLost"] > 0
    assert (
        other["policies"]["modelfleet"]["requestsTotal"]
        != first["policies"]["modelfleet"]["requestsTotal"]
    )
