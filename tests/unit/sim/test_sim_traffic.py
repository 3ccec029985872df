"""Traffic: deterministic for a seed, diurnal with the peak where it is declared, bursts."""

from __future__ import annotations

import numpy as np
import pytest

from modelfleet.sim.scenario import Burst, TrafficSpec
from modelfleet.sim.traffic import generate

SPEC = TrafficSpec(peak_rps=100, trough_rps=20, peak_hour=15)
DAY = 24 * 3600


def test_same_seed_same_requests_other_seed_other_requests() -> None:
    a = generate(SPEC, seconds=DAY, seed=3, name="ns/chat", start_hour=0)
    b = generate(SPEC, seconds=DAY, seed=3, name="ns/chat", start_hour=0)
    c = generate(SPEC, seconds=DAY, seed=4, name="ns/chat", start_hour=0)
    assert np.array_equal(a.arrivals, b.arrivals)
    assert np.array_equal(a.prompts(1000), b.prompts(1000))
    assert not np.array_equal(a.arrivals, c.arrivals)


def test_each_deployment_draws_its_own_stream() -> None:
    a = generate(SPEC, seconds=3600, seed=3, name="ns/a", start_hour=0)
    b = generate(SPEC, seconds=3600, seed=3, name="ns/b", start_hour=0)
    assert not np.array_equal(a.arrivals, b.arrivals)


def test_diurnal_curve_peaks_at_the_peak_hour_and_bottoms_out_twelve_hours_later() -> None:
    t = generate(
        SPEC.model_copy(update={"noise_sigma": 0.0}), seconds=DAY, seed=1, name="x", start_hour=0
    )
    hourly = t.rate.reshape(24, 3600).mean(axis=1)
    assert int(np.argmax(hourly)) in (14, 15)
    assert int(np.argmin(hourly)) in (2, 3)
    assert hourly.max() == pytest.approx(100, rel=0.02)
    assert hourly.min() == pytest.approx(20, rel=0.05)
    # Poisson arrivals follow the rate.
    assert t.arrivals.sum() == pytest.approx(t.rate.sum(), rel=0.01)


def test_burst_multiplies_the_rate_in_its_window_only() -> None:
    quiet = SPEC.model_copy(update={"noise_sigma": 0.0})
    burst = quiet.model_copy(
        update={"bursts": [Burst(at="1:00", duration_minutes=20, multiplier=2.0)]}
    )
    base = generate(quiet, seconds=3 * 3600, seed=1, name="x", start_hour=0)
    hot = generate(burst, seconds=3 * 3600, seed=1, name="x", start_hour=0)
    middle = slice(3600 + 300, 3600 + 900)
    assert np.allclose(hot.rate[middle], 2.0 * base.rate[middle])
    assert np.allclose(hot.rate[:3600], base.rate[:3600])
    assert np.allclose(hot.rate[3600 + 1200 :], base.rate[3600 + 1200 :])
    assert hot.peak_rate() == pytest.approx(2.0 * base.rate[middle].max(), rel=0.01)


def test_token_lengths_are_log_normal_with_the_declared_median() -> None:
    t = generate(SPEC, seconds=60, seed=1, name="x", start_hour=0)
    prompts = t.prompts(200_000)
    assert float(np.median(prompts)) == pytest.approx(400, rel=0.02)
    assert t.prompt_mean == pytest.approx(float(prompts.mean()), rel=0.02)
