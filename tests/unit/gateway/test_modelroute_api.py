"""The ModelRoute API: rejected by the pydantic model and by the CRD schema/CEL alike, with a
message naming the field (as tests/unit/test_examples.py does for the other kinds)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from modelfleet.api.modelroute import ModelRoute
from modelfleet.api.validation import Document, pydantic_errors, schema_errors, validate_document

GOOD: dict[str, Any] = {
    "apiVersion": "modelfleet.io/v1alpha1",
    "kind": "ModelRoute",
    "metadata": {"name": "assistant", "namespace": "team"},
    "spec": {
        "model": "assistant",
        "aliases": ["chat"],
        "rules": [
            {
                "name": "plan",
                "match": {"headers": [{"name": "x-role", "value": "planner"}], "minPromptChars": 1},
                "backends": [{"deployment": "big"}],
            },
            {
                "backends": [
                    {"deployment": "small", "weight": 9},
                    {"deployment": "big", "weight": 1},
                ]
            },
        ],
        "fallback": ["small"],
    },
}


def test_good_route_is_valid_everywhere() -> None:
    assert validate_document(Document("ok.yaml", 0, GOOD)) == []
    route = ModelRoute.model_validate(GOOD)
    assert route.spec.names == ("assistant", "chat")
    assert route.spec.on_no_match == "Reject"


BAD = [
    (
        "min-above-max",
        "spec.rules.0.match",
        {"minPromptChars": 10, "maxPromptChars": 5},
        "spec.rules.0.match",
        "minPromptChars must not exceed",
    ),
    ("no-backends", "spec.rules.0.backends", [], "spec.rules.0.backends", ""),
    (
        "zero-weights",
        "spec.rules.1.backends",
        [{"deployment": "a", "weight": 0}],
        "spec.rules.1",
        "positive weight",
    ),
    ("alias-repeats-model", "spec.aliases", ["assistant"], "spec", "aliases must not repeat"),
    ("fallback-mode-needs-fallback", "spec.fallback", None, "spec", "onNoMatch: Fallback needs"),
    ("bad-deployment-name", "spec.fallback", ["Not_A_Name"], "spec.fallback.0", ""),
    (
        "bad-header-name",
        "spec.rules.0.match",
        {"headers": [{"name": "x role"}]},
        "spec.rules.0.match.headers.0.name",
        "",
    ),
    ("no-rules", "spec.rules", [], "spec.rules", ""),
    (
        "backend-twice",
        "spec.rules.1.backends",
        [{"deployment": "small", "weight": 5}, {"deployment": "small", "weight": 5}],
        "spec.rules.1",
        "deployment small listed more than once",
    ),
    ("fallback-twice", "spec.fallback", ["small", "big", "small"], "spec", "fallback: small"),
    ("alias-twice", "spec.aliases", ["chat", "chat"], "spec", "aliases: chat"),
]


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value


@pytest.mark.parametrize(
    ("path", "value", "field", "fragment"), [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
def test_bad_routes_are_rejected_by_model_and_crd(
    path: str, value: Any, field: str, fragment: str
) -> None:
    data = copy.deepcopy(GOOD)
    _set(data, path, value)
    if path == "spec.fallback" and value is None:
        data["spec"]["onNoMatch"] = "Fallback"
    doc = Document("bad.yaml", 0, data)
    with pytest.raises(ValidationError) as info:
        ModelRoute.model_validate(data)
    model_errors = pydantic_errors(doc, info.value)
    assert any(e.field.startswith(field) and fragment in e.message for e in model_errors), (
        model_errors
    )
    crd_errors = schema_errors(doc)
    assert crd_errors, "the CRD accepted what the model rejects"
    # CEL errors write list indexes as rules[1]; the model and the schema as rules.1.
    fields = [e.field.replace("[", ".").replace("]", "") for e in crd_errors]
    assert any(f.startswith(field) or field.startswith(f) for f in fields), crd_errors


def test_the_crd_declares_backends_a_map_by_deployment_and_fallback_a_set() -> None:
    # What a real API server (1.18+) enforces: structural list types, no CEL needed.
    from modelfleet.api.crdgen import all_crds

    crd = next(c for c in all_crds().values() if c["spec"]["names"]["kind"] == "ModelRoute")
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    backends = spec["properties"]["rules"]["items"]["properties"]["backends"]
    assert backends["x-kubernetes-list-type"] == "map"
    assert backends["x-kubernetes-list-map-keys"] == ["deployment"]
    assert "deployment" in backends["items"]["required"]  # a map key must be required
    assert spec["properties"]["fallback"]["x-kubernetes-list-type"] == "set"
    assert spec["properties"]["aliases"]["x-kubernetes-list-type"] == "set"


def test_a_stored_route_with_repeats_is_still_routed_by_the_gateway() -> None:
    # Stored before the CRD refused repeats: the gateway keeps the route (and logs it).
    from modelfleet.gateway.catalog import route_from_object

    data = copy.deepcopy(GOOD)
    data["spec"]["fallback"] = ["small", "small"]
    route = route_from_object(data)
    assert route is not None
    assert route.spec.fallback == ["small", "small"]
