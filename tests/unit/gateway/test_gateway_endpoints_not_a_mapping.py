"""A static endpoints file that is not a mapping (a breaker's find): ``modelfleet gateway
--endpoints-file list.yaml`` printed ``list.yaml: : Input should be a valid dictionary or
instance of StaticFile``, an empty field path and a Python class name. It now says what
the file holds and what the flag takes; an error inside the file still names its field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("- a\n- b\n", "found a list at the top"),
        ("just text\n", "found a string at the top"),
        ("42\n", "found a number at the top"),
        ("routes: [3]\n", "routes.0: Input should be a valid dictionary"),
    ],
)
def test_the_error_names_what_was_found_and_never_an_empty_field(
    tmp_path: Path, content: str, said: str
) -> None:
    endpoints = tmp_path / "list.yaml"
    endpoints.write_text(content, encoding="utf-8")
    argv = ["gateway", "--port", "0", "--management-port", "0", "--endpoints-file"]
    result = CliRunner().invoke(app, [*argv, str(endpoints)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert said in text, text
    assert ": :" not in text and "StaticFile" not in text, text
    assert str(endpoints) in text


def test_validate_says_the_same_of_a_list_that_looks_like_no_manifest(tmp_path: Path) -> None:
    endpoints = tmp_path / "list.yaml"
    endpoints.write_text("- a\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(endpoints)])
    assert result.exit_code == 2
    assert ": :" not in result.output
