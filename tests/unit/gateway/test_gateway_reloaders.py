"""The gateway's background reloaders (``StaticFileSource``, ``KeyRefresher``) pick up a
changed file on their own, keep what they had when the new one is bad, and stop on
``close``: real files, a real event loop, short intervals."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from modelfleet.gateway.auth import ApiKeys
from modelfleet.gateway.catalog import Catalog
from modelfleet.gateway.discovery import KeyRefresher, StaticFileSource

ONE = "deployments: [{name: a, model: m1, endpoints: [{url: 'http://10.0.0.1:8000'}]}]\n"
TWO = "deployments: [{name: b, model: m2, endpoints: [{url: 'http://10.0.0.2:8000'}]}]\n"


async def _until(done: Callable[[], bool], *, seconds: float = 10.0) -> None:
    """Return once ``done()``; fail after ``seconds`` (a bound that only catches a hang)."""
    for _ in range(int(seconds / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reloaded")


def _touch_later(path: Path, text: str) -> None:
    """Write ``text`` with a modification time surely after the last one."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))


async def test_static_file_is_reloaded_when_it_changes_and_kept_when_bad(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(ONE, encoding="utf-8")
    seen: list[Catalog] = []
    source = StaticFileSource(path, on_catalog=seen.append, interval=0.02)
    source.load()
    assert set(seen[-1].models) == {"m1"}
    source.start()
    try:
        _touch_later(path, TWO)
        await _until(lambda: set(seen[-1].models) == {"m2"})
        loaded = len(seen)
        _touch_later(path, "deployments: [")  # invalid YAML: the last catalog stays
        await asyncio.sleep(0.1)
        assert len(seen) == loaded
        _touch_later(path, ONE)  # valid again: picked up
        await _until(lambda: set(seen[-1].models) == {"m1"})
    finally:
        await source.close()
    assert source._task is None
    loaded = len(seen)
    _touch_later(path, TWO)
    await asyncio.sleep(0.1)
    assert len(seen) == loaded  # closed: no more reloads


async def test_api_keys_are_reloaded_and_kept_when_the_file_goes(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("team-a: sk-a-0123456789\n", encoding="utf-8")
    keys = ApiKeys()
    refresher = KeyRefresher(keys, file=path, interval=0.02)
    assert await refresher.load() == 1
    refresher.start()
    try:
        path.write_text("team-a: sk-a-0123456789\nteam-b: sk-b-0123456789\n", encoding="utf-8")
        await _until(lambda: keys.identify("sk-b-0123456789") == "team-b")
        path.unlink()  # unreadable: the keys already loaded stay
        await asyncio.sleep(0.1)
        assert keys.identify("sk-b-0123456789") == "team-b"
    finally:
        await refresher.close()
    assert refresher._task is None
