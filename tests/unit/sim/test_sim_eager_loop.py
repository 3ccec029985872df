"""The simulation loop's eager tasks (``sim.engine._eager_task``) do what asyncio's own
tasks do, in the same order, and ``reconciler.limits.within`` is ``asyncio.timeout``.

Each scenario runs once on a plain asyncio loop and once on the simulation loop, and the
two logs of side effects (and the results or errors) must be equal: children that finish
in their first step, children that suspend (on ``sleep(0)``, on a future another child
sets), errors in the first step and after a suspension, ``return_exceptions``, context
variables, and the cancellation of a gather whose child is suspended.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import pytest

from modelfleet.reconciler.limits import within
from modelfleet.sim.engine import _eager_task, _simulation_loop

Scenario = Callable[[list[str]], Coroutine[Any, Any, object]]

_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("_VAR", default="unset")


def _run(loop_factory: Callable[[], asyncio.AbstractEventLoop], scenario: Scenario) -> Any:
    log: list[str] = []
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        try:
            result: object = runner.run(scenario(log))
        except Exception as exc:  # compared between the two loops
            result = ("raised", type(exc).__name__, str(exc))
    return log, result


def _both(scenario: Scenario) -> Any:
    plain = _run(asyncio.new_event_loop, scenario)
    eager = _run(_simulation_loop, scenario)
    assert eager == plain
    return eager


async def _instant(log: list[str], name: str) -> str:
    log.append(f"{name} runs")
    return name


async def _suspending(log: list[str], name: str, steps: int, *, fails: bool = False) -> str:
    """Suspend ``steps`` times (``sleep(0)``), then return ``name``, or raise
    ``ValueError(name)`` when ``fails``."""
    for i in range(steps):
        log.append(f"{name} step {i}")
        await asyncio.sleep(0)
    if fails:
        log.append(f"{name} fails")
        raise ValueError(name)
    log.append(f"{name} done")
    return name


def test_children_that_finish_at_once_run_in_order_with_the_same_results() -> None:
    async def scenario(log: list[str]) -> object:
        first = await asyncio.gather(*(_instant(log, n) for n in "abc"))
        log.append("between")
        second = await asyncio.gather(_instant(log, "d"))
        return first, second

    log, result = _both(scenario)
    assert result == (["a", "b", "c"], ["d"])
    assert log == ["a runs", "b runs", "c runs", "between", "d runs"]


def test_suspending_children_interleave_as_tasks_do() -> None:
    async def scenario(log: list[str]) -> object:
        return await asyncio.gather(
            _suspending(log, "a", 2), _instant(log, "b"), _suspending(log, "c", 1)
        )

    log, result = _both(scenario)
    assert result == ["a", "b", "c"]
    assert log.index("a step 0") < log.index("b runs") < log.index("a step 1")


def test_a_child_waiting_on_a_future_another_child_sets() -> None:
    async def scenario(log: list[str]) -> object:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def waiter() -> str:
            log.append("waiting")
            value = await ready
            log.append(f"got {value}")
            return value

        async def setter() -> str:
            log.append("setting")
            ready.set_result("x")
            return "set"

        return await asyncio.gather(waiter(), setter())

    log, result = _both(scenario)
    assert result == ["x", "set"]
    assert log == ["waiting", "setting", "got x"]


@pytest.mark.parametrize("after", [0, 2])
@pytest.mark.parametrize("return_exceptions", [False, True])
def test_errors_reach_the_gather_as_with_tasks(after: int, return_exceptions: bool) -> None:
    async def scenario(log: list[str]) -> object:
        results: Sequence[object]
        try:
            results = await asyncio.gather(
                _instant(log, "a"),
                _suspending(log, "b", after, fails=True),
                _suspending(log, "c", 3),
                return_exceptions=return_exceptions,
            )
        except ValueError as exc:
            results = [f"raised {exc}"]
        log.append("parent resumes")
        for _ in range(5):  # the siblings a failed gather leaves running finish
            await asyncio.sleep(0)
        return [r if isinstance(r, str) else repr(r) for r in results]

    plain_log, plain = _run(asyncio.new_event_loop, scenario)
    eager_log, eager = _run(_simulation_loop, scenario)
    assert eager == plain
    assert eager == (["a", "ValueError('b')", "c"] if return_exceptions else ["raised b"])
    # The children's effects are the same, in the same order; a failed gather wakes its
    # parent no later than with tasks (the failed child's Future is done at once), so the
    # parent's own line may come before more of a suspended sibling's steps.
    assert [e for e in eager_log if e != "parent resumes"] == [
        e for e in plain_log if e != "parent resumes"
    ]
    assert eager_log.index("parent resumes") <= plain_log.index("parent resumes")
    if return_exceptions:
        assert eager_log == plain_log


def test_context_variables_are_copied_into_each_child() -> None:
    async def scenario(log: list[str]) -> object:
        _VAR.set("parent")

        async def child(name: str, suspend: bool) -> str:
            seen = _VAR.get()
            _VAR.set(name)
            if suspend:
                await asyncio.sleep(0)
            return f"{seen}->{_VAR.get()}"

        results = await asyncio.gather(child("a", False), child("b", True))
        log.append(_VAR.get())
        return results

    log, result = _both(scenario)
    assert result == ["parent->a", "parent->b"]
    assert log == ["parent"]


def test_cancelling_a_gather_cancels_its_suspended_child() -> None:
    async def scenario(log: list[str]) -> object:
        async def slow() -> str:
            log.append("slow starts")
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                log.append("slow cancelled")
                raise
            return "never"

        outer = asyncio.ensure_future(asyncio.gather(_instant(log, "a"), slow()))
        await asyncio.sleep(0)
        outer.cancel()
        try:
            await outer
        except asyncio.CancelledError:
            log.append("gather cancelled")
        return "ok"

    log, result = _both(scenario)
    assert result == "ok"
    assert log == ["a runs", "slow starts", "slow cancelled", "gather cancelled"]


def test_the_main_task_and_tasks_made_outside_a_task_are_real_tasks() -> None:
    loop = _simulation_loop()
    try:

        async def main() -> object:
            return asyncio.current_task()

        task = loop.create_task(main())
        assert isinstance(task, asyncio.Task)
        assert loop.run_until_complete(task) is task
    finally:
        loop.close()
    # Inside a task, a child that finishes at once is a done Future, never scheduled.
    loop = _simulation_loop()
    try:

        async def parent() -> object:
            child = _eager_task(loop, _instant([], "x"))
            return child.done(), child.result(), isinstance(child, asyncio.Task)

        assert loop.run_until_complete(parent()) == (True, "x", False)
    finally:
        loop.close()


def test_within_none_never_times_out_and_a_number_is_asyncio_timeout() -> None:
    async def scenario() -> list[str]:
        seen = []
        async with within(None):
            await asyncio.sleep(0.01)
            seen.append("no limit")
        async with within(None), within(None):  # shared, nested
            seen.append("nested")
        try:
            async with within(0.01):
                await asyncio.Event().wait()
        except TimeoutError:
            seen.append("timed out")
        async with within(30.0):
            seen.append("within 30 s")
        return seen

    assert asyncio.run(scenario()) == ["no limit", "nested", "timed out", "within 30 s"]
