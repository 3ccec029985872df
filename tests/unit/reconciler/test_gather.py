"""``reconciler.limits.gather`` is ``asyncio.gather`` (results, errors, order of side
effects), and on the simulation loop, whose tasks run their first step eagerly, it returns
without suspending the caller when every child finished in that step.

Each scenario runs with ``asyncio.gather`` and with ``limits.gather``, on a plain asyncio
loop and on the simulation loop: the logs of side effects and the results (or the error
raised) must be equal.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from modelfleet.reconciler.limits import gather
from modelfleet.sim.engine import _simulation_loop

Gather = Callable[..., Awaitable[list[Any]]]
Scenario = Callable[[Gather, list[str]], Coroutine[Any, Any, object]]
LOOPS = [asyncio.new_event_loop, _simulation_loop]


def _run(
    loop_factory: Callable[[], asyncio.AbstractEventLoop], scenario: Scenario, how: Gather
) -> tuple[list[str], object, list[str]]:
    log: list[str] = []
    unhandled: list[str] = []
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        loop = runner.get_loop()
        loop.set_exception_handler(lambda _loop, context: unhandled.append(context["message"]))
        try:
            result: object = runner.run(scenario(how, log))
        except Exception as exc:  # compared between the two gathers
            result = ("raised", type(exc).__name__, str(exc))
        gc.collect()  # a future whose exception nobody retrieved reports it when collected
    return log, result, unhandled


def _same(scenario: Scenario) -> list[tuple[list[str], object, list[str]]]:
    outcomes = []
    for factory in LOOPS:
        theirs = _run(factory, scenario, asyncio.gather)
        ours = _run(factory, scenario, gather)
        assert ours == theirs, factory
        outcomes.append(ours)
    return outcomes


async def _instant(log: list[str], name: str) -> str:
    log.append(f"{name} runs")
    return name


async def _suspending(log: list[str], name: str) -> str:
    log.append(f"{name} starts")
    await asyncio.sleep(0)
    log.append(f"{name} done")
    return name


async def _failing(log: list[str], name: str) -> str:
    log.append(f"{name} fails")
    raise ValueError(name)


def test_results_in_argument_order() -> None:
    async def scenario(how: Gather, log: list[str]) -> object:
        return await how(*(_instant(log, n) for n in "abc"))

    for log, result, unhandled in _same(scenario):
        assert result == ["a", "b", "c"]
        assert log == ["a runs", "b runs", "c runs"]
        assert unhandled == []


def test_no_children() -> None:
    async def scenario(how: Gather, log: list[str]) -> object:
        return await how()

    for _, result, _ in _same(scenario):
        assert result == []


def test_a_suspending_child_is_waited_for() -> None:
    async def scenario(how: Gather, log: list[str]) -> object:
        result = await how(_instant(log, "a"), _suspending(log, "b"), _instant(log, "c"))
        log.append("after")
        return result

    for log, result, _ in _same(scenario):
        assert result == ["a", "b", "c"]
        assert log[-2:] == ["b done", "after"]


def test_first_error_in_argument_order_and_every_error_retrieved() -> None:
    async def scenario(how: Gather, log: list[str]) -> object:
        return await how(_instant(log, "a"), _failing(log, "b"), _failing(log, "c"))

    for _, result, unhandled in _same(scenario):
        assert result == ("raised", "ValueError", "b")
        assert unhandled == []  # "c" was retrieved too: no "never retrieved" report


def test_an_error_after_suspending() -> None:
    async def failing_later(log: list[str]) -> str:
        await asyncio.sleep(0)
        raise ValueError("late")

    async def scenario(how: Gather, log: list[str]) -> object:
        return await how(_instant(log, "a"), failing_later(log))

    for _, result, _ in _same(scenario):
        assert result == ("raised", "ValueError", "late")


@pytest.mark.parametrize("factory", LOOPS)
def test_done_children_on_the_simulation_loop_do_not_suspend(
    factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    """A callback scheduled before the gather runs only once the caller suspends: on the
    simulation loop our gather returns before it; asyncio's suspends the caller (on
    either loop), and on a plain loop ours is asyncio's."""

    async def scenario(how: Gather, log: list[str]) -> object:
        asyncio.get_running_loop().call_soon(log.append, "callback")
        await how(_instant(log, "a"), _instant(log, "b"))
        log.append("returned")
        await asyncio.sleep(0)
        return None

    theirs, _, _ = _run(factory, scenario, asyncio.gather)
    ours, _, _ = _run(factory, scenario, gather)
    if factory is _simulation_loop:  # the children run when made, eagerly
        assert theirs == ["a runs", "b runs", "callback", "returned"]
        assert ours == ["a runs", "b runs", "returned", "callback"]
    else:  # the children are Tasks, scheduled after the callback
        assert theirs == ["callback", "a runs", "b runs", "returned"]
        assert ours == theirs
