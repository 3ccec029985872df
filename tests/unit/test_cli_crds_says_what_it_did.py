"""``modelfleet crds`` with no flags always says what it did (a breaker's find: run in the
repository, where the files were up to date, it printed nothing and exited 0, which reads
as "did it run?"). It writes crds/ and charts/modelfleet/crds/ of the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.api.crdgen import all_crds
from modelfleet.cli import app

runner = CliRunner()


def test_no_flags_writes_the_default_folders_then_says_they_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(app, ["crds"])
    assert first.exit_code == 0, first.output
    names = sorted(all_crds())
    for folder in ("crds", "charts/modelfleet/crds"):
        for name in names:
            assert (tmp_path / folder / name).is_file()
            assert f"wrote {folder}/{name}" in first.stdout
    again = runner.invoke(app, ["crds"])
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == (
        "CRDs in crds/, charts/modelfleet/crds/ already match the models: nothing written"
    )


def test_an_up_to_date_out_dir_is_said_so(tmp_path: Path) -> None:
    assert runner.invoke(app, ["crds", "--out-dir", str(tmp_path)]).exit_code == 0
    again = runner.invoke(app, ["crds", "--out-dir", str(tmp_path)])
    assert again.exit_code == 0
    assert "already match the models: nothing written" in " ".join(again.stdout.split())
    assert str(tmp_path) in " ".join(again.stdout.split())


@pytest.mark.parametrize("folder", ["odd[/]dir", "[bold]b"])
def test_a_folder_name_with_brackets_is_printed_as_it_is(tmp_path: Path, folder: str) -> None:
    """Found on main 8be971f (br11): the path went through rich markup: ``odd[/]dir``
    crashed with a MarkupError traceback after writing the first file, and ``[bold]b``
    was reported as ``b/...``, a folder that does not exist."""
    where = tmp_path / folder
    result = runner.invoke(app, ["crds", "--out-dir", str(where)])
    assert result.exit_code == 0, result.output
    for name in sorted(all_crds()):
        assert (where / name).is_file()
        assert f"wrote {where / name}" in result.stdout


def test_the_nothing_written_sentence_fits_a_narrow_output(tmp_path: Path) -> None:
    """Found on main 8be971f (br11): 80 columns at ``COLUMNS=40`` (the other commands'
    sentences are wrapped to the output's width since demo11; this one was not)."""
    assert runner.invoke(app, ["crds", "--out-dir", str(tmp_path)]).exit_code == 0
    again = runner.invoke(app, ["crds", "--out-dir", str(tmp_path)], env={"COLUMNS": "40"})
    assert again.exit_code == 0, again.output
    for line in again.stdout.splitlines():  # only a path longer than the width may pass it
        assert len(line) <= 40 or len(line.split()) == 1, again.stdout
    said = " ".join(again.stdout.split())
    assert said == f"CRDs in {tmp_path}/ already match the models: nothing written"
