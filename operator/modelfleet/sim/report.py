"""What a run means: SLO attainment from the requests, cost, failover and recovery times.

Everything is measured over the scenario's window (the warm-up is left out):

- **Requests**: every simulated request gets its TTFT from the serving state of the second
  it arrived in (queue wait + rest of the step under way + the steps carrying its prompt +
  its prefill compute, with its own prompt length, drawn from the same seeded stream for every policy); a request
  that failed (no replica, timed out, sent to a vanished replica) counts as missing the SLO.
- **sloAttainment**: the fraction of simulated minutes in which every deployment's TTFT p95
  over that minute's requests met its ``spec.slo.ttftP95Ms``.
- **gpuHours / costUsd**: nodes are paid from the moment they are requested until they are
  released, whole nodes, spot at the spot price.
- **failovers**: per region outage, ``rtoSeconds`` is the time from the outage until every
  hit deployment has as many ready replicas as it was serving with just before (its
  desired count, standby excluded), or as the policy wants by then if that is fewer; 0 when
  standby covered the loss at once; null when capacity did not come back before the end.
- **stockouts**: per stockout, ``recoverySeconds`` runs from the first refused capacity
  request in its window until the deployment has the replicas it wanted at that moment;
  0 with ``hit: false`` when no request ran into it.
- **spotReclaims**: per wave, the time from the nodes' loss until the hit deployments are
  back to the replicas they were serving before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from modelfleet.api import ModelDeployment
from modelfleet.core.autoscale import DEFAULT_LEAD_TIME_SECONDS
from modelfleet.core.forecast import PREDICTORS
from modelfleet.sim.engine import PolicyRun
from modelfleet.sim.scenario import Scenario
from modelfleet.sim.traffic import Traffic

FloatArray = npt.NDArray[np.float64]


@dataclass
class DeploymentFigures:
    """One deployment's outcome under one policy."""

    slo_ms: float | None
    minute_p95_ms: FloatArray
    """TTFT p95 per measured minute (inf when a request failed in the 5% tail; nan: none)."""
    requests: int
    failed: int
    ttft_p95_ms: float | None
    replicas_mean: float
    replicas_max: int
    forecast: dict[str, Any] | None = None
    """The deployment's predictor error at the lead time (``predictor_error``); None for
    policies that do not forecast."""

    @property
    def minute_met(self) -> npt.NDArray[np.bool_]:
        if self.slo_ms is None:
            return np.ones(len(self.minute_p95_ms), dtype=bool)
        p95 = self.minute_p95_ms
        return np.isnan(p95) | (p95 <= self.slo_ms)


@dataclass
class PolicyReport:
    """One policy's figures (``to_json`` is its report.json entry)."""

    run: PolicyRun
    deployments: dict[str, DeploymentFigures]
    slo_attainment: float
    ttft_p95_ms: float | None
    requests: int
    failed: int
    gpu_hours: float
    cost_usd: float
    on_demand_cost_usd: float
    failovers: list[dict[str, Any]] = field(default_factory=list)
    stockouts: list[dict[str, Any]] = field(default_factory=list)
    spot_reclaims: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "sloAttainment": round(self.slo_attainment, 6),
            "ttftP95Ms": _round(self.ttft_p95_ms),
            "requestsTotal": self.requests,
            "requestsFailed": self.failed,
            "gpuHours": round(self.gpu_hours, 3),
            "costUsd": round(self.cost_usd, 2),
            "costUsdAtOnDemandPrices": round(self.on_demand_cost_usd, 2),
            "failovers": self.failovers,
            "stockouts": self.stockouts,
            "spotReclaims": self.spot_reclaims,
            "reconciles": self.run.decisions,
            "deployments": {
                key: {
                    "sloTtftP95Ms": d.slo_ms,
                    "sloAttainment": round(float(d.minute_met.mean()), 6)
                    if len(d.minute_met)
                    else 1.0,
                    "ttftP95Ms": _round(d.ttft_p95_ms),
                    "requestsTotal": d.requests,
                    "requestsFailed": d.failed,
                    "replicasMean": round(d.replicas_mean, 3),
                    "replicasMax": d.replicas_max,
                    **({"forecastError": d.forecast} if d.forecast else {}),
                }
                for key, d in self.deployments.items()
            },
        }


