"""The trend predictor extrapolates a ramp but not a step (docs/decisions.md, section 1).

A burst is a level shift: one least-squares slope over the 10-minute window read it as a
ramp and added up to 1.2x the step's height over an 8-minute lead time (the default
scenario's chat burst: desired 17 for a need of ~7.5). The trend is now the slope both
halves of the window agree on, so the step's new level is forecast, not its continuation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfleet.core.forecast import trend

LEAD = 480.0


def _samples(rate_at: list[float]) -> list[tuple[float, float]]:
    """One sample per 30 s, oldest first, the last at age 0."""
    n = len(rate_at)
    return [(30.0 * (n - 1 - i), r) for i, r in enumerate(rate_at)]


def _step(after: int, low: float = 100.0, high: float = 160.0) -> list[float]:
    """21 samples (10 minutes) with a step to ``high`` in the last ``after`` of them."""
    return [low] * (21 - after) + [high] * after


@pytest.mark.parametrize("after", range(1, 21))
def test_a_step_is_forecast_at_its_new_level_not_extrapolated(after: int) -> None:
    rates = _step(after)
    ahead = trend(_samples(rates), LEAD)
    # No trend: the level, the mean of the last two minutes (5 samples), nothing beyond
    # the new level (the planner sizes for at least the current rate on top of it).
    assert ahead == pytest.approx(sum(rates[-5:]) / 5)


def test_worked_example_the_burst_step() -> None:
    """docs/decisions.md: 100 -> 160 req/s, five minutes into the step (10 of 21 samples
    after it): one slope over the window forecast 229 (level 160 + 1.14 x 60); the halves
    disagree (older flat), so the forecast is the level, 160."""
    rates = _step(10)
    ahead = trend(_samples(rates), LEAD)
    assert ahead == pytest.approx(160.0)


def test_a_ramp_is_still_extrapolated() -> None:
    ramp = [100.0 + 1.0 * i for i in range(21)]  # +1 req/s per 30 s (diurnal morning rise)
    ahead = trend(_samples(ramp), LEAD)
    # Level: mean of the last 5 samples (118); slope 1/30 per s over 480 s: +16.
    assert ahead == pytest.approx(118.0 + 16.0)


def test_a_falling_step_is_extrapolated_as_before_counted_half() -> None:
    # Falls are not capped: the whole window's slope, counted half (a step down lowers
    # the forecast; the down window and the latency checks keep the count).
    rates = [160.0] * 11 + [100.0] * 10
    slope = float(np.polyfit([30.0 * i for i in range(21)], rates, 1)[0])
    assert slope < 0
    assert trend(_samples(rates), LEAD) == pytest.approx(100.0 + 0.5 * slope * LEAD)


def test_a_falling_ramp_counts_half_and_a_peak_is_not_a_trend() -> None:
    falling = [130.0 - 1.0 * i for i in range(21)]
    assert trend(_samples(falling), LEAD) == pytest.approx(112.0 - 8.0)
    peak = [100.0 + min(i, 20 - i) for i in range(21)]  # up then down: halves disagree
    level = sum(peak[-5:]) / 5
    assert trend(_samples(peak), LEAD) == pytest.approx(level)


def test_a_ramp_after_a_step_is_extrapolated_at_the_rate_of_the_ramp() -> None:
    # A step in the older half, then a steady rise in both halves: the older half's slope
    # includes the step (steeper), the newer one is the ramp's: the smaller is kept.
    rates = [100.0 + (40.0 if i >= 3 else 0.0) + 0.5 * i for i in range(21)]
    ahead = trend(_samples(rates), LEAD)
    level = sum(rates[-5:]) / 5
    assert ahead == pytest.approx(level + 0.5 / 30.0 * LEAD)


def test_too_few_samples_give_no_trend() -> None:
    assert trend(_samples([100.0, 150.0]), LEAD) == pytest.approx(125.0)  # the level
    assert trend([], LEAD) is None


@settings(max_examples=200, deadline=None)
@given(
    low=st.floats(1.0, 500.0),
    factor=st.floats(1.05, 3.0),
    after=st.integers(1, 20),
)
def test_property_a_step_up_never_forecasts_above_its_new_level(
    low: float, factor: float, after: int
) -> None:
    high = low * factor
    ahead = trend(_samples(_step(after, low, high)), LEAD)
    assert ahead is not None
    assert low <= ahead <= high * (1 + 1e-9)
    assert not math.isnan(ahead)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 50.0), min_size=3, max_size=21))
def test_property_never_above_the_uncapped_trend(rates: list[float]) -> None:
    """On any history (the Azure trace's rates jump 0 <-> 40 from one minute to the next)
    the capped rise never forecasts above the whole window's least-squares rise, the
    predictor before the cap (computed here with numpy)."""
    samples = _samples(rates)
    ages = [age for age, _ in samples]
    level_pts = [r for age, r in samples if age <= 120.0]
    level = sum(level_pts) / len(level_pts)
    whole = float(np.polyfit([-a for a in ages], rates, 1)[0]) if len(set(ages)) > 1 else 0.0
    delta = whole * LEAD if whole > 0 else 0.5 * whole * LEAD
    uncapped = max(0.0, level + delta, rates[-1] if delta > 0 else 0.0)
    ahead = trend(samples, LEAD)
    assert ahead is not None
    assert ahead <= uncapped + 1e-6 * max(1.0, uncapped)
    assert ahead >= min(level, uncapped) - 1e-6 * max(1.0, level)
