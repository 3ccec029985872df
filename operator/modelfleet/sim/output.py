"""Run policies over a scenario and hand the results out: report.json, timeline.csv,
report.png and the terminal summary table."""

from __future__ import annotations

import csv
import json
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

import modelfleet
from modelfleet.cli_layout import natural_width, print_lines, wrap
from modelfleet.sim.engine import traffic_for
from modelfleet.sim.host import without_hugepage_advice
from modelfleet.sim.policies import POLICIES, PolicyName
from modelfleet.sim.report import PolicyReport, timeline_rows
from modelfleet.sim.runner import run_reports
from modelfleet.sim.scenario import Scenario, load_scenario

BASELINES: tuple[PolicyName, ...] = ("static-peak", "hpa-failover", "oracle")


def default_scenario_path() -> Path:
    """The bundled default scenario: ``examples/scenarios/default.toml`` of the working
    directory, else of the source tree the package was installed from (``pip install -e``).
    Raises FileNotFoundError when neither exists."""
    here = Path("examples/scenarios/default.toml")
    if here.exists():
        return here
    tree = Path(modelfleet.__file__).resolve().parents[2] / "examples/scenarios/default.toml"
    if tree.exists():
        return tree
    raise FileNotFoundError(
        "the default scenario examples/scenarios/default.toml was not found; run from the "
        "modelfleet repository or pass a scenario file"
    )


@dataclass
class SimulationResult:
    """Every policy's report for one scenario run, and how long the run took."""

    scenario: Scenario
    reports: list[PolicyReport]
    wall_seconds: float

    def to_json(self) -> dict[str, Any]:
        """The content of report.json."""
        spec = self.scenario.spec
        policies = {r.run.policy: r.to_json() for r in self.reports}
        out: dict[str, Any] = {
            "scenario": spec.name,
            "description": spec.description,
            "seed": spec.seed,
            "durationHours": spec.duration_hours,
            "start": self.reports[0].run.start.isoformat().replace("+00:00", "Z")
            if self.reports
            else None,
            "policies": policies,
            "comparisons": _comparisons(self.reports),
            "events": self.reports[0].run.world.event_log if self.reports else [],
            "wallSeconds": round(self.wall_seconds, 2),
            "world": spec.world.model_dump(mode="json", by_alias=True),
        }
        return out


def _comparisons(reports: list[PolicyReport]) -> dict[str, float]:
    by = {r.run.policy: r for r in reports}
    out: dict[str, float] = {}
    mf = by.get("modelfleet")
    if mf is None:
        return out
    if "static-peak" in by and by["static-peak"].gpu_hours > 0:
        out["gpuHoursBelowStaticPeak"] = round(1 - mf.gpu_hours / by["static-peak"].gpu_hours, 4)
    if "hpa-failover" in by and by["hpa-failover"].cost_usd > 0:
        out["costBelowHpaFailover"] = round(1 - mf.cost_usd / by["hpa-failover"].cost_usd, 4)
    if "oracle" in by and by["oracle"].gpu_hours > 0:
        for name, rep in by.items():
            out[f"gpuHoursOverOracle:{name}"] = round(rep.gpu_hours / by["oracle"].gpu_hours, 4)
    if "modelfleet-on-demand" in by and by["modelfleet-on-demand"].cost_usd > 0:
        out["costBelowAllOnDemand"] = round(
            1 - mf.cost_usd / by["modelfleet-on-demand"].cost_usd, 4
        )
    return out


def simulate(
    scenario: Path | Scenario | None = None,
    *,
    policies: Sequence[PolicyName] = ("modelfleet",),
    compare: bool = False,
    seed: int | None = None,
    hours: float | None = None,
    out: Path | None = None,
    jobs: int = 1,
) -> SimulationResult:
    """Simulate ``scenario`` (a path, a loaded Scenario, or the default) under each of
    ``policies`` (plus the baselines with ``compare``), all on the same traffic, up to
    ``jobs`` policies at once in worker processes (same reports either way). Writes the
    outputs under ``out`` when given. Raises ScenarioError for a bad scenario."""
    started = time.perf_counter()
    if not isinstance(scenario, Scenario):
        overrides: dict[str, Any] = {}
        if seed is not None:
            overrides["seed"] = seed
        if hours is not None:
            overrides["durationHours"] = hours
        scenario = load_scenario(scenario or default_scenario_path(), overrides=overrides)
    names = list(dict.fromkeys([*policies, *(BASELINES if compare else ())]))
    for name in names:
        if name not in POLICIES:
            raise ValueError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})")
    control = scenario.spec.world.control
    offset = int(control.warmup_minutes * 60)
    seconds = offset + int(scenario.spec.duration_hours * 3600)
    with without_hugepage_advice():  # the same arrays, without compaction stalls
        traffic = traffic_for(scenario, seconds=seconds, offset=offset)
        warm = _load_plotting if out is not None else None
        rows: dict[str, list[dict[str, Any]]] = {}
        early = (lambda done: rows.update(_rows_of(done))) if out is not None else None
        reports = run_reports(
            scenario, names, traffic, jobs=jobs, while_waiting=warm, with_done=early
        )
        result = SimulationResult(scenario, reports, time.perf_counter() - started)
        if out is not None:
            write_outputs(result, out, rows=rows)
    return result


