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


def test_validate_goes_on_after_a_file_that_does_not_parse(tmp_path: Path) -> None:
    (tmp_path / "a-broken.yaml").write_text("a: [unclosed\n")
    (tmp_path / "b-empty.yaml").write_text("")
    (tmp_path / "c-invalid.yaml").write_text(
        "apiVersion: modelfleet.io/v1alpha1\nkind: ModelDeployment\nmetadata: {name: x}\n"
        "spec: {model: {name: m}, replicas: {min: 3, max: 1}}\n"
    )
    (tmp_path / "d-good.yaml").write_text((ROOT / "examples" / "spot-hedged.yaml").read_text())
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2, result.output
    broken = tmp_path / "a-broken.yaml"
    # The YAML error names the file (not "<unicode string>") and the line.
    assert f"{broken}: not valid YAML" in result.output
    assert f'in "{broken}", line 2' in result.output
    assert "<unicode string>" not in result.output
    assert f"{tmp_path / 'b-empty.yaml'}: empty (no YAML documents)" in result.output
    assert "replicas.min must not exceed replicas.max" in result.output  # later file checked
    assert "✓" in result.output and "d-good.yaml" in result.output
    assert "1 of 2 document(s) invalid, 1 file(s) could not be loaded" in result.output


def test_validate_an_empty_file_alone_names_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("\n# nothing here\n")
    result = runner.invoke(app, ["validate", str(empty)])
    assert result.exit_code == 2
    assert f"no YAML documents found in {empty}" in result.output


def test_validate_help_states_the_exit_statuses() -> None:
    result = runner.invoke(app, ["validate", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert "0 when every document is valid; 1 when a document is invalid; 2 when" in text
    assert "Exits 1 on any error" not in text


@pytest.mark.parametrize("command", [[], ["crds"], ["validate"], ["plan"], ["run"], ["simulate"]])
def test_help_shows_no_python_type_names(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert "list[" not in result.output


def test_command_list_shows_whole_first_sentences() -> None:
    result = runner.invoke(app, ["--help"])
    text = " ".join(result.output.split())
    # The summary is the docstring's first paragraph: one whole sentence, not a line of it.
    assert (
        "simulate What-if: simulate outages, stockouts, spot reclaims and bursts on virtual time."
        in text
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["gateway"],
        ["crds"],
        ["validate"],
        ["plan"],
        ["profile"],
        ["serve"],
        ["run"],
        ["simulate"],
    ],
)
def test_help_fits_80_columns_and_cuts_no_option_name(command: list[str]) -> None:
    # typer's rich panels cut long option names at 80 columns ("--first-byte-tim…"); the
    # help is click's plain layout, which wraps the description column instead.
    result = runner.invoke(app, [*command, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
