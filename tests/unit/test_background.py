"""The background task set shared by the gateway's activator and the operator's Lease relay
(``modelfleet.background``): tasks are held until they end, counted while in flight, and
``close`` leaves none running, whatever state each one is in."""

from __future__ import annotations

import asyncio

import pytest

from modelfleet.background import TaskSet, cancel_and_wait


async def test_tasks_are_counted_until_they_end_and_close_cancels_the_rest() -> None:
    tasks = TaskSet()
    release = asyncio.Event()
    ended: list[str] = []
    cancelled: list[str] = []

    async def quick() -> None:
        ended.append("quick")

    async def waits(name: str) -> None:
        try:
            await release.wait()
            ended.append(name)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    async def fails() -> None:
        raise RuntimeError("logged by asyncio, not raised by close")

    tasks.spawn(quick())
    tasks.spawn(waits("a"), name="a")
    tasks.spawn(waits("b"))
    tasks.spawn(fails())
    assert tasks.in_flight == 4
    for _ in range(5):
        await asyncio.sleep(0)
    assert ended == ["quick"] and tasks.in_flight == 2  # the quick and the failed one left
    await tasks.close()
    assert tasks.in_flight == 0
    assert sorted(cancelled) == ["a", "b"] and ended == ["quick"]
    release.set()
    await asyncio.sleep(0)
    assert ended == ["quick"]  # nothing kept running after close


async def test_cancel_and_wait_skips_none_and_finished_tasks_and_keeps_real_errors() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    async def broken() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ValueError("cleanup failed") from None

    done = asyncio.get_running_loop().create_task(asyncio.sleep(0))
    await done
    running = asyncio.get_running_loop().create_task(forever())
    await cancel_and_wait(None, done, running)
    assert running.cancelled()
    bad = asyncio.get_running_loop().create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="cleanup failed"):
        await cancel_and_wait(bad)


async def test_an_error_in_one_cleanup_still_waits_for_every_other_task() -> None:
    """``cancel_and_wait`` (and so ``TaskSet.close``) awaited the tasks one by one and
    stopped at the first cleanup error: a task after it was cancelled but not waited for,
    and was still running its own cleanup when ``close`` returned."""
    ended: list[str] = []

    async def broken() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ValueError("cleanup failed") from None

    async def slow_cleanup() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            for _ in range(5):  # a cleanup that takes a few loop turns (an API call)
                await asyncio.sleep(0)
            ended.append("slow")

    loop = asyncio.get_running_loop()
    first, second = loop.create_task(broken()), loop.create_task(slow_cleanup())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="cleanup failed"):
        await cancel_and_wait(first, second)
    assert second.done() and ended == ["slow"]  # waited for, although the first one failed

    # TaskSet.close, whatever order its set yields the tasks in.
    ended.clear()
    tasks = TaskSet()
    tasks.spawn(broken())
    tasks.spawn(slow_cleanup())
    tasks.spawn(broken())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="cleanup failed"):
        await tasks.close()
    assert ended == ["slow"]
