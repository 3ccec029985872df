"""Demand predictors: the request rate expected one provisioning lead time from now.

The autoscaler sizes for the demand that will arrive when a replica asked for now is ready
(node + model start: minutes), so it needs a forecast over that lead time. Predictors see
only the past: ``(seconds before now, requests/s)`` samples, the most recent last, that the
planner carries in ``DecisionState.rate_history``. They are pluggable: ``PREDICTORS`` maps
the name in ``spec.scaling.predictor`` to an implementation of ``Predictor``; the
simulator reports each one's error at the lead time.

- ``constant``: the highest rate of the last ``window`` seconds (what a reactive
  autoscaler with a look-back implicitly assumes; never below the current rate).
- ``trend``: the level of the last two minutes plus a linear trend extrapolated over the
  lead time (Holt-like, no seasonality), a falling one counted half, never negative. The
  trend is the least-squares slope of the window; a rising one is capped by the slopes of
  the window's two halves (``_slope``). A ramp (the diurnal rise) rises in both halves; a
  step (a burst's level shift) lies in one half only, and the other half, flat, says there
  is no rise to extrapolate: the new level is already in the level term. Uncapped, the
  slope read a step of height ``h`` as a ramp and added up to ``1.15 h`` over an 8-minute
  lead (the default scenario's chat: desired 17 for a need of ~7.5).

Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Samples = Sequence[tuple[float, float]]
"""``(age_seconds, rate)`` pairs, oldest first; age 0 is now."""

Predictor = Callable[[Samples, float], float | None]
"""``(samples, horizon_seconds) -> requests/s expected at now + horizon`` (None: no data)."""

WINDOW_SECONDS = 600.0
"""How far back the predictors look."""


def constant(samples: Samples, horizon: float) -> float | None:
    """The highest rate of the last ``WINDOW_SECONDS`` (None without samples)."""
    recent = [r for age, r in samples if age <= WINDOW_SECONDS]
    return max(recent) if recent else None


def _least_squares(pts: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(time, rate)`` points (requests/s per second); 0 with < 3."""
    if len(pts) < 3:
        return 0.0
    n = float(len(pts))
    mt = sum(t for t, _ in pts) / n
    mr = sum(r for _, r in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    if var <= 0:
        return 0.0
    return sum((t - mt) * (r - mr) for t, r in pts) / var


def _slope(samples: Samples) -> float:
    """The trend to extrapolate (requests/s per second): a fall as fitted, a rise only as
    far as every part of the window supports it.

    The least-squares slope of the last ``WINDOW_SECONDS`` (0 with fewer than 3 samples).
    A falling one is returned as it is. A rising one is also fitted on each half of the
    window (split at half the window's age) and capped by the smaller of the two: a half
    that does not rise (a step lies in one half, or on the split, where neither sees it)
    means no trend; a ramp that lasts the window rises in both halves and keeps its slope.
    The cap only ever lowers a rise, so on noisy traffic (each half's slope is noisier
    than the whole window's) the forecast is never above the whole window's. A half with
    fewer than 3 samples has no slope, so a history younger than about 6.5 minutes (a
    restart, lost state) extrapolates no rise: the level and the current rate still count.
    """
    pts = [(-age, r) for age, r in samples if age <= WINDOW_SECONDS]
    whole = _least_squares(pts)
    if whole <= 0:
        return whole
    older = _least_squares([p for p in pts if p[0] < -WINDOW_SECONDS / 2])
    newer = _least_squares([p for p in pts if p[0] >= -WINDOW_SECONDS / 2])
    return max(0.0, min(whole, older, newer))


def trend(samples: Samples, horizon: float) -> float | None:
    """The current level (mean of the last two minutes) plus the trend (``_slope``: a rise
    capped by what both halves of the window support) over ``horizon``; a rising trend is
    added in full, a falling one only halfway (forecast errors on the low side cost the
    SLO, on the high side only GPU-minutes). Never below the last sample's rate when
    rising."""
    if not samples:
        return None
    level_pts = [r for age, r in samples if age <= 120.0] or [samples[-1][1]]
    level = sum(level_pts) / len(level_pts)
    slope = _slope(samples)
    delta = slope * horizon
    if delta < 0:
        delta *= 0.5
    return max(0.0, level + delta, samples[-1][1] if delta > 0 else 0.0)


PREDICTORS: dict[str, Predictor] = {"constant": constant, "trend": trend}
"""Predictors by name (``spec.scaling.predictor``)."""
