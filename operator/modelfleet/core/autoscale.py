"""SLO-driven autoscaling: how many replicas a deployment needs right now.

Scale-up is an HPA-like proportional rule over the worst SLO signal (observed / target for
TTFT p95, TPOT p95 and queue per replica). Scale-down is load-proportional: latency is not
proportional to load (TTFT has a large load-independent prefill floor, queues are ~0 until
saturation), so a latency ratio of 0.35 says nothing about how many replicas the load needs.
The autoscaler instead learns a per-replica capacity (requests/s one replica has sustained
within the SLOs, lowered on breaches) and sizes the fleet to ``rate / (capacity x
utilisation_target)``; without a rate or a capacity it steps down by a bounded amount.
Safety rules platform teams expect stay: a tolerance band, panic scale-up at twice the
target, a down-stabilisation window, a cap on any one scale-down, no scale-down on missing
or stale data, and optional scale-to-zero on idleness. Pure: the history the windows and
the capacity need comes in and goes out through ``DecisionState`` fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modelfleet.core import reasons as R
from modelfleet.core.forecast import PREDICTORS
from modelfleet.core.latency_curve import CurvePoint, curve_correction
from modelfleet.core.reasons import Reason
from modelfleet.core.saturation import saturation_floor
from modelfleet.core.types import ClusterSignals, PlannerSettings, ScalingPolicy


@dataclass(frozen=True, slots=True)
class Signals:
    """Fleet-wide aggregate of one deployment's signals; ``None`` means missing or stale.

    ``complete`` is False when a configured SLO signal is missing or stale in any cluster
    that runs replicas: such data may scale up but never down.
    """

    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None
    queue_per_replica: float | None = None
    request_rate: float | None = None
    complete: bool = False
    ready_replicas: int | None = None
    kv_cache_per_replica: float | None = None
    """Mean KV-cache use of a ready replica, 0..1 (saturation; never part of ``complete``)."""
    running_per_replica: float | None = None
    """Running requests per ready replica (saturation; never part of ``complete``)."""
    rate_complete: bool = False
    """Every cluster that runs replicas gave a fresh request rate: only then does a summed
    rate of 0 mean no traffic (scale to zero). ``request_rate`` alone is the sum over the
    clusters that answered, so a cluster whose Prometheus is down would read as idle."""


@dataclass(frozen=True, slots=True)
class AutoscaleDecision:
    """The autoscaler's answer: ``desired`` replicas plus the state to carry forward."""

    desired: int
    recommendations: tuple[tuple[datetime, int], ...]
    idle_since: datetime | None
    reason: Reason
    capacity_per_replica: float | None = None
    capacity_bounded_at: datetime | None = None
    capacity_correction: float | None = None
    rate_history: tuple[tuple[datetime, float], ...] = ()
    lead_time_seconds: float | None = None
    short_since: datetime | None = None
    forecast: float | None = None
    """Requests/s the predictor expected one lead time ahead (None: no forecast)."""
    urgent: bool = False
    """The fleet breaches an SLO signal or is saturated now: capacity is needed at once,
    not one lead time ahead (placement then takes warm nodes more widely: ``core.warm``)."""


@dataclass(frozen=True, slots=True)
class Memory:
    """What the predictive mode carries between plans (``DecisionState`` fields)."""

    correction: float | None = None
    rate_history: tuple[tuple[datetime, float], ...] = ()
    lead_time_seconds: float | None = None
    short_since: datetime | None = None


DEFAULT_LEAD_TIME_SECONDS = 480.0
"""Forecast horizon before any start has been observed: a GPU node (~4-5 min) plus a
model start (~2.5 min), the medians of docs/simulation.md."""
CORRECTION_BOUNDS = (0.5, 1.5)
"""Online correction never moves a profile by more than this factor either way."""
CURVE_STEP = 0.2
"""Fraction of the way an informative curve observation moves the correction per plan
(successive plans see overlapping metric windows: one spell is not ten observations)."""
HISTORY_SPACING_SECONDS = 30.0
HISTORY_SECONDS = 600.0


