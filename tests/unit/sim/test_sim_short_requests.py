"""A well-formed trace of short requests (QA br9).

Found on main 6465787: replaying a sorted trace of ~100-token prompts and outputs at 2
requests/s ended ``modelfleet simulate`` in a pydantic ``ValidationError`` traceback
("curve.7.ttftP95Ms is below curve.6.ttftP95Ms"). When the TTFT objective does not bind,
the true capacity is 0.95 x the replica's saturation rate, so the simulated profile sweep's
last two points (1.125x and 1.25x) lie past saturation; there the sweep divided the
clamped batch by the unclamped rate, so the queue wait, and the TTFT p95, fell as the rate
rose: a curve the API refuses.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.api.profiles import ProfileMeasurement
from modelfleet.cli import app
from modelfleet.sim.profiles import sweep, true_capacity
from modelfleet.sim.serving import Workload, replica_model
from modelfleet.sim.world import World

ROOT = Path(__file__).parents[3]
FLEET = ROOT / "examples" / "scenarios" / "fleet"
CHAT = ROOT / "examples" / "scenarios" / "deployments" / "chat.yaml"
SHORT = Workload(prompt_mean=100, output_mean=100)


@pytest.mark.parametrize("gpu", ["H100", "A100-80GB", "L40S"])
def test_the_sweep_past_saturation_never_falls(gpu: str) -> None:
    model = replica_model(World(), gpu, SHORT)
    truth = true_capacity(model, ttft_ms=200.0, tpot_ms=None, prompt_p95=119.0)
    points = sweep(model, truth=truth, factor=1.0, prompt_p95=119.0)
    # The sweep reaches past saturation here (the case that failed) ...
    assert 1.25 * truth > model.mu_max
    ttfts = [p.ttft_p95_ms or 0.0 for p in points]
    assert ttfts == sorted(ttfts), ttfts
    # ... and the API accepts it as a measured profile's curve.
    ProfileMeasurement(requests_per_second=round(truth, 3), curve=points)


def test_simulate_replays_a_trace_of_short_requests(tmp_path: Path) -> None:
    rng = random.Random(1)
    rows, t = ["TIMESTAMP,ContextTokens,GeneratedTokens"], 0.0
    while t < 600:
        t += rng.expovariate(2.0)
        s = 18 * 3600 + t
        stamp = f"2023-11-16 {int(s // 3600):02d}:{int(s % 3600 // 60):02d}:{s % 60:09.6f}"
        rows.append(f"{stamp},{rng.randint(80, 120)},{rng.randint(80, 120)}")
    (tmp_path / "short.csv").write_text("\n".join(rows) + "\n")
    path = tmp_path / "s.toml"
    path.write_text(
        f'name = "short"\ndurationHours = 0.2\nfleet = ["{FLEET}"]\n[[deployments]]\n'
        f'manifest = "{CHAT}"\n[deployments.traffic.trace]\nfile = "short.csv"\n'
    )
    result = CliRunner().invoke(app, ["simulate", str(path), "--policy", "modelfleet"])
    assert result.exception is None, result.output
    assert result.exit_code == 0, result.output
    assert "modelfleet met the SLO" in result.output
