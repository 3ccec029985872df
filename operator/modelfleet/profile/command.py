"""``modelfleet profile``: the load test as a command, with a live table and a progress bar.

Runs ``search.next_rate`` steps against the endpoint with ``loadgen.run_step``, prints one
table row per step (offered and achieved rate, TTFT p50/p95, TPOT p95, errors, verdict)
and writes the profile the operator reads: a ModelDeployment fragment holding one
``spec.capacityProfiles`` entry with ``source: Measured`` (docs/api.md), ready for
``kubectl patch md NAME --type merge --patch-file`` or for pasting into the manifest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from modelfleet.cli_layout import print_lines, wrap
from modelfleet.profile.loadgen import Arrivals, one_request, run_step
from modelfleet.profile.mix import Mix
from modelfleet.profile.search import (
    MeasuredProfile,
    StepResult,
    next_rate,
    profile_from,
)


class EndpointError(Exception):
    """The endpoint never gave a streamed answer: every warm-up request failed. The message
    says why (cannot connect, no streamed content, ...), without credentials."""


def redact(url: str) -> str:
    """``url`` without user:password (it goes into the profile and the output)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as the endpoint's base URL (not http or https, no host,
    a port or IPv6 address that does not parse), without repeating it (it may hold a
    password); None when it can be tried."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port raises ValueError when it is not one
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        scheme = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        return f"not an http(s) URL ({scheme})"
    if not parts.hostname:
        return "no host"
    return None


_WHY = {
    "APIConnectionError": "cannot connect to {url}",
    "APITimeoutError": "{url} did not answer within the timeout",
    "no content": "{url} answered without streamed content: is it a streaming OpenAI "
    "chat-completions endpoint?",
    "NotFoundError": "{url} answered 404: check the base URL (it usually ends in /v1) and --model",
    "AuthenticationError": "{url} refused the API key (--api-key-env)",
    "PermissionDeniedError": "{url} refused the API key (--api-key-env)",
}


_REFUSED_HINT = (
    "the endpoint refused the request itself, which no lower rate cures: check the "
    "request mix against the model (--prompt-tokens and --output-tokens, or the --trace "
    "rows: a prompt and output longer than the model's context is refused) and --model"
)
"""What to do when requests are refused as invalid (HTTP 4xx other than 408 and 429)."""


def error_summary(steps: Sequence[StepResult], *, most: int = 3) -> list[str]:
    """The ``most`` most frequent kinds of error over ``steps``
    (``StepResult.causes``), one line each with the first one's cause (``"47 requests:
    HTTP 400 context_length_exceeded, e.g. HTTP 400: the prompt is 4811 tokens; ..."``),
    and how many other kinds there were; empty when no request failed. The table gives
    only a count per step."""
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for step in steps:
        for kind, n, cause in step.causes():
            counts[kind] = counts.get(kind, 0) + n
            first.setdefault(kind, cause)
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    lines = []
    for kind, n in ranked[:most]:
        said = kind if first[kind] == kind else f"{kind}, e.g. {first[kind]}"
        lines.append(f"{n:,}{_KEEP}request{'s' if n > 1 else ''}: {said}")
    if len(ranked) > most:
        lines.append(f"and {len(ranked) - most} other kind(s) of error")
    return lines


@dataclass(frozen=True)
class ProfileRequest:
    """Everything one profiling run needs."""

    base_url: str
    model: str
    gpu: str
    gpu_count: int
    ttft_p95_ms: float | None
    tpot_p95_ms: float | None
    mix: Mix
    start_rate: float = 1.0
    growth: float = 2.0
    max_rate: float = 256.0
    step_seconds: float = 30.0
    refinements: int = 3
    arrivals: Arrivals = "poisson"
    max_error_rate: float = 0.01
    api_key: str = "none"
    timeout: float = 60.0
    seed: int = 0
    warmup: int = 4
    """Requests sent one by one before the first step and not measured."""


