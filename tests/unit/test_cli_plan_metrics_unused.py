"""``plan --metrics FILE`` never plans without the file's signals silently (a breaker's
find): an empty file (no YAML document: truncated, or the wrong file) is refused with exit
2, and a file without signals for the planned deployment is named on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "examples" / "fleet"
MD = ROOT / "examples" / "multicloud-failover.yaml"
NOW = "2025-06-01T12:00:30Z"
runner = CliRunner()


def plan(metrics: Path, *extra: str) -> tuple[int, str, str]:
    args = ["plan", "--fleet", str(FLEET), "--now", NOW, "--metrics", str(metrics), *extra]
    result = runner.invoke(app, [*args, str(MD)])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("content", ["", "\n", "# nothing observed yet\n", "---\n"])
def test_an_empty_metrics_file_is_refused(tmp_path: Path, content: str) -> None:
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(content)
    code, out, err = plan(metrics)
    assert code == 2, (out, err)
    assert f"{metrics}: empty" in " ".join(err.split()), err
    assert "leave out --metrics" in " ".join(err.split()), err
    assert out == ""


def test_signals_for_another_deployment_are_named_and_the_plan_still_printed(
    tmp_path: Path,
) -> None:
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(
        'observedAt: "2025-06-01T12:00:00Z"\n'
        "deployments:\n"
        "  default/other: {aws-use1: {readyReplicas: 2, ttftP95Ms: 900}}\n"
    )
    code, out, err = plan(metrics, "-o", "json")
    assert code == 0, err
    said = " ".join(err.split())
    assert "no signals for default/llama-8b" in said, err
    assert "deployments in the file: default/other" in said, err
    assert json.loads(out)["desiredReplicas"] == 2  # the plan without metrics


def test_signals_for_the_planned_deployment_warn_nothing() -> None:
    metrics = ROOT / "tests" / "fixtures" / "metrics" / "llama-8b-burst.yaml"
    code, out, err = plan(metrics, "-o", "json")
    assert code == 0 and err == "", err
    assert json.loads(out)["desiredReplicas"] == 5
