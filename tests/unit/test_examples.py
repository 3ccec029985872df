"""Every example is valid to modelfleet AND to the API server; bad input is rejected by both,
with a message naming the field.

"Example" covers the manifests in examples/ and the YAML blocks of README.md and docs/*.md:
a whole ModelDeployment, FleetCluster or ModelRoute, a ``spec:`` fragment (laid over
examples/' llama-8b, or aws-use1 for a FleetCluster's ``gpuOfferings``), and the gateway's
static endpoints file (its start-up check)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api.validation import (
    KINDS,
    Document,
    iter_documents,
    pydantic_errors,
    schema_errors,
    validate_document,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DOCS = list(iter_documents([ROOT / "examples"]))
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_YAML_BLOCK = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.S | re.M)


def test_examples_cover_every_documented_case() -> None:
    kinds = {(d.data["kind"], d.data["spec"].get("provider")) for d in EXAMPLE_DOCS}
    providers = {p for k, p in kinds if k == "FleetCluster"}
    assert providers == {"aws", "gcp", "azure", "static", "simulated"}
    names = {
        d.data["metadata"]["name"] for d in EXAMPLE_DOCS if d.data["kind"] == "ModelDeployment"
    }
    assert {"qwen-small", "llama-8b", "mistral-7b-batch"} <= names


@pytest.mark.parametrize("doc", EXAMPLE_DOCS, ids=lambda d: d.label)
def test_example_is_valid(doc: Document) -> None:
    assert validate_document(doc) == []


def _base_md() -> dict[str, Any]:
    return copy.deepcopy(
        next(d.data for d in EXAMPLE_DOCS if d.data["metadata"]["name"] == "llama-8b")
    )


def _base_fc() -> dict[str, Any]:
    return copy.deepcopy(
        next(d.data for d in EXAMPLE_DOCS if d.data["metadata"]["name"] == "aws-use1")
    )


def _doc_blocks() -> list[tuple[str, str]]:
    """(file:line, text) of every YAML block in README.md and docs/*.md."""
    blocks = []
    for file in DOC_FILES:
        text = file.read_text()
        for match in _YAML_BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((f"{file.relative_to(ROOT)}:{line}", match.group(1)))
    return blocks


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid over ``base`` as a merge patch would: maps merged, lists replaced."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merged(base[key], value)
        else:
            base[key] = value
    return base


def _doc_manifests() -> list[Document]:
    """The modelfleet manifests among the docs' YAML blocks, fragments completed."""
    found = []
    for where, text in _doc_blocks():
        for index, data in enumerate(yaml.safe_load_all(text)):
            if not isinstance(data, dict):
                continue
            if data.get("kind") in KINDS:
                found.append(Document(where, index, data))
            elif set(data) == {"spec"}:
                base = _base_fc() if "gpuOfferings" in data["spec"] else _base_md()
                found.append(Document(where, index, _merged(base, data)))
    return found


DOC_MANIFESTS = _doc_manifests()


def test_docs_examples_are_found() -> None:
    # A regex that stopped matching would pass every block below by finding none.
    sources = {d.source.split(":")[0] for d in DOC_MANIFESTS}
    assert {"README.md", "docs/api.md", "docs/gateway.md", "docs/providers.md"} <= sources
    kinds = {d.data["kind"] for d in DOC_MANIFESTS}
    assert kinds == {"ModelDeployment", "FleetCluster", "ModelRoute"}


@pytest.mark.parametrize("doc", DOC_MANIFESTS, ids=lambda d: d.label)
def test_docs_example_is_valid(doc: Document) -> None:
    assert validate_document(doc) == []


def test_docs_static_endpoints_file_passes_the_gateway_check() -> None:
    from modelfleet.cli_validate import check_static_file

    files = [
        (where, data)
        for where, text in _doc_blocks()
        for data in yaml.safe_load_all(text)
        if isinstance(data, dict) and "deployments" in data
    ]
    assert files, "docs/gateway.md shows a static endpoints file"
    for where, data in files:
        catalog, found = check_static_file(Document(where, 0, data))
        assert catalog is not None and found.errors == [], (where, found.errors)


def test_a_wrong_docs_fragment_is_caught() -> None:
    # The fragment path must reach the same checks: a bad value in a spec fragment fails.
    bad = _merged(_base_md(), {"spec": {"slo": {"ttftP95Ms": -5}}})
    assert validate_document(Document("docs/x.md:1", 0, bad)) != []


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        obj = obj[int(part)] if part.isdigit() else obj.setdefault(part, {})  # type: ignore[index]
    if value is _DELETE:
        del obj[leaf]
    else:
        obj[leaf] = value


_DELETE = object()

# (case id, base, path, value, field the message must name, message fragment)
BAD_CASES = [
    (
        "min-above-max",
        _base_md,
        "spec.replicas.min",
        20,
        "spec.replicas",
        "replicas.min must not exceed",
    ),
    ("unknown-engine", _base_md, "spec.runtime.engine", "triton", "spec.runtime.engine", "vllm"),
    ("zero-gpus", _base_md, "spec.resources.gpu.count", 0, "spec.resources.gpu.count", ""),
    ("negative-slo", _base_md, "spec.slo.ttftP95Ms", -5, "spec.slo.ttftP95Ms", ""),
    ("bad-region", _base_md, "spec.placement.regions", ["US East"], "spec.placement.regions", ""),
    (
        "spread-too-wide",
        _base_md,
        "spec.placement.spread.minRegions",
        4,
        "spec.placement",
        "minRegions",
    ),
    (
        "preferred-not-allowed",
        _base_md,
        "spec.placement.preferredRegions",
        ["westus2"],
        "spec.placement",
        "preferredRegions",
    ),
    (
        "spot-policy",
        _base_md,
        "spec.placement.capacity.spot",
        "Sometimes",
        "spec.placement.capacity.spot",
        "",
    ),
    (
        "base-above-max",
        _base_md,
        "spec.placement.capacity.onDemandBase",
        17,
        "spec",
        "onDemandBase must not exceed replicas.max",
    ),
    (
        "scale-to-zero-needs-min-0",
        _base_md,
        "spec.scaling.scaleToZeroAfterSeconds",
        600,
        "spec",
        "requires replicas.min: 0",
    ),
    (
        "custom-needs-image",
        _base_md,
        "spec.runtime.engine",
        "custom",
        "spec.runtime",
        "runtime.image",
    ),
    ("missing-model", _base_md, "spec.model", _DELETE, "spec.model", ""),
    (
        "negative-price",
        _base_fc,
        "spec.gpuOfferings.0.onDemandPerHour",
        -1,
        "spec.gpuOfferings.0.onDemandPerHour",
        "",
    ),
    ("unknown-provider", _base_fc, "spec.provider", "oracle", "spec.provider", ""),
    ("aws-needs-settings", _base_fc, "spec.aws", _DELETE, "spec", "provider aws needs spec.aws"),
    (
        "zero-gpus-per-node",
        _base_fc,
        "spec.gpuOfferings.0.gpusPerNode",
        0,
        "spec.gpuOfferings.0.gpusPerNode",
        "",
    ),
    ("bad-cluster-arn", _base_fc, "spec.aws.nodeRoleArn", "role/nodes", "spec.aws.nodeRoleArn", ""),
]


@pytest.mark.parametrize(
    ("base", "path", "value", "field", "fragment"),
    [c[1:] for c in BAD_CASES],
    ids=[c[0] for c in BAD_CASES],
)
def test_bad_input_rejected_by_models_and_crd(
    base: Any, path: str, value: Any, field: str, fragment: str
) -> None:
    data = base()
    _set(data, path, value)
    doc = Document("bad.yaml", 0, data)
    model = ModelDeployment if data["kind"] == "ModelDeployment" else FleetCluster
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    model_errors = pydantic_errors(doc, info.value)
    assert any(e.field.startswith(field) and fragment in e.message for e in model_errors), (
        model_errors
    )
    crd_errors = schema_errors(doc)
    assert crd_errors, "the CRD schema accepted what the models reject"
    assert any(e.field.startswith(field) or field.startswith(e.field) for e in crd_errors), (
        crd_errors
    )
    assert all(str(e).startswith("bad.yaml (document 1,") for e in model_errors + crd_errors)


def test_cel_rules_catch_cross_field_errors_the_schema_alone_cannot() -> None:
    data = _base_md()
    data["spec"]["replicas"] = {"min": 9, "max": 3}
    errors = schema_errors(Document("x.yaml", 0, data))
    assert [(e.field, e.message, e.check) for e in errors] == [
        ("spec.replicas", "replicas.min must not exceed replicas.max", "crd-cel")
    ]


def test_server_defaults_are_applied_before_cel() -> None:
    # replicas.min is omitted: the server defaults it to 1, which exceeds max 0? max >= 1 by
    # schema, so use scale-to-zero: min defaults to 1, so the spec-level rule must fire.
    data = _base_md()
    del data["spec"]["replicas"]["min"]
    data["spec"]["scaling"]["scaleToZeroAfterSeconds"] = 60
    errors = schema_errors(Document("x.yaml", 0, data))
    assert any("requires replicas.min: 0" in e.message for e in errors)


def test_unknown_kind_is_reported() -> None:
    doc = Document(
        "x.yaml", 0, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    )
    [error] = validate_document(doc)
    assert error.field == "kind" and "not a modelfleet resource" in error.message


def test_secret_values_are_references_not_literals() -> None:
    md = ModelDeployment.model_validate(_base_md())
    env = md.spec.runtime.env or []
    token = next(e for e in env if e.name == "HF_TOKEN")
    assert token.value is None and token.value_from == {
        "secretKeyRef": {"name": "hf-token", "key": "token"}
    }


def test_yaml_round_trip_keeps_camel_case() -> None:
    from modelfleet.api import dump

    md = ModelDeployment.model_validate(_base_md())
    text = yaml.safe_dump(dump(md))
    assert "maxCostPerHour" in text and "max_cost_per_hour" not in text
    assert ModelDeployment.model_validate(yaml.safe_load(text)) == md