def update_memory(memory: Memory, signals: Signals, *, current: int, now: datetime) -> Memory:
    """Record the request rate for the predictor and time the provisioning lead.

    Lead time: from the first plan that sees fewer ready replicas than were desired to the
    first one that sees them all ready (60 s..1,800 s kept), folded in with weight 1/2.
    (Counting the standby here too, like the steady check, was measured and not kept:
    docs/simulation.md, "Tried and not kept".)
    """
    history = memory.rate_history
    rate = signals.request_rate
    if rate is not None and (
        not history or (now - history[-1][0]).total_seconds() >= HISTORY_SPACING_SECONDS
    ):
        history = (*history, (now, rate))
    history = tuple(h for h in history if (now - h[0]).total_seconds() <= HISTORY_SECONDS)
    lead, since = memory.lead_time_seconds, memory.short_since
    ready = signals.ready_replicas
    if ready is not None:
        if ready < current:
            since = since or now
        elif since is not None:
            seen = (now - since).total_seconds()
            if 60.0 <= seen <= 1800.0:
                lead = seen if lead is None else 0.5 * lead + 0.5 * seen
            since = None
    return Memory(memory.correction, history, lead, since)


def correct_profile(
    signals: Signals,
    worst: float | None,
    *,
    profiled: float,
    correction: float | None,
    current: int,
    settings: PlannerSettings,
    standby: int = 0,
    curve: tuple[CurvePoint, ...] = (),
) -> float | None:
    """The online correction of a profile's capacity ``profiled`` (requests/s per replica)
    after observing ``signals``; the rules of docs/decisions.md section 1:

    - a breach (worst > 1 + tolerance) while the fleet is steady (every placed replica,
      desired ``current`` plus ``standby``, ready: a breach while replicas start is
      backlog, not capacity) at a per-replica load
      x >= 60% of the corrected capacity (lower loads breach from cold starts or outages)
      lowers the correction to ``x / profiled x breach margin``;
    - every signal within target on complete data moves it a tenth of the way back toward
      ``max(1, x / profiled)``: the profile stays the anchor, so one bad spell cannot
      pin the capacity low for good (the flaw of a capacity learned from load alone);
    - with a latency-vs-load ``curve`` (a measured profile's sweep) and no breach, an
      observation on the curve's rising part moves it ``CURVE_STEP`` of the way toward
      ``core.latency_curve.curve_correction`` (load / the load the curve gives for the
      observed latency), capped at ``max(1, x / profiled)`` (and at the current factor
      while a ratio is within the tolerance band above 1 or the data is incomplete):
      down before any breach, and
      up again as far as the load carried shows; the rule above applies when the
      curve says nothing (the flat floor, a quiet replica);
    - always within ``CORRECTION_BOUNDS``.
    """
    rate, ready = signals.request_rate, signals.ready_replicas
    if worst is None or rate is None or not ready or profiled <= 0:
        return correction
    factor = 1.0 if correction is None else correction
    x = rate / ready
    lo, hi = CORRECTION_BOUNDS
    from_curve = (
        curve_correction(
            curve, load=x / profiled, tpot_ms=signals.tpot_p95_ms, ttft_ms=signals.ttft_p95_ms
        )
        if curve
        else None
    )
    if worst > 1.0 + settings.tolerance:
        if ready < current + standby or x < 0.6 * profiled * factor:
            return correction
        factor = min(factor, x / profiled * settings.capacity_breach_margin)
    elif from_curve is not None:
        # Down as far as the curve says; up no further than the load carried within the
        # SLO shows (max(1, x / profiled), the rule below): measured, a pessimistic profile
        # raised to its truth cost batch the spare replicas that carried the 15:00 outage
        # (docs/simulation.md, "Tried and not kept").
        # Incomplete data (a cluster's signal missing) may lower it, never raise it.
        ceiling = max(1.0, x / profiled) if worst <= 1.0 and signals.complete else factor
        factor += CURVE_STEP * (min(hi, ceiling, max(lo, from_curve)) - factor)
    elif worst <= 1.0 and signals.complete:
        target = max(1.0, x / profiled)
        factor += 0.1 * (target - factor)
    else:
        return correction
    return min(hi, max(lo, factor))


