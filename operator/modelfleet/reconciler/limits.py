"""Time limits around member-cluster and provider calls, where ``None`` means no limit.

``asyncio.timeout(None)`` never fires, yet builds a Timeout and looks up the current task
on every call; the simulator sets every limit to None (its clusters answer from memory)
and makes millions of such calls. ``within(None)`` is one shared no-op context instead:
the same behaviour, without the work.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AbstractAsyncContextManager

_NO_LIMIT: contextlib.nullcontext[None] = contextlib.nullcontext()
"""Stateless, so one instance serves every caller (also nested and concurrent ones)."""


def within(seconds: float | None) -> AbstractAsyncContextManager[object]:
    """``asyncio.timeout(seconds)``, or a no-op context when ``seconds`` is None (no
    limit). Raises what ``asyncio.timeout`` raises (TimeoutError when the limit passes)."""
    if seconds is None:
        return _NO_LIMIT
    return asyncio.timeout(seconds)


__all__ = ["within"]
