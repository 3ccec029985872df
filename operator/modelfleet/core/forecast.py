"""Demand predictors: the request rate expected one provisioning lead time from now.

The autoscaler sizes for the demand that will arrive when a replica asked for now is ready
(node + model start: minutes), so it needs a forecast over that lead time. Predictors see
only the past: ``(seconds before now, requests/s)`` samples, the most recent last, that the
planner carries in ``DecisionState.rate_history``. They are pluggable: ``PREDICTORS`` maps
the name in ``spec.scaling.predictor`` to an implementation of ``Predictor``; the
simulator reports each one's error at the lead time.

- ``constant``: the highest rate of the last ``window`` seconds (what a reactive
  autoscaler with a look-back implicitly assumes; never below the current rate).
- ``trend``: ``constant`` plus a damped linear trend fitted by least squares over the last
  ``window`` seconds, extrapolated over the lead time (Holt-like, no seasonality); never
  below ``constant`` x the decline it would forecast, never negative.

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


def _slope(samples: Samples) -> float:
    """Least-squares slope (requests/s per second) of rate over time; 0 with < 3 samples."""
    pts = [(-age, r) for age, r in samples if age <= WINDOW_SECONDS]
    if len(pts) < 3:
        return 0.0
    n = float(len(pts))
    mt = sum(t for t, _ in pts) / n
    mr = sum(r for _, r in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    if var <= 0:
        return 0.0
    return sum((t - mt) * (r - mr) for t, r in pts) / var


def trend(samples: Samples, horizon: float) -> float | None:
    """The current level (mean of the last two minutes) plus the fitted trend over
    ``horizon``; a rising trend is added in full, a falling one only halfway (forecast
    errors on the low side cost the SLO, on the high side only GPU-minutes). Never below
    the last sample's rate when rising."""
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