_KEEP = "\u00a0"
"""A no-break space: a figure and its unit stay on one line when a sentence is wrapped
(``cli_layout.wrap`` prints it as a plain space)."""


def _table(steps: list[StepResult], passed: list[bool]) -> Table:
    """The steps, lowest rate first. Each column is as wide as its widest cell, so a
    console narrower than the table cannot cut a figure (``1,2…``); print it with
    ``crop=False`` and a narrow terminal wraps the line instead."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f} ms"

    rows = [
        (
            f"{s.rate:.2f}/s",
            f"{s.achieved:.2f}/s",
            ms(s.ttft_ms(0.5)),
            ms(s.ttft_ms(0.95)),
            ms(s.tpot_ms(0.95)),
            f"{s.errors}",
            "within SLO" if ok else "breaks SLO",
        )
        for s, ok in zip(steps, passed, strict=True)
    ]
    table = Table(
        title="modelfleet profile",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    headers = ("rate", "achieved", "TTFT p50", "TTFT p95", "TPOT p95", "errors", "")
    for i, name in enumerate(headers):
        widest = max([len(name), *(len(row[i]) for row in rows)])
        table.add_column(name, justify="right", no_wrap=True, min_width=widest)
    for row in rows:
        table.add_row(*row)
    return table


async def profile(
    req: ProfileRequest, console: Console | None = None
) -> tuple[MeasuredProfile | None, list[StepResult], list[bool]]:
    """Run the search; returns the profile (None if no rate met the objectives) and the
    steps. Raises ImportError when the ``openai`` package is missing."""
    from openai import AsyncOpenAI

    console = console or Console()
    client = AsyncOpenAI(base_url=req.base_url, api_key=req.api_key, max_retries=0)
    lengths = req.mix.lengths(req.seed)
    # Warm-up, not measured: connections, the endpoint's first-request costs. If none of
    # it got a streamed answer, the search would only measure errors: say why instead.
    warm = []
    for _ in range(req.warmup):
        p, o = next(lengths)
        warm.append(await one_request(client, req.model, p, o, timeout=req.timeout))
    if warm and all(r.error is not None for r in warm):
        await client.close()
        last = warm[-1]
        error = str(last.error)
        why = _WHY.get(error, "every warm-up request to {url} failed ({error})")
        said = why.format(url=redact(req.base_url), error=last.cause or error)
        if error in _WHY and last.detail:
            said += f" (the endpoint said: {last.detail})"
        elif last.refused:  # a refusal _WHY has no words for (400, 413, 422, ...)
            said += f"; {_REFUSED_HINT}"
        raise EndpointError(said)
    steps: list[StepResult] = []
    passed: list[bool] = []
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            while True:
                rate = next_rate(
                    steps,
                    passed,
                    start=req.start_rate,
                    growth=req.growth,
                    max_rate=req.max_rate,
                    refinements=req.refinements,
                )
                if rate is None:
                    break
                expected = max(1, round(rate * req.step_seconds))
                task = bar.add_task(f"{rate:.2f} req/s", total=expected)
                step = await run_step(
                    client,
                    req.model,
                    rate,
                    req.step_seconds,
                    lengths,
                    arrivals=req.arrivals,
                    seed=req.seed + len(steps),
                    timeout=req.timeout,
                    on_done=lambda task=task: bar.advance(task),  # type: ignore[misc]
                )
                bar.remove_task(task)
                ok = step.passes(req.ttft_p95_ms, req.tpot_p95_ms, req.max_error_rate)
                steps.append(step)
                passed.append(ok)
                said = (
                    f"{rate:.2f}{_KEEP}req/s: TTFT{_KEEP}p95{_KEEP}"
                    f"{step.ttft_ms(0.95) or 0:,.0f}{_KEEP}ms, TPOT{_KEEP}p95{_KEEP}"
                    f"{step.tpot_ms(0.95) or 0:,.1f}{_KEEP}ms, {step.errors}{_KEEP}errors: "
                    + ("within SLO" if ok else "breaks SLO")
                )
                print_lines(console, wrap(said, console.width))
    finally:
        await client.close()
    order = sorted(range(len(steps)), key=lambda i: steps[i].rate)
    console.print(_table([steps[i] for i in order], [passed[i] for i in order]), crop=False)
    causes = error_summary(steps)
    if causes:
        print_lines(console, wrap("Failed requests, by cause:", console.width))
        for line in causes:
            print_lines(console, wrap(f"  {line}", console.width))
    refused = sum(s.refused for s in steps)
    if refused:
        said = (
            f"{refused:,}{_KEEP}request(s) were refused and left out of the measurement: "
            f"{_REFUSED_HINT}"
        )
        print_lines(console, [Text(line, style="yellow") for line in wrap(said, console.width)])
    return profile_from(steps, passed), steps, passed


def no_rate_met(req: ProfileRequest, steps: Sequence[StepResult]) -> str:
    """Why no profile was written: the search stops at the first failing rate when none
    passed, so the first rate (``--start-rate``) already broke the objectives; says how,
    and what to try (a lower ``--start-rate``, or looser objectives when one request
    alone misses them)."""
    if not steps:
        return "no offered rate met the objectives: no profile written"
    first = min(steps, key=lambda s: s.rate)
    why = first.broken(req.ttft_p95_ms, req.tpot_p95_ms, req.max_error_rate)
    refused = [r for r in first.results if r.refused]
    if refused and len(refused) == len(first.results):
        return (
            f"no offered rate met the objectives: at the first, {first.rate:.2f} req/s "
            f"(--start-rate), {len(refused)} of {len(first.results)} requests were refused "
            f"({refused[0].cause}): no profile written; {_REFUSED_HINT}"
        )
    return (
        f"no offered rate met the objectives: the first, {first.rate:.2f} req/s "
        f"(--start-rate), already broke them ({'; '.join(why)}): no profile written. "
        f"Try a lower --start-rate, e.g. {first.rate / 4:.3g}; if even a request on its "
        "own misses them, check the objectives (--ttft-p95-ms, --tpot-p95-ms)"
    )


def positive_round(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` decimals, except that a positive value that would
    round to 0 keeps 3 significant digits instead: a measured rate or throughput is never
    written as 0 (one request completed in a step of 2,000 s or more is 0.0005 req/s or
    less; ``requestsPerSecond: 0`` beside a curve is refused by the operator, and a token
    rate of 0 reads as "cannot serve")."""
    rounded = round(value, digits)
    if rounded == 0 and value > 0:
        return float(f"{value:.3g}")
    return rounded


