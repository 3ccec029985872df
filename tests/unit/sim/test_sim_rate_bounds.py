"""A generated traffic curve too large to simulate is an error naming the field, as an
oversized trace replay already was (``MAX_REPLAYED_REQUESTS``).

Found on br3: ``peakRps = 1e6`` for a 1 h scenario ran ``modelfleet simulate`` past 10 GB
of memory (the report keeps one entry per request), and a burst ``multiplier = 1000`` on it
ended in a numpy ``MemoryError`` traceback (97 GiB asked for); a rate beyond what a
Poisson draw takes ended in ``ValueError: lam value too large``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app
from modelfleet.sim.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).parents[3]
FLEET = ROOT / "examples" / "scenarios" / "fleet"
CHAT = ROOT / "examples" / "scenarios" / "deployments" / "chat.yaml"


def _scenario(tmp_path: Path, traffic: str, events: str = "") -> Path:
    path = tmp_path / "s.toml"
    path.write_text(
        f'name = "t"\ndurationHours = 1\nfleet = ["{FLEET}"]\n{events}[[deployments]]\n'
        f'manifest = "{CHAT}"\n[deployments.traffic]\n{traffic}\n'
    )
    return path


@pytest.mark.parametrize(
    ("traffic", "events"),
    [
        ("peakRps = 1000000", ""),
        ("peakRps = 1e308", ""),
        ('peakRps = 100\nbursts = [{at = "1m", durationMinutes = 5, multiplier = 1e6}]', ""),
        (
            "peakRps = 100",
            '[[events]]\ntype = "trafficBurst"\nat = "10m"\ndurationMinutes = 30\n'
            "multiplier = 1e6\n",
        ),
    ],
)
def test_traffic_too_large_to_simulate_is_an_error_naming_the_field(
    tmp_path: Path, traffic: str, events: str
) -> None:
    path = _scenario(tmp_path, traffic, events)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)  # before anything runs: no memory taken, no traceback
    text = str(caught.value)
    assert "deployments.0.traffic" in text and "requests" in text, text
    result = CliRunner().invoke(app, ["simulate", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_large_but_feasible_curve_is_accepted(tmp_path: Path) -> None:
    scenario = load_scenario(_scenario(tmp_path, "peakRps = 2000"))
    assert scenario.spec.deployments[0].traffic.peak_rps == 2000
