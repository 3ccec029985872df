"""The rate search and the profile it yields (pure: no I/O, no clock).

A step is one fixed offered rate held for a while; ``StepResult`` summarises its requests.
``next_rate`` climbs geometrically until a step fails (TTFT p95 or TPOT p95 above the
objective, or more than ``max_error_rate`` of requests failed), then bisects between the
highest passing and lowest failing rates a bounded number of times. ``profile_from``
turns the highest passing step into the token-throughput form of a capacity profile
(``modelfleet.core.profiles``): with the share ``f`` of a request's time spent before its
first token at the lowest load (TTFT p50 against TTFT p50 + TPOT p50 x (output - 1)), a
replica sustaining ``r`` requests/s of ``P`` prompt and ``O`` output tokens has
``prefill = r P / f`` and ``decode = r O / (1 - f)``, so that
``1 / (P / prefill + O / decode) = r`` at the measured mix and the split follows the
phases when the mix changes. Requests the endpoint refuses as invalid (HTTP 4xx other than
408 and 429: a prompt longer than the model's context, ...) are no load failure: they are
left out of every step's error rate, and the profile holds for the requests it accepts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` (0..1) percentile by linear interpolation (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


_LOAD_STATUSES = (408, 429)
"""4xx answers that load causes (request timeout, too many requests): failures, not
refusals."""


@dataclass(frozen=True)
class RequestResult:
    """One request: seconds to first token, seconds per later token, tokens, or an error
    (``error``: the client's exception name, or ``"no content"``; ``status``: the HTTP
    status the endpoint answered with, if any; ``detail``: the endpoint's own message)."""

    ttft_s: float | None
    tpot_s: float | None
    prompt_tokens: int
    output_tokens: int
    error: str | None = None
    status: int | None = None
    detail: str | None = None
    code: str | None = None
    """The endpoint's error code (OpenAI's ``error.code``, e.g. ``context_length_exceeded``)."""

    @property
    def refused(self) -> bool:
        """The endpoint refused the request itself (HTTP 4xx other than 408 and 429): a
        fault of the request (too long for the model's context, unknown model, ...), which
        no lower rate cures."""
        status = self.status
        return status is not None and 400 <= status < 500 and status not in _LOAD_STATUSES

    @property
    def cause(self) -> str | None:
        """The error in words: ``"HTTP 400: the prompt is 4811 tokens; ..."`` (the
        endpoint's message when it gave one), else the error's name; None without error."""
        if self.error is None:
            return None
        head = f"HTTP {self.status}" if self.status is not None else self.error
        return f"{head}: {self.detail}" if self.detail else head

    @property
    def kind(self) -> str | None:
        """What errors are grouped by: the status and the endpoint's error code when it
        gave one (``"HTTP 400 context_length_exceeded"``: its messages differ by the
        request's length), else ``cause``."""
        if self.status is not None and self.code:
            return f"HTTP {self.status} {self.code}"
        return self.cause


@dataclass(frozen=True)
class StepResult:
    """What one offered rate gave."""

    rate: float
    """Offered requests/s."""
    duration_s: float
    results: tuple[RequestResult, ...]

    @property
    def ok(self) -> list[RequestResult]:
        return [r for r in self.results if r.error is None and r.ttft_s is not None]

    @property
    def errors(self) -> int:
        return len(self.results) - len(self.ok)

    def causes(self) -> list[tuple[str, int, str]]:
        """Each kind of error (``RequestResult.kind``) with how many requests it failed and
        the cause of the first of them (``RequestResult.cause``), the most frequent first."""
        counts: dict[str, int] = {}
        first: dict[str, str] = {}
        for r in self.results:
            if r.kind is not None and r.cause is not None:
                counts[r.kind] = counts.get(r.kind, 0) + 1
                first.setdefault(r.kind, r.cause)
        return sorted(((k, n, first[k]) for k, n in counts.items()), key=lambda item: -item[1])

    @property
    def refused(self) -> int:
        """Requests the endpoint refused as invalid (``RequestResult.refused``): left out
        of the error rate and of the completed share, since no rate causes or cures them
        (a trace row longer than the model's context is refused at any load)."""
        return sum(1 for r in self.results if r.refused)

    @property
    def error_rate(self) -> float:
        """Failed requests over those the endpoint accepted (refused ones left out)."""
        accepted = len(self.results) - self.refused
        return (self.errors - self.refused) / accepted if accepted else 0.0

    @property
    def achieved(self) -> float:
        """Completed requests/s."""
        return len(self.ok) / self.duration_s if self.duration_s > 0 else 0.0

    def ttft_ms(self, q: float) -> float | None:
        v = percentile([r.ttft_s for r in self.ok if r.ttft_s is not None], q)
        return None if v is None else v * 1000.0

    def tpot_ms(self, q: float) -> float | None:
        v = percentile([r.tpot_s for r in self.ok if r.tpot_s is not None], q)
        return None if v is None else v * 1000.0

    def passes(
        self, ttft_slo_ms: float | None, tpot_slo_ms: float | None, max_error_rate: float
    ) -> bool:
        """Within every objective given, enough requests succeeded, and the endpoint kept
        up (at least 80% of the requests offered in the step completed).

        The requests offered are those sent, not ``rate x duration``: Poisson arrivals
        draw their count (23 in 30 s at 1 req/s with the default seed), and comparing the
        completions with the nominal rate failed a step on that draw alone, whatever the
        endpoint's latency."""
        return not self.broken(ttft_slo_ms, tpot_slo_ms, max_error_rate)

    def broken(
        self, ttft_slo_ms: float | None, tpot_slo_ms: float | None, max_error_rate: float
    ) -> list[str]:
        """What ``passes`` found wrong with this step, in words (e.g. ``"TTFT p95 52 ms >
        10 ms"``, ``"3 of 6 requests failed"``); empty when it passes. Requests the
        endpoint refused as invalid count only when nothing else was served."""
        accepted = len(self.results) - self.refused
        if not self.results:
            return ["no request was sent (a Poisson draw of none: raise --step-seconds)"]
        if not self.ok or self.error_rate > max_error_rate:
            if self.refused and not accepted:
                return [f"all {len(self.results)} requests were refused"]
            return [f"{self.errors - self.refused} of {accepted} requests failed"]
        found = []
        ttft = self.ttft_ms(0.95)
        if ttft_slo_ms is not None and (ttft is None or ttft > ttft_slo_ms):
            found.append(f"TTFT p95 {ttft or 0:,.0f} ms > {ttft_slo_ms:g} ms")
        tpot = self.tpot_ms(0.95)
        if tpot_slo_ms is not None and tpot is not None and tpot > tpot_slo_ms:
            found.append(f"TPOT p95 {tpot:,.1f} ms > {tpot_slo_ms:g} ms")
        if len(self.ok) < 0.8 * accepted:
            found.append(f"only {len(self.ok)} of {accepted} requests completed")
        return found


def next_rate(
    steps: Sequence[StepResult],
    passed: Sequence[bool],
    *,
    start: float,
    growth: float,
    max_rate: float,
    refinements: int,
) -> float | None:
    """The next rate to try, or None when the search is over: ``start``, then x ``growth``
    while every step passes (up to ``max_rate``), then ``refinements`` bisections between
    the highest passing rate and the lowest failing rate above it."""
    if not steps:
        return start
    first_fail = next((i for i, p in enumerate(passed) if not p), None)
    if first_fail is None:
        last = steps[-1].rate
        return None if last >= max_rate else min(last * growth, max_rate)
    good = [s.rate for s, p in zip(steps, passed, strict=True) if p]
    if not good:
        return None
    lo = max(good)
    above = [s.rate for s, p in zip(steps, passed, strict=True) if not p and s.rate > lo]
    if not above:
        return None
    hi = min(above)
    if len(steps) - 1 - first_fail >= refinements or hi / lo < 1.05:
        return None
    return (lo + hi) / 2


@dataclass(frozen=True)
class MeasuredProfile:
    """The result: the highest rate within the objectives and its token-throughput form."""

    requests_per_second: float
    prefill_tokens_per_second: float
    decode_tokens_per_second: float
    prompt_tokens: float
    output_tokens: float
    ttft_p95_ms: float | None
    tpot_p95_ms: float | None


def profile_from(steps: Sequence[StepResult], passed: Sequence[bool]) -> MeasuredProfile | None:
    """The profile from the highest passing step (None when no step passed)."""
    good = [s for s, p in zip(steps, passed, strict=True) if p]
    if not good:
        return None
    best = max(good, key=lambda s: s.rate)
    lowest = min(steps, key=lambda s: s.rate)
    rate = best.achieved
    ok = best.ok
    prompt = sum(r.prompt_tokens for r in ok) / len(ok)
    output = sum(r.output_tokens for r in ok) / len(ok)
    ttft50 = lowest.ttft_ms(0.5) or 0.0
    tpot50 = lowest.tpot_ms(0.5) or 0.0
    decode_time = tpot50 * max(0.0, output - 1.0)
    share = ttft50 / (ttft50 + decode_time) if ttft50 + decode_time > 0 else 0.5
    share = min(0.95, max(0.05, share))
    return MeasuredProfile(
        requests_per_second=rate,
        prefill_tokens_per_second=rate * prompt / share,
        decode_tokens_per_second=rate * output / (1.0 - share),
        prompt_tokens=prompt,
        output_tokens=output,
        ttft_p95_ms=best.ttft_ms(0.95),
        tpot_p95_ms=best.tpot_ms(0.95),
    )
