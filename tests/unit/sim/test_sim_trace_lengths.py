"""A replayed trace's own request lengths, and an oracle that meets the SLO on a trace
(docs/simulation.md, "Traffic from a trace" and "Measured: the Azure code trace").

A trace's prompt lengths are bounded by its model's context window; the log-normal fit
of its rows is not (the Azure code trace: p95 7,303 and max 7,437 tokens, where the fit
says p95 ~13,800 with no bound). The serving model, the report's per-request TTFTs and the
oracle's capacity read the trace's own lengths; the oracle sizes each minute for its
highest expected rate, which the serving model's queue follows second by second."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from modelfleet.sim.engine import run_policy
from modelfleet.sim.report import _request_ttfts, evaluate
from modelfleet.sim.scenario import TraceSpec, load_scenario
from modelfleet.sim.traffic import generate, read_trace, replay

ROOT = Path(__file__).parents[3]
SCENARIOS = ROOT / "examples" / "scenarios"
AZURE = ROOT.parent / "shared" / "traces" / "azure-llm-2023-code.csv"


def _trace(tmp_path: Path) -> TraceSpec:
    """Three requests: a long one, then two short ones ten seconds later."""
    path = tmp_path / "t.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:00:00.000,7000,10\n"
        "2023-11-16 18:00:10.000,100,20\n"
        "2023-11-16 18:00:10.500,300,30\n"
    )
    return TraceSpec.model_validate({"file": str(path), "path": str(path)})


def test_replay_keeps_each_requests_own_lengths_in_arrival_order(tmp_path: Path) -> None:
    traffic = replay(_trace(tmp_path), seconds=60, seed=1, name="m")
    assert traffic.request_prompts is not None
    assert traffic.request_prompts.tolist() == [7000, 100, 300]
    assert traffic.prompts_between(0, 5).tolist() == [7000.0]
    assert traffic.prompts_between(10, 60).tolist() == [100.0, 300.0]
    assert traffic.prompt_mean == pytest.approx(2466.67, abs=0.01)
    assert traffic.output_mean == pytest.approx(20.0)
    assert traffic.prompt_p95 == pytest.approx(float(np.percentile([7000, 100, 300], 95)))
    cdf = traffic.prompt_cdf(np.array([50.0, 100.0, 6999.0, 7000.0]))
    assert cdf.tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])


def test_scaled_and_repeated_replays_keep_lengths_aligned_with_arrivals(tmp_path: Path) -> None:
    spec = _trace(tmp_path).model_copy(update={"rate_scale": 2.0, "repeat": 2})
    traffic = replay(spec, seconds=120, seed=1, name="m")
    assert traffic.request_prompts is not None
    assert len(traffic.request_prompts) == int(traffic.arrivals.sum()) == 12
    # The first second holds the two copies of the long prompt, nothing else.
    assert traffic.prompts_between(0, 1).tolist() == [7000.0, 7000.0]


def test_drawn_traffic_keeps_its_log_normal_lengths() -> None:
    scenario = load_scenario(SCENARIOS / "default.toml", overrides={"durationHours": 1})
    spec = scenario.spec.deployments[0].traffic
    traffic = generate(spec, seconds=600, seed=1, name="x", start_hour=0)
    assert traffic.request_prompts is None
    median, sigma = spec.prompt_tokens.median, spec.prompt_tokens.sigma
    assert traffic.prompt_p95 == pytest.approx(median * math.exp(1.645 * sigma))
    count = int(traffic.arrivals[100:200].sum())
    assert np.array_equal(traffic.prompts_between(100, 200), traffic.prompts(count))


def test_the_synthetic_trace_reports_ttfts_from_its_own_prompts() -> None:
    scenario = load_scenario(SCENARIOS / "trace-replay.toml", overrides={"durationHours": 0.5})
    run = run_policy("static-peak", scenario)
    key = next(iter(run.load.deployments))
    traffic = run.load.deployments[key].traffic
    _, prompts, _ = read_trace(str(scenario.spec.deployments[0].traffic.trace.path))  # type: ignore[union-attr]
    assert traffic.request_prompts is not None
    assert int(traffic.request_prompts.max()) <= int(prompts.max())
    ttft, _ = _request_ttfts(run, key)
    assert len(ttft) == int(traffic.arrivals[run.offset :].sum())


@pytest.mark.skipif(not AZURE.is_file(), reason=f"the Azure code trace is not at {AZURE}")
def test_the_oracle_meets_the_slo_on_the_azure_code_trace() -> None:
    """The yardstick must meet the SLO wherever a policy can (static peak does here)."""
    scenario = load_scenario(SCENARIOS / "azure-code.toml")
    run = run_policy("oracle", scenario)
    report = evaluate(run)
    assert report.slo_attainment >= 0.99, report.slo_attainment
    traffic = next(iter(run.load.deployments.values())).traffic
    assert 7_000 < traffic.prompt_p95 < 7_500  # the trace's own p95, not the fit's ~13,800
