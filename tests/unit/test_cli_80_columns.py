"""What a newcomer reads: the README's and ``make demo``'s commands at 80 columns (issue 10).

Found on main: ``modelfleet plan`` at 80 columns, or into a pipe, cut names in its tables
(``Standard_…``, ``us-centr…``, ``ExcludedByRegi…``), and the simulate summary's sentences
ran to 106-127 columns. Each command is run through the real CLI (CliRunner: the output is
not a terminal, as in ``| cat``) with ``COLUMNS`` unset, 80 and 160; every line must fit
the width and every name in the ``-o json`` plan (or the report) must appear whole.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app
from modelfleet.cli_layout import Column, table_lines

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "examples" / "fleet"
NOW = "2025-06-01T12:00:30Z"
runner = CliRunner()

# The README's plan commands (README.md, "Plan" and "Autoscaling"), without -o json.
PLANS = [
    ["--fleet", str(FLEET), str(ROOT / "examples" / "multicloud-failover.yaml")],
    [
        "--fleet",
        str(FLEET),
        "--metrics",
        str(ROOT / "tests" / "fixtures" / "metrics" / "llama-8b-burst.yaml"),
        "--now",
        NOW,
        str(ROOT / "examples" / "multicloud-failover.yaml"),
    ],
    [
        "--fleet",
        str(FLEET),
        "--now",
        NOW,
        "--metrics",
        str(ROOT / "tests" / "fixtures" / "metrics" / "mistral-7b-batch-busy.yaml"),
        str(ROOT / "tests" / "fixtures" / "plan" / "mistral-7b-batch-running.yaml"),
    ],
]


def words(text: str) -> set[str]:
    """The whitespace-separated words of ``text``, without surrounding punctuation."""
    return {w.strip("(),:;") for w in text.split()}


def invoke(args: list[str], columns: str | None) -> str:
    env = {"COLUMNS": columns} if columns is not None else {"COLUMNS": ""}
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def plan_names(args: list[str]) -> set[str]:
    """Every name the plan prints: clusters, clouds, regions, GPUs, offerings, reasons."""
    data = json.loads(invoke(["plan", *args, "-o", "json"], None))
    names = {str(data["deployment"])}
    for p in data["placements"]:
        names |= {p["cluster"], p["cloud"], p["region"], p["gpu"], p["instanceType"]}
    for n in data["nodePools"]:
        names |= {n["cluster"], n["instanceType"]}
    for item in [*data["reasons"], *data.get("changes", [])]:
        names |= {item["reason"], item["cluster"], item["offering"]}
    return {n for n in names if n}


@pytest.mark.parametrize("args", PLANS, ids=["failover", "burst", "batch-busy"])
@pytest.mark.parametrize("columns", [None, "80"])
def test_plan_fits_80_columns_and_cuts_no_name(args: list[str], columns: str | None) -> None:
    text = invoke(["plan", *args], columns)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, text
    assert "…" not in text, text
    missing = plan_names(args) - words(text)
    assert not missing, f"cut or missing: {missing}\n{text}"
    assert "\u00a0" not in text
    assert re.search(r"cost \$[\d,.]+/h", text), text  # a word and its figure on one line


def test_plan_on_a_wide_output_keeps_each_placement_on_one_line() -> None:
    text = invoke(["plan", *PLANS[0]], "160")
    placements = json.loads(invoke(["plan", *PLANS[0], "-o", "json"], None))["placements"]
    for p in placements:
        row = next(line for line in text.splitlines() if line.startswith(p["cluster"] + " "))
        assert row.split() == [
            p["cluster"],
            p["cloud"],
            p["region"],
            p["gpu"],
            p["instanceType"],
            p["capacityType"],
            str(p["replicas"]),
        ], text
    assert "instance type:" not in text  # nothing moved beneath a row at 160 columns


def test_plan_at_80_columns_moves_the_widest_name_beneath_its_row() -> None:
    text = invoke(["plan", *PLANS[0]], "80")
    assert "  instance type: Standard_NC24ads_A100_v4" in text.splitlines(), text
    # The reasons' sentences go beneath their row, whole words, indented.
    assert "  region europe-west4 not in placement.regions" in text.splitlines(), text


def test_plan_json_is_not_laid_out_for_the_width() -> None:
    narrow = invoke(["plan", *PLANS[1], "-o", "json"], "40")
    wide = invoke(["plan", *PLANS[1], "-o", "json"], "160")
    assert narrow == wide
    json.loads(narrow)


def test_validate_examples_fits_80_columns() -> None:
    text = invoke(["validate", str(ROOT / "examples")], None)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    joined = " ".join(text.split())  # a label wrapped onto two lines, read as one
    assert "ModelDeployment/summarize-mistral-7b)" in joined
    assert re.search(r"tolerant/batch\.yaml \(document 1, ModelDeployment/summarize", joined)


def test_simulate_summary_sentences_fit_80_columns() -> None:
    scenario = str(ROOT / "examples" / "scenarios" / "trace-replay.toml")
    text = invoke(["simulate", scenario, "--compare", "--hours", "0.5", "--jobs", "1"], None)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, text
    assert "…" not in text
    joined = " ".join(text.split())
    assert re.search(r"Against static peak provisioning: \d+% (fewer|more) GPU-hours", joined)
    assert re.search(r"oracle needed [\d.]+ GPU-hours: modelfleet used \d\.\d\dx", joined)
    assert "\u00a0" not in text  # the no-break spaces that keep a name and figure together
    for line in lines:  # ... which wrapping never parts
        assert not re.search(r"chat-llama-8b$", line) and not re.search(r"\d vs$", line), text
    assert any(re.search(r"chat-llama-8b \d+%", line) for line in lines), text
    wide = invoke(["simulate", scenario, "--compare", "--hours", "0.5", "--jobs", "1"], "160")
    against = [line for line in wide.splitlines() if line.startswith("Against static peak")]
    assert len(against) == 1 and len(against[0]) > 80  # one line when the width allows it


LONG = "gke-" + "x" * 59  # a 63-character cluster name (the DNS label limit)


@pytest.mark.parametrize("width", [80, 40, 20])
def test_a_table_narrower_than_its_names_moves_them_beneath_and_cuts_none(width: int) -> None:
    columns = (
        Column("cluster"),
        Column("instance type"),
        Column("replicas", right=True),
        Column("why", prose=True),
    )
    rows = [
        (LONG, "Standard_NC24ads_A100_v4", "3", "cheaper candidates chosen ($6.98/node-hour here)"),
        ("aws-use1", "g6e.xlarge", "1", "-"),
    ]
    lines = [line.plain for line in table_lines("Placements", columns, rows, width=width)]
    text = "\n".join(lines)
    for line in lines:  # only a single word longer than the width may exceed it
        assert len(line) <= width or len(line.split()) == 1, text
    for name in (LONG, "Standard_NC24ads_A100_v4", "g6e.xlarge", "($6.98/node-hour"):
        assert name in words(text) | {w for line in lines for w in line.split()}, text
    assert "…" not in text


def test_a_table_that_fits_is_one_line_a_row() -> None:
    columns = (Column("cluster"), Column("nodes", right=True), Column("why", prose=True))
    lines = table_lines("Pools", columns, [("aws-use1", "12", "cheapest")], width=80)
    assert [line.plain for line in lines] == [
        "Pools",
        "cluster   nodes  why",
        "aws-use1     12  cheapest",
    ]
    assert [line.plain for line in table_lines("Pools", columns, [], width=80)] == ["Pools: none"]
    narrow = table_lines("Pools", columns, [("aws-use1", "12", "")], width=12)
    assert [line.plain for line in narrow] == ["Pools", "cluster", "aws-use1", "  nodes: 12"]


def test_the_readme_shows_the_plan_as_it_prints_at_80_columns() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("At 80 columns:\n\n```text\n", 1)[1].split("```", 1)[0]
    printed = invoke(["plan", *PLANS[0]], "80").splitlines()
    at = 0
    for line in block.splitlines():
        if line == "...":
            continue
        assert line in printed[at:], f"README line not printed (in order): {line!r}"
        at = printed.index(line, at) + 1