def predictor_error(
    arrivals: npt.NDArray[np.int64],
    *,
    predictor: str,
    lead_seconds: float,
    begin: int,
    step: int = 30,
    window: int = 60,
) -> dict[str, Any]:
    """How well ``predictor`` (``core.forecast``) forecasts the request rate one lead time
    ahead on this traffic, seeing only the past as the operator does: every ``step`` s from
    ``begin``, it gets the one-minute rates of the last 10 minutes (``step`` apart) and its
    forecast is compared with the mean rate of the minute ending one lead time later.
    Returns the mean absolute percentage error over minutes with traffic (``mape``), the
    mean signed error relative to the mean rate (``bias``: > 0 forecasts too high), and the
    share of forecasts below the actual rate (``under``)."""
    fn = PREDICTORS.get(predictor, PREDICTORS["trend"])
    # Python ints: the same exact counts as the int64 cumulative sum, cheaper to index.
    cum: list[int] = np.concatenate([[0], np.cumsum(arrivals)]).tolist()

    def rate(end: int) -> float:
        a = max(0, end - window)
        return float(cum[end] - cum[a]) / max(1, end - a)

    lead = int(lead_seconds)
    errors: list[float] = []
    signed: list[float] = []
    actuals: list[float] = []
    under = 0
    for t in range(max(begin, window), len(arrivals) - lead, step):
        samples = [
            (float(age), rate(t - age)) for age in range(600, -1, -step) if t - age >= window
        ]
        forecast = fn(samples, float(lead))
        if forecast is None:
            continue
        actual = rate(t + lead)
        actuals.append(actual)
        signed.append(forecast - actual)
        under += forecast < actual
        if actual > 0:
            errors.append(abs(forecast - actual) / actual)
    mean_rate = float(np.mean(actuals)) if actuals else 0.0
    return {
        "predictor": predictor,
        "leadSeconds": lead,
        "mape": round(float(np.mean(errors)), 4) if errors else None,
        "bias": round(float(np.mean(signed)) / mean_rate, 4) if mean_rate > 0 else None,
        "under": round(under / len(actuals), 4) if actuals else None,
    }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


@dataclass(frozen=True)
class RequestDraws:
    """What the TTFTs of one deployment's measured requests (seconds ``[begin, end)``)
    take from its traffic alone, the same for every policy and run: each request's
    arrival second, prompt tokens and its three uniform draws (rest of the step under
    way, GPU class picked, failure). Shapes: (requests,), in arrival order."""

    begin: int
    end: int
    second: npt.NDArray[np.int64]
    prompts: FloatArray
    residual: FloatArray
    pick: FloatArray
    fail: FloatArray


def request_draws(traffic: Traffic, begin: int, end: int) -> RequestDraws:
    """``traffic``'s ``RequestDraws`` for the seconds ``[begin, end)`` (seeded: the same
    arrays every time)."""
    arrivals = traffic.arrivals[begin:end]
    total = int(arrivals.sum())
    second = np.repeat(np.arange(begin, end), arrivals)
    prompts = traffic.prompts_between(begin, end)
    rng = np.random.default_rng(traffic.seed + 2)
    residual = rng.random(total)
    pick = rng.random(total)
    fail = rng.random(total)
    return RequestDraws(begin, end, second, prompts, residual, pick, fail)


