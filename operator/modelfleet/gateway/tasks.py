"""Stopping the gateway's background tasks (watch loops, file polling, key refresh, status
writes) the one way that leaves nothing running: cancel, then wait for the task to end."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel every task given (None and finished tasks are skipped) and wait until each has
    ended; their ``CancelledError`` is swallowed, any other error raised by one is not."""
    for task in tasks:
        if task is not None:
            task.cancel()
    for task in tasks:
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
