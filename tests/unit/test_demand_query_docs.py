"""Every place that shows ``spec.metrics.demand`` gives the arrivals rate, never the
held-requests gauge: the operator reads ``demand`` in requests/s, and the gauge (a count of
requests held up to 60 s) reads up to 60 times the arrival rate (docs/gateway.md)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from modelfleet.api.modeldeployment import MetricsQueries
from modelfleet.gateway.metrics import DEMAND_QUERY, PENDING_REQUESTS

ROOT = Path(__file__).resolve().parents[2]
SHOWN = [
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "README.md",
    *sorted((ROOT / "examples").rglob("*.yaml")),
    *sorted((ROOT / "crds").glob("*.yaml")),
    *sorted((ROOT / "charts" / "modelfleet" / "crds").glob("*.yaml")),
]
DEMAND_LINE = re.compile(r"demand:\s*'([^']*)'")


def test_no_document_sums_the_pending_gauge_as_demand() -> None:
    wrong = [p.name for p in SHOWN if f"sum({PENDING_REQUESTS}" in p.read_text("utf-8")]
    assert wrong == []


def test_every_demand_shown_with_the_gateway_is_the_rate_query() -> None:
    found = {
        (p.relative_to(ROOT).as_posix(), query)
        for p in SHOWN
        for query in DEMAND_LINE.findall(p.read_text("utf-8"))
        if "modelfleet_gateway_" in query
    }
    assert {path for path, _ in found} >= {
        "docs/decisions.md",
        "docs/gateway.md",
        "examples/spot-hedged.yaml",
    }
    assert {query for _, query in found} == {DEMAND_QUERY}


def test_the_field_description_gives_the_rate_query_in_requests_per_second() -> None:
    text = MetricsQueries.model_fields["demand"].description or ""
    assert DEMAND_QUERY in text and "requests/s" in text
    crd = yaml.safe_load((ROOT / "crds" / "modeldeployments.modelfleet.io.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    field = schema["properties"]["spec"]["properties"]["metrics"]["properties"]["demand"]
    assert DEMAND_QUERY in " ".join(field["description"].split())
