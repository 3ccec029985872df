"""Request traffic: a diurnal arrival rate with bursts and noise, and token lengths.

Everything is drawn up front with numpy from a seed, per deployment, so every policy of a
run sees exactly the same requests (same arrival counts per second, same prompts), and a
run is reproducible. The arrival rate is

    rate(t) = trough + (peak - trough) * ((1 + cos(2 pi (h(t) - peakHour) / 24)) / 2) ** shape

times the multiplier of any burst covering ``t``, times a per-minute log-normal noise
factor; arrivals per second are Poisson around it. Prompt and output lengths are log-normal
(median, sigma), which fits the long right tails of chat traces (ShareGPT, LMSYS-Chat).
"""

from __future__ import annotations

import csv
import functools
import math
import zlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from modelfleet.sim.traffic_spec import Burst, TraceSpec, TrafficSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# Standard normal CDF on a grid, for the log-normal prompt lengths (numpy has no erf).
_Z = np.linspace(-8.0, 8.0, 4001)
_PHI = np.array([0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) for z in _Z])


def normal_cdf(z: FloatArray) -> FloatArray:
    """Phi(z), vectorised (interpolated; error below 1e-6)."""
    out: FloatArray = np.interp(z, _Z, _PHI)
    return out


def lognormal_mean(median: float, sigma: float) -> float:
    """Mean of a log-normal given its median and log-space sigma."""
    return median * math.exp(sigma * sigma / 2)


@dataclass(frozen=True)
class Traffic:
    """One deployment's requests over the simulated seconds ``[0, seconds)``."""

    rate: FloatArray
    """Expected arrivals per second, per second (bursts and noise applied)."""
    arrivals: IntArray
    """Requests arriving in each second (Poisson around ``rate``)."""
    prompt_median: float
    prompt_sigma: float
    output_median: float
    output_sigma: float
    seed: int
    request_prompts: IntArray | None = None
    """A replayed trace's own prompt length (tokens) of every request, in arrival order
    (aligned with ``arrivals``); None for drawn traffic, whose lengths are the log-normal
    (median, sigma) above. A trace's lengths are bounded by its model's context window and
    far from log-normal in the tail (the Azure code trace: p95 7,303 tokens, none above
    7,437, where the log-normal fit says p95 ~13,800 and has no bound), so the serving model
    and the report read them as they are."""
    request_outputs: IntArray | None = None
    """The same for output lengths."""

    @property
    def prompt_mean(self) -> float:
        """Mean prompt tokens (the trace's own mean for a replay)."""
        if self.request_prompts is not None and len(self.request_prompts):
            return float(self.request_prompts.mean())
        return lognormal_mean(self.prompt_median, self.prompt_sigma)

    @property
    def output_mean(self) -> float:
        """Mean output tokens (the trace's own mean for a replay)."""
        if self.request_outputs is not None and len(self.request_outputs):
            return float(self.request_outputs.mean())
        return lognormal_mean(self.output_median, self.output_sigma)

    @property
    def prompt_p95(self) -> float:
        """95th-percentile prompt tokens: the trace's own for a replay, else the
        log-normal's (median x exp(1.645 sigma))."""
        if self.request_prompts is not None and len(self.request_prompts):
            return float(np.percentile(self.request_prompts, 95))
        return self.prompt_median * math.exp(1.645 * self.prompt_sigma)

    def prompt_cdf(self, tokens: FloatArray) -> FloatArray:
        """P(prompt <= tokens), elementwise over any shape: the trace's empirical
        distribution for a replay, else the log-normal's."""
        if self.request_prompts is not None and len(self.request_prompts):
            ordered = self._sorted_prompts
            found = np.searchsorted(ordered, tokens, side="right")
            out: FloatArray = found / float(len(ordered))
            return out
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.log(np.maximum(tokens, 1e-9)) - math.log(self.prompt_median)) / max(
                self.prompt_sigma, 1e-6
            )
        cdf: FloatArray = np.where(tokens > 0, normal_cdf(z), 0.0)
        return cdf

    @functools.cached_property
    def _sorted_prompts(self) -> IntArray:
        assert self.request_prompts is not None
        return np.sort(self.request_prompts)

    def prompts(self, count: int) -> FloatArray:
        """``count`` prompt lengths (tokens), the same for the same traffic and count."""
        rng = np.random.default_rng(self.seed + 1)
        out: FloatArray = rng.lognormal(math.log(self.prompt_median), self.prompt_sigma, count)
        return out

    def prompts_between(self, begin: int, end: int) -> FloatArray:
        """Prompt tokens of the requests arriving in seconds ``[begin, end)``, in arrival
        order: a replay's own lengths, else ``prompts(count)`` (log-normal draws)."""
        if self.request_prompts is None:
            return self.prompts(int(self.arrivals[begin:end].sum()))
        first = int(self.arrivals[:begin].sum())
        last = first + int(self.arrivals[begin:end].sum())
        return self.request_prompts[first:last].astype(np.float64)

    def peak_rate(self, *, window_seconds: int = 60) -> float:
        """Highest mean arrival rate over any aligned ``window_seconds`` window."""
        n = len(self.rate) // window_seconds * window_seconds
        if n == 0:
            return float(self.rate.max(initial=0.0))
        return float(self.rate[:n].reshape(-1, window_seconds).mean(axis=1).max())


