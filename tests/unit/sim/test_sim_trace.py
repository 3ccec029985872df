"""Trace replay (docs/simulation.md, "Traffic from a trace"): the Azure LLM inference trace
format, and shift / stretch / rateScale / repeat, on the small synthetic trace the
repository ships; the real Azure code trace from ../shared when it is there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelfleet.sim.scenario import ScenarioError, TraceSpec, load_scenario
from modelfleet.sim.traffic import read_trace, replay

ROOT = Path(__file__).parents[3]
SYNTHETIC = ROOT / "examples" / "traces" / "synthetic-chat.csv"
AZURE = ROOT.parent / "shared" / "traces" / "azure-llm-2023-code.csv"


def spec(**kw: object) -> TraceSpec:
    return TraceSpec.model_validate({"file": str(SYNTHETIC), "path": str(SYNTHETIC), **kw})


def test_the_trace_is_read_in_time_order_with_its_lengths() -> None:
    times, prompts, outputs = read_trace(str(SYNTHETIC))
    rows = SYNTHETIC.read_text().splitlines()[1:]
    assert int(outputs[-1]) >= 1
    assert len(times) == len(rows)
    assert times[0] == 0.0 and np.all(np.diff(times) >= 0)
    assert int(prompts[0]) == int(rows[0].split(",")[1])
    assert 18 * 60 < times[-1] < 20 * 60


def test_replay_keeps_every_request_and_shift_stretch_scale_repeat_move_them() -> None:
    n = len(read_trace(str(SYNTHETIC))[0])
    base = replay(spec(), seconds=3600, seed=1, name="m")
    assert int(base.arrivals.sum()) == n
    assert base.arrivals[: 20 * 60].sum() == n  # all within the first 20 minutes
    shifted = replay(spec(shift="10m"), seconds=3600, seed=1, name="m")
    assert shifted.arrivals[:600].sum() == 0 and int(shifted.arrivals.sum()) == n
    assert np.array_equal(shifted.arrivals[600 : 600 + 1200], base.arrivals[:1200])
    stretched = replay(spec(stretch=2.0), seconds=3600, seed=1, name="m")
    assert int(stretched.arrivals.sum()) == n and stretched.arrivals[20 * 60 :].sum() > 0
    doubled = replay(spec(rate_scale=2.0), seconds=3600, seed=1, name="m")
    assert int(doubled.arrivals.sum()) == 2 * n
    halved = replay(spec(rate_scale=0.5), seconds=3600, seed=1, name="m")
    assert 0.4 * n < int(halved.arrivals.sum()) < 0.6 * n
    looped = replay(spec(repeat=0), seconds=3600, seed=1, name="m")
    assert int(looped.arrivals.sum()) >= 2.9 * n  # 3 plays fit in an hour
    twice = replay(spec(repeat=2), seconds=3600, seed=1, name="m")
    assert int(twice.arrivals.sum()) == 2 * n
    # Lengths: the log-normal fit of the trace's rows.
    _, prompts, _ = read_trace(str(SYNTHETIC))
    assert base.prompt_median == pytest.approx(float(np.median(prompts)), rel=0.05)


def test_the_warm_up_replays_the_end_of_the_trace() -> None:
    """Before the scenario start (the unmeasured warm-up) the trace's end plays, so every
    policy has its capacity up when measurement begins; the measured part is unchanged."""
    times, _, _ = read_trace(str(SYNTHETIC))
    n = len(times)
    warm = replay(spec(), seconds=3600 + 600, seed=1, name="m", offset=600)
    cold = replay(spec(), seconds=3600, seed=1, name="m")
    assert np.array_equal(warm.arrivals[600:], cold.arrivals)
    tail = int((times >= times[-1] + 1.0 - 600).sum())  # requests of the trace's last 600 s
    assert warm.arrivals[:600].sum() == tail > 0
    assert int(warm.arrivals[600:].sum()) == n


def test_a_missing_trace_file_names_the_field(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    fleet = ROOT / "examples" / "scenarios" / "fleet"
    md = ROOT / "examples" / "scenarios" / "deployments" / "chat.yaml"
    scenario.write_text(
        f'name = "t"\nfleet = ["{fleet}"]\n[[deployments]]\nmanifest = "{md}"\n'
        '[deployments.traffic.trace]\nfile = "nope.csv"\n'
    )
    with pytest.raises(ScenarioError, match=r"deployments\.0\.traffic\.trace\.file"):
        load_scenario(scenario)


@pytest.mark.skipif(
    not AZURE.exists(),
    reason=f"the real Azure trace is not at {AZURE} (../shared beside the checkout, as on CI)",
)
def test_the_bundled_azure_scenario_replays_the_real_trace() -> None:
    scenario = load_scenario(ROOT / "examples" / "scenarios" / "azure-code.toml")
    trace = scenario.spec.deployments[0].traffic.trace
    assert trace is not None and trace.path is not None
    times, _, _ = read_trace(trace.path)
    assert len(times) == 8819  # the README's count
    traffic = replay(trace, seconds=2 * 3600 + 1800, seed=1, name="x", offset=1800)
    assert 3.6 * 2 * 8819 < traffic.arrivals[1800:].sum() < 4.4 * 2 * 8819
    assert traffic.prompt_median > 1000  # code completion: long prompts
