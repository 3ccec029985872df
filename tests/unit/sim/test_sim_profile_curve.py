"""The simulator's measured profiles carry a latency-vs-load sweep with the same drawn error
as their capacity point (sim/profiles.py), so the online correction can recover that error
from the world's own latency: what a real ``modelfleet profile`` run off by ``e`` gives."""

from __future__ import annotations

import pytest

from modelfleet.core.latency_curve import curve_correction, curve_from
from modelfleet.sim.profiles import SWEEP_LOADS, sweep, true_capacity
from modelfleet.sim.serving import Workload, replica_model
from modelfleet.sim.world import World

CODE = Workload(prompt_mean=1500, output_mean=120)


@pytest.mark.parametrize(("gpu", "error"), [("H100", 0.12), ("A100", -0.1), ("L40S", 0.0)])
def test_the_sweep_lets_the_correction_recover_the_drawn_error(gpu: str, error: float) -> None:
    model = replica_model(World(), gpu, CODE)
    truth = true_capacity(model, ttft_ms=1500.0, tpot_ms=50.0, prompt_p95=4000.0)
    assert truth > 0
    points = sweep(model, truth=truth, factor=1 + error, prompt_p95=4000.0)
    assert len(points) == len(SWEEP_LOADS)
    # Recorded at rates carrying the error; latency grows with the rate.
    assert points[-1].requests_per_second == pytest.approx(
        SWEEP_LOADS[-1] * truth * (1 + error), rel=1e-3
    )
    assert [p.tpot_p95_ms for p in points] == sorted(p.tpot_p95_ms or 0.0 for p in points)
    curve = curve_from(
        ((p.requests_per_second, p.ttft_p95_ms, p.tpot_p95_ms) for p in points),
        truth * (1 + error),
    )
    # The world serving 0.8 x its true capacity per replica: the profile says the load is
    # 0.8 / (1 + e) of capacity; the observed step time says 0.8: the factor is 1 / (1 + e).
    lam = 0.8 * truth
    factor = curve_correction(
        curve,
        load=lam / (truth * (1 + error)),
        tpot_ms=model.step_time(lam) * 1000.0,
        ttft_ms=None,
    )
    assert factor == pytest.approx(1 / (1 + error), rel=0.03)
