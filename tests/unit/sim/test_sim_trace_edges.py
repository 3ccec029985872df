"""Trace replay on traces and options a user can get wrong (QA of issue 10).

Found on main: a malformed trace (bad timestamp, non-integer tokens, a short row, an empty
or headerless file, a binary file) passed ``load_scenario`` and ended ``modelfleet
simulate`` in a ``ValueError``/``UnicodeDecodeError`` traceback once the run had started;
a trace whose rows are not in time order lost every request earlier than its first row
(times were measured from the first row, not the earliest); ``repeat = 1000000000`` or
``stretch = 1e-9`` built arrays of billions of plays and ran out of memory.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from modelfleet.cli import app
from modelfleet.sim.scenario import ScenarioError, TraceSpec, load_scenario
from modelfleet.sim.traffic import read_trace, replay

ROOT = Path(__file__).parents[3]
SYNTHETIC = ROOT / "examples" / "traces" / "synthetic-chat.csv"
FLEET = ROOT / "examples" / "scenarios" / "fleet"
CHAT = ROOT / "examples" / "scenarios" / "deployments" / "chat.yaml"
HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"

BAD_TRACES = {
    "bad-time.csv": (HEADER + "2023-11-16 18:00:01.5,10,5\nnot-a-time,3,4\n").encode(),
    "bad-tokens.csv": (HEADER + "2023-11-16 18:00:01.5,ten,5\n").encode(),
    "short-row.csv": (HEADER + "2023-11-16 18:00:01,100,50\n2023-11-16 18:00:02,100\n").encode(),
    "empty.csv": b"",
    "header-only.csv": HEADER.encode(),
    "wrong-columns.csv": b"a,b,c\n1,2,3\n",
    "binary.csv": b"\xff\xfe\x00\x01binary",
}


def scenario(tmp_path: Path, trace: str, extra: str = "", *, hours: float = 0.5) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(
        f'name = "t"\ndurationHours = {hours}\nfleet = ["{FLEET}"]\n[[deployments]]\n'
        f'manifest = "{CHAT}"\n[deployments.traffic.trace]\nfile = "{trace}"\n{extra}'
    )
    return path


@pytest.mark.parametrize("name", sorted(BAD_TRACES))
def test_a_malformed_trace_is_a_scenario_error_naming_the_field(name: str, tmp_path: Path) -> None:
    (tmp_path / name).write_bytes(BAD_TRACES[name])
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario(tmp_path, name))
    text = str(caught.value)
    assert "deployments.0.traffic.trace.file" in text and name in text, text


def test_simulate_with_a_malformed_trace_ends_with_an_error_not_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.csv").write_bytes(BAD_TRACES["bad-time.csv"])
    result = CliRunner().invoke(app, ["simulate", str(scenario(tmp_path, "bad.csv"))])
    assert result.exit_code == 2, result.output
    assert "deployments.0.traffic.trace.file" in result.output
    assert "bad.csv:3" in result.output  # the line at fault
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_rows_out_of_time_order_keep_every_request(tmp_path: Path) -> None:
    trace = tmp_path / "unsorted.csv"
    trace.write_text(
        HEADER + "2023-11-16 18:10:00,100,50\n2023-11-16 18:00:00,100,50\n"
        "2023-11-16 18:05:00,100,50\n2023-11-16 18:20:00,100,50\n"
    )
    times, _, _ = read_trace(str(trace))
    assert list(times) == [0.0, 300.0, 600.0, 1200.0]
    spec = TraceSpec.model_validate({"file": str(trace), "path": str(trace)})
    traffic = replay(spec, seconds=3600, seed=1, name="m")
    assert int(traffic.arrivals.sum()) == 4
    assert [int(s) for s in np.flatnonzero(traffic.arrivals)] == [0, 300, 600, 1200]


def test_a_huge_repeat_plays_only_what_fits_in_the_run() -> None:
    spec = TraceSpec.model_validate(
        {"file": str(SYNTHETIC), "path": str(SYNTHETIC), "repeat": 1_000_000_000}
    )
    looped = TraceSpec.model_validate({"file": str(SYNTHETIC), "path": str(SYNTHETIC), "repeat": 0})
    started = time.perf_counter()
    traffic = replay(spec, seconds=3600 + 600, seed=1, name="m", offset=600)
    assert time.perf_counter() - started < 30  # generous: it was minutes and GiBs
    expected = replay(looped, seconds=3600 + 600, seed=1, name="m", offset=600)
    assert np.array_equal(traffic.arrivals, expected.arrivals)


@pytest.mark.parametrize(
    ("extra", "field"),
    [("stretch = 1e-9", "stretch"), ("rateScale = 1000\nrepeat = 0", "rateScale")],
)
def test_a_replay_too_large_to_simulate_is_refused_naming_the_options(
    extra: str, field: str, tmp_path: Path
) -> None:
    # 24 h of the 20-minute synthetic trace looped at 1,000x: ~190 million requests.
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario(tmp_path, str(SYNTHETIC), extra, hours=24))
    text = str(caught.value)
    assert "deployments.0.traffic.trace" in text and field in text, text


def test_a_large_but_feasible_replay_is_accepted(tmp_path: Path) -> None:
    loaded = load_scenario(scenario(tmp_path, str(SYNTHETIC), "rateScale = 100\nrepeat = 0"))
    assert loaded.spec.deployments[0].traffic.trace is not None
