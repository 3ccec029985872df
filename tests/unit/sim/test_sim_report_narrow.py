"""The summary table on a terminal narrower than the table (QA of issue 10).

Found on main: with ``COLUMNS=60`` (or a 60-column terminal) rich shrank the table's
columns and cut the figures themselves: ``100.…`` for an SLO share, ``modelfle…``,
``GPU…``; a cut figure reads as a different number. Figures are now never cut: the table
keeps its natural width and a narrow terminal wraps the line instead.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from modelfleet.sim.output import print_summary, simulate

ROOT = Path(__file__).parents[3]


@pytest.mark.parametrize("width", [60, 40])
def test_a_narrow_console_never_cuts_a_figure(width: int) -> None:
    result = simulate(
        ROOT / "examples" / "scenarios" / "trace-replay.toml",
        policies=("modelfleet", "oracle"),
        hours=0.25,
    )
    buffer = io.StringIO()
    print_summary(result, Console(file=buffer, width=width))
    text = buffer.getvalue()
    assert "…" not in text, text
    lines = text.splitlines()
    for policy in ("modelfleet", "oracle"):
        row = next(line.split() for line in lines if line.startswith(policy + " "))
        report = next(r for r in result.reports if r.run.policy == policy)
        assert row[1] == f"{report.slo_attainment:.1%}", text


HEADERS = ["policy", "SLO", "TTFTp95", "failed", "GPU-h", "xOracle", "cost", "RTO", "stock"]


@pytest.mark.parametrize("width", [40, 30])
def test_a_narrow_console_drops_no_column(width: int) -> None:
    """Found on main 8be971f (br11): at 40 columns (``COLUMNS=40 modelfleet simulate``) rich
    dropped the whole ``RTO`` column, header and figures, and at 30 ``cost`` too, while
    the caption still explained them: a figure gone without a sign. Every column stays."""
    result = simulate(
        ROOT / "examples" / "scenarios" / "region-outage.toml",
        policies=("modelfleet", "oracle"),
        hours=0.05,
    )
    buffer = io.StringIO()
    print_summary(result, Console(file=buffer, width=width))
    lines = buffer.getvalue().splitlines()
    assert lines[1].split() == HEADERS, lines
    for policy in ("modelfleet", "oracle"):
        row = next(line.split() for line in lines if line.startswith(policy + " "))
        report = next(r for r in result.reports if r.run.policy == policy)
        assert len(row) == len(HEADERS), lines
        assert row[6] == f"${report.cost_usd:,.0f}", lines


@pytest.mark.parametrize("name", ["q3 [red]what-if[/]", "run[/]1"])
def test_the_scenario_name_is_printed_as_it_is(name: str) -> None:
    """Found on main 8be971f (br11): the table's title went through rich markup, so a
    scenario named ``q3 [red]what-if[/]`` printed as ``q3 what-if`` and ``run[/]1``
    crashed the summary with a MarkupError."""
    result = simulate(
        ROOT / "examples" / "scenarios" / "trace-replay.toml", policies=("static-peak",), hours=0.02
    )
    spec = result.scenario.spec.model_copy(update={"name": name})
    renamed = replace(result, scenario=replace(result.scenario, spec=spec))
    buffer = io.StringIO()
    print_summary(renamed, Console(file=buffer, width=80))
    assert buffer.getvalue().splitlines()[0].startswith(f"{name}: 0.02 h"), buffer.getvalue()
