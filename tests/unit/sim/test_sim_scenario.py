"""Scenario files: the bundled ones load; bad ones are rejected naming the file and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelfleet.sim.scenario import ScenarioError, load_scenario, parse_at

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = ROOT / "examples" / "scenarios"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_bundled_scenarios_load(path: Path) -> None:
    text = path.read_text()
    shared = ROOT.parent / "shared" / "traces"
    if "shared/traces/" in text and not shared.exists():
        pytest.skip(f"{path.name} replays a trace from {shared}, which is absent here")
    scenario = load_scenario(path)
    assert scenario.fleet and scenario.deployments
    # Every bundled scenario shows events, except the real-trace replay, whose point is
    # the autoscaler on real traffic alone.
    assert scenario.spec.events or "shared/traces/" in text


def test_default_scenario_has_what_the_issue_asks_for() -> None:
    s = load_scenario(SCENARIOS / "default.toml")
    clouds = {c.spec.cloud_name for c in s.fleet}
    regions = {c.spec.region for c in s.fleet}
    kinds = {e.type for e in s.spec.events}
    assert clouds == {"aws", "gcp", "azure"} and len(regions) >= 6
    assert 2 <= len(s.deployments) <= 3 and s.spec.duration_hours == 24
    assert {"regionOutage", "stockout", "spotReclaim", "trafficBurst"} <= kinds


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    shutil.copytree(SCENARIOS / "fleet", tmp_path / "fleet")
    shutil.copytree(SCENARIOS / "deployments", tmp_path / "deployments")
    return tmp_path


BASE = """
name = "t"
fleet = ["fleet"]
[[deployments]]
manifest = "deployments/chat.yaml"
[deployments.traffic]
peakRps = 10
troughRps = 2
"""

BAD = [
    (
        "bad-time",
        BASE
        + '[[events]]\ntype = "regionOutage"\nat = "noon"\ndurationMinutes = 5\nregion = "eastus"\n',
        "events.0.at",
        "13:30",
    ),
    (
        "unknown-event",
        BASE + '[[events]]\ntype = "meteor"\nat = "1:00"\n',
        "events.0",
        "regionOutage",
    ),
    (
        "negative-rate",
        BASE.replace("peakRps = 10", "peakRps = -1"),
        "deployments.0.traffic.peakRps",
        "greater than 0",
    ),
    (
        "trough-above-peak",
        BASE.replace("troughRps = 2", "troughRps = 20"),
        "deployments.0.traffic",
        "troughRps must not exceed peakRps",
    ),
    (
        "unknown-key",
        BASE + "\n[world.engine]\nmaxNumSeq = 3\n",
        "world.engine.maxNumSeq",
        "Extra inputs",
    ),
    (
        "no-such-region",
        BASE
        + '[[events]]\ntype = "regionOutage"\nat = "1:00"\ndurationMinutes = 5\nregion = "mars-1"\n',
        "events.0.region",
        "no FleetCluster",
    ),
    (
        "no-target",
        BASE + '[[events]]\ntype = "stockout"\nat = "1:00"\ndurationMinutes = 5\ngpu = "H100"\n',
        "events.0",
        "cluster, region, cloud",
    ),
    (
        "gpu-not-offered",
        BASE
        + '[[events]]\ntype = "stockout"\nat = "1:00"\ndurationMinutes = 5\ngpu = "B200"\nregion = "eastus"\n',
        "events.0.gpu",
        "B200",
    ),
    (
        "missing-manifest",
        BASE.replace("deployments/chat.yaml", "deployments/nope.yaml"),
        "deployments.0.manifest",
        "no such file",
    ),
    (
        "after-the-end",
        BASE.replace('name = "t"', 'name = "t"\ndurationHours = 1')
        + '[[events]]\ntype = "regionOutage"\nat = "2:00"\ndurationMinutes = 5\nregion = "eastus"\n',
        "events.0.at",
        "after the end",
    ),
    (
        "burst-unknown-deployment",
        BASE
        + '[[events]]\ntype = "trafficBurst"\nat = "1:00"\ndurationMinutes = 5\nmultiplier = 2\ndeployment = "nope"\n',
        "events.0.deployment",
        "no ModelDeployment",
    ),
]


@pytest.mark.parametrize(
    ("text", "field", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_scenarios_name_the_field(
    scenario_dir: Path, text: str, field: str, fragment: str
) -> None:
    path = scenario_dir / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert any(
        line.startswith(f"{path}: {field}") and fragment in line for line in info.value.errors
    ), info.value.errors


def test_invalid_manifest_reports_its_own_field(scenario_dir: Path) -> None:
    chat = scenario_dir / "deployments" / "chat.yaml"
    chat.write_text(chat.read_text().replace("min: 2, max: 24", "min: 30, max: 24"))
    path = scenario_dir / "s.toml"
    path.write_text(BASE)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert any("deployments.0.manifest" in e and "spec.replicas" in e for e in info.value.errors)


def test_world_overrides_add_to_the_defaults(scenario_dir: Path) -> None:
    path = scenario_dir / "s.toml"
    path.write_text(
        BASE
        + "\n[world.gpus.B200]\nmemoryBandwidthTbs = 8\ndenseBf16Tflops = 2250\nmemoryGib = 180\n"
        + "[world.provisioning.byCloud.aws]\nmedian = 100\np90 = 200\n"
    )
    world = load_scenario(path).spec.world
    assert {"B200", "H100", "L40S"} <= set(world.gpus)
    assert world.provisioning.for_cloud("aws").median == 100
    assert world.provisioning.for_cloud("gcp").median == 240  # default kept


def test_shorter_runs_drop_the_events_they_do_not_reach() -> None:
    s = load_scenario(SCENARIOS / "default.toml", overrides={"durationHours": 2})
    assert [e.type for e in s.spec.events] == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("13:30", 48600), ("25:00:30", 90030), ("90m", 5400), ("1.5h", 5400), (45, 45)],
)
def test_times_from_the_start(text: str | int, seconds: float) -> None:
    assert parse_at(text) == seconds