def aggregate_signals(
    by_cluster: Mapping[str, ClusterSignals],
    *,
    scaling: ScalingPolicy,
    running_clusters: frozenset[str],
    snapshot_time: datetime | None,
    now: datetime,
    settings: PlannerSettings,
) -> Signals:
    """Fold per-cluster signals: worst (max) latency percentiles, ready-weighted queue,
    KV-cache use and running requests per replica, summed request rate. Signals older than
    ``stale_after_seconds`` are dropped."""
    ttft: float | None = None
    tpot: float | None = None
    queue_sum = 0.0
    queue_weight = 0.0
    per_replica: dict[str, list[float]] = {"kv": [0.0, 0.0], "running": [0.0, 0.0]}
    rate: float | None = None
    ready: int | None = None
    fresh: dict[str, ClusterSignals] = {}
    for cluster, sig in by_cluster.items():
        when = sig.observed_at or snapshot_time
        if when is None or (now - when).total_seconds() > settings.stale_after_seconds:
            continue
        fresh[cluster] = sig
        if sig.ttft_p95_ms is not None:
            ttft = sig.ttft_p95_ms if ttft is None else max(ttft, sig.ttft_p95_ms)
        if sig.tpot_p95_ms is not None:
            tpot = sig.tpot_p95_ms if tpot is None else max(tpot, sig.tpot_p95_ms)
        if sig.queue_per_replica is not None:
            weight = float(sig.ready_replicas) if sig.ready_replicas else 1.0
            queue_sum += sig.queue_per_replica * weight
            queue_weight += weight
        for name, value in (("kv", sig.kv_cache_per_replica), ("running", sig.running_per_replica)):
            if value is not None:
                weight = float(sig.ready_replicas) if sig.ready_replicas else 1.0
                per_replica[name][0] += value * weight
                per_replica[name][1] += weight
        if sig.request_rate is not None:
            rate = sig.request_rate + (rate or 0.0)
        if sig.ready_replicas is not None:
            ready = sig.ready_replicas + (ready or 0)
    queue = queue_sum / queue_weight if queue_weight else None
    wanted = [
        ("ttft_p95_ms", scaling.ttft_p95_ms),
        ("tpot_p95_ms", scaling.tpot_p95_ms),
        ("queue_per_replica", scaling.max_queue_per_replica),
    ]
    complete = bool(fresh)
    rate_complete = bool(fresh) and all(
        cluster in fresh
        and fresh[cluster].request_rate is not None
        and not _underreported(fresh[cluster])
        for cluster in running_clusters or frozenset(fresh)
    )
    for cluster in running_clusters or frozenset(fresh):
        sig_or_none = fresh.get(cluster)
        if sig_or_none is None:
            complete = False
            break
        if any(t is not None and getattr(sig_or_none, name) is None for name, t in wanted):
            complete = False
            break
        if _underreported(sig_or_none):
            complete = False
            break
    kv, running = (s / w if w else None for s, w in per_replica.values())
    return Signals(ttft, tpot, queue, rate, complete, ready, kv, running, rate_complete)


def _underreported(sig: ClusterSignals) -> bool:
    """Fewer pods report than are ready: a ready pod Prometheus cannot scrape (a network
    policy, a failing target) drops out of every sum, so its load reads as no load."""
    reporting, ready = sig.reporting_replicas, sig.ready_replicas
    return reporting is not None and ready is not None and reporting < ready


def _window(history: tuple[tuple[datetime, int], ...], now: datetime, seconds: float) -> list[int]:
    return [n for t, n in history if (now - t).total_seconds() <= seconds]


