"""`modelfleet gateway` refuses bad start-up input with a message and exit status 2, before
serving anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoints-file", "{tmp}/missing.yaml"], "cannot read"),
        (["--endpoints-file", "{tmp}/bad.yaml"], "deployments.0.model"),
        (["--api-keys-secret", "no-slash"], "NAMESPACE/NAME"),
        (["--kubeconfig", "{tmp}/missing.kubeconfig"], "pass --kubeconfig, or --endpoints-file"),
        (
            ["--endpoints-file", "{tmp}/ok.yaml", "--api-keys-file", "{tmp}/keys.yaml"],
            "expected a mapping",
        ),
        (["--log-format", "xml"], "json or text"),
    ],
)
def test_bad_start_up_input_exits_2_with_a_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "bad.yaml").write_text("deployments: [{name: x}]\n", encoding="utf-8")
    (tmp_path / "ok.yaml").write_text("deployments: []\n", encoding="utf-8")
    (tmp_path / "keys.yaml").write_text("- just a list\n", encoding="utf-8")
    argv = ["gateway", "--port", "0", "--management-port", "0"]
    argv += [a.format(tmp=tmp_path) for a in args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output


def test_help_shows_no_python_type_names() -> None:
    result = CliRunner().invoke(app, ["gateway", "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    for python_type in ("<bool>", "list[", "<str>", "<int>", "<float>"):
        assert python_type not in result.output
