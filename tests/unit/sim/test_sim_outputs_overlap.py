"""The outputs of ``simulate --out`` made beside the longest run and beside each other:
timeline rows made early for the finished policies give the very timeline.csv, and
report.png drawn in a forked child is the picture drawn here; a failed drawing raises.

The fork path only runs in a process with one thread, so it is checked in a fresh
interpreter (a test runner may hold threads of its own)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelfleet.sim.output import SimulationResult, simulate, write_outputs
from modelfleet.sim.report import timeline_rows

ROOT = Path(__file__).parents[3]
SCENARIO = ROOT / "examples" / "scenarios" / "spot-reclaim.toml"


@pytest.fixture(scope="module")
def result() -> SimulationResult:
    return simulate(SCENARIO, policies=("static-peak", "hpa-failover"), hours=0.25, jobs=1)


def test_rows_made_early_give_the_same_timeline(result: SimulationResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path / "plain")
    early = {result.reports[0].run.policy: timeline_rows(result.reports[0])}
    write_outputs(result, tmp_path / "early", rows=early)
    plain = (tmp_path / "plain" / "timeline.csv").read_bytes()
    assert plain.count(b"\n") > 2 * 15  # both policies' minutes
    assert (tmp_path / "early" / "timeline.csv").read_bytes() == plain
    assert (tmp_path / "early" / "report.json").read_text() == (
        tmp_path / "plain" / "report.json"
    ).read_text()


_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from modelfleet.sim.output import plot_in_child, simulate
    from modelfleet.sim.plot import plot_report

    assert threading.active_count() == 1
    result = simulate(Path(sys.argv[1]), policies=("static-peak",), hours=0.25, jobs=1)
    out = Path(sys.argv[2])
    wait = plot_in_child(result.reports, out / "child.png")
    plot_report(result.reports, out / "here.png")
    wait()
    try:
        plot_in_child(result.reports, out / "missing" / "x.png")()
    except RuntimeError as exc:
        print("failed:", exc)
    """
)


def test_png_drawn_in_a_forked_child_is_the_png_drawn_here(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(SCENARIO), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    child = (tmp_path / "child.png").read_bytes()
    assert child[:8] == b"\x89PNG\r\n\x1a\n"
    assert child == (tmp_path / "here.png").read_bytes()
    assert "failed: drawing" in done.stdout
    assert "exit code 1" in done.stdout
