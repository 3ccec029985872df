"""Common random numbers in the simulated world (``sim.streams``; docs/simulation.md
"Nodes and pods"): every source of randomness has its own stream, keyed by what it belongs
to, so drawing from one key never moves another key's draws, the draws are the same in
every process, and one deployment's decisions leave another deployment's run untouched
where they share no pool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from modelfleet.sim.engine import run_policy
from modelfleet.sim.report import evaluate, timeline_rows
from modelfleet.sim.scenario import load_scenario
from modelfleet.sim.streams import KeyedSampler, provisioning_sampler, stream
from modelfleet.sim.world import Distribution

EXAMPLES = Path(__file__).parents[3] / "examples" / "scenarios"
DIST = Distribution(median=120.0, p90=200.0)


def test_a_stream_is_its_key_s_alone() -> None:
    alone = KeyedSampler(5, "start", DIST)
    mixed = KeyedSampler(5, "start", DIST)
    expected = [alone.draw("c1", "batch/sum") for _ in range(6)]
    got = []
    for _ in range(6):
        # Other keys drawn in between, as other deployments would.
        mixed.draw("c1", "assistants/chat")
        mixed.draw("c2", "batch/sum")
        got.append(mixed.draw("c1", "batch/sum"))
        mixed.draw("c1", "assistants/chat")
    assert got == expected
    assert len(set(expected)) == 6, "a stream's draws vary"
    assert expected != [KeyedSampler(5, "start", DIST).draw("c2", "batch/sum") for _ in range(6)]
    assert expected != [KeyedSampler(6, "start", DIST).draw("c1", "batch/sum") for _ in range(6)]


def test_each_pool_has_its_own_provisioning_stream() -> None:
    one = provisioning_sampler(3, "aws-east", DIST)
    other = provisioning_sampler(3, "aws-east", DIST)
    spot = [one("p5.48xlarge", "Spot") for _ in range(4)]
    for _ in range(3):
        other("p5.48xlarge", "OnDemand")
        other("g6e.xlarge", "Spot")
    assert [other("p5.48xlarge", "Spot") for _ in range(4)] == spot
    assert provisioning_sampler(3, "aws-west", DIST)("p5.48xlarge", "Spot") != spot[0]


def test_a_fixed_distribution_draws_its_median() -> None:
    fixed = KeyedSampler(1, "start", Distribution(median=90.0, p90=90.0))
    assert [fixed.draw("c", "d") for _ in range(3)] == [90.0, 90.0, 90.0]


def test_the_draws_are_the_same_in_another_process() -> None:
    here = stream(7, "provisioning/gcp-us/a2-ultragpu-1g/Spot").random(5).tolist()
    code = (
        "import json; from modelfleet.sim.streams import stream;"
        "print(json.dumps(stream(7, 'provisioning/gcp-us/a2-ultragpu-1g/Spot').random(5).tolist()))"
    )
    # A fresh interpreter has another hash salt: the keys must not go through hash().
    there = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": ":".join(sys.path)},
    ).stdout
    assert json.loads(there) == here
    assert np.all(np.diff(here) != 0)


def _scenario(tmp_path: Path, batch_max: int) -> Path:
    batch = (EXAMPLES / "deployments" / "batch.yaml").read_text()
    assert "replicas: {min: 1, max: 16}" in batch
    manifest = tmp_path / f"batch-{batch_max}.yaml"
    manifest.write_text(batch.replace("max: 16}", f"max: {batch_max}}}"))
    path = tmp_path / f"crn-{batch_max}.toml"
    # chat runs on H100s only, batch on L40S / A100-80GB: they share no node pool. chat's
    # burst makes it grow (new nodes and pod starts); batch's traffic needs more than 2
    # replicas, so its replicas.max changes its own node requests and pod starts.
    path.write_text(
        f"""
name = "crn"
seed = 2
durationHours = 1
startHour = 10
fleet = ["{(EXAMPLES / "fleet").as_posix()}"]

[[deployments]]
manifest = "{(EXAMPLES / "deployments" / "chat.yaml").as_posix()}"
[deployments.traffic]
peakRps = 150
troughRps = 30
peakHour = 15
bursts = [{{ at = "10:15", durationMinutes = 20, multiplier = 1.6 }}]

[[deployments]]
manifest = "{manifest.as_posix()}"
[deployments.traffic]
peakRps = 12
troughRps = 6
peakHour = 10
shape = 1.0
"""
    )
    return path


def _columns(rows: list[dict[str, Any]], name: str) -> list[list[Any]]:
    return [[v for k, v in row.items() if k.endswith(f":{name}")] for row in rows]


def test_one_deployment_s_decisions_leave_another_s_run_as_it_was(tmp_path: Path) -> None:
    runs = {
        n: timeline_rows(evaluate(run_policy("modelfleet", load_scenario(_scenario(tmp_path, n)))))
        for n in (2, 16)
    }
    batch = {n: _columns(rows, "summarize-mistral-7b") for n, rows in runs.items()}
    assert batch[2] != batch[16], "the batch deployment's decisions differ"
    assert max(r[3] for r in batch[16]) > 2, "batch grew past 2 replicas with max 16"
    chat = {n: _columns(rows, "chat-llama-8b") for n, rows in runs.items()}
    ready = [r[3] for r in chat[16]]
    assert max(ready) > min(ready), "chat grew in the burst: it drew new nodes and starts"
    assert chat[2] == chat[16], "chat's minutes do not depend on batch's decisions"
