"""``modelfleet simulate`` refuses unusable ``--hours``, ``--seed`` and ``--out`` before it
runs.

``--hours nan`` passed the "must be positive" check (NaN compares false) and came back as
an error blaming the scenario file ("durationHours: Input should be less than or equal to
336"), and ``--seed -1`` likewise blamed the file's ``seed``; ``--out DIR`` where
``DIR/report.json`` is a folder ran the whole simulation, then ended in an
``IsADirectoryError`` traceback and lost the results.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

runner = CliRunner()


@pytest.mark.parametrize("hours", ["nan", "NaN", "-inf", "0", "-2"])
def test_hours_that_are_not_a_positive_number_are_refused(hours: str) -> None:
    result = runner.invoke(app, ["simulate", "--hours", hours, "--policy", "static-peak"])
    assert result.exit_code == 2
    assert "error: --hours must be 1/60 (one minute) or more" in result.output
    assert "durationHours" not in result.output  # the scenario is not to blame
    assert "SLO met" not in result.output


@pytest.mark.parametrize("output", ["report.json", "timeline.csv", "report.png"])
def test_an_output_file_that_is_a_folder_is_refused_before_the_run(
    output: str, tmp_path: Path
) -> None:
    (tmp_path / output).mkdir()
    result = runner.invoke(
        app, ["simulate", "--out", str(tmp_path), "--hours", "0.5", "--policy", "static-peak"]
    )
    assert result.exit_code == 2, result.output
    assert f"--out: {tmp_path / output} is not a file" in result.output
    assert "SLO met" not in result.output  # refused up front: nothing was simulated
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_negative_seed_is_refused_as_the_option_not_the_file() -> None:
    result = runner.invoke(app, ["simulate", "--seed=-1", "--policy", "static-peak"])
    assert result.exit_code == 2
    assert "--seed must be 0 or more" in result.output
    assert "default.toml" not in result.output  # the scenario file is not to blame


def test_an_out_folder_with_brackets_is_named_as_it_is(tmp_path: Path) -> None:
    """Found on main 8be971f (br11): the ``wrote`` line went through rich markup, so
    ``--out 'run[/]1'`` ended a finished simulation with a MarkupError traceback."""
    where = tmp_path / "run[/]1"
    args = ["simulate", "--out", str(where), "--hours", "0.02", "--policy", "static-peak"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (where / "report.json").is_file()
    assert f"wrote {where / 'report.json'}, timeline.csv and report.png" in result.stdout