def learn_capacity(
    signals: Signals,
    worst: float | None,
    *,
    capacity: float | None,
    bounded_at: datetime | None,
    now: datetime,
    settings: PlannerSettings,
) -> tuple[float | None, datetime | None]:
    """The per-replica capacity (requests/s within the SLOs) after observing ``signals``,
    and when a breach last bounded it (None: the capacity is only a demonstrated lower bound).

    With rate R and n ready replicas (both > 0) and ``worst`` the worst SLO ratio:
    - every enforced signal within target (worst <= 1, complete data): one replica
      demonstrably handles R/n, so capacity = max(capacity, R/n);
    - a breach (worst > 1 + tolerance): capacity = min(capacity, R/n x breach margin), and
      it counts as bounded from now on;
    - anything else (no rate, no ready count, inside the tolerance band above 1): unchanged.
    """
    rate, ready = signals.request_rate, signals.ready_replicas
    if worst is None or not rate or not ready or rate <= 0 or ready <= 0:
        return capacity, bounded_at
    per_replica = rate / ready
    if worst > 1.0 + settings.tolerance:
        bound = per_replica * settings.capacity_breach_margin
        return (bound if capacity is None else min(capacity, bound)), now
    if worst > 1.0 or not signals.complete:
        return capacity, bounded_at
    return (per_replica if capacity is None else max(capacity, per_replica)), bounded_at


