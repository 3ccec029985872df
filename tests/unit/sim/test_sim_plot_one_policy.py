"""report.png of a run with one policy (a breaker's find, brk15a): ``modelfleet simulate
--out`` draws one 6-inch column, and its title, "<scenario>: shaded = outage (red), stockout
(orange), spot reclaim (purple)", ran off both edges of the picture ("le-from-zero: shaded =
... spot reclaim (purp"). The title now names only the kinds of event the run has and is
wrapped to the figure; and the TTFT lines no longer take the events' colours (the second
deployment's line was the stockout's orange, the fourth the outage's red). An event that
outlasts the run (``--hours 1`` on a scenario whose stockout lasts 2 h) stretched the time
axis past the run's end, the data squeezed into its first part: its shading now stops there."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.colors import to_hex

from modelfleet.sim.output import SimulationResult, simulate
from modelfleet.sim.plot import _EVENT_COLOURS, draw_report

ROOT = Path(__file__).parents[3]
SCENARIOS = ROOT / "examples" / "scenarios"

EVENTS = """
[[events]]
type = "regionOutage"
at = "0:05"
durationMinutes = 3
region = "eastus"

[[events]]
type = "stockout"
at = "0:06"
durationMinutes = 3
region = "westeurope"
gpu = "H100"
capacityType = "Any"

[[events]]
type = "spotReclaim"
at = "0:07"
cloud = "gcp"
fraction = 1.0
stockoutMinutes = 3
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    folder = tmp_path_factory.mktemp("scenario")
    lines = ['name = "a-scenario-with-a-long-name"', "durationHours = 0.2", "startHour = 12"]
    lines.append(f'fleet = ["{SCENARIOS / "fleet"}"]')
    for name, rps in (("chat", 20), ("code", 6), ("batch", 2), ("code-completion", 2)):
        manifest = SCENARIOS / "deployments" / f"{name}.yaml"
        lines += ["[[deployments]]", f'manifest = "{manifest}"']
        lines += ["[deployments.traffic]", f"peakRps = {rps}"]
    (folder / "s.toml").write_text("\n".join(lines) + "\n" + EVENTS)
    return simulate(folder / "s.toml", policies=("static-peak",), jobs=1)


def test_the_title_of_one_column_stays_inside_the_picture(result: SimulationResult) -> None:
    fig = draw_report(result.reports)
    fig.canvas.draw()
    title = fig._suptitle
    text = title.get_text()
    assert "outage (red)" in text and "stockout (orange)" in text, text
    assert "spot reclaim (purple)" in text, text
    box = title.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width, (box, fig.bbox.width)


def test_no_deployment_line_takes_an_event_colour(result: SimulationResult) -> None:
    fig = draw_report(result.reports)
    panel = fig.axes[1]  # the TTFT panel: one labelled line per deployment
    colours = {to_hex(ln.get_color()) for ln in panel.get_lines() if ln.get_label()[0] != "_"}
    assert len(colours) == 4, colours
    assert not colours & set(_EVENT_COLOURS.values()), colours


def test_a_run_without_events_names_none() -> None:
    quiet = simulate(SCENARIOS / "stockout.toml", policies=("static-peak",), hours=0.1, jobs=1)
    fig = draw_report(quiet.reports)
    assert fig._suptitle.get_text() == "stockout"


def test_an_event_outlasting_the_run_does_not_stretch_the_time_axis(
    result: SimulationResult,
) -> None:
    fig = draw_report(result.reports)  # a 12-minute run; the reclaim's shade (10 min) at 7
    assert fig.axes[0].get_xlim()[1] <= 0.2 * 1.06, fig.axes[0].get_xlim()  # 5% margin
