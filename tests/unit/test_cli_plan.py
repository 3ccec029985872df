"""`modelfleet plan` as a user runs it: examples in, table or JSON out, clear input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from modelfleet.cli import app

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "examples" / "fleet"
NOW = "2025-06-01T12:00:30Z"
runner = CliRunner()


def plan_json(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["plan", "--fleet", str(FLEET), "--now", NOW, "-o", "json", *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_json_has_the_documented_fields_and_respects_constraints() -> None:
    data = plan_json(str(ROOT / "examples" / "multicloud-failover.yaml"))
    for field in (
        "desiredReplicas",
        "placements",
        "nodePools",
        "costPerHour",
        "unplaced",
        "reasons",
    ):
        assert field in data
    assert data["desiredReplicas"] == 2 and data["unplaced"] == 0
    placements = data["placements"]
    assert isinstance(placements, list)
    assert {p["region"] for p in placements} <= {"us-east-1", "us-central1", "eastus"}
    assert len({p["region"] for p in placements}) >= 2
    assert set(placements[0]) == {
        "cluster",
        "cloud",
        "region",
        "gpu",
        "instanceType",
        "capacityType",
        "replicas",
    }
    reasons = data["reasons"]
    assert isinstance(reasons, list)
    assert {"cluster": "neocloud-use", "offering": "", "reason": "ExcludedByCloud"}.items() <= {
        k: v for r in reasons if r["cluster"] == "neocloud-use" for k, v in r.items()
    }.items()


def test_metrics_file_drives_scale_up() -> None:
    metrics = ROOT / "tests" / "fixtures" / "metrics" / "llama-8b-burst.yaml"
    data = plan_json("--metrics", str(metrics), str(ROOT / "examples" / "multicloud-failover.yaml"))
    # HPA semantics: the 1.55x ratio was measured on the 3 ready replicas the file reports
    # (2 in aws-use1, 1 in azure-eus): ceil(3 * 310 / 200). It used to multiply the
    # deployment's current count (2 -> 4), which compounds while replicas start.
    assert data["desiredReplicas"] == 5
    changes = data["changes"]
    assert isinstance(changes, list)
    assert any(c["reason"] == "ScaleUp" for c in changes)


def test_metrics_file_kv_cache_saturation_scales_up_within_the_slo(tmp_path: Path) -> None:
    # 3 ready replicas well inside every objective, KV caches 95% full: ceil(3 x 0.95 / 0.75).
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(
        'observedAt: "2025-06-01T12:00:00Z"\n'
        "deployments:\n"
        "  default/llama-8b:\n"
        "    aws-use1: {readyReplicas: 3, ttftP95Ms: 120, tpotP95Ms: 30, queuePerReplica: 0,\n"
        "               requestRate: 9, kvCachePerReplica: 0.95, runningPerReplica: 80}\n"
    )
    data = plan_json("--metrics", str(metrics), str(ROOT / "examples" / "multicloud-failover.yaml"))
    assert data["desiredReplicas"] == 4
    changes = data["changes"]
    assert isinstance(changes, list)
    assert any("KV cache 95%" in str(c["message"]) for c in changes)


def test_table_output_lists_placements_and_reasons() -> None:
    result = runner.invoke(
        app,
        ["plan", "--fleet", str(FLEET), "--now", NOW, str(ROOT / "examples" / "quickstart.yaml")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "Placements" in result.output and "Reasons" in result.output
    assert "default/qwen-small" in result.output
    assert "g2-standard-8" in result.output  # cheapest 24 GiB GPU in the fleet


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "deployments: {default/x: {aws-use1: {ttftP95Ms: fast}}}",
            "deployments.default/x.aws-use1.ttftP95Ms",
        ),
        ("deployments: {default/x: {aws-use1: {latency: 3}}}", "aws-use1.latency"),
        ("a: [unclosed", "not valid YAML"),
    ],
)
def test_bad_metrics_file_names_file_and_field(tmp_path: Path, content: str, expected: str) -> None:
    bad = tmp_path / "metrics.yaml"
    bad.write_text(content)
    result = runner.invoke(
        app,
        [
            "plan",
            "--fleet",
            str(FLEET),
            "--metrics",
            str(bad),
            str(ROOT / "examples" / "quickstart.yaml"),
        ],
    )
    assert result.exit_code == 2
    assert str(bad) in result.output and expected in result.output


def test_bad_deployment_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "md.yaml"
    bad.write_text(
        "apiVersion: modelfleet.io/v1alpha1\nkind: ModelDeployment\n"
        "metadata: {name: x}\nspec: {model: {name: m}, replicas: {min: 3, max: 1}}\n"
    )
    result = runner.invoke(app, ["plan", "--fleet", str(FLEET), str(bad)])
    assert result.exit_code == 2
    assert str(bad) in result.output and "spec.replicas" in result.output


def test_bad_now_and_output_are_rejected() -> None:
    md = str(ROOT / "examples" / "quickstart.yaml")
    result = runner.invoke(app, ["plan", "--fleet", str(FLEET), "--now", "yesterday", md])
    assert result.exit_code == 2 and "--now" in result.output
    result = runner.invoke(app, ["plan", "--fleet", str(FLEET), "-o", "xml", md])
    assert result.exit_code == 2 and "table or json" in result.output


def test_json_rounds_money_to_cents_and_rates_to_three_decimals() -> None:
    metrics = ROOT / "tests" / "fixtures" / "metrics" / "llama-8b-burst.yaml"
    data = plan_json("--metrics", str(metrics), str(ROOT / "examples" / "multicloud-failover.yaml"))
    state = data["state"]
    assert isinstance(state, dict)
    assert state["capacityPerReplica"] == 5.49  # 5.489999999999999 before rounding

    def floats(value: object, key: str = "") -> list[tuple[str, float]]:
        if isinstance(value, dict):
            return [f for k, v in value.items() for f in floats(v, k)]
        if isinstance(value, list):
            return [f for v in value for f in floats(v, key)]
        return [(key, value)] if isinstance(value, float) else []

    found = floats(data)
    assert ("costPerHour", data["costPerHour"]) in found
    for key, value in found:
        assert value == round(value, 2 if key.endswith("PerHour") else 3), (key, value)


def test_spot_hedged_example_shows_spot_over_an_on_demand_base() -> None:
    running = ROOT / "tests" / "fixtures" / "plan" / "mistral-7b-batch-running.yaml"
    metrics = ROOT / "tests" / "fixtures" / "metrics" / "mistral-7b-batch-busy.yaml"
    example = yaml.safe_load((ROOT / "examples" / "spot-hedged.yaml").read_text())
    assert yaml.safe_load(running.read_text())["spec"] == example["spec"]  # no drift
    data = plan_json("--metrics", str(metrics), str(running))
    assert data["desiredReplicas"] == 8  # 4 running, TTFT p95 at 1.8x target
    placements = data["placements"]
    assert isinstance(placements, list)
    by_capacity: dict[str, int] = {}
    for p in placements:
        by_capacity[p["capacityType"]] = by_capacity.get(p["capacityType"], 0) + p["replicas"]
    assert by_capacity == {"OnDemand": 2, "Spot": 6}  # onDemandBase: 2, the rest on spot
    spot_regions = {p["region"] for p in placements if p["capacityType"] == "Spot"}
    assert len(spot_regions) >= 2  # spot spread over regions
