"""The `modelfleet` command line as a user runs it (in-process via typer's runner)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_validate_examples_succeeds() -> None:
    result = runner.invoke(app, ["validate", str(ROOT / "examples")])
    assert result.exit_code == 0, result.output
    assert "document(s) valid" in result.output


def test_validate_reports_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: modelfleet.io/v1alpha1\nkind: ModelDeployment\nmetadata: {name: x}\n"
        "spec: {model: {name: m}, replicas: {min: 3, max: 1}}\n"
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad} (document 1, ModelDeployment/x): spec.replicas" in result.output
    assert "replicas.min must not exceed replicas.max" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [unclosed", "not valid YAML"),
        ("", "no YAML documents"),
        ("- 1\n- 2\n", "not a mapping"),
    ],
)
def test_validate_unreadable_input_exits_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(content)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and message in result.output


def test_crds_check_detects_stale_files(tmp_path: Path) -> None:
    assert runner.invoke(app, ["crds", "--out-dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["crds", "--check", "--out-dir", str(tmp_path)]).exit_code == 0
    victim = tmp_path / "modeldeployments.modelfleet.io.yaml"
    victim.write_text(victim.read_text().replace("Desired", "Wanted"))
    result = runner.invoke(app, ["crds", "--check", "--out-dir", str(tmp_path)])
    assert result.exit_code == 1 and "differ from the models" in result.output


def test_committed_crds_are_current() -> None:
    args = [
        "crds",
        "--check",
        "--out-dir",
        str(ROOT / "crds"),
        "--out-dir",
        str(ROOT / "charts/modelfleet/crds"),
    ]
    assert runner.invoke(app, args).exit_code == 0


def test_planner_settings_parse_flags_and_reject_unknown_keys() -> None:
    from modelfleet.runtime import planner_settings

    settings = planner_settings(["stockoutInitialSeconds=60", "stockout_max_seconds=600"])
    assert (settings.stockout_initial_seconds, settings.stockout_max_seconds) == (60.0, 600.0)
    with pytest.raises(ValueError, match="unknown planner setting 'stockoutInitial'"):
        planner_settings(["stockoutInitial=60"])
    with pytest.raises(ValueError, match="not a number"):
        planner_settings(["tolerance=high"])


def test_run_rejects_an_unknown_planner_setting() -> None:
    result = runner.invoke(app, ["run", "--planner", "nope=1"])
    assert result.exit_code == 2
    assert "unknown planner setting 'nope'" in result.output
