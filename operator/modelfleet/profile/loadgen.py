"""Drive an OpenAI-compatible endpoint at a fixed rate and time every streamed request.

Each request is a streaming chat completion sent with the official ``openai`` client
(``max_tokens`` = the drawn output length, plus ``ignore_eos``/``min_tokens`` in the body,
which vLLM and SGLang honour so that outputs have the drawn length). TTFT is from sending
to the first chunk that carries content; TPOT is the time from the first to the last
content chunk divided by the chunks in between. Arrivals are Poisson or evenly spaced.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

from modelfleet.profile.mix import prompt_text
from modelfleet.profile.search import RequestResult, StepResult

Arrivals = Literal["poisson", "uniform"]


async def one_request(
    client: Any, model: str, prompt_tokens: int, output_tokens: int, *, timeout: float
) -> RequestResult:
    """Send one streaming chat completion and time it; never raises (errors are recorded)."""
    sent = time.perf_counter()
    first: float | None = None
    last: float | None = None
    chunks = 0
    try:
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt_text(prompt_tokens)}],
            max_tokens=output_tokens,
            stream=True,
            timeout=timeout,
            extra_body={"ignore_eos": True, "min_tokens": output_tokens},
        )
        async for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if delta is None or not delta.content:
                continue
            now = time.perf_counter()
            if first is None:
                first = now
            last = now
            chunks += 1
    except Exception as exc:
        status, detail, code = _refusal(exc)
        name = type(exc).__name__
        return RequestResult(None, None, prompt_tokens, output_tokens, name, status, detail, code)
    if first is None or last is None:
        return RequestResult(None, None, prompt_tokens, 0, "no content")
    tpot = (last - first) / (chunks - 1) if chunks > 1 else None
    return RequestResult(first - sent, tpot, prompt_tokens, chunks)


DETAIL_CHARS = 200
"""Most characters of an endpoint's error message kept (one line of the report)."""


def _refusal(exc: Exception) -> tuple[int | None, str | None, str | None]:
    """The HTTP status, the endpoint's own message and its error code of an ``openai``
    status error (its ``body`` is the JSON ``error`` object: ``{"message": ..., "code":
    ...}``); (None, None, None) for an error without an answer (connection, timeout)."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        return None, None, None
    body = getattr(exc, "body", None)
    fields = body if isinstance(body, dict) else {}
    code = fields.get("code")
    code = _one_line(code) if isinstance(code, str) and code.strip() else None
    message = fields.get("message")
    detail = _one_line(message) if isinstance(message, str) and message.strip() else None
    return status, detail, code


def _one_line(text: str) -> str:
    """``text`` on one line, at most ``DETAIL_CHARS`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= DETAIL_CHARS else line[: DETAIL_CHARS - 1] + "\u2026"


def arrival_times(
    rate: float, duration: float, *, arrivals: Arrivals = "poisson", seed: int = 0
) -> Iterator[float]:
    """Seconds from a step's start at which its requests are sent, all below ``duration``.
    Uniform: ``i / rate`` for ``i`` below ``rate x duration`` rounded up (to 9 decimals
    first, so that 10 req/s for 1 s is 10, not 11): adding ``1 / rate`` up had put a last
    request at 0.9999999999999999 s (0.1 added ten times), one more than the rate (10 req/s
    for 1 s or 10 s, 7 for 1 s or 30 s, 3 for 30 s, ...; br15d). Poisson: gaps drawn with
    ``seed``, the first one included (0 requests is a possible draw)."""
    if arrivals != "poisson":
        for i in range(math.ceil(round(rate * duration, 9))):
            yield i / rate
        return
    rng = random.Random(seed)
    at = rng.expovariate(rate)
    while at < duration:
        yield at
        at += rng.expovariate(rate)


async def run_step(
    client: Any,
    model: str,
    rate: float,
    duration: float,
    lengths: Iterator[tuple[int, int]],
    *,
    arrivals: Arrivals = "poisson",
    seed: int = 0,
    timeout: float = 60.0,
    on_done: Callable[[], None] | None = None,
) -> StepResult:
    """Offer ``rate`` requests/s for ``duration`` seconds, wait for them all (each bounded
    by ``timeout``), and return their results. Uniform arrivals are at 0, 1/rate, 2/rate,
    ... (``rate x duration`` requests, rounded up: 1 req/s for 30 s sends 30); Poisson
    arrivals draw their gaps, the first one included (0 requests is a possible draw)."""
    tasks: list[asyncio.Task[RequestResult]] = []
    start = time.perf_counter()
    for at in arrival_times(rate, duration, arrivals=arrivals, seed=seed):
        delay = start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        p, o = next(lengths)
        task = asyncio.create_task(one_request(client, model, p, o, timeout=timeout))
        if on_done is not None:
            task.add_done_callback(lambda _t: on_done())
        tasks.append(task)
    results = tuple(await asyncio.gather(*tasks))
    return StepResult(rate=rate, duration_s=duration, results=results)
