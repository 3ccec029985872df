"""A trace shifted to or past the end of the scenario (a breaker's find, brk15a): ``shift =
"2h"`` in a 1 h scenario ran all four policies on 0 requests without a word ("0 requests" in
the title the only hint), and ``shift = 1e300`` was refused as a replay too large to
simulate, "raise stretch or lower rateScale", naming neither the shift nor the end. Like an
event after the end, it is now an error naming the field; a run shortened with ``--hours``
simply does not reach the trace, as it does not reach later events."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet.sim.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).parents[3]
SYNTHETIC = ROOT / "examples" / "traces" / "synthetic-chat.csv"
FLEET = ROOT / "examples" / "scenarios" / "fleet"
CHAT = ROOT / "examples" / "scenarios" / "deployments" / "chat.yaml"


def _scenario(tmp_path: Path, shift: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(
        f'name = "t"\ndurationHours = 1\nfleet = ["{FLEET}"]\n[[deployments]]\n'
        f'manifest = "{CHAT}"\n[deployments.traffic.trace]\nfile = "{SYNTHETIC}"\n'
        f"shift = {shift}\n"
    )
    return path


@pytest.mark.parametrize("shift", ['"2h"', '"60m"', "1e300"])
def test_a_shift_past_the_end_is_an_error_naming_the_shift(tmp_path: Path, shift: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_scenario(tmp_path, shift))
    text = str(caught.value)
    assert "deployments.0.traffic.trace.shift" in text, text
    assert "at or after the end of the scenario (1 h)" in text, text
    assert "raise stretch" not in text, text


def test_a_shift_inside_the_run_is_replayed(tmp_path: Path) -> None:
    scenario = load_scenario(_scenario(tmp_path, '"59m"'))
    assert scenario.spec.deployments[0].traffic.trace is not None


def test_a_run_shortened_with_hours_does_not_reach_the_trace(tmp_path: Path) -> None:
    path = _scenario(tmp_path, '"30m"')
    load_scenario(path, overrides={"durationHours": 0.25})  # --hours 0.25: no error
