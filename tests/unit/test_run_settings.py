"""Bad operator settings are refused when ``modelfleet run`` starts, with the flag named,
instead of being taken as given and failing later (every pass raising, no backoff, every
grow a stockout)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app
from modelfleet.runtime import planner_settings

runner = CliRunner()


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("stockoutInitialSeconds=-1", "must be greater than 0"),
        ("stockoutInitialSeconds=0", "must be greater than 0"),
        ("stockoutMaxSeconds=nan", "finite"),
        ("stockoutMaxSeconds=1e12", "at most 86400"),  # the mark's expiry overflowed
        ("stockoutInitialSeconds=86401", "at most 86400"),
        ("solverTimeLimitSeconds=0", "must be greater than 0"),
        ("tolerance=inf", "finite"),
        ("tolerance=-0.1", "must not be negative"),
        ("utilisationTarget=0", "must be greater than 0"),  # divides by it
        ("utilisationTarget=1.5", "at most 1"),
        ("maxScaleDownFraction=2", "at most 1"),
        ("capacityBreachMargin=0", "must be greater than 0"),
        ("solverMaxNodes=0", "must be greater than 0"),
        ("stockoutMaxSeconds=60", "stockoutMaxSeconds"),  # below the 180 s initial backoff
        ("kvCacheThreshold=1.2", "at most 1"),  # a share of the KV cache
        ("kvCacheTarget=0", "must be greater than 0"),  # divides by it
        ("saturationQueuePerReplica=-1", "must not be negative"),
    ],
)
def test_planner_settings_out_of_range_are_refused(pair: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        planner_settings([pair])


def test_planner_settings_in_range_are_kept() -> None:
    settings = planner_settings(
        ["stockoutInitialSeconds=60", "stockoutMaxSeconds=60", "utilisationTarget=1"]
    )
    assert settings.stockout_max_seconds == settings.stockout_initial_seconds == 60
    assert settings.utilisation_target == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--launch-timeout", "-5"],
        ["--launch-timeout", "0"],
        ["--launch-timeout", "nan"],
        ["--max-concurrent-reconciles", "0"],
        ["--max-concurrent-reconciles", "-3"],
        ["--interval", "0"],
        ["--probe-interval", "-1"],
    ],
)
def test_run_refuses_bad_loop_settings_before_contacting_the_hub(args: list[str]) -> None:
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 2, result.output
    assert args[0] in result.output


def test_run_refuses_a_planner_value_out_of_range() -> None:
    result = runner.invoke(app, ["run", "--planner", "utilisationTarget=0"])
    assert result.exit_code == 2, result.output
    assert "utilisationTarget" in result.output


def test_the_chart_schema_names_every_planner_setting() -> None:
    """``operator.planner`` in the chart refuses unknown keys: every PlannerSettings field
    must be listed there, or Helm refuses a setting ``modelfleet run --planner`` takes."""
    import dataclasses
    import json
    from pathlib import Path

    from modelfleet.core import PlannerSettings

    schema_path = Path(__file__).parents[2] / "charts" / "modelfleet" / "values.schema.json"
    schema = json.loads(schema_path.read_text())
    planner = schema["properties"]["operator"]["properties"]["planner"]
    assert planner["additionalProperties"] is False
    fields = {
        head + "".join(part.title() for part in rest)
        for head, *rest in (f.name.split("_") for f in dataclasses.fields(PlannerSettings))
    }
    assert fields == set(planner["properties"])


def test_operations_doc_lists_every_planner_setting_with_its_default() -> None:
    """docs/operations.md "Planner settings" is where a user looks up ``--planner`` keys:
    each PlannerSettings field is a row, with the default the code has."""
    import dataclasses
    import re
    from pathlib import Path

    from modelfleet.core import PlannerSettings

    text = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Za-z]+)` \| ([0-9.]+) \|", text, flags=re.M))
    expected = {
        head + "".join(part.title() for part in rest): field.default
        for field in dataclasses.fields(PlannerSettings)
        for head, *rest in [field.name.split("_")]
    }
    assert set(rows) == set(expected)
    assert {key: float(value) for key, value in rows.items()} == expected


def test_the_chart_schema_admits_exactly_what_run_admits_of_each_planner_setting() -> None:
    """Helm and ``modelfleet run --planner`` agree at every edge: a value the chart lets
    through and the operator refuses stops the pod in a crash loop; the other way round,
    the chart refuses a setting the operator takes."""
    import json
    from pathlib import Path

    import jsonschema

    schema_path = Path(__file__).parents[2] / "charts" / "modelfleet" / "values.schema.json"
    schema = json.loads(schema_path.read_text())
    planner = schema["properties"]["operator"]["properties"]["planner"]["properties"]
    probes = [-1.0, 0.0, 1e-6, 0.5, 1.0, 1.5, 2.0, 86400.0, 86401.0, 1e12]
    # The backoff ceiling is checked against the first backoff: keep the other one valid.
    partner = {"stockoutMaxSeconds": "stockoutInitialSeconds=1e-6",
               "stockoutInitialSeconds": "stockoutMaxSeconds=86400"}  # fmt: skip
    disagree = []
    for key, node in planner.items():
        for value in probes:
            typed: float = int(value) if node["type"] == "integer" else value
            if node["type"] == "integer" and typed != value:
                continue
            chart = jsonschema.Draft7Validator(node).is_valid(typed)
            try:
                planner_settings([f"{key}={typed}", *([partner[key]] if key in partner else [])])
                operator = True
            except ValueError:
                operator = False
            if chart != operator:
                disagree.append(f"{key}={typed}: chart {chart}, run {operator}")
    assert not disagree, disagree


def test_run_refuses_a_metrics_namespace_label_that_is_no_prometheus_label() -> None:
    result = runner.invoke(app, ["run", "--metrics-namespace-label", "kubernetes.io/ns"])
    assert result.exit_code == 2, result.output
    assert "--metrics-namespace-label" in result.output


@pytest.mark.parametrize(
    "label",
    [
        # Found on main 8be971f (br11): accepted, then every query selected nothing (a __
        # label is dropped after relabelling) or was refused by Prometheus (__name__ twice).
        "__meta_kubernetes_namespace",
        "__name__",
        # ... or matched the very pod label a tenant writes: a pin that pins nothing.
        "modelfleet_io_namespace",
        "modelfleet_io_deployment",
    ],
)
def test_run_refuses_a_metrics_namespace_label_that_cannot_pin(label: str) -> None:
    result = runner.invoke(app, ["run", "--metrics-namespace-label", label])
    assert result.exit_code == 2, result.output
    assert "--metrics-namespace-label" in result.output
    assert "kubeconfig" not in result.output  # refused before the hub is asked
