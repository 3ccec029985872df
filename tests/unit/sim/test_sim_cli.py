"""`modelfleet simulate` input handling as a user meets it (runs are kept tiny here; the
integration test runs a real scenario)."""

from __future__ import annotations

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