def _same_requests(a: Traffic, b: Traffic) -> bool:
    """Whether ``request_draws`` of ``a`` and ``b`` are the same arrays for any seconds:
    what it reads of them (arrivals, seed, the prompt lengths' law or a replay's own) is
    equal."""
    if a is b:
        return True
    if (a.seed, a.prompt_median, a.prompt_sigma) != (b.seed, b.prompt_median, b.prompt_sigma):
        return False
    mine, theirs = a.request_prompts, b.request_prompts
    if mine is None or theirs is None:
        if mine is not theirs:  # one a replay, the other drawn
            return False
    elif not np.array_equal(mine, theirs):
        return False
    return bool(np.array_equal(a.arrivals, b.arrivals))


class DrawsMemo:
    """``request_draws`` answered from memory for a traffic whose requests equal those of
    one asked before (compared by value: a worker process gets its own copy of the traffic
    with each policy it runs), for the same seconds. The draws are read-only arrays. Holds
    at most ``size`` entries (about 40 bytes per request each; cleared when full)."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._entries: list[tuple[Traffic, int, int, RequestDraws]] = []

    def get(self, traffic: Traffic, begin: int, end: int) -> RequestDraws:
        for known, b, e, draws in self._entries:
            if (b, e) == (begin, end) and _same_requests(known, traffic):
                return draws
        draws = request_draws(traffic, begin, end)
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries.append((traffic, begin, end, draws))
        return draws


def _request_ttfts(
    run: PolicyRun, key: str, draws: RequestDraws | None = None
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """TTFT (seconds; inf for a failed request) and arrival second of every measured
    request of deployment ``key``, in arrival order. ``draws``: the deployment's
    ``request_draws`` made beforehand (used when they cover the run's seconds)."""
    load = run.load.deployments[key]
    begin, end = run.offset, load.seconds
    arrivals = load.traffic.arrivals[begin:end]
    if draws is None or (draws.begin, draws.end) != (begin, end):
        draws = request_draws(load.traffic, begin, end)
    second, prompts = draws.second, draws.prompts
    residual, pick, fail = draws.residual, draws.pick, draws.fail
    total = len(second)
    mu = np.array(load.mu)
    ready = load.ready[begin:end].sum(axis=1).astype(np.float64)  # (s, g)
    weight = ready * mu[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.cumsum(weight, axis=1) / weight.sum(axis=1, keepdims=True)
        failed_fraction = np.where(arrivals > 0, load.failed[begin:end] / arrivals, 0.0)
    share = np.nan_to_num(share, nan=1.0)
    local = second - begin
    # The class each request went to: how many cumulative shares its draw exceeds (one
    # pass per class: no (requests x classes) temporaries, the same integers).
    cls = np.zeros(total, dtype=np.intp)
    if len(load.classes) != 1:  # with one class every request goes to it (class 0)
        for g in range(share.shape[1]):
            cls += pick > share[local, g]
        cls = np.minimum(cls, len(load.classes) - 1)
    prefill = np.array([m.prefill_rate for m in load.models])
    chunk = np.array([float(m.chunk_tokens) for m in load.models])
    tau = load.tau[second, cls]
    # wait + residual x tau + max(1, ceil(prompt / chunk)) x tau + prompt / prefill, added
    # in that order, in place (the same floats with fewer temporaries of 10^7 requests).
    ttft = load.wait[second]
    ttft += residual * tau
    steps = np.divide(prompts, chunk[cls])
    np.ceil(steps, out=steps)
    np.maximum(1.0, steps, out=steps)
    steps *= tau
    ttft += steps
    np.divide(prompts, prefill[cls], out=steps)
    ttft += steps
    ttft[fail < failed_fraction[local]] = np.inf
    return ttft, local


def _minute_p95(ttft: FloatArray, local: npt.NDArray[np.int64], minutes: int) -> FloatArray:
    """TTFT p95 (ms) of each minute's requests (nan for a minute without requests)."""
    out = np.full(minutes, np.nan)
    minute = local // 60
    bounds = np.searchsorted(minute, np.arange(minutes + 1))
    for m in range(minutes):
        lo, hi = bounds[m], bounds[m + 1]
        n = hi - lo
        if n == 0:
            continue
        k = min(n - 1, math.ceil(0.95 * n) - 1)
        out[m] = float(np.partition(ttft[lo:hi], k)[k]) * 1000.0
    return out


def _tick_of(run: PolicyRun, seconds: float) -> int:
    return int((run.offset + seconds) // run.tick)


def _restore_time(
    run: PolicyRun, keys: list[str], from_tick: int, needed: dict[str, int]
) -> tuple[float | None, dict[str, float | None]]:
    per: dict[str, float | None] = {}
    for key in keys:
        ready = run.ready[key][from_tick:]
        # What is needed may fall while capacity is away (the load went down, the policy
        # wants fewer): restored means as many as were needed, or as the policy wants now.
        wanted = run.desired[key][from_tick:]
        target = np.where(wanted > 0, np.minimum(wanted, needed[key]), needed[key])
        hit = np.nonzero(ready >= target)[0]
        per[key] = float(hit[0] * run.tick) if len(hit) else None
    values = list(per.values())
    worst = (
        None
        if any(v is None for v in values)
        else max((v for v in values if v is not None), default=0.0)
    )
    return worst, per


def _iso(run: PolicyRun, seconds: float) -> str:
    return (run.start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _failovers(run: PolicyRun) -> list[dict[str, Any]]:
    out = []
    for event in run.world.event_log:
        if event["type"] != "regionOutage":
            continue
        at = float(event["atSeconds"])  # type: ignore[arg-type]
        k = _tick_of(run, at)
        before = max(0, k - 1)
        hit_clusters = sorted(event.get("clusters") or [])  # type: ignore[call-overload]
        index = [run.load.cluster_index[c] for c in hit_clusters]
        second = max(0, run.offset + int(at) - 1)
        keys = [
            key
            for key, load in run.load.deployments.items()
            if int(load.ready[second, index].sum()) > 0
        ]
        needed = {key: int(min(run.ready[key][before], run.desired[key][before])) for key in keys}
        worst, per = _restore_time(run, keys, k, needed)
        out.append(
            {
                "event": event["event"],
                "at": _iso(run, at),
                "rtoSeconds": worst,
                "clusters": hit_clusters,
                "perDeployment": {
                    key: {"needed": needed[key], "rtoSeconds": per[key]} for key in keys
                },
            }
        )
    return out


def _stockouts(run: PolicyRun) -> list[dict[str, Any]]:
    out = []
    for event in run.world.event_log:
        if event["type"] != "stockout":
            continue
        at = float(event["atSeconds"])  # type: ignore[arg-type]
        end = float(event["endSeconds"])  # type: ignore[arg-type]
        errors = [
            (t - run.offset, key) for t, key in run.capacity_errors if at <= t - run.offset <= end
        ]
        if not errors:
            out.append(
                {"event": event["event"], "at": _iso(run, at), "recoverySeconds": 0.0, "hit": False}
            )
            continue
        first = min(t for t, _ in errors)
        keys = sorted({key for _, key in errors})
        k = _tick_of(run, first)
        needed = {key: int(run.desired[key][k]) for key in keys}
        worst, per = _restore_time(run, keys, k, needed)
        out.append(
            {
                "event": event["event"],
                "at": _iso(run, at),
                "firstRefusedAt": _iso(run, first),
                "recoverySeconds": worst,
                "hit": True,
                "perDeployment": {
                    key: {"needed": needed[key], "recoverySeconds": per[key]} for key in keys
                },
            }
        )
    return out


def _reclaims(run: PolicyRun) -> list[dict[str, Any]]:
    out = []
    reclaim_events = [e for e in run.world.event_log if e["type"] == "spotReclaim"]
    for event in reclaim_events:
        at = float(event["atSeconds"])  # type: ignore[arg-type]
        losses = [loss for loss in run.world.losses if at <= loss.at - run.offset <= at + 600]
        if not losses:
            out.append(
                {
                    "event": event["event"],
                    "at": _iso(run, at),
                    "recoverySeconds": 0.0,
                    "replicasLost": 0,
                }
            )
            continue
        gone = min(loss.at for loss in losses) - run.offset
        k = _tick_of(run, gone)
        keys = sorted({loss.md for loss in losses})
        needed = {key: int(min(run.ready[key][k - 1], run.desired[key][k - 1])) for key in keys}
        worst, per = _restore_time(run, keys, k, needed)
        out.append(
            {
                "event": event["event"],
                "at": _iso(run, at),
                "nodesGoneAt": _iso(run, gone),
                "replicasLost": sum(loss.lost for loss in losses),
                "recoverySeconds": worst,
                "perDeployment": {
                    key: {"needed": needed[key], "recoverySeconds": per[key]} for key in keys
                },
            }
        )
    return out


@dataclass(frozen=True)
class Prepared:
    """The part of a policy's evaluation that its run does not change, made beforehand
    (``prepare``): per deployment key, the requests' draws and the predictor's error
    (None for a policy that does not forecast)."""

    draws: dict[str, RequestDraws]
    forecasts: dict[str, dict[str, Any] | None]


def _forecast(
    md: ModelDeployment, arrivals: npt.NDArray[np.int64], begin: int, policy: str
) -> dict[str, Any] | None:
    """``md``'s predictor error on its arrivals, for a modelfleet policy (else None)."""
    if not policy.startswith("modelfleet"):
        return None
    return predictor_error(
        arrivals,
        predictor=md.spec.scaling.predictor,
        lead_seconds=md.spec.scaling.lead_time_seconds or DEFAULT_LEAD_TIME_SECONDS,
        begin=begin,
    )


def prepare(
    scenario: Scenario,
    traffic: dict[str, Traffic],
    policy: str,
    *,
    memo: DrawsMemo | None = None,
) -> Prepared:
    """What ``evaluate`` of ``policy``'s run over ``scenario`` and ``traffic`` can compute
    before the run ends (the traffic's own draws, the predictor's error): ``simulate
    --compare`` makes it in the parent process on a core the finished baselines left
    free, while the modelfleet run still runs. ``memo``: where draws made for an earlier
    policy over the same traffic are kept (a worker evaluating several baselines)."""
    control = scenario.spec.world.control
    begin = int(control.warmup_minutes * 60)
    end = begin + int(scenario.spec.duration_hours * 3600)
    draws: dict[str, RequestDraws] = {}
    forecasts: dict[str, dict[str, Any] | None] = {}
    for md in scenario.deployments:
        key = f"{md.metadata.namespace or 'default'}/{md.metadata.name}"
        draws[key] = (
            memo.get(traffic[key], begin, end)
            if memo is not None
            else request_draws(traffic[key], begin, end)
        )
        forecasts[key] = _forecast(md, traffic[key].arrivals, begin, policy)
    return Prepared(draws, forecasts)


def evaluate(run: PolicyRun, prepared: Prepared | None = None) -> PolicyReport:
    """The figures of one run (see the module docstring for their definitions);
    ``prepared``: ``prepare``'s answer for this run's scenario, traffic and policy (the
    same figures, less work after the run)."""
    minutes = (run.load.seconds - run.offset) // 60
    figures: dict[str, DeploymentFigures] = {}
    all_ttft = []
    requests = failed = 0
    first_tick = run.offset // int(run.tick)
    for md in run.scenario.deployments:
        key = f"{md.metadata.namespace or 'default'}/{md.metadata.name}"
        ttft, local = _request_ttfts(run, key, prepared.draws.get(key) if prepared else None)
        minute = _minute_p95(ttft, local, minutes)
        ok = ttft[np.isfinite(ttft)]
        all_ttft.append(ok)
        n_failed = int(np.isinf(ttft).sum())
        ready = run.ready[key][first_tick:]
        figures[key] = DeploymentFigures(
            slo_ms=md.spec.slo.ttft_p95_ms,
            minute_p95_ms=minute,
            requests=len(ttft),
            failed=n_failed,
            ttft_p95_ms=float(np.percentile(ok, 95)) * 1000.0 if len(ok) else None,
            replicas_mean=float(ready.mean()) if len(ready) else 0.0,
            replicas_max=int(ready.max(initial=0)),
            forecast=prepared.forecasts[key]
            if prepared is not None and key in prepared.forecasts
            else _forecast(md, run.load.deployments[key].traffic.arrivals, run.offset, run.policy),
        )
        requests += len(ttft)
        failed += n_failed
    met = np.ones(minutes, dtype=bool)
    for f in figures.values():
        met &= f.minute_met[:minutes]
    merged = np.concatenate(all_ttft) if all_ttft else np.array([])
    return PolicyReport(
        run=run,
        deployments=figures,
        slo_attainment=float(met.mean()) if minutes else 1.0,
        ttft_p95_ms=float(np.percentile(merged, 95)) * 1000.0 if len(merged) else None,
        requests=requests,
        failed=failed,
        gpu_hours=float(run.gpus[first_tick:].sum()),
        cost_usd=float(run.cost[first_tick:].sum()),
        on_demand_cost_usd=float(run.on_demand_cost[first_tick:].sum()),
        failovers=_failovers(run),
        stockouts=_stockouts(run),
        spot_reclaims=_reclaims(run),
    )


def timeline_rows(report: PolicyReport) -> list[dict[str, Any]]:
    """One row per measured minute: time, requests, failures, TTFT p95 per deployment,
    ready replicas per region, cost rate."""
    run = report.run
    minutes = (run.load.seconds - run.offset) // 60
    per_minute = int(60 // run.tick)
    first = run.offset // int(run.tick)
    rows = []
    for m in range(minutes):
        ticks = slice(first + m * per_minute, first + (m + 1) * per_minute)
        row: dict[str, Any] = {
            "policy": run.policy,
            "minute": m,
            "time": (run.start + timedelta(minutes=m)).isoformat().replace("+00:00", "Z"),
        }
        seconds = slice(run.offset + m * 60, run.offset + (m + 1) * 60)
        met = True
        for key, fig in report.deployments.items():
            load = run.load.deployments[key]
            name = key.split("/", 1)[1]
            row[f"requests:{name}"] = int(load.traffic.arrivals[seconds].sum())
            row[f"failed:{name}"] = round(float(load.failed[seconds].sum()), 2)
            p95 = fig.minute_p95_ms[m]
            row[f"ttft_p95_ms:{name}"] = (
                None if np.isnan(p95) else (round(float(p95), 1) if math.isfinite(p95) else "inf")
            )
            row[f"ready:{name}"] = _least(run.ready[key][ticks])
            row[f"desired:{name}"] = int(run.desired[key][ticks].max(initial=0))
            if run.gpu_account is not None:
                row.update(
                    run.gpu_account.minute_columns(
                        run.load, key, name, seconds, ticks, run.ready[key]
                    )
                )
            met = met and bool(fig.minute_met[m])
        row["slo_met"] = met
        for region, counts in run.region_ready.items():
            row[f"region:{region}"] = int(counts[ticks].min()) if len(run.ready[key][ticks]) else 0
        row["cost_per_hour"] = round(float(run.cost[ticks].sum()) * 60.0, 2)
        row["gpus"] = round(float(run.gpus[ticks].sum()) * 60.0, 2)
        if run.gpu_account is not None:
            row["gpu_idle_unheld"] = run.gpu_account.unheld_idle(ticks)
        rows.append(row)
    return rows


def _least(values: npt.NDArray[np.int32]) -> int:
    return int(values.min()) if len(values) else 0


def start_time(run: PolicyRun) -> datetime:
    """The scenario's start (measurement begins)."""
    return run.start
