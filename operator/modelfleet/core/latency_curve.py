"""A profile's latency-vs-load curve, and the capacity correction it gives (both directions).

``modelfleet profile`` sweeps offered rates and measures TTFT p95 and TPOT p95 at each; the
capacity point alone (the highest rate within the SLO) says nothing about a replica that
runs below it. The curve does: at a per-replica load ``x`` it predicts the latency, and an
observed latency higher than predicted means the replica is slower than profiled, lower
means faster (NVIDIA Dynamo's planner: correction factor = observed / expected latency at
the current load). We invert the curve instead of dividing latencies, because latency is
not proportional to load (a flat floor, then a steep rise): the observed latency sits at
load ``u_eq`` on the curve, the replica actually carries ``u``, so its capacity is
``u / u_eq`` times the profiled one.

Loads are fractions of the profile's capacity point (``rate / requestsPerSecond``), so the
curve survives a change of request mix the way the capacity does (docs/api.md). Only
observations on the rising part of the curve count: on the flat floor any load gives the
same latency and says nothing (``MIN_RISE``). Pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """Latency one replica gave at ``load`` = rate / the profile's capacity point (>= 0)."""

    load: float
    ttft_ms: float | None = None
    tpot_ms: float | None = None


MIN_RISE = 0.15
"""An observed latency counts only when it is at least this far (fraction) above the
curve's floor (its lowest-load point): below, the curve is too flat to invert."""
MIN_LOAD = 0.3
"""Nor when the replica carries less than this fraction of the capacity point (cold
starts and single slow requests dominate the percentiles of a quiet replica)."""


def curve_from(
    points: Iterable[tuple[float, float | None, float | None]], capacity_rate: float
) -> tuple[CurvePoint, ...]:
    """``(requests/s, ttft p95 ms, tpot p95 ms)`` sweep points as a curve of loads relative
    to ``capacity_rate`` (requests/s, > 0), lowest load first; () when ``capacity_rate`` is
    not positive or no point has a positive rate."""
    if capacity_rate <= 0:
        return ()
    curve = [
        CurvePoint(rate / capacity_rate, ttft, tpot) for rate, ttft, tpot in points if rate > 0
    ]
    return tuple(sorted(curve, key=lambda p: p.load))


def _series(curve: Sequence[CurvePoint], signal: str) -> list[tuple[float, float]]:
    """(load, latency) of one signal, made non-decreasing (a sweep's noise can dip; the
    inverse needs a monotone curve)."""
    out: list[tuple[float, float]] = []
    top = 0.0
    for p in curve:
        value = p.tpot_ms if signal == "tpot" else p.ttft_ms
        if value is None or value <= 0:
            continue
        top = max(top, value)
        out.append((p.load, top))
    return out


def equivalent_load(curve: Sequence[CurvePoint], observed_ms: float, signal: str) -> float | None:
    """The load at which ``curve`` gives ``observed_ms`` of ``signal`` ("tpot" or "ttft"),
    by linear interpolation; None when the curve cannot say: fewer than two points, the
    observation within ``MIN_RISE`` of the floor, or above the highest point measured.
    Between two points the load is interpolated linearly in 1 / latency."""
    series = _series(curve, signal)
    if len(series) < 2 or observed_ms <= 0:
        return None
    floor = series[0][1]
    if observed_ms < floor * (1.0 + MIN_RISE) or observed_ms > series[-1][1]:
        return None
    for (u0, l0), (u1, l1) in itertools.pairwise(series):
        if l0 <= observed_ms <= l1:
            if l1 == l0:
                return u0
            # Linear in 1 / latency: exact for a batching engine's step time a / (1 - k x)
            # and for a queue's 1 / (mu - x); linear in latency would put a convex curve's
            # chord above it and read too low a load (too optimistic a capacity).
            r0, r1, r = 1.0 / l0, 1.0 / l1, 1.0 / observed_ms
            return u0 + (u1 - u0) * (r0 - r) / (r0 - r1)
    return None


def curve_correction(
    curve: Sequence[CurvePoint],
    *,
    load: float,
    tpot_ms: float | None,
    ttft_ms: float | None,
) -> float | None:
    """The factor the profile's capacity should be multiplied by: ``load / u_eq``, where
    ``load`` is the observed per-replica rate over the *uncorrected* profiled capacity and
    ``u_eq`` the load the curve gives for the observed latency. TPOT is read first (the
    engine's step time: smooth in load), TTFT when the curve or the signal has no TPOT.
    None when the observation says nothing (``equivalent_load`` None, load below
    ``MIN_LOAD``)."""
    if load < MIN_LOAD:
        return None
    for signal, observed in (("tpot", tpot_ms), ("ttft", ttft_ms)):
        if observed is None:
            continue
        u_eq = equivalent_load(curve, observed, signal)
        if u_eq is not None and u_eq > 0:
            return load / u_eq
        if _series(curve, signal):
            return None  # the curve has this signal and it said nothing: do not fall back
    return None
