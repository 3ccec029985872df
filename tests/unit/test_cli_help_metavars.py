"""Help shows what a value is (``<time>``, ``<format>``), not Python's ``<str>``.

Issue 14 removed ``<bool>`` and ``<list[Path]>`` from the help; ``--now <str>``,
``--output <str>`` and ``--log-format <str>`` were left, saying nothing a newcomer can use.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["crds"], ["validate"], ["plan"], ["run"], ["simulate"]])
def test_help_shows_no_str_type(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    assert "<str>" not in result.output


def test_plan_and_run_name_their_text_values() -> None:
    plan = " ".join(runner.invoke(app, ["plan", "--help"], terminal_width=120).output.split())
    assert "--now <time>" in plan
    assert "-o, --output <format>" in plan
    run = " ".join(runner.invoke(app, ["run", "--help"], terminal_width=120).output.split())
    assert "--log-format <format>" in run


def test_every_option_says_what_it_does() -> None:
    """br13: ``modelfleet gateway --help`` listed ``-v, --verbose`` with no text (``run``'s
    says "Debug logs (kopf's too)."): each option of each command has a help line."""
    import typer.main

    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    silent = [
        f"{name} {'/'.join(param.opts)}"
        for name, sub in command.commands.items()
        for param in sub.params
        if param.param_type_name == "option" and not getattr(param, "help", None)
    ]
    assert silent == []
