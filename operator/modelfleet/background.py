"""Fire-and-forget work that still ends: a set of background tasks, and how to stop tasks.

The gateway's activator (``gateway/activator.py``: demand Lease writes) and the operator's
relay of those Leases (``loop/demand_leases.py``: wake-up patches) both start small API
calls that must never delay the caller, and both must leave nothing running when they
close. ``TaskSet`` holds such tasks once: a strong reference to each until it ends (the
event loop keeps only weak ones, so an unreferenced task may be collected mid-flight), a
count of those in flight, and ``close`` cancelling the rest and waiting for them.
``cancel_and_wait`` is the one way the gateway stops its long-lived loops (watches, file
polling, key refresh, status writes).

Neither layer may import the other (import-linter: the gateway runs without the operator,
and the operator's loop imports no gateway), so this module sits beside both and imports
nothing of modelfleet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel every task given (None and finished tasks are skipped) and wait until each has
    ended; their ``CancelledError`` is swallowed, any other error raised by one is not (the
    first one, once every task has ended)."""
    error: BaseException | None = None
    for task in tasks:
        if task is not None:
            task.cancel()
    for task in tasks:
        if task is not None:
            # Every task is waited for, even after one's cleanup failed: the first such
            # error is raised once all have ended.
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # re-raised below, after the rest have ended
                error = error or exc
    if error is not None:
        raise error


class TaskSet:
    """Background tasks started on one event loop and stopped together.

    ``spawn`` starts a coroutine as a task and returns at once; the task is forgotten when it
    ends (its result is dropped: a coroutine that must report errors logs them itself, and
    an exception escaping it is only logged by asyncio). ``in_flight`` counts the tasks
    not ended; ``close`` cancels them and returns when every one has ended. ``spawn`` after
    ``close`` works (the set is reusable), which a caller closing on its way out never
    does. Not thread-safe.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str | None = None) -> None:
        """Run ``work`` in the background on the running loop (RuntimeError without one)."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def in_flight(self) -> int:
        """Tasks started and not ended."""
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel the tasks still in flight and wait until each has ended (their
        ``CancelledError`` is swallowed)."""
        tasks = list(self._tasks)
        self._tasks.clear()
        await cancel_and_wait(*tasks)
