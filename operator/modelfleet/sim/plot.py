"""report.png: replicas per region, TTFT p95 against the SLO, and cost rate, per policy.

One column per policy, three rows sharing the time axis: ready replicas stacked by region,
each deployment's per-minute TTFT p95 (log scale) with its SLO as a dashed line, and the
cost rate in USD/hour. Panels of a row share their y-scale, so policies compare at a
glance; the cost axis leaves room above the highest line, so a flat line (static peak)
stays visible. Scenario events are shaded on every panel with a solid line where they
begin and at least ten minutes wide, so a short one (a spot reclaim) shows; regions and
deployments are drawn in colours no event uses. The title names the kinds of event the run
has, wrapped to the figure's width (one policy's column is 6 inches). Uses matplotlib's Agg
backend (no display needed).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from modelfleet.sim.report import PolicyReport

_EVENT_COLOURS = {
    "regionOutage": "#d62728",
    "stockout": "#ff7f0e",
    "spotReclaim": "#9467bd",
}
_EVENT_WORDS = {"regionOutage": "outage", "stockout": "stockout", "spotReclaim": "spot reclaim"}
_EVENT_NAMES = {"regionOutage": "red", "stockout": "orange", "spotReclaim": "purple"}
_FREE_TAB10 = (0, 2, 5, 7, 8, 9)
"""tab10 without orange (1), red (3), purple (4) and pink (6): the first three mark events."""
_TITLE_CHARS_PER_INCH = 9
"""Characters of the 12 pt title per inch of figure, with a margin (DejaVu Sans averages
~6.5 pt a character: 11 an inch)."""


def _title(reports: list[PolicyReport], width_inches: float) -> str:
    """The figure's title: the scenario's name, and the kinds of event its run has with
    their colours, wrapped to ``width_inches``."""
    kinds = list(
        dict.fromkeys(
            str(e["type"])
            for rep in reports
            for e in rep.run.world.event_log
            if str(e["type"]) in _EVENT_COLOURS
        )
    )
    title = reports[0].run.scenario.name
    if kinds:
        shaded = ", ".join(f"{_EVENT_WORDS[k]} ({_EVENT_NAMES[k]})" for k in kinds)
        title += f": shaded = {shaded}"
    return textwrap.fill(title, width=max(20, int(width_inches * _TITLE_CHARS_PER_INCH)))


def load_matplotlib() -> None:
    """Import matplotlib with the Agg backend (about a second, once per process): what
    ``plot_report`` needs, done ahead while a core is otherwise idle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot


def plot_report(reports: list[PolicyReport], path: Path) -> None:
    """Write the figure for ``reports`` (same scenario, one per policy) to ``path``."""
    import matplotlib.pyplot as plt

    fig = draw_report(reports)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_report(reports: list[PolicyReport]) -> Any:
    """The figure for ``reports`` (a matplotlib Figure, laid out, not saved)."""
    load_matplotlib()
    import matplotlib.pyplot as plt

    cols = len(reports)
    fig, axes = plt.subplots(
        3, cols, figsize=(6.0 * cols, 9.0), sharex=True, sharey="row", squeeze=False
    )
    regions = sorted({r for rep in reports for r in rep.run.region_ready})
    # Regions and deployments (in panels of their own) take colours no event uses.
    region_colours = [plt.get_cmap("tab10")(i) for i in _FREE_TAB10] + [
        plt.get_cmap("Pastel1")(i) for i in range(9)
    ]
    palette = region_colours
    top_cost = 0.0
    for col, rep in enumerate(reports):
        run = rep.run
        per_minute = int(60 // run.tick)
        first = run.offset // int(run.tick)
        minutes = (run.load.seconds - run.offset) // 60
        hours = np.arange(minutes) / 60.0
        stacks = []
        for region in regions:
            counts = run.region_ready.get(region)
            if counts is None:
                stacks.append(np.zeros(minutes))
                continue
            window = counts[first : first + minutes * per_minute].reshape(minutes, per_minute)
            stacks.append(window.min(axis=1))
        ax = axes[0][col]
        ax.stackplot(
            hours,
            *stacks,
            labels=regions,
            colors=[region_colours[i % len(region_colours)] for i in range(len(regions))],
        )
        ax.set_title(f"{run.policy}: SLO {rep.slo_attainment:.1%}, ${rep.cost_usd:,.0f}")
        ax.set_ylabel("ready replicas")
        if col == cols - 1:
            ax.legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.0, 1.0))
        ax = axes[1][col]
        for i, (key, fig_d) in enumerate(rep.deployments.items()):
            p95 = np.where(np.isinf(fig_d.minute_p95_ms), np.nan, fig_d.minute_p95_ms)
            colour = palette[i % len(palette)]
            ax.plot(hours, p95, lw=0.8, color=colour, label=key.split("/", 1)[1])
            if fig_d.slo_ms is not None:
                ax.axhline(fig_d.slo_ms, color=colour, ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_ylabel("TTFT p95 (ms), SLO dashed")
        if col == cols - 1:
            ax.legend(loc="upper left", fontsize="small", bbox_to_anchor=(1.0, 1.0))
        ax = axes[2][col]
        cost = run.cost[first : first + minutes * per_minute].reshape(minutes, per_minute)
        rate = cost.sum(axis=1) * 60.0
        top_cost = max(top_cost, float(rate.max(initial=0.0)))
        ax.plot(hours, rate, color="black", lw=1.2)
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.set_ylabel("cost (USD/hour)")
        ax.set_xlabel("hours from the scenario start")
        for row in range(3):
            for event in run.world.event_log:
                shade = _EVENT_COLOURS.get(str(event["type"]))
                if shade is None:
                    continue
                begin = float(event["atSeconds"]) / 3600.0  # type: ignore[arg-type]
                end = float(event.get("endSeconds", event["atSeconds"] + 300)) / 3600.0  # type: ignore[operator, arg-type]
                # At least ten minutes wide, but never past the run's end (--hours cuts
                # a scenario short; its events' ends would stretch the time axis).
                end = min(max(end, begin + 10.0 / 60.0), minutes / 60.0)
                axes[row][col].axvspan(begin, end, color=shade, alpha=0.18, lw=0)
                axes[row][col].axvline(begin, color=shade, lw=1.0)
    axes[2][0].set_ylim(0, max(1.0, top_cost * 1.15))
    fig.suptitle(_title(reports, 6.0 * cols))
    fig.tight_layout()
    return fig
