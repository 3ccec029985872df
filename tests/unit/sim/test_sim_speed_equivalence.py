"""The simulator's speed work changes no figure: each cheaper path gives the very floats of
the path it replaced (kept here as the reference), on real runs.

- ``GpuAccount.record`` sums a tick's cells in Python floats and writes one row per
  deployment, where it updated the arrays pod by pod, and books the node counts the
  world's sync read (``FleetWorld.synced_counts``), where it asked each provider again;
- the report's request TTFTs take the traffic-only draws made beforehand
  (``report.prepare``, what ``simulate --compare`` makes in the parent process while the
  modelfleet run runs) and skip the class pick when a deployment has one GPU class.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from modelfleet.sim.engine import PolicyRun, run_policy
from modelfleet.sim.fleet import FleetWorld, PoolKey
from modelfleet.sim.gpu_account import GpuAccount
from modelfleet.sim.report import _request_ttfts, evaluate, prepare
from modelfleet.sim.scenario import load_scenario
from modelfleet.sim.traffic import Traffic

ROOT = Path(__file__).parents[3]


def _record_per_pod(account: GpuAccount, world: FleetWorld, k: int, now: float) -> None:
    """``GpuAccount.record`` as it was: one numpy scalar update per pod and cell."""
    for twin in world.twins():
        for pool, (_, nodes) in twin.provider.node_counts().items():
            offering = twin.offerings.get(pool[0])
            if offering is None or nodes == 0:
                continue
            billed = float(nodes * offering.gpus_per_node)
            pods = [] if twin.down else twin.pods.get(pool, [])
            waiting: dict[str, float] = defaultdict(float)
            bound = 0.0
            for pod in pods:
                row = account.gpus.get(pod.md)
                if row is None:
                    continue
                account._holder[(twin.name, *pool)] = pod.md
                if pod.scheduled is None:
                    waiting[pod.md] += pod.gpus
                    continue
                bound += pod.gpus
                if pod.ready(now):
                    row[k, 0] += pod.gpus
                    account.capacity[pod.md][k] += account._true.get((pod.md, offering.gpu), 0.0)
                else:
                    row[k, 1] += pod.gpus
            free = max(0.0, billed - bound)
            for md, n in sorted(waiting.items()):
                booked = min(n, free)
                account.gpus[md][k, 2] += booked
                free -= booked
            if free > 0:
                holder = account._holder.get((twin.name, *pool), "")
                account.gpus[holder][k, 3] += free


def test_gpu_account_rows_are_the_per_pod_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    # The outage at 60 min: pods wait for nodes, models load, eastus bills idle nodes.
    scenario = load_scenario(ROOT / "examples/scenarios/trace-replay.toml")
    references: dict[int, GpuAccount] = {}
    new_record = GpuAccount.record

    def both(
        self: GpuAccount,
        world: FleetWorld,
        k: int,
        now: float,
        counts: Mapping[str, dict[PoolKey, tuple[int, int]]] | None = None,
    ) -> None:
        reference = references.get(id(self))
        if reference is None:
            reference = references[id(self)] = GpuAccount(
                gpus={key: np.zeros_like(a) for key, a in self.gpus.items()},
                capacity={key: np.zeros_like(a) for key, a in self.capacity.items()},
                best_capacity=self.best_capacity,
                gpus_per_replica=self.gpus_per_replica,
                standby=self.standby,
                _true=self._true,
            )
        # The run passes the sync's node counts; the reference asks the providers now.
        assert counts is not None
        new_record(self, world, k, now, counts)
        _record_per_pod(reference, world, k, now)

    monkeypatch.setattr(GpuAccount, "record", both)
    run = run_policy("modelfleet", scenario)
    account = run.gpu_account
    assert account is not None
    reference = references[id(account)]
    states = np.sum([a.sum(axis=0) for a in account.gpus.values()], axis=0)
    assert np.all(states > 0)  # serving, loading, provisioning and idle all booked
    for key, gpus in account.gpus.items():
        assert gpus.tobytes() == reference.gpus[key].tobytes(), key
    for key, capacity in account.capacity.items():
        assert capacity.tobytes() == reference.capacity[key].tobytes(), key
    assert account._holder == reference._holder


def _ttfts_before(
    run: PolicyRun, key: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The report's request TTFTs as they were computed before (every class picked)."""
    load = run.load.deployments[key]
    begin, end = run.offset, load.seconds
    arrivals = load.traffic.arrivals[begin:end]
    total = int(arrivals.sum())
    second = np.repeat(np.arange(begin, end), arrivals)
    prompts = load.traffic.prompts_between(begin, end)
    rng = np.random.default_rng(load.traffic.seed + 2)
    residual, pick, fail = rng.random(total), rng.random(total), rng.random(total)
    ready = load.ready[begin:end].sum(axis=1).astype(np.float64)
    weight = ready * np.array(load.mu)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.cumsum(weight, axis=1) / weight.sum(axis=1, keepdims=True)
        failed_fraction = np.where(arrivals > 0, load.failed[begin:end] / arrivals, 0.0)
    share = np.nan_to_num(share, nan=1.0)
    local = second - begin
    cls = np.zeros(total, dtype=np.intp)
    for g in range(share.shape[1]):
        cls += pick > share[local, g]
    cls = np.minimum(cls, len(load.classes) - 1)
    prefill = np.array([m.prefill_rate for m in load.models])
    chunk = np.array([float(m.chunk_tokens) for m in load.models])
    tau = load.tau[second, cls]
    steps = np.maximum(1.0, np.ceil(prompts / chunk[cls])) * tau
    ttft = load.wait[second] + residual * tau + steps + prompts / prefill[cls]
    ttft[fail < failed_fraction[local]] = np.inf
    return ttft, local