def recommend_replicas(
    scaling: ScalingPolicy,
    signals: Signals,
    *,
    current: int,
    history: tuple[tuple[datetime, int], ...],
    idle_since: datetime | None,
    now: datetime,
    settings: PlannerSettings,
    capacity: float | None = None,
    capacity_bounded_at: datetime | None = None,
    profiled: float | None = None,
    memory: Memory | None = None,
    standby: int = 0,
    curve: tuple[CurvePoint, ...] = (),
) -> AutoscaleDecision:
    """Desired replicas from ``signals`` given ``current`` desired replicas (and ``standby``
    warm standby replicas placed on top of them, which serve traffic like any other).

    Contract (the rules of docs/decisions.md, section 1):
    - worst ratio r = max(observed / target) over the configured SLOs with data;
      |r - 1| <= tolerance keeps ``current``.
    - r > 1 + tolerance: scale up to ``ceil(ready * r)`` where ``ready`` is the ready
      replicas the ratio was measured on (HPA semantics: placed-but-not-ready replicas
      carry no load, and they count toward the need: the result is never below
      ``current``, so it holds while they start); r > panic_ratio: at once (no
      up-stabilisation).
    - with a capacity profile (``profiled``: requests/s per replica of the offering the
      placement prefers, times the online correction, which a measured profile's
      latency-vs-load ``curve`` moves both ways: ``correct_profile``) the count is sized
      for the demand forecast one lead time ahead: ``ceil(forecast x (1 + headroom) / capacity)``
      (predictive mode); a breach on a steady fleet (every placed replica ready) still
      scales up as above (reactive mode) and the larger of the two wins; while placed
      replicas start, a breach holds (their backlog is not a capacity error);
      scale-down to the predictive count keeps the windows below.
    - r < 1 - tolerance: scale down on load, not latency. The capacity (``learn_capacity``)
      is updated from this observation first; with a request rate R and a capacity C the
      recommendation is ``ceil(R / (C * utilisation_target))``, otherwise
      ``current - max(1, ceil(scale_down_step * current))``; never below
      ``ceil(current * r)``, never below ``ceil(current * (1 - max_scale_down_fraction))``,
      never above ``current``.
    - scale-up is limited to the lowest recommendation over ``up_stabilization_seconds``;
      scale-down to the highest over ``down_stabilization_seconds``; with no history the
      current count is taken as recommended now (so lost state delays, never hastens,
      scale-down).
    - saturation (``core.saturation``): the engines' KV-cache use, queue and running
      batch may raise the count, never lower it; while saturated nothing scales down.
    - incomplete/stale data never lowers the count (hold).
    - from zero: any request (or queue) gives at least one replica, and with a profile
      and a demand rate (``spec.metrics.demand``) the predictive count for that rate, so a
      burst arriving at zero waits one lead time, not two; to zero: after
      ``scale_to_zero_after_seconds`` of observed zero request rate (bypasses the window).
    - result clamped to [min, max] (0 allowed only through scale-to-zero, min is then 0).
    """
    lo, hi = scaling.min_replicas, scaling.max_replicas
    ratios: list[tuple[str, float]] = []
    for name, observed, target in (
        ("TTFT p95", signals.ttft_p95_ms, scaling.ttft_p95_ms),
        ("TPOT p95", signals.tpot_p95_ms, scaling.tpot_p95_ms),
        ("queue per replica", signals.queue_per_replica, scaling.max_queue_per_replica),
    ):
        if observed is not None and target is not None:
            ratios.append((name, observed / target))
    worst_name, worst = max(ratios, key=lambda x: x[1]) if ratios else ("", 1.0)
    standby = max(0, standby) if current > 0 else 0
    mem = update_memory(memory or Memory(), signals, current=current, now=now)
    correction = mem.correction
    predicted: int | None = None
    forecast: float | None = None
    per_replica: float | None = None
    if profiled is not None and profiled > 0:
        correction = correct_profile(
            signals,
            worst if ratios else None,
            profiled=profiled,
            correction=correction,
            current=current,
            settings=settings,
            standby=standby,
            curve=curve,
        )
        per_replica = profiled * (1.0 if correction is None else correction)
        horizon = scaling.lead_time_seconds
        if horizon is None:
            horizon = mem.lead_time_seconds or DEFAULT_LEAD_TIME_SECONDS
        predictor = PREDICTORS.get(scaling.predictor, PREDICTORS["trend"])
        samples = [((now - t).total_seconds(), r) for t, r in mem.rate_history]
        forecast = predictor(samples, horizon) if samples else None
        if signals.request_rate is not None:
            forecast = max(forecast or 0.0, signals.request_rate)
        if forecast is not None:
            # min(.., hi): the count is clamped to max anyway, and a need beyond it may be
            # no finite number (a huge demand answer, or a declared profile of 1e-305
            # tokens/s: an OverflowError that failed every pass of the deployment).
            need = forecast * (1.0 + scaling.headroom) / per_replica
            predicted = math.ceil(min(need, float(scaling.max_replicas)) - 1e-9)
    mem = Memory(correction, mem.rate_history, mem.lead_time_seconds, mem.short_since)
    capacity, capacity_bounded_at = learn_capacity(
        signals,
        worst if ratios else None,
        capacity=capacity,
        bounded_at=capacity_bounded_at,
        now=now,
        settings=settings,
    )
    demand = bool(signals.request_rate) or bool(signals.queue_per_replica)
    panic = worst > settings.panic_ratio
    # Said in the reason (the Events), so that a fleet larger than the profile asks for is
    # explained where people look, not only in status.decision.capacityCorrection.
    corrected = (
        f" (profile {profiled:.3g} x online correction {correction:.2f})"
        if profiled and correction is not None and abs(correction - 1.0) >= 0.005
        else ""
    )

    ready = signals.ready_replicas
    base = ready if ready else current
    breach = bool(ratios) and worst > 1.0 + settings.tolerance

    if current == 0:
        raw = max(1, lo) if demand else lo
        code = R.SCALE_FROM_ZERO if demand else R.HOLD
        why = "requests arrived at zero replicas" if demand else "no requests at zero replicas"
        if demand and predicted is not None and forecast is not None and predicted > raw:
            # The first step is sized for the demand, not one replica: a burst arriving
            # at zero would otherwise wait a second lead time (one replica starts, its
            # load is seen only once it serves, then the rest start).
            raw = predicted
            why += (
                f": forecast {forecast:.3g} req/s + {scaling.headroom:.0%} headroom at "
                f"{per_replica:.3g} req/s per replica{corrected} needs {predicted}"
            )
    elif predicted is not None and per_replica is not None and forecast is not None:
        raw = predicted
        why = (
            f"forecast {forecast:.3g} req/s over the lead time + {scaling.headroom:.0%} "
            f"headroom at {per_replica:.3g} req/s per replica{corrected} needs {predicted}"
        )
        # Reactive on top, but only on a steady fleet: while placed replicas start (ready <
        # current) a latency breach is the backlog of the missing ones, which the placed
        # count and the rate-based forecast already cover. The latency ratio of a queue is
        # not proportional to load (TTFT 12x its target at 1.6x the load), so ready x ratio
        # would start nodes for minutes of backlog (desired 24 for a need of 15). Placed is
        # desired + standby: the ready count includes the standby, which serves traffic, so
        # a fleet one replica short with a standby is not steady, and the serving need
        # ready x ratio includes the standby placed on top of desired.
        if breach and (ready is None or ready >= current + standby):
            reactive = math.ceil(base * worst - 1e-9) - (standby if ready else 0)
            if reactive > raw:
                raw = reactive
                why = f"{worst_name} at {worst:.2f}x target on {base} ready replica(s)"
        if raw < current and (breach or worst > 1.0):
            raw = current
            why += f"; {worst_name} at {worst:.2f}x target: no scale-down"
        code = R.SCALE_UP if raw > current else R.SCALE_DOWN if raw < current else R.HOLD
        if code == R.SCALE_UP and panic:
            code = R.PANIC_SCALE_UP
        if raw < current:
            raw = max(raw, math.ceil(current * (1.0 - settings.max_scale_down_fraction) - 1e-9))
    elif not ratios or abs(worst - 1.0) <= settings.tolerance:
        raw = current
        code, why = (
            R.HOLD,
            (
                f"worst signal {worst_name} at {worst:.2f}x target, within tolerance"
                if ratios
                else "no SLO signal with data"
            ),
        )
    elif worst > 1.0:
        raw = max(current, math.ceil(base * worst - 1e-9))
        code = R.PANIC_SCALE_UP if panic else R.SCALE_UP
        why = f"{worst_name} at {worst:.2f}x target on {base} ready replica(s)"
        if raw == current:
            code = R.HOLD
            why += f": the {current - base} replica(s) on their way cover it"
    else:
        raw, why = _scale_down(
            signals,
            worst,
            worst_name,
            current,
            capacity,
            capacity_bounded_at is not None,
            settings,
        )
        code = R.SCALE_DOWN if raw < current else R.HOLD
    saturated = saturation_floor(
        kv_cache=signals.kv_cache_per_replica,
        queue=signals.queue_per_replica,
        running=signals.running_per_replica,
        ready=signals.ready_replicas,
        current=current,
        settings=settings,
    )
    if saturated is not None and saturated.replicas >= raw:
        raw, why = saturated.replicas, saturated.why
        code = R.HOLD if raw == current else R.PANIC_SCALE_UP if panic else R.SCALE_UP
    raw = min(max(raw, lo), hi)

    if raw < current and not signals.complete:
        raw = current
        code, why = R.METRICS_MISSING, "metrics missing or stale: holding (no scale-down)"
    elif raw < current and predicted is not None and signals.request_rate is None:
        # Predictive mode sizes from the request rate; without a current one the forecast
        # reads only the past (rate_history, up to 10 minutes old), which may raise the
        # count but never lower it: a rate query that fails or times out while the latency
        # queries answer used to halve the fleet on the last rates seen.
        raw = current
        code, why = R.METRICS_MISSING, "request rate missing: holding (no scale-down)"

    longest = max(scaling.up_stabilization_seconds, scaling.down_stabilization_seconds)
    kept = tuple(h for h in history if (now - h[0]).total_seconds() <= longest)
    if (
        raw < current
        and scaling.down_stabilization_seconds > 0
        and not _window(kept, now, scaling.down_stabilization_seconds)
    ):
        # No history (first plan, or state lost): the current count counts as recommended
        # now, so a restart never turns into an immediate scale-down.
        kept = (*kept, (now, current))
    history = (*kept, (now, raw))

    if raw > current and not panic and current > 0:
        desired = max(current, min(_window(history, now, scaling.up_stabilization_seconds)))
    elif raw < current:
        desired = min(current, max(_window(history, now, scaling.down_stabilization_seconds)))
        if desired > raw and code == R.SCALE_DOWN:
            why += f"; held at {desired} by the {scaling.down_stabilization_seconds}s window"
    else:
        desired = raw

    # Scale to zero: a timer over observed zero traffic; missing data neither starts nor stops
    # it. A rate of 0 is "no traffic" only when every cluster running replicas reported one
    # (the sum skips a cluster whose Prometheus is down, which may carry all the traffic);
    # any request seen anywhere still stops the timer.
    if scaling.scale_to_zero_after_seconds is not None and signals.request_rate is not None:
        if signals.request_rate > 0 or (signals.queue_per_replica or 0) > 0:
            idle_since = None
        elif current > 0 and not signals.rate_complete:
            pass  # a running cluster's rate is missing: the timer neither starts nor finishes
        else:
            idle_since = idle_since or now
            idle = (now - idle_since).total_seconds()
            if idle >= scaling.scale_to_zero_after_seconds and current > 0:
                desired = 0
                code, why = R.SCALE_TO_ZERO, f"no requests for {idle:.0f}s"
            elif current == 0:
                desired = 0
    desired = min(max(desired, 0 if scaling.scale_to_zero_after_seconds else lo), hi)
    if desired == current and code in (R.SCALE_UP, R.SCALE_DOWN, R.PANIC_SCALE_UP):
        code = R.HOLD
    message = f"{current} -> {desired} replicas: {why}"
    return AutoscaleDecision(
        desired,
        history,
        idle_since,
        Reason(code, message),
        capacity,
        capacity_bounded_at,
        mem.correction,
        mem.rate_history,
        mem.lead_time_seconds,
        mem.short_since,
        forecast,
        breach or (saturated is not None and saturated.replicas > current),
    )


