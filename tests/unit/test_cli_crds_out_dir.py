"""``modelfleet crds`` given a folder it cannot use: one error line naming it, exit 2, no
traceback.

Before: ``--out-dir`` naming a file ended in a ``FileExistsError`` traceback, a folder that
cannot be made (under /proc, or a missing parent without rights) in a
``FileNotFoundError`` one, and a CRD file that is a folder in ``IsADirectoryError``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.api.crdgen import all_crds
from modelfleet.cli import app

runner = CliRunner()


def _crds(*args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, ["crds", *args])
    return result.exit_code, " ".join(result.output.split()), result.exception


def test_an_out_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "crds"
    target.write_text("not a folder")
    code, output, exception = _crds("--out-dir", str(target))
    assert code == 2, output
    assert f"error: {target}: exists and is not a folder" in output, output
    assert exception is None or isinstance(exception, SystemExit), exception


def test_an_out_dir_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file" / "crds"  # its parent is a file: no folder can be made
    (tmp_path / "file").write_text("x")
    code, output, exception = _crds("--out-dir", str(target))
    assert code == 2, output
    assert f"error: {target}:" in output, output
    assert exception is None or isinstance(exception, SystemExit), exception


@pytest.mark.parametrize("check", [False, True])
def test_a_crd_file_that_is_a_folder_is_refused(tmp_path: Path, check: bool) -> None:
    name = sorted(all_crds())[0]
    (tmp_path / name).mkdir()
    code, output, exception = _crds("--out-dir", str(tmp_path), *(["--check"] if check else []))
    assert code == 2, output
    assert f"error: {tmp_path / name}: Is a directory" in output, output
    assert exception is None or isinstance(exception, SystemExit), exception


def test_a_writable_out_dir_still_gets_every_crd(tmp_path: Path) -> None:
    code, output, _ = _crds("--out-dir", str(tmp_path / "new"))
    assert code == 0, output
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == sorted(all_crds())


@pytest.mark.parametrize("other", [["--check"], ["--out-dir", "x"]])
def test_stdout_with_check_or_out_dir_is_refused(other: list[str]) -> None:
    """``--stdout --check`` printed the CRDs and checked nothing, exit 0."""
    code, output, _ = _crds("--stdout", *other)
    assert code == 2, output
    assert "error: --stdout goes with neither --check nor --out-dir" in output, output
