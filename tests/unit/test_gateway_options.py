"""``modelfleet gateway`` refuses a numeric option it cannot honour before it starts.

Typer reads ``nan``, ``inf`` and negative numbers as valid floats, and the gateway used to
start with them and then fail every request: ``--max-attempts 0`` answered 503 without
trying an endpoint, ``--first-byte-timeout -1`` answered 504 at once, ``--max-request-bytes
0`` answered 413 to every body, ``--rate-limit -5`` silently disabled the limit. Each is
now refused (exit 2, one line naming the option) before any file is read or port bound:
the endpoints file given does not exist, so a command that got past the check would
say so instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

runner = CliRunner()

BAD = [
    ("--rate-limit", "nan"),
    ("--rate-limit", "-5"),
    ("--rate-burst", "0"),
    ("--max-request-bytes", "0"),
    ("--max-request-bytes", "1"),  # every request body is longer: 413 to all (the chart says 1024)
    ("--hold-timeout", "nan"),
    ("--hold-timeout", "-1"),
    ("--max-attempts", "0"),
    ("--first-byte-timeout", "-1"),
    ("--first-byte-timeout", "nan"),
    ("--first-byte-timeout", "inf"),
    ("--scrape-interval", "inf"),
    ("--port", "70000"),
    ("--management-port", "-1"),
]


@pytest.mark.parametrize(("flag", "value"), BAD, ids=lambda v: str(v))
def test_a_bad_number_is_refused_before_the_gateway_starts(
    tmp_path: Path, flag: str, value: str
) -> None:
    missing = tmp_path / "no-such-endpoints.yaml"
    result = runner.invoke(app, ["gateway", "--endpoints-file", str(missing), flag, value])
    assert result.exit_code == 2, result.output
    assert f"error: {flag} must be" in result.output, result.output
    assert str(missing) not in result.output, "the check came after reading the file"


def test_the_defaults_and_the_documented_edges_pass_the_check(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-endpoints.yaml"
    edges = [
        "--rate-limit", "0", "--rate-burst", "1", "--hold-timeout", "0",
        "--scrape-interval", "0", "--max-attempts", "1", "--management-port", "0",
        "--max-request-bytes", "1024",
    ]  # fmt: skip
    result = runner.invoke(app, ["gateway", "--endpoints-file", str(missing), *edges])
    assert result.exit_code == 2, result.output
    assert "must be" not in result.output, result.output
    assert "cannot read" in result.output, result.output  # got to the endpoints file


def test_a_first_byte_timeout_below_the_bound_is_refused_naming_the_bound(tmp_path: Path) -> None:
    # 0.0005 s is above 0 (what the message said a valid value is) yet refused: the bound
    # is 1 ms. The line must name the bound that refused it, not one the value meets.
    missing = tmp_path / "no-such-endpoints.yaml"
    args = ["gateway", "--endpoints-file", str(missing), "--first-byte-timeout", "0.0005"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error: --first-byte-timeout must be" in result.output, result.output
    assert "0.001" in result.output, result.output
    assert "above 0" not in result.output, result.output


def test_a_host_that_does_not_resolve_is_named(tmp_path: Path) -> None:
    """The resolver's error alone ("[Errno -2] Name or service not known") did not say which
    address it was about."""
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text(
        "deployments:\n- name: d\n  model: m\n  endpoints:\n"
        "  - {url: 'http://127.0.0.1:9', name: stub}\n"
    )
    args = ["gateway", "--endpoints-file", str(endpoints), "--host", "not a host"]
    result = runner.invoke(app, [*args, "--port", "0", "--management-port", "0"])
    assert result.exit_code == 2, result.output
    assert "error: --host not a host: " in result.output, result.output
