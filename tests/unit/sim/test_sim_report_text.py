"""The report a newcomer reads: whole numbers in a table that fits 80 columns when the
output is not a terminal, a headline in plain words with the oracle as the yardstick."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from modelfleet.sim.output import headline, print_summary, simulate
from modelfleet.sim.report import predictor_error

ROOT = Path(__file__).parents[3]


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return simulate(
        ROOT / "examples" / "scenarios" / "trace-replay.toml",
        policies=("modelfleet",),
        compare=True,
        hours=0.5,
    )


def test_the_table_fits_80_columns_without_truncating_a_number(result) -> None:  # type: ignore[no-untyped-def]
    buffer = io.StringIO()
    console = Console(file=buffer)  # not a terminal: rich assumes 80 columns
    assert console.width == 80
    print_summary(result, console)
    text = buffer.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, text
    assert "…" not in text, text
    for name in ("modelfleet", "static-peak", "hpa-failover", "oracle"):
        row = next(line for line in lines if line.startswith(name + " "))
        assert re.search(r"\d+\.\d%", row), row  # SLO share
    oracle_row = next(line for line in lines if line.startswith("oracle "))
    assert " 1.00 " in oracle_row  # its own GPU-hours ratio


def test_the_headline_says_plainly_where_modelfleet_wins_and_by_how_much(result) -> None:  # type: ignore[no-untyped-def]
    lines = headline(result)
    text = " ".join(lines)
    assert "below" not in text and not re.search(r"(?<![a-z])-\d", text)  # no "-88.8%"
    assert re.search(r"Against static peak provisioning: \d+% (fewer|more) GPU-hours", text)
    assert re.search(r"oracle needed [\d,.]+ GPU-hours: modelfleet used \d+\.\d\dx", text)


def test_the_oracle_meets_the_slo_with_the_fewest_gpu_hours(result) -> None:  # type: ignore[no-untyped-def]
    """The yardstick: clairvoyant, so it meets the SLO, and it holds capacity only a lead
    time before a minute needs it, so no policy that also meets the SLO uses fewer
    GPU-hours."""
    by = {r.run.policy: r for r in result.reports}
    oracle = by["oracle"]
    assert oracle.slo_attainment >= 0.99
    meeting = [r for r in by.values() if r.slo_attainment >= 0.99]
    assert len(meeting) >= 2
    assert all(oracle.gpu_hours <= r.gpu_hours for r in meeting)


def test_the_predictor_error_at_the_lead_time_is_reported(result) -> None:  # type: ignore[no-untyped-def]
    data = result.to_json()
    errors = [d["forecastError"] for d in data["policies"]["modelfleet"]["deployments"].values()]
    assert errors and all(e["leadSeconds"] == 480 and e["predictor"] == "trend" for e in errors)
    assert all(e["mape"] is not None and e["mape"] >= 0 for e in errors), errors
    assert "forecastError" not in next(iter(data["policies"]["oracle"]["deployments"].values()))
    assert any("demand forecast 8 min ahead" in line for line in headline(result))


def test_predictor_error_is_small_on_steady_traffic_and_trend_wins_on_a_ramp() -> None:
    rng = np.random.default_rng(3)
    steady = rng.poisson(20.0, 7200).astype(np.int64)
    flat = predictor_error(steady, predictor="constant", lead_seconds=480, begin=600)
    assert flat["mape"] is not None and flat["mape"] < 0.3  # Poisson noise of one minute
    ramp = rng.poisson(np.linspace(5.0, 60.0, 7200)).astype(np.int64)
    constant = predictor_error(ramp, predictor="constant", lead_seconds=480, begin=600)
    trend = predictor_error(ramp, predictor="trend", lead_seconds=480, begin=600)
    assert trend["mape"] < constant["mape"]
    assert constant["under"] > 0.5  # a look-back lags a ramp