def plot_in_child(reports: list[PolicyReport], png: Path) -> Callable[[], None]:
    """Start drawing ``reports`` into ``png``; the returned call waits for the drawing.

    The drawing (~0.5 s of CPU for a day) runs in a forked child, beside the rest of the
    outputs, when this process has one thread and can fork (the CLI: the child inherits
    the loaded matplotlib and the reports, nothing is pickled); else here, at once (under
    a test runner's threads a fork could deadlock). The wait raises RuntimeError when the
    child failed (its traceback went to stderr)."""
    from modelfleet.sim.plot import plot_report

    if threading.active_count() != 1 or "fork" not in multiprocessing.get_all_start_methods():
        plot_report(reports, png)
        return lambda: None
    child = multiprocessing.get_context("fork").Process(
        target=plot_report, args=(reports, png), name="report.png"
    )
    child.start()

    def wait() -> None:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"drawing {png} failed (exit code {child.exitcode})")

    return wait


def _load_plotting() -> None:
    from modelfleet.sim.plot import load_matplotlib

    load_matplotlib()


def _rows_of(reports: list[PolicyReport]) -> dict[str, list[dict[str, Any]]]:
    """``timeline_rows`` per policy of ``reports``."""
    return {r.run.policy: timeline_rows(r) for r in reports}


