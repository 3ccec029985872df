"""A trace saved with a UTF-8 byte-order mark (Excel's "CSV UTF-8", Windows tools) and CRLF
line ends (a breaker's find, brk15a): the mark was read as part of the first column's name,
so a file whose header visibly held TIMESTAMP,ContextTokens,GeneratedTokens was refused by
the simulator with "expected the columns ContextTokens,GeneratedTokens,TIMESTAMP", and by
``modelfleet profile --trace`` when ContextTokens came first. Now the mark is ignored, and a
file missing a column is told the columns it has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelfleet.profile.mix import read_trace as read_lengths
from modelfleet.sim.scenario import ScenarioError, load_scenario
from modelfleet.sim.traffic import read_trace

ROOT = Path(__file__).parents[3]
SYNTHETIC = ROOT / "examples" / "traces" / "synthetic-chat.csv"
FLEET = ROOT / "examples" / "scenarios" / "fleet"
CHAT = ROOT / "examples" / "scenarios" / "deployments" / "chat.yaml"


def _scenario(tmp_path: Path, trace: Path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(
        f'name = "t"\ndurationHours = 0.5\nfleet = ["{FLEET}"]\n[[deployments]]\n'
        f'manifest = "{CHAT}"\n[deployments.traffic.trace]\nfile = "{trace}"\n'
    )
    return path


def test_a_trace_with_a_byte_order_mark_and_crlf_replays_as_the_plain_one(
    tmp_path: Path,
) -> None:
    lines = SYNTHETIC.read_text().splitlines()
    marked = tmp_path / "excel.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    load_scenario(_scenario(tmp_path, marked))  # refused before
    plain, got = read_trace(str(SYNTHETIC)), read_trace(str(marked))
    for a, b in zip(plain, got, strict=True):
        assert np.array_equal(a, b)


def test_the_profile_reads_a_marked_trace_whose_first_column_is_context_tokens(
    tmp_path: Path,
) -> None:
    trace = tmp_path / "lengths.csv"
    trace.write_bytes("\ufeffContextTokens,GeneratedTokens\r\n600,250\r\n10,5\r\n".encode())
    assert read_lengths(trace) == ((600, 250), (10, 5))


def test_a_missing_column_is_told_the_columns_found(tmp_path: Path) -> None:
    trace = tmp_path / "spaced.csv"
    trace.write_text("TIMESTAMP, ContextTokens, GeneratedTokens\n2023-11-16 18:00:01,1,1\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_scenario(tmp_path, trace))
    assert "(found: TIMESTAMP, ContextTokens, GeneratedTokens)" in str(caught.value)
