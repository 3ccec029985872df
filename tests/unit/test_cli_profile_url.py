"""``modelfleet profile`` refuses a base URL it cannot load-test before any load, without
repeating the URL (it may hold a password).

Before: ``http://[::1`` ended in an ``httpx.InvalidURL`` traceback, and ``ftp://x/v1``,
``http://`` or ``notaurl`` in "cannot connect to ...", blaming the network for a typo.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1", "not a valid URL (Invalid IPv6 URL)"),
        ("http://user:hunter2@h:99999/v1", "not a valid URL (Port out of range 0-65535)"),
        ("ftp://x/v1", "not an http(s) URL (scheme 'ftp')"),
        ("notaurl", "not an http(s) URL (no scheme)"),
        ("http://", "no host"),
    ],
)
def test_a_url_that_cannot_be_tried_is_refused_before_any_load(url: str, why: str) -> None:
    result = runner.invoke(app, ["profile", url, "--model", "m", "--gpu", "H100"])
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert f"error: URL: {why}; e.g. http://127.0.0.1:8000/v1" in output, output
    assert "hunter2" not in output and "cannot connect" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output


def test_a_url_that_parses_is_tried() -> None:
    result = runner.invoke(
        app, ["profile", "http://127.0.0.1:9/v1", "--model", "m", "--gpu", "H100"]
    )
    assert "cannot connect to http://127.0.0.1:9/v1" in result.output, result.output
