"""``plan --metrics`` and ``simulate SCENARIO`` given a file they cannot use: one error line
naming the file, exit 2, no traceback.

Before: a binary metrics file or scenario ended in a ``UnicodeDecodeError`` traceback, a
folder as scenario in an ``IsADirectoryError`` traceback, a metrics file's YAML error named
``"<unicode string>"`` instead of the file, and a metrics file holding a list said
``: Input should be a valid dictionary or instance of _MetricsFile`` (a private class
name, an empty field).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
BINARY = b"\x00\x01\xff\xfe\x89PNG"


def _plan_with_metrics(metrics: Path) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(
        app,
        [
            "plan",
            "--fleet",
            str(ROOT / "examples/fleet"),
            "--metrics",
            str(metrics),
            "--now",
            "2025-06-01T12:00:30Z",
            str(ROOT / "examples/multicloud-failover.yaml"),
        ],
    )
    return result.exit_code, result.output, result.exception


def _clean_exit(exception: BaseException | None) -> bool:
    return exception is None or isinstance(exception, SystemExit)


def test_a_binary_metrics_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.yaml"
    metrics.write_bytes(BINARY)
    code, output, exception = _plan_with_metrics(metrics)
    assert code == 2 and _clean_exit(exception), output
    assert f"{metrics}: cannot read" in output


def test_a_metrics_yaml_error_names_the_file(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text("deployments: [\n")
    code, output, _ = _plan_with_metrics(metrics)
    assert code == 2, output
    assert f'in "{metrics}", line 2' in output
    assert "<unicode string>" not in output


def test_a_metrics_file_that_is_a_list_says_so_without_type_names(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text("- a\n- b\n")
    code, output, _ = _plan_with_metrics(metrics)
    assert code == 2, output
    assert f"{metrics}: not a metrics file" in output
    assert "_MetricsFile" not in output


@pytest.mark.parametrize("field", ["queuePerReplica", "requestRate", "ttftP95Ms"])
def test_an_infinite_signal_is_named_not_a_traceback(field: str, tmp_path: Path) -> None:
    """``queuePerReplica: .inf`` (>= 0, so it passed) ended in an OverflowError traceback."""
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(
        'observedAt: "2025-06-01T12:00:00Z"\ndeployments:\n  default/llama-8b:\n'
        f"    aws-use1:\n      readyReplicas: 2\n      {field}: .inf\n"
    )
    code, output, exception = _plan_with_metrics(metrics)
    assert code == 2 and _clean_exit(exception), output
    assert f"aws-use1.{field}: Input should be a finite number" in output, output


@pytest.mark.parametrize("kind", ["binary", "folder"])
def test_an_unreadable_scenario_is_named_not_a_traceback(kind: str, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.toml"
    if kind == "binary":
        scenario.write_bytes(BINARY)
    else:
        scenario.mkdir()
    for extra in ([], ["--hours", "1"]):  # --hours loads the scenario in the CLI first
        result = runner.invoke(app, ["simulate", str(scenario), *extra])
        assert result.exit_code == 2 and _clean_exit(result.exception), result.output
        assert f"{scenario}: cannot be read" in result.output
