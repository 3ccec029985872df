"""A ModelRoute's condition messages stay within what its CRD admits, whatever the route
declares (br15c): the API server refuses a whole status whose condition message is over the
schema's ``maxLength`` (422), and the route's owner is then told nothing. A route may name
33 model names of 253 characters and 520 distinct deployments, all within the CRD."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from modelfleet.api.modelroute import ModelRoute
from modelfleet.gateway.catalog import build_catalog
from modelfleet.gateway.invalid_routes import parse_route
from modelfleet.gateway.route_verdicts import wanted_status

NOW = datetime(2026, 12, 2, tzinfo=UTC)
CRD = Path(__file__).resolve().parents[3] / "crds" / "modelroutes.modelfleet.io.yaml"
NAMESPACE = "t" * 63
NAMES = [f"n{i:02d}" + "y" * 250 for i in range(33)]


def message_max_length() -> int:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    limit: int = status["properties"]["conditions"]["items"]["properties"]["message"]["maxLength"]
    return limit


def route(name: str, created: str, **spec: Any) -> ModelRoute:
    parsed = parse_route(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "ModelRoute",
            "metadata": {"name": name, "namespace": NAMESPACE, "uid": name, "generation": 1,
                         "creationTimestamp": created},
            "spec": spec,
        }
    )  # fmt: skip
    assert isinstance(parsed, ModelRoute)
    return parsed


def deployment(i: int) -> str:
    return f"d{i:04d}" + "x" * 58  # 63 characters, a DNS label


def test_a_route_naming_520_missing_deployments_gets_a_message_the_crd_admits() -> None:
    rules = [{"backends": [{"deployment": deployment(r * 16 + b)} for b in range(16)]}
             for r in range(32)]  # fmt: skip
    fallback = [deployment(600 + i) for i in range(8)]
    mine = route("r", "2026-01-01T00:00:00Z", model="m", rules=rules, fallback=fallback)
    conditions, _ = wanted_status(build_catalog([], [mine], now=NOW), mine, NOW)
    resolved = {c.type: c for c in conditions}["ResolvedRefs"]
    assert resolved.status == "False"
    # Before: all 520 listed, 75,564 characters.
    assert len(resolved.message) <= message_max_length()
    assert f"ModelDeployment {NAMESPACE}/{deployment(0)}" in resolved.message
    assert "and 512 more named as backend or fallback does not exist" in resolved.message


def test_a_route_losing_33_long_names_gets_a_message_the_crd_admits() -> None:
    rules = [{"backends": [{"deployment": "d"}]}]
    older = route("a" * 253, "2026-01-01T00:00:00Z", model=NAMES[0], aliases=NAMES[1:],
                  rules=rules)  # fmt: skip
    newer = route("b" * 253, "2026-02-01T00:00:00Z", model=NAMES[0], aliases=NAMES[1:],
                  rules=rules)  # fmt: skip
    catalog = build_catalog([], [older, newer], now=NOW)
    for mine in (older, newer):
        for condition in wanted_status(catalog, mine, NOW)[0]:
            # Before: the loser's Accepted was 52,555 characters.
            assert len(condition.message) <= message_max_length(), condition.type
    accepted = {c.type: c for c in wanted_status(catalog, newer, NOW)[0]}["Accepted"]
    assert (accepted.status, accepted.reason) == ("False", "ModelNameClash")
    assert f"model name {NAMES[0]!r} is served by ModelRoute {NAMESPACE}/{'a' * 253}" in (
        accepted.message
    )
    assert "and 25 more" in accepted.message and "it serves no model name" in accepted.message
