"""A command whose optional extra is missing names the extra to install. ``make demo``
installs only ``[sim]``, so a user following the README meets these first; the hint used
to go through rich markup unescaped, which read ``[profile]`` / ``[serving]`` as a style
tag and printed ``pip install 'modelfleet'``. The command itself is
``modelfleet.extras.install_command``'s (tests/unit/test_install_hints.py). The missing package is simulated the way
Python sees one (``sys.modules[name] = None`` makes its import raise ImportError)."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app
from modelfleet.extras import install_command

runner = CliRunner()


def test_profile_without_openai_names_the_profile_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    result = runner.invoke(
        app,
        [
            "profile", "http://127.0.0.1:9/v1", "--model", "m", "--gpu", "H100",
            "--ttft-p95-ms", "200", "--prompt-tokens", "600", "--output-tokens", "250",
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "modelfleet profile needs the profile extra" in result.output, result.output
    assert install_command("profile") in result.output, result.output


def test_serve_without_fastapi_names_the_serving_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "modelfleet.serving.server", raising=False)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    result = runner.invoke(app, ["serve", "--model", "m"])
    assert result.exit_code == 2, result.output
    assert "modelfleet serve needs the serving extra" in result.output, result.output
    assert install_command("serving") in result.output, result.output
