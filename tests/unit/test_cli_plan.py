"""`modelfleet plan` as a user runs it: examples in, table or JSON out, clear input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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
