"""`modelfleet simulate` input handling as a user meets it (runs are kept tiny here; the
integration test runs a real scenario)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli import app

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()


def test_bad_scenario_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nfleet = []\ndeployments = []\n')
    result = runner.invoke(app, ["simulate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: fleet:" in result.output and f"{bad}: deployments:" in result.output


def test_unknown_policy_is_refused() -> None:
    result = runner.invoke(app, ["simulate", "--policy", "magic"])
    assert result.exit_code == 2 and "unknown policy magic" in result.output
    # the valid names are said, not left to --help
    assert "(known: modelfleet, " in result.output and "oracle" in result.output


def test_missing_scenario_file_is_reported(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "no such scenario file" in result.output


def test_default_scenario_runs_and_prints_the_summary() -> None:
    scenario = ROOT / "examples/scenarios/default.toml"
    result = runner.invoke(
        app, ["simulate", str(scenario), "--hours", "0.25", "--policy", "static-peak"]
    )
    assert result.exit_code == 0, result.output
    assert "static-peak" in result.output and "SLO: minutes within it" in result.output


def test_out_that_is_a_file_is_refused_before_the_run(tmp_path: Path) -> None:
    taken = tmp_path / "results"
    taken.write_text("keep me\n")
    result = runner.invoke(app, ["simulate", "--out", str(taken), "--policy", "static-peak"])
    assert result.exit_code == 2
    assert f"--out {taken}: exists and is not a folder" in result.output
    assert "SLO: minutes within it" not in result.output  # refused up front: nothing was simulated
    assert taken.read_text() == "keep me\n"


def test_out_below_a_file_is_refused_before_the_run(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "file" / "sub")])
    assert result.exit_code == 2 and "--out" in result.output
    assert "SLO: minutes within it" not in result.output


def test_hours_beyond_the_scenario_are_clamped_and_said(tmp_path: Path) -> None:
    scenario = ROOT / "examples/scenarios/spot-reclaim.toml"  # durationHours = 3
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["simulate", str(scenario), "--hours", "100", "--policy", "static-peak", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "--hours 100 is longer than the scenario (3 h); simulating all 3 h" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["durationHours"] == 3
