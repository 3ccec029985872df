"""Every flag of every ``modelfleet`` command is named in README.md or docs/*.md, where a
user looks for it, and every ``modelfleet <command> --flag`` the docs show exists.

Flags that existed with no doc (``crds --check``, ``profile --arrivals``, ``gateway
--kubeconfig``, ``serve --log-level``, ...) were found only by reading ``--help``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from modelfleet.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def _typer_flags() -> dict[str, set[str]]:
    """Long flags per command, from the commands themselves (``--x/--no-x`` as both)."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    flags: dict[str, set[str]] = {}
    for name, command in group.commands.items():
        opts = {
            opt
            for param in command.params
            for opt in (*param.opts, *param.secondary_opts)
            if opt.startswith("--") and opt != "--help"
        }
        flags[name] = opts
    return flags


def _serve_flags(capsys: pytest.CaptureFixture[str]) -> set[str]:
    from modelfleet.serving.server import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    return set(re.findall(r"(--[a-z][a-z0-9-]+)", capsys.readouterr().out)) - {"--help"}


def test_every_flag_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    flags = _typer_flags()
    flags["serve"] = _serve_flags(capsys)
    assert len(flags) >= 8 and all(flags[c] for c in ("gateway", "run", "profile", "serve"))
    undocumented = sorted(
        f"{command} {flag}"
        for command, opts in flags.items()
        for flag in opts
        if not re.search(rf"`[^`]*{re.escape(flag)}(?![\w-])", DOCS)
    )
    assert undocumented == []


def test_commands_the_docs_show_use_flags_that_exist(capsys: pytest.CaptureFixture[str]) -> None:
    flags = _typer_flags()
    flags["serve"] = _serve_flags(capsys)
    shown = re.findall(r"modelfleet (\w+)((?: +(?:\S+))*)", DOCS.replace("\\\n", " "))
    assert len(shown) > 20
    unknown = sorted(
        {
            f"{command} {flag}"
            for command, rest in shown
            if command in flags
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest.split("`")[0])
            if flag not in flags[command] and flag != "--help"
        }
    )
    assert unknown == []