@pytest.fixture(scope="module")
def short_run() -> tuple[PolicyRun, dict[str, Traffic]]:
    # chat may run on one GPU class, code and batch on two: both ways of picking a class.
    scenario = load_scenario(
        ROOT / "examples/scenarios/default.toml", overrides={"durationHours": 0.5, "seed": 3}
    )
    run = run_policy("modelfleet", scenario)
    traffic = {key: d.traffic for key, d in run.load.deployments.items()}
    assert sorted(len(d.classes) for d in run.load.deployments.values()) == [1, 2, 2]
    return run, traffic


def test_request_ttfts_are_the_ones_before(short_run: tuple[PolicyRun, dict[str, Traffic]]) -> None:
    run, traffic = short_run
    prepared = prepare(run.scenario, traffic, run.policy)
    for key in run.load.deployments:
        expected, expected_local = _ttfts_before(run, key)
        assert len(expected) > 0
        for draws in (None, prepared.draws[key]):
            ttft, local = _request_ttfts(run, key, draws)
            assert ttft.tobytes() == expected.tobytes(), key
            assert local.tobytes() == expected_local.tobytes(), key


def test_prepared_evaluation_is_the_evaluation(
    short_run: tuple[PolicyRun, dict[str, Traffic]],
) -> None:
    run, traffic = short_run
    plain = evaluate(run)
    prepared = evaluate(run, prepare(run.scenario, traffic, run.policy))
    assert json.dumps(plain.to_json(), sort_keys=True) == json.dumps(
        prepared.to_json(), sort_keys=True
    )
    assert all(d.forecast for d in prepared.deployments.values())  # modelfleet forecasts
    for key, figures in plain.deployments.items():
        other = prepared.deployments[key]
        assert figures.minute_p95_ms.tobytes() == other.minute_p95_ms.tobytes()
    # Draws made for another window (a scenario of another length) are not used.
    spec = run.scenario.spec.model_copy(update={"duration_hours": 0.25})
    stale = prepare(replace(run.scenario, spec=spec), traffic, run.policy)
    assert stale.draws and all(d.end < run.load.seconds for d in stale.draws.values())
    assert evaluate(run, stale).to_json() == plain.to_json()
