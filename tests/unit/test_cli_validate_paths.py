"""``modelfleet validate`` with one path that does not exist still checks the others.

Before: ``validate good.yaml typo.yaml bad.yaml`` printed only "typo.yaml: no such file or
directory" and exited 2; bad.yaml's errors were never reported (the same harm issue 14
fixed for a YAML syntax error in a folder).
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

INVALID = """\
apiVersion: modelfleet.io/v1alpha1
kind: ModelDeployment
metadata: {name: broken}
spec: {}
"""


def test_a_missing_path_does_not_hide_the_other_files_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(INVALID)
    typo = tmp_path / "typo.yaml"
    result = runner.invoke(
        app, ["validate", str(ROOT / "examples/quickstart.yaml"), str(typo), str(bad)]
    )
    assert result.exit_code == 2, result.output  # a missing path is exit 2, as documented
    assert f"{typo}: no such file or directory" in result.output
    assert "ModelDeployment/qwen-small" in result.output  # the file before it was checked
    assert "ModelDeployment/broken): spec.model" in result.output  # and the one after it
    assert "1 path(s) not found" in result.output


def test_a_missing_path_alone_still_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no such file or directory" in result.output
    assert "no YAML documents found" not in result.output