def sweep_curve(steps: Sequence[StepResult]) -> list[dict[str, float]]:
    """Every step that completed a request, lowest rate first, as
    ``measurement.curve`` points: achieved requests/s (the rate the capacity point is
    stated in), TTFT p95 and TPOT p95 in ms (docs/api.md). At most 64 points (the CRD's
    limit; a search makes ~10).

    The curve is one the API accepts (``api.profiles.curve_problems``): a step whose
    achieved rate is not above the last one kept (an engine past saturation serves less
    at a higher offered rate) is left out, and so is a p95 lower than one kept at a lower
    rate (noise on the flat floor); a step left with neither latency goes too. Nothing is
    changed: every value written is one measured."""
    points: list[dict[str, float]] = []
    top: dict[str, float] = {}
    for s in sorted(steps, key=lambda s: s.rate):
        rate = positive_round(s.achieved, 3)
        if not s.ok or rate <= 0 or (points and rate <= points[-1]["requestsPerSecond"]):
            continue
        point = {"requestsPerSecond": rate}
        ttft, tpot = s.ttft_ms(0.95), s.tpot_ms(0.95)
        for name, value in (
            ("ttftP95Ms", None if ttft is None else round(ttft, 1)),
            ("tpotP95Ms", None if tpot is None else round(tpot, 2)),
        ):
            if value is not None and value >= top.get(name, value):
                point[name] = top[name] = value
        if len(point) > 1:
            points.append(point)
    return points[:64]