def _scale_down(
    signals: Signals,
    worst: float,
    worst_name: str,
    current: int,
    capacity: float | None,
    bounded: bool,
    settings: PlannerSettings,
) -> tuple[int, str]:
    """The scale-down recommendation (at most ``current``) when every ratio is below
    1 - tolerance, and why."""
    rate = signals.request_rate
    step = current - max(1, math.ceil(settings.scale_down_step * current - 1e-9))
    if rate is not None and capacity:
        wanted = math.ceil(rate / (capacity * settings.utilisation_target) - 1e-9)
        why = (
            f"{rate:.3g} req/s over {'a' if bounded else 'at least'} {capacity:.3g} req/s "
            f"per replica at {settings.utilisation_target:.0%} needs {wanted}"
        )
        if not bounded and step < wanted:
            # Only a lower bound: no breach has shown where the capacity ends yet.
            wanted = step
            why += f"; capacity not yet bounded by a breach: bounded step to {step}"
    else:
        wanted = step
        why = ("no request rate" if rate is None else "no learned capacity") + (
            f": bounded step to {step}"
        )
    floor_ratio = math.ceil(current * worst - 1e-9)
    floor_cap = math.ceil(current * (1.0 - settings.max_scale_down_fraction) - 1e-9)
    raw = min(current, max(wanted, floor_ratio, floor_cap))
    if raw > wanted:
        why += f", limited to {raw} ({'the worst ratio' if raw == floor_ratio else 'the step cap'})"
    return raw, f"{worst_name} at {worst:.2f}x target; {why}"
