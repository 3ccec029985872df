"""The GPU account (``sim/gpu_account.py``) splits every billed GPU-hour into serving,
loading, provisioning and idle, per deployment; ``hack/gpu_hours_breakdown.py`` reads it
from the timeline. Its states must add up to what the world billed, tick by tick, or the
breakdown would hide (or invent) GPU-hours."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelfleet.sim.engine import run_policy
from modelfleet.sim.output import SimulationResult, write_outputs
from modelfleet.sim.report import evaluate
from modelfleet.sim.scenario import load_scenario

ROOT = Path(__file__).parents[3]


def test_states_add_up_to_the_billed_gpu_hours(tmp_path: Path) -> None:
    # The outage at 60 min moves chat's replicas out of eastus: nodes provision, models
    # load, and eastus's nodes bill with no pod on them.
    scenario = load_scenario(ROOT / "examples/scenarios/trace-replay.toml")
    run = run_policy("modelfleet", scenario)
    account = run.gpu_account
    assert account is not None
    per_tick_hours = np.sum([g.sum(axis=1) for g in account.gpus.values()], axis=0) * (
        run.tick / 3600.0
    )
    np.testing.assert_allclose(per_tick_hours, run.gpus, atol=1e-9)
    chat = account.gpus["assistants/chat-llama-8b"]
    serving, loading, provisioning, idle = chat.sum(axis=0) * run.tick / 3600.0
    assert serving > 0 and loading > 0 and provisioning > 0 and idle > 0
    assert serving > loading + provisioning + idle
    # The ready replicas' true capacity is booked whenever a replica serves.
    assert np.all((account.capacity["assistants/chat-llama-8b"] > 0) == (chat[:, 0] > 0))

    report = evaluate(run)
    folder = tmp_path / "out"
    write_outputs(SimulationResult(scenario, [report], 1.0), folder)
    with (folder / "timeline.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {"need:chat-llama-8b", "gpu_idle:chat-llama-8b", "standby:chat-llama-8b"} <= set(rows[0])
    assert all(row["standby:chat-llama-8b"] == "1" for row in rows)
    out = subprocess.run(
        [sys.executable, str(ROOT / "hack/gpu_hours_breakdown.py"), str(folder)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The parts of the breakdown add up to the billed GPU-hours of the measured minutes.
    billed = float(out.split("billed ", 1)[1].split(" ", 1)[0])
    total_row = next(line for line in out.splitlines() if line.startswith("| all |"))
    assert float(total_row.split("|")[-3]) == pytest.approx(billed, abs=0.15)
    assert abs(billed - report.gpu_hours) < 0.1


def _split(row: dict[str, str], name: str) -> dict[str, float]:
    """``split`` of hack/gpu_hours_breakdown.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(
        "gpu_hours_breakdown", ROOT / "hack/gpu_hours_breakdown.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parts: dict[str, float] = module.split(row, name)
    return parts


def test_a_minute_splits_into_need_rounding_headroom_and_standby() -> None:
    # 5 ready H100 replicas of 1 GPU for a need of 2.6 (2.4 on the best GPU), 4 desired + 1
    # standby, one node provisioning, half a GPU idle on average.
    row = {
        "gpus_per_replica:m": "1",
        "serving:m": "5",
        "need:m": "2.6",
        "need_best:m": "2.4",
        "desired:m": "4",
        "standby:m": "1",
        "gpu_loading:m": "0",
        "gpu_provisioning:m": "1",
        "gpu_idle:m": "0.5",
    }
    parts = _split(row, "m")
    assert parts == pytest.approx(
        {
            "needed": 2.4,
            "gpu mix": 0.2,
            "round": 0.4,
            "headroom": 1.0,
            "standby": 1.0,
            "surplus": 0.0,
            "loading": 0.0,
            "provisioning": 1.0,
            "idle": 0.5,
            "short": 0.0,
        }
    )
    # Short of the need: what is ready is all "needed", and the rest is short.
    row.update({"serving:m": "2", "desired:m": "4"})
    parts = _split(row, "m")
    assert parts["needed"] + parts["gpu mix"] == pytest.approx(2.0)
    assert parts["headroom"] == parts["standby"] == parts["round"] == 0.0
    assert parts["short"] == pytest.approx(0.6)
