"""``simulate --compare --jobs N``: the policies run in worker processes and give the very
report, timeline and summary they give one after the other."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from modelfleet.sim.output import SimulationResult, print_summary, simulate
from modelfleet.sim.policies import PolicyName
from modelfleet.sim.report import timeline_rows

ROOT = Path(__file__).parents[3]
SCENARIO = ROOT / "examples" / "scenarios" / "spot-reclaim.toml"


def _figures(result: SimulationResult) -> dict[str, Any]:
    data = result.to_json()
    data.pop("wallSeconds")
    return data


def _summary(result: SimulationResult) -> str:
    buffer = io.StringIO()
    print_summary(result, Console(file=buffer, width=120))
    return "\n".join(line for line in buffer.getvalue().splitlines() if "simulated in" not in line)


@pytest.fixture(scope="module")
def serial() -> SimulationResult:
    return simulate(SCENARIO, compare=True, hours=1.25, jobs=1)


@pytest.fixture(scope="module")
def parallel() -> SimulationResult:
    return simulate(SCENARIO, compare=True, hours=1.25, jobs=2)


def test_parallel_report_is_the_serial_report(
    serial: SimulationResult, parallel: SimulationResult
) -> None:
    first, second = _figures(serial), _figures(parallel)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert list(first["policies"]) == ["modelfleet", "static-peak", "hpa-failover", "oracle"]
    # The scenario's reclaim wave is inside the window: the compared figures are not empty.
    assert first["policies"]["modelfleet"]["spotReclaims"][0]["replicasLost"] > 0
    assert _summary(serial) == _summary(parallel)


def test_parallel_timeline_is_the_serial_timeline(
    serial: SimulationResult, parallel: SimulationResult
) -> None:
    for one, other in zip(serial.reports, parallel.reports, strict=True):
        assert one.run.policy == other.run.policy
        assert timeline_rows(one) == timeline_rows(other)


def test_parallel_outputs_are_written(parallel: SimulationResult, tmp_path: Path) -> None:
    from modelfleet.sim.output import write_outputs

    written = write_outputs(parallel, tmp_path)
    assert [p.name for p in written] == ["report.json", "timeline.csv", "report.png"]
    assert json.loads((tmp_path / "report.json").read_text())["events"]


def test_jobs_must_be_positive() -> None:
    from typer.testing import CliRunner

    from modelfleet.cli import app

    result = CliRunner().invoke(app, ["simulate", str(SCENARIO), "--jobs", "0"])
    assert result.exit_code == 2
    assert "--jobs must be 1 or more" in result.output


def test_while_waiting_runs_once_after_all_but_the_longest_policy() -> None:
    from modelfleet.sim.engine import traffic_for
    from modelfleet.sim.runner import run_reports
    from modelfleet.sim.scenario import load_scenario

    scenario = load_scenario(SCENARIO, overrides={"durationHours": 0.25})
    control = scenario.spec.world.control
    offset = int(control.warmup_minutes * 60)
    traffic = traffic_for(scenario, seconds=offset + 900, offset=offset)
    names: list[PolicyName] = ["oracle", "static-peak", "hpa-failover"]
    calls: list[int] = []
    reports = run_reports(
        scenario, names, traffic, jobs=2, while_waiting=lambda: calls.append(len(calls))
    )
    assert calls == [0]
    serial = run_reports(scenario, names, traffic, jobs=1)
    assert [r.run.policy for r in reports] == names
    for one, other in zip(reports, serial, strict=True):
        assert one.to_json() == other.to_json()


def test_parallel_run_writes_every_output(tmp_path: Path) -> None:
    names: tuple[PolicyName, ...] = ("static-peak", "hpa-failover")  # two workers
    result = simulate(SCENARIO, policies=names, hours=0.25, jobs=2, out=tmp_path)
    assert [r.run.policy for r in result.reports] == list(names)
    assert {p.name for p in tmp_path.iterdir()} == {"report.json", "timeline.csv", "report.png"}
