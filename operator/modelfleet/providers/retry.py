"""The bounded, jittered retry of a Throttled cloud call, shared by the cloud providers.

Each provider wraps one SDK call in a coroutine that raises typed ``ProviderError``s; this
module retries it while it raises ``Throttled``, at most ``max_attempts`` tries in all, and
sleeps between tries through the injected ``sleep`` (tests record instead of waiting). The
default backoff honours ``Throttled.retry_after``: max(retry_after, 2^(attempt-1)) seconds,
capped at ``max_wait``, times a jitter factor drawn from [1.0, 1.5). A provider with another
policy passes ``backoff`` (seconds before retry ``attempt``) and ``should_retry``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from modelfleet.providers.errors import Throttled

log = logging.getLogger(__name__)
T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
MAX_WAIT_S: Final = 20.0


def retry_after_seconds(value: object) -> float | None:
    """A cloud API's ``Retry-After`` header value as seconds (RFC 9110 delay-seconds;
    negative ones count as 0), for ``Throttled.retry_after``. None when the header is
    absent (``value`` None) or not a number (an HTTP date too). Raises nothing."""
    try:
        return max(0.0, float(str(value))) if value is not None else None
    except ValueError:
        return None


def jittered_delay(attempt: int, error: Throttled, *, rng: random.Random, max_wait: float) -> float:
    """Seconds before retry ``attempt`` (1-based): the cloud's ``retry_after`` or exponential
    backoff, whichever is longer, capped at ``max_wait``, with up to 50% jitter on top."""
    base = max(error.retry_after, 2.0 ** (attempt - 1))
    return min(max_wait, base) * rng.uniform(1.0, 1.5)


async def retry_throttled(
    call: Callable[[], Awaitable[T]],
    *,
    max_attempts: int,
    sleep: Sleep,
    rng: random.Random,
    max_wait: float = MAX_WAIT_S,
    label: str = "cloud call",
    should_retry: Callable[[Throttled], bool] | None = None,
    backoff: Callable[[int, Throttled], float] | None = None,
) -> T:
    """``await call()``, retried while it raises ``Throttled`` (and ``should_retry`` allows),
    at most ``max_attempts`` tries (at least one). The last ``Throttled`` and every other
    exception propagate unchanged. ``label`` names the call in log lines."""
    attempts = max(1, max_attempts)
    attempt = 1
    while True:
        try:
            return await call()
        except Throttled as err:
            if attempt >= attempts or (should_retry is not None and not should_retry(err)):
                raise
            if backoff is None:
                delay = jittered_delay(attempt, err, rng=rng, max_wait=max_wait)
            else:
                delay = backoff(attempt, err)
            log.info(
                "%s throttled, attempt %d/%d, retrying in %.2fs", label, attempt, attempts, delay
            )
            await sleep(delay)
            attempt += 1