def profile_manifest(
    req: ProfileRequest,
    result: MeasuredProfile,
    *,
    at: datetime | None = None,
    steps: Sequence[StepResult] = (),
) -> dict[str, Any]:
    """The ModelDeployment fragment the operator reads (``spec.capacityProfiles``), with
    the sweep of ``steps`` as ``measurement.curve`` when there is one."""
    measurement: dict[str, Any] = {
        "requestsPerSecond": positive_round(result.requests_per_second, 3),
        "at": (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "endpoint": redact(req.base_url),
    }
    if result.ttft_p95_ms is not None:
        measurement["ttftP95Ms"] = round(result.ttft_p95_ms, 1)
    if result.tpot_p95_ms is not None:
        measurement["tpotP95Ms"] = round(result.tpot_p95_ms, 2)
    curve = sweep_curve(steps)
    if curve:
        measurement["curve"] = curve
    return {
        "spec": {
            "capacityProfiles": [
                {
                    "gpu": req.gpu,
                    "gpuCount": req.gpu_count,
                    "source": "Measured",
                    "prefillTokensPerSecond": positive_round(result.prefill_tokens_per_second, 1),
                    "decodeTokensPerSecond": positive_round(result.decode_tokens_per_second, 1),
                    "promptTokens": round(result.prompt_tokens, 1),
                    "outputTokens": round(result.output_tokens, 1),
                    "measurement": measurement,
                }
            ]
        }
    }


def run_profile(req: ProfileRequest, out: Path | None, console: Console) -> int:
    """The command's body: run, print, write ``out``; exit status (1: no rate met the SLO,
    2: ``out`` could not be written: the profile is printed instead). Raises
    EndpointError."""
    result, steps, passed = asyncio.run(profile(req, console))
    if result is None:
        said = wrap(no_rate_met(req, steps), console.width)
        print_lines(console, [Text(line, style="red") for line in said])
        return 1
    doc = profile_manifest(req, result, steps=steps)
    text = (
        f"# modelfleet profile of {req.model} on {req.gpu_count} x {req.gpu} at "
        f"{redact(req.base_url)}\n"
        "# Apply: kubectl patch md NAME --type merge --patch-file THIS_FILE\n"
        "# (replaces the list)\n" + yaml.safe_dump(doc, sort_keys=False)
    )
    best = (
        f"highest rate within the SLO: {result.requests_per_second:.2f}{_KEEP}req/s "
        f"({result.prompt_tokens:.0f}{_KEEP}prompt / {result.output_tokens:.0f}{_KEEP}output "
        f"tokens): prefill{_KEEP}{result.prefill_tokens_per_second:,.0f}{_KEEP}tok/s, "
        f"decode{_KEEP}{result.decode_tokens_per_second:,.0f}{_KEEP}tok/s"
    )
    print_lines(console, wrap(best, console.width))
    if all(passed) and max(step.rate for step in steps) >= req.max_rate:
        bound = (
            f"every rate up to --max-rate{_KEEP}{req.max_rate:g} met the objectives: the "
            "capacity is at least this, not found; raise --max-rate to find it (a profile "
            "below the capacity makes the operator start more replicas than needed)"
        )
        print_lines(console, [Text(line, style="yellow") for line in wrap(bound, console.width)])
    if out is not None:
        try:
            out.write_text(text)
        except OSError as exc:
            console.print(
                f"[red]error:[/red] --out {escape(str(out))}: {exc.strerror}; the profile:"
            )
            console.print(text, markup=False, highlight=False)
            return 2
        console.print(f"wrote {out}", markup=False, highlight=False)
    else:
        console.print(text, markup=False, highlight=False)
    return 0
