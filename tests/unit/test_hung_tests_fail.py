"""A hung test fails instead of holding CI (docs/testing.md "A hung test fails"): pytest's
own run, in a subprocess, of tests that hang the way ours could, under the suite's timeout
machinery (pytest-timeout's ``signal`` method and the backstop in ``tests/conftest.py``)
with a 2 s timeout instead of the suite's 300 s."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

CONFTEST = "from tests.conftest import pytest_runtest_protocol, pytest_timeout_set_timer\n"

INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
timeout = 2
"""

HANGS = """\
import asyncio
import threading
import time

import pytest


async def test_awaits_forever():
    await asyncio.Event().wait()


async def test_blocks_the_event_loop():
    time.sleep(3600)


def test_joins_a_thread_that_never_ends():
    thread = threading.Thread(target=time.sleep, args=(3600,), daemon=True)
    thread.start()
    thread.join()


@pytest.mark.timeout(600)
async def test_runs_after_them():
    await asyncio.sleep(0)
"""

TEARDOWN_HANGS = """\
import asyncio

import pytest


@pytest.fixture
async def hangs_on_teardown():
    yield
    await asyncio.Event().wait()


async def test_hangs_and_so_does_its_teardown(hangs_on_teardown):
    await asyncio.Event().wait()
"""


def _pytest(tmp_path: Path, tests: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text(INI)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_hangs.py").write_text(tests)
    env = dict(os.environ, PYTHONPATH=str(ROOT), MODELFLEET_TEST_BACKSTOP_GRACE_S="2")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_hung_tests_fail_and_the_run_goes_on(tmp_path: Path) -> None:
    run = _pytest(tmp_path, HANGS)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "3 failed, 1 passed" in out, out
    # One failure report per hung test ("E   Failed: Timeout ..." in its traceback); the
    # short summary repeats the message, truncated to the terminal width except where
    # pytest sees CI=true, so only the tracebacks' lines are counted.
    timeouts = re.findall(r"^E\s+Failed: Timeout \(>2\.0s\) from pytest-timeout", out, re.M)
    assert len(timeouts) == 3, out
    for name in (
        "test_awaits_forever",
        "test_blocks_the_event_loop",
        "test_joins_a_thread_that_never_ends",
    ):
        assert f"test_hangs.py::{name} FAILED" in out, out
    assert "test_runs_after_them PASSED" in out, out


def test_a_teardown_that_hangs_after_the_timeout_ends_the_run(tmp_path: Path) -> None:
    """The alarm fires once: the backstop ends the run, naming the test."""
    run = _pytest(tmp_path, TEARDOWN_HANGS)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert (
        "pytest-timeout backstop: test_hangs.py::test_hangs_and_so_does_its_teardown "
        "still running 4 s after it started; ending the run"
    ) in out, out
