"""Time limits around member-cluster and provider calls, where ``None`` means no limit,
and the concurrent fan-out over member clusters.

``asyncio.timeout(None)`` never fires, yet builds a Timeout and looks up the current task
on every call; the simulator sets every limit to None (its clusters answer from memory)
and makes millions of such calls. ``within(None)`` is one shared no-op context instead:
the same behaviour, without the work.

``gather`` is ``asyncio.gather`` over awaitables made at once, which returns without
suspending when every child is already done when made: on an event loop whose task
factory runs a task's first step eagerly (the simulator's), a child that finishes there is
a done Future, and awaiting ``asyncio.gather`` of done futures still costs the pass two
round trips through the loop (the gather's callbacks, then the caller's wake-up), five
times per reconcile pass. On any other loop (kopf's) the children are pending Tasks and it
is ``asyncio.gather`` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

T = TypeVar("T")

_NO_LIMIT: contextlib.nullcontext[None] = contextlib.nullcontext()
"""Stateless, so one instance serves every caller (also nested and concurrent ones)."""


def within(seconds: float | None) -> AbstractAsyncContextManager[object]:
    """``asyncio.timeout(seconds)``, or a no-op context when ``seconds`` is None (no
    limit). Raises what ``asyncio.timeout`` raises (TimeoutError when the limit passes)."""
    if seconds is None:
        return _NO_LIMIT
    return asyncio.timeout(seconds)


async def gather(*aws: Awaitable[T]) -> list[T]:
    """``await asyncio.gather(*aws)``: the results in argument order, or the exception of
    the first child that failed, every child's exception retrieved. Children done when
    made (see the module docstring) are answered without suspending the caller, and the
    first failure is then the first in argument order (as ``asyncio.gather`` reads done
    futures); if any is still running, this is ``asyncio.gather`` over all of them, which
    raises the first to fail in time (a later argument's, if it failed sooner)."""
    # ``ensure_future`` of a coroutine is the running loop's ``create_task`` of it; made
    # here directly (the loop looked up once), the same tasks without two calls and the
    # loop lookup per child, which the simulator makes hundreds of thousands of times.
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[T]] = [
        loop.create_task(a) if asyncio.iscoroutine(a) else asyncio.ensure_future(a) for a in aws
    ]
    for future in futures:
        if not future.done():
            return await asyncio.gather(*futures)
    first: BaseException | None = None
    for future in futures:
        # As asyncio.gather's callbacks do: a cancelled child cancels the gather, and the
        # exceptions after the first are retrieved (no "never retrieved" warning).
        error = asyncio.CancelledError() if future.cancelled() else future.exception()
        if error is not None and first is None:
            first = error
    if first is not None:
        raise first
    return [future.result() for future in futures]


__all__ = ["gather", "within"]
