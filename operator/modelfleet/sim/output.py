"""Run policies over a scenario and hand the results out: report.json, timeline.csv,
report.png and the terminal summary table."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import modelfleet
from modelfleet.sim.engine import run_policy, traffic_for
from modelfleet.sim.policies import POLICIES, PolicyName
from modelfleet.sim.report import PolicyReport, evaluate, timeline_rows
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
) -> SimulationResult:
    """Simulate ``scenario`` (a path, a loaded Scenario, or the default) under each of
    ``policies`` (plus the baselines with ``compare``), all on the same traffic. Writes
    the outputs under ``out`` when given. Raises ScenarioError for a bad scenario."""
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
    traffic = traffic_for(scenario, seconds=seconds, offset=offset)
    reports = [evaluate(run_policy(name, scenario, traffic)) for name in names]
    result = SimulationResult(scenario, reports, time.perf_counter() - started)
    if out is not None:
        write_outputs(result, out)
    return result


def write_outputs(result: SimulationResult, folder: Path) -> list[Path]:
    """Write report.json, timeline.csv and report.png into ``folder`` (created)."""
    from modelfleet.sim.plot import plot_report

    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "report.json"
    report.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    timeline = folder / "timeline.csv"
    rows = [row for r in result.reports for row in timeline_rows(r)]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with timeline.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    png = folder / "report.png"
    plot_report(result.reports, png)
    return [report, timeline, png]


def _fmt_seconds(value: Any) -> str:
    if value is None:
        return "not restored"
    return f"{float(value):.0f} s"


def summary_table(result: SimulationResult) -> Table:
    """The per-policy summary printed by ``modelfleet simulate``."""
    spec = result.scenario.spec
    table = Table(
        title=f"{spec.name}: {spec.duration_hours:g} h, seed {spec.seed} (SLO met: share of "
        "minutes; RTO: failover; stockout: recovery)",
        title_justify="left",
    )
    table.add_column("policy", no_wrap=True, min_width=12)
    for column in ("SLO met", "TTFT p95", "requests", "failed", "GPU-h", "cost", "RTO", "stockout"):
        table.add_column(column, justify="right")
    for rep in result.reports:
        rto = ", ".join(_fmt_seconds(f["rtoSeconds"]) for f in rep.failovers) or "-"
        rec = (
            ", ".join(
                _fmt_seconds(s["recoverySeconds"]) + ("" if s.get("hit", True) else " (not hit)")
                for s in rep.stockouts
            )
            or "-"
        )
        table.add_row(
            rep.run.policy,
            f"{rep.slo_attainment:.2%}",
            "-" if rep.ttft_p95_ms is None else f"{rep.ttft_p95_ms:,.0f} ms",
            f"{rep.requests:,}",
            f"{rep.failed:,}",
            f"{rep.gpu_hours:,.1f}",
            f"${rep.cost_usd:,.0f}",
            rto,
            rec,
        )
    return table


def print_summary(result: SimulationResult, console: Console) -> None:
    """Print the summary table and the headline comparisons."""
    console.print(summary_table(result))
    comparisons = _comparisons(result.reports)
    labels = {
        "gpuHoursBelowStaticPeak": "modelfleet GPU-hours below static-peak",
        "costBelowHpaFailover": "modelfleet cost below hpa-failover",
        "costBelowAllOnDemand": "modelfleet cost below its all-on-demand run",
    }
    for key, value in comparisons.items():
        console.print(f"{labels[key]}: {value:.1%}")
    console.print(f"simulated in {result.wall_seconds:.1f} s")
