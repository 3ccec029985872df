"""`modelfleet plan --metrics` with a file observed long before ``--now`` (or before the
current time, the default): the planner ignores signals older than its staleness limit, so
the plan is the plan without metrics. A new user who saved a metrics file yesterday and
left out ``--now`` got desired 0 at zero replicas with no reason at all; now the command
says the signals were ignored, and why."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli import app

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "examples" / "fleet"
MD = ROOT / "examples" / "multicloud-failover.yaml"
runner = CliRunner()


def _metrics(tmp_path: Path, observed: str) -> Path:
    path = tmp_path / "metrics.yaml"
    path.write_text(
        f'observedAt: "{observed}"\n'
        "deployments:\n"
        "  default/llama-8b:\n"
        "    aws-use1: {requestRate: 40.0, ttftP95Ms: 900}\n"
    )
    return path


def _plan(metrics: Path, now: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app, ["plan", "--fleet", str(FLEET), str(MD), "--metrics", str(metrics), "--now", now]
    )
    return result.exit_code, result.stdout, result.stderr


def test_signals_older_than_the_staleness_limit_are_named_as_ignored(tmp_path: Path) -> None:
    code, _, err = _plan(_metrics(tmp_path, "2025-06-01T12:00:00Z"), "2025-06-02T12:00:00Z")
    assert code == 0
    assert "warning" in err and "stale" in err and "--now" in err, err


def test_fresh_signals_bring_no_warning(tmp_path: Path) -> None:
    code, _, err = _plan(_metrics(tmp_path, "2025-06-01T12:00:00Z"), "2025-06-01T12:00:30Z")
    assert code == 0
    assert "stale" not in err, err
