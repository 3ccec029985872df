"""Session-wide test settings that keep the suite independent of the machine's speed.

Hypothesis: no per-example deadline and no "too slow" health check by default. Both
measure wall time, which a busy CI machine (2 cores shared with other jobs) stretches
several-fold; a property test fails on a counterexample, never on slowness
(docs/testing.md "Tests on a busy machine"). Tests that set their own ``@settings`` keep
what they set and inherit the rest from this profile.

Hung tests (docs/testing.md "A hung test fails"): pytest-timeout's ``signal`` method
(``timeout`` in pyproject.toml) fails a test that runs past the timeout and the run goes
on; the backstop below ends the whole run, with every thread's stack, when the test has
still not finished ``BACKSTOP_GRACE_S`` later (a hang the alarm cannot interrupt, or a
fixture's teardown that hangs after the alarm failed the test: the alarm fires once).
"""

import os
import threading
from collections.abc import Iterator

import pytest
import pytest_timeout
from hypothesis import HealthCheck, settings

settings.register_profile(
    "busy-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("busy-machine")

BACKSTOP_GRACE_S = float(os.environ.get("MODELFLEET_TEST_BACKSTOP_GRACE_S", "120"))
"""Seconds a test may still run after its timeout before the backstop ends the run (the
variable is for the test of the backstop itself, ``tests/unit/test_hung_tests_fail.py``)."""

_BACKSTOP = pytest.StashKey[threading.Timer]()


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: pytest_timeout.Settings) -> None:
    """Beside the SIGALRM timer pytest-timeout sets next (this hook returns None), start
    pytest-timeout's own ``thread`` method, ``BACKSTOP_GRACE_S`` later: it dumps every
    thread's stack and exits the process with status 1."""
    if settings.method != "signal":
        return
    after = settings.timeout + BACKSTOP_GRACE_S

    def end_the_run() -> None:
        item.config.get_terminal_writer().line(
            f"\npytest-timeout backstop: {item.nodeid} still running {after:.0f} s after it "
            "started; ending the run"
        )
        pytest_timeout.timeout_timer(item, settings)

    timer = threading.Timer(after, end_the_run)
    timer.name = f"pytest-timeout backstop {item.nodeid}"
    timer.daemon = True
    item.stash[_BACKSTOP] = timer
    timer.start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[object]:
    """Cancel the test's backstop once its setup, call and teardown are over. Not in
    ``pytest_timeout_cancel_timer``: pytest-timeout calls that one as soon as a phase
    fails too (``pytest_exception_interact``), which would leave the teardown of a test
    the alarm failed without a bound."""
    try:
        return (yield)
    finally:
        timer = item.stash.get(_BACKSTOP, None)
        if timer is not None:
            timer.cancel()
            del item.stash[_BACKSTOP]
