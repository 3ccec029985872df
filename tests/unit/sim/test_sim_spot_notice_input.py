"""A spot interruption notice is a duration: a negative one (the nodes gone before their
notice, the drain after the loss) is an error naming the field, like every other scenario
value out of range, never a run on a time line that goes backwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet.sim.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).parents[3]
SCENARIO = ROOT / "examples/scenarios/spot-reclaim.toml"


@pytest.mark.parametrize("seconds", [-300.0, -0.5])
def test_a_negative_notice_is_an_error_naming_the_field(seconds: float) -> None:
    world = {"spot": {"noticeSecondsByCloud": {"azure": seconds}}}
    with pytest.raises(ScenarioError) as raised:
        load_scenario(SCENARIO, overrides={"world": world})
    assert "world.spot.noticeSecondsByCloud.azure" in str(raised.value)


def test_a_zero_notice_is_allowed() -> None:
    world = {"spot": {"noticeSecondsByCloud": {"azure": 0.0}}}
    scenario = load_scenario(SCENARIO, overrides={"world": world})
    assert scenario.spec.world.spot.notice("azure") == 0.0