def stable_seed(seed: int, name: str) -> int:
    """A per-name seed derived from the run's seed (stable across Python processes)."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**32


def diurnal_rate(spec: TrafficSpec, seconds: int, *, start_hour: float) -> FloatArray:
    """The noiseless diurnal rate per second, without bursts (``start_hour`` is the UTC hour
    of day of second 0)."""
    t = np.arange(seconds, dtype=np.float64)
    hours = (start_hour + t / 3600.0) % 24.0
    phase = (1.0 + np.cos(2.0 * np.pi * (hours - spec.peak_hour) / 24.0)) / 2.0
    peak = spec.peak_rps if spec.peak_rps is not None else spec.trough_rps
    rate: FloatArray = spec.trough_rps + (peak - spec.trough_rps) * phase**spec.shape
    return rate


def apply_bursts(rate: FloatArray, bursts: list[Burst], *, offset: float = 0.0) -> FloatArray:
    """``rate`` with every burst's multiplier applied over its window (a burst at ``at``
    seconds from the scenario start covers second ``offset + at`` on), ramping up and down
    over a minute each as real bursts do."""
    out = rate.copy()
    for burst in bursts:
        begin = max(0, int(offset + burst.at_seconds))
        end = min(len(out), int(offset + burst.at_seconds + burst.duration_minutes * 60))
        if end <= begin:
            continue
        length = end - begin
        ramp = np.ones(length)
        edge = min(60, length // 2)
        if edge > 0:
            ramp[:edge] = np.linspace(1.0 / edge, 1.0, edge)
            ramp[-edge:] = np.minimum(ramp[-edge:], np.linspace(1.0, 1.0 / edge, edge))
        out[begin:end] *= 1.0 + (burst.multiplier - 1.0) * ramp
    return out


MAX_TRACE_TOKENS = 10_000_000
"""Most prompt or output tokens one trace row may give: above any model's context window
(the largest public ones are 10M tokens). Larger counts, negative ones and counts beyond 64
bits are errors naming the row; 0 counts as 1 token."""

MAX_REPLAYED_REQUESTS = 20_000_000
"""Most requests a replay may lay out (about 1.5 GB of arrays at its peak): beyond it a
scenario is refused (``load_scenario``) rather than running the machine out of memory."""


@functools.lru_cache(maxsize=8)
def read_trace(path: str) -> tuple[FloatArray, IntArray, IntArray]:
    """(seconds since the earliest request, prompt tokens, output tokens) of an
    Azure-format trace, in time order (rows out of order are sorted, none is lost). A token
    count of 0 counts as 1; a UTF-8 byte-order mark is ignored. Raises ValueError naming the file (and the line and column, for
    a bad row: not an integer, negative, above ``MAX_TRACE_TOKENS``); OSError if it cannot
    be opened."""
    times: list[float] = []
    prompts: list[int] = []
    outputs: list[int] = []
    try:
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is no part of the first name
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            need = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"}
            if not need <= set(reader.fieldnames or ()):
                found = ",".join(reader.fieldnames or ()) or "none"
                raise ValueError(
                    f"{path}: expected the columns {','.join(sorted(need))} (found: {found})"
                )
            first: datetime | None = None
            for line, row in enumerate(reader, start=2):
                if None in row.values():
                    raise ValueError(f"{path}:{line}: fewer values than columns")
                try:
                    stamp = row["TIMESTAMP"].strip()
                    head, _, frac = stamp.partition(".")
                    when = datetime.fromisoformat(head + ("." + frac[:6] if frac else ""))
                    first = first or when
                    times.append((when - first).total_seconds())
                    prompts.append(_tokens(row, "ContextTokens"))
                    outputs.append(_tokens(row, "GeneratedTokens"))
                except (ValueError, TypeError, AttributeError) as exc:
                    raise ValueError(f"{path}:{line}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text (UTF-8) CSV file: {exc.reason}") from exc
    if not times:
        raise ValueError(f"{path}: no requests")
    order = np.argsort(np.asarray(times), kind="stable")
    ordered = np.asarray(times)[order]
    return (
        ordered - ordered[0],  # from the earliest request, wherever its row is
        np.asarray(prompts, dtype=np.int64)[order],
        np.asarray(outputs, dtype=np.int64)[order],
    )


def _tokens(row: dict[str, str], column: str) -> int:
    """The token count in ``row[column]`` (0 counts as 1); ValueError naming the column."""
    value = int(row[column])
    if not 0 <= value <= MAX_TRACE_TOKENS:
        raise ValueError(f"{column} {value} is out of range (0 to {MAX_TRACE_TOKENS:,} tokens)")
    return max(1, value)


def _plays(trace: TraceSpec, span: float, *, seconds: int, offset: int) -> tuple[int, int]:
    """(plays of the pre-roll before the trace's start, plays from it on) that can land in
    ``[0, seconds)``: a ``repeat`` larger than what fits is played only as far as it fits."""
    length = span * trace.stretch
    fits = max(1, math.ceil(seconds / length) + 1)
    plays = min(trace.repeat, fits) if trace.repeat else fits
    pre = math.ceil((offset + trace.shift_seconds) / length) if offset else 0
    return pre, plays


def replayed_requests(trace: TraceSpec, *, seconds: int, offset: int) -> float:
    """How many requests ``replay`` lays out (before keeping those inside the run): the
    measure of its memory. Reads the trace (``read_trace``'s errors)."""
    if trace.path is None:
        raise ValueError("trace path not resolved (load the scenario with load_scenario)")
    times, _, _ = read_trace(trace.path)
    pre, plays = _plays(trace, float(times[-1]) + 1.0, seconds=seconds, offset=offset)
    return float(len(times)) * (pre + plays) * math.ceil(trace.rate_scale)


def replay(trace: TraceSpec, *, seconds: int, seed: int, name: str, offset: int = 0) -> Traffic:
    """A deployment's traffic from a trace (see ``scenario.TraceSpec``): arrivals per
    second as the trace has them (shifted, stretched, scaled, repeated; the warm-up before
    the scenario start replays the trace's end), the expected rate
    as their one-minute moving mean, and every kept request's own prompt and output
    lengths (``Traffic.request_prompts``), whose means the serving model reads and whose
    prompts the report's TTFTs use; the log-normal fit (median and sigma of the log
    lengths) is kept for display."""
    if trace.path is None:
        raise ValueError("trace path not resolved (load the scenario with load_scenario)")
    times, prompts, outputs = read_trace(trace.path)
    own = stable_seed(seed, name)
    rng = np.random.default_rng(own)
    span = float(times[-1]) + 1.0
    # Pre-roll: the warm-up before the scenario start plays the trace's end, as if it had
    # been running, so that every policy has its capacity up when measurement begins.
    pre, plays = _plays(trace, span, seconds=seconds, offset=offset)
    first = -pre
    at = np.concatenate([times + k * span for k in range(first, plays)]) * trace.stretch
    at = at + offset + trace.shift_seconds
    p = np.tile(prompts, plays - first)
    o = np.tile(outputs, plays - first)
    if pre:
        keep_pre = at < offset  # pre-roll only inside the warm-up
        keep_pre |= np.repeat(np.arange(first, plays) >= 0, len(times))
        at, p, o = at[keep_pre], p[keep_pre], o[keep_pre]
    whole = math.floor(trace.rate_scale)
    copies = np.full(len(at), whole, dtype=np.int64) + (
        rng.random(len(at)) < trace.rate_scale - whole
    )
    at, p, o = np.repeat(at, copies), np.repeat(p, copies), np.repeat(o, copies)
    keep = (at >= 0) & (at < seconds)
    at, p, o = at[keep], p[keep], o[keep]
    order = np.argsort(at, kind="stable")  # arrival order, as ``arrivals`` counts them
    at, p, o = at[order], p[order], o[order]
    arrivals: IntArray = np.bincount(at.astype(np.int64), minlength=seconds)[:seconds].astype(
        np.int64
    )
    kernel = np.ones(60) / 60.0
    rate: FloatArray = np.convolve(arrivals.astype(np.float64), kernel, mode="same")
    lp = np.log(p) if len(p) else np.zeros(1)
    lo = np.log(o) if len(o) else np.zeros(1)
    return Traffic(
        rate=rate,
        arrivals=arrivals,
        prompt_median=float(np.exp(np.median(lp))),
        prompt_sigma=float(np.std(lp)),
        output_median=float(np.exp(np.median(lo))),
        output_sigma=float(np.std(lo)),
        seed=own,
        request_prompts=p.astype(np.int64),
        request_outputs=o.astype(np.int64),
    )


def generate(
    spec: TrafficSpec, *, seconds: int, seed: int, name: str, start_hour: float, offset: int = 0
) -> Traffic:
    """Draw one deployment's traffic. ``offset`` seconds of warm-up precede the scenario
    start (the diurnal curve and bursts are positioned relative to the start). A spec with
    a ``trace`` replays it instead (``replay``)."""
    if spec.trace is not None:
        return replay(spec.trace, seconds=seconds, seed=seed, name=name, offset=offset)
    own = stable_seed(seed, name)
    rng = np.random.default_rng(own)
    base_hour = (start_hour - offset / 3600.0) % 24.0
    rate = apply_bursts(
        diurnal_rate(spec, seconds, start_hour=base_hour), spec.bursts, offset=offset
    )
    minutes = -(-seconds // 60)
    noise = rng.lognormal(0.0, spec.noise_sigma, minutes)
    noise /= float(np.exp(spec.noise_sigma**2 / 2))  # mean 1
    rate = rate * np.repeat(noise, 60)[:seconds]
    arrivals: IntArray = rng.poisson(rate).astype(np.int64)
    return Traffic(
        rate=rate,
        arrivals=arrivals,
        prompt_median=spec.prompt_tokens.median,
        prompt_sigma=spec.prompt_tokens.sigma,
        output_median=spec.output_tokens.median,
        output_sigma=spec.output_tokens.sigma,
        seed=own,
    )