def write_outputs(
    result: SimulationResult,
    folder: Path,
    *,
    rows: dict[str, list[dict[str, Any]]] | None = None,
) -> list[Path]:
    """Write report.json, timeline.csv and report.png into ``folder`` (created).

    ``rows``: timeline rows already made for some policies (``timeline_rows`` of their
    reports, by policy name); the others' are made here. report.png is drawn in a forked
    process meanwhile where this process may fork (``plot_in_child``), else here.
    Raises OSError for a folder it cannot write, RuntimeError when the drawing failed."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / "report.png"
    drawing = plot_in_child(result.reports, png)
    report = folder / "report.json"
    report.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    timeline = folder / "timeline.csv"
    made = rows or {}
    all_rows = [
        row
        for r in result.reports
        for row in (made[r.run.policy] if r.run.policy in made else timeline_rows(r))
    ]
    columns = list(dict.fromkeys(key for row in all_rows for key in row))
    with timeline.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(all_rows)
    drawing()
    return [report, timeline, png]


def _fmt_seconds(value: Any) -> str:
    if value is None:
        return "never"
    return f"{float(value):.0f}s"


def _latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f}ms" if ms < 10_000 else f"{ms / 1000:.1f}s"


def _hours(h: float) -> str:
    return f"{h:,.0f}" if h >= 100 else f"{h:.1f}"


def _count(n: float) -> str:
    """A whole number in at most 5 characters: 812, 9,640, 96k, 9.6M."""
    if n < 10_000:
        return f"{n:,.0f}"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1e6:.1f}M"


def summary_table(result: SimulationResult) -> Table:
    """The per-policy summary printed by ``modelfleet simulate``: whole numbers that fit 80
    columns (also when the output is not a terminal: rich then assumes 80)."""
    spec = result.scenario.spec
    oracle = next((r for r in result.reports if r.run.policy == "oracle"), None)
    requests = result.reports[0].requests if result.reports else 0
    table = Table(
        # Text, not markup: a scenario's name is the user's ("q3 [red]what-if[/]").
        title=Text(f"{spec.name}: {spec.duration_hours:g} h, seed {spec.seed}, ")
        + Text(f"{_count(requests)} requests"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        caption="SLO: minutes within it; xOracle: GPU-h over oracle; RTO/stock: recovery",
        caption_justify="left",
    )
    rows: list[tuple[str, ...]] = []
    for rep in result.reports:
        rto = ",".join(_fmt_seconds(f["rtoSeconds"]) for f in rep.failovers) or "-"
        rec = (
            ",".join(
                _fmt_seconds(s["recoverySeconds"]) if s.get("hit", True) else "unhit"
                for s in rep.stockouts
            )
            or "-"
        )
        ratio = (
            f"{rep.gpu_hours / oracle.gpu_hours:.2f}"
            if oracle is not None and oracle.gpu_hours > 0
            else "-"
        )
        rows.append(
            (
                rep.run.policy,
                f"{rep.slo_attainment:.1%}",
                _latency(rep.ttft_p95_ms),
                _count(rep.failed),
                _hours(rep.gpu_hours),
                ratio,
                f"${rep.cost_usd:,.0f}",
                rto,
                rec,
            )
        )
    headers = ("policy", "SLO", "TTFTp95", "failed", "GPU-h", "xOracle", "cost", "RTO", "stock")
    for i, column in enumerate(headers):
        # A column never narrower than its widest figure: a narrow console must not cut
        # one ("100.…"); print with crop=False and the terminal wraps the line instead.
        widest = max([len(column), *(len(row[i]) for row in rows)])
        table.add_column(
            column, justify="left" if i == 0 else "right", no_wrap=True, min_width=widest
        )
    for row in rows:
        table.add_row(*row)
    return table


_KEEP = "\u00a0"
"""A no-break space: a name and its figure stay on one line when a sentence is wrapped
(``cli_layout.wrap`` prints it as a plain space)."""


def headline(result: SimulationResult) -> list[str]:
    """Plain sentences: where modelfleet wins and by how much, and where it does not. A
    name and its figure ("chat-llama-8b 6%", "377 vs 648") are joined by a no-break space
    (U+00A0) so that wrapping never parts them."""
    by = {r.run.policy: r for r in result.reports}
    mf = by.get("modelfleet")
    if mf is None:
        return []
    lines = [
        f"modelfleet met the SLO in {mf.slo_attainment:.1%} of minutes, used "
        f"{_hours(mf.gpu_hours)} GPU-hours and cost ${mf.cost_usd:,.0f}."
    ]
    for name, what in (("static-peak", "static peak provisioning"), ("hpa-failover", "HPA")):
        other = by.get(name)
        if other is None or other.gpu_hours <= 0:
            continue
        ratio = mf.gpu_hours / other.gpu_hours
        more_less = (
            f"{1 - ratio:.0%} fewer GPU-hours" if ratio < 1 else f"{ratio - 1:.0%} more GPU-hours"
        )
        cost = mf.cost_usd / other.cost_usd if other.cost_usd > 0 else 1.0
        cost_words = f"{1 - cost:.0%} cheaper" if cost < 1 else f"{cost - 1:.0%} dearer"
        slo = mf.slo_attainment - other.slo_attainment
        lines.append(
            f"Against {what}: {more_less} "
            f"({_hours(mf.gpu_hours)}{_KEEP}vs{_KEEP}{_hours(other.gpu_hours)}), "
            f"{cost_words}, "
            + (
                "the SLO met in as many minutes."
                if abs(slo) < 0.0005
                else f"the SLO met in {abs(slo) * 100:.1f} points "
                f"{'more' if slo > 0 else 'fewer'} of the minutes."
            )
        )
    oracle = by.get("oracle")
    if oracle is not None and oracle.gpu_hours > 0:
        lines.append(
            f"The clairvoyant oracle needed {_hours(oracle.gpu_hours)} GPU-hours: modelfleet used "
            f"{mf.gpu_hours / oracle.gpu_hours:.2f}x that."
        )
    errors = [
        (key.split("/", 1)[1], d.forecast)
        for key, d in mf.deployments.items()
        if d.forecast and d.forecast.get("mape") is not None
    ]
    if errors:
        lead = errors[0][1]["leadSeconds"]
        parts = ", ".join(f"{name}{_KEEP}{f['mape']:.0%}" for name, f in errors)
        lines.append(
            f"Its demand forecast {lead / 60:.0f} min ahead ({errors[0][1]['predictor']}) "
            f"was off by {parts} on average."
        )
    ondemand = by.get("modelfleet-on-demand")
    if ondemand is not None and ondemand.cost_usd > 0:
        lines.append(
            f"Spot hedging saved {1 - mf.cost_usd / ondemand.cost_usd:.0%} against the same "
            "autoscaler on on-demand only."
        )
    return lines


def print_summary(result: SimulationResult, console: Console) -> None:
    """Print the summary table and the plain-language headline. On a console narrower than
    the table it keeps its natural width, every column whole, and its lines are not
    cropped (the terminal wraps them): no figure is cut or dropped.
    Each headline sentence is wrapped at spaces to ``console.width``, continuation lines
    indented, so the prose fits 80 columns (``cli_layout.wrap``)."""
    table = summary_table(result)
    # rich drops whole columns (header and figures: ``RTO``, ``cost``) from a table wider
    # than the console, whatever their min_width: lay it out at its natural width instead.
    natural = natural_width(console, table)
    if natural > console.width:
        table.width = natural
    console.print(table, crop=False)
    for sentence in headline(result):
        print_lines(console, wrap(sentence, console.width))
    console.print(f"simulated in {result.wall_seconds:.1f} s")
