"""The committed CRDs are exactly what the models generate, and a real API server would
accept them: structural, no $ref, valid printer-column paths, CEL that compiles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from modelfleet.api.crdgen import all_crds, render
from modelfleet.api.reference import render_crd, render_reference

ROOT = Path(__file__).resolve().parents[2]
CRDS = all_crds()


@pytest.mark.parametrize("folder", ["crds", "charts/modelfleet/crds"])
@pytest.mark.parametrize("name", sorted(CRDS))
def test_committed_crd_matches_models(folder: str, name: str) -> None:
    path = ROOT / folder / name
    assert path.exists(), f"{path} missing: run `modelfleet crds`"
    assert path.read_text() == render(CRDS[name]), f"{path} is stale: run `modelfleet crds`"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        out.append((path, node))
        for key in ("properties",):
            for name, sub in node.get(key, {}).items():
                out.extend(_walk(sub, f"{path}.{name}"))
        if "items" in node:
            out.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            out.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return out


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = CRDS[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("name", sorted(CRDS))
def test_schema_is_structural(name: str) -> None:
    text = render(CRDS[name])
    for forbidden in ("$ref", "$defs", "title:", "anyOf", "oneOf", "allOf", "const:"):
        assert forbidden not in text, forbidden
    for path, node in _walk(_schema(name)):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert not isinstance(node.get("additionalProperties"), bool), path
        if node.get("exclusiveMinimum") is not None:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"]["required"]), path
        if node.get("x-kubernetes-list-type") == "set":
            assert node["items"]["type"] in ("string", "integer", "number"), path


@pytest.mark.parametrize("name", sorted(CRDS))
def test_every_user_field_is_described(name: str) -> None:
    spec = _schema(name)["properties"]["spec"]
    missing = [
        p
        for p, node in _walk(spec, "spec")
        if p and "description" not in node and not p.endswith("[]") and not p.endswith("{}")
    ]
    assert missing == []


@pytest.mark.parametrize("name", sorted(CRDS))
def test_cel_rules_compile(name: str) -> None:
    env = celpy.Environment()
    rules = [r for _, n in _walk(_schema(name)) for r in n.get("x-kubernetes-validations", [])]
    assert rules
    for rule in rules:
        env.compile(rule["rule"])
        assert rule["message"]


def _resolve_column(schema: dict[str, Any], json_path: str) -> dict[str, Any]:
    node = schema
    for part in re.sub(r"\[\?\(.*?\)\]", "[]", json_path).lstrip(".").split("."):
        if "[" in part:  # conditions[?(@.type=="Ready")].status -> the conditions items
            part = part.split("[", 1)[0]
            node = node["properties"][part]["items"]
        else:
            node = node["properties"][part]
    return node


@pytest.mark.parametrize("name", sorted(CRDS))
def test_printer_columns_point_at_declared_fields(name: str) -> None:
    version = CRDS[name]["spec"]["versions"][0]
    schema = _schema(name)
    schema["properties"]["metadata"]["properties"] = {"creationTimestamp": {"type": "string"}}
    kinds = {
        "integer": "integer",
        "number": "number",
        "string": "string",
        "date": "string",
        "boolean": "boolean",
    }
    for column in version["additionalPrinterColumns"]:
        node = _resolve_column(schema, column["jsonPath"])
        assert node["type"] == kinds[column["type"]], column


def test_names_scope_and_columns() -> None:
    md = CRDS["modeldeployments.modelfleet.io.yaml"]["spec"]
    fc = CRDS["fleetclusters.modelfleet.io.yaml"]["spec"]
    assert (md["scope"], md["names"]["shortNames"]) == ("Namespaced", ["md"])
    assert (fc["scope"], fc["names"]["shortNames"]) == ("Cluster", ["fc"])
    assert [c["name"] for c in md["versions"][0]["additionalPrinterColumns"]] == [
        "Ready",
        "Desired",
        "Ready Replicas",
        "Regions",
        "Cost/h",
        "Age",
        "Headroom/h",
    ]
    assert [c["name"] for c in fc["versions"][0]["additionalPrinterColumns"]] == [
        "Provider",
        "Region",
        "Health",
        "Age",
    ]
    for crd in (md, fc):
        assert crd["versions"][0]["subresources"] == {"status": {}}
    conditions = _schema("modeldeployments.modelfleet.io.yaml")["properties"]["status"][
        "properties"
    ]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) >= {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
    }


def test_committed_files_are_plain_yaml() -> None:
    for name in CRDS:
        assert (
            yaml.safe_load((ROOT / "crds" / name).read_text())["kind"] == "CustomResourceDefinition"
        )


def test_committed_api_reference_matches_models() -> None:
    # docs/api-reference.md is rendered from the CRDs: `make crds` rewrites it.
    committed = (ROOT / "docs" / "api-reference.md").read_text()
    assert committed == render_reference(), "run `make crds` and commit docs/api-reference.md"


def _fields(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, schema) of ``node`` and every field under it, items as ``[]``, map values ``{}``."""
    found = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        found += _fields(child, f"{path}.{name}")
    for key, mark in (("items", "[]"), ("additionalProperties", "{}")):
        inner = node.get(key)
        if isinstance(inner, dict):
            found += _fields(inner, f"{path}{mark}")[1:]  # the item itself is its list's row
    return found


@pytest.mark.parametrize("name", sorted(CRDS))
def test_api_reference_lists_every_field_with_its_default_and_range(name: str) -> None:
    crd = CRDS[name]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    rows = {
        line.split("`")[1]: line.split(" | ")
        for line in render_crd(crd).splitlines()
        if line.startswith("| `")
    }
    for part in ("spec", "status"):
        for path, node in _fields(schema[part], part):
            assert path in rows, f"{path} missing from the reference"
            default = rows[path][2]
            assert (default != "") == ("default" in node), (path, default)
            if node.get("default") not in (None, "", True, False):
                assert default == f"`{node['default']}`", (path, default)
    assert len(rows) == sum(len(_fields(schema[part], part)) for part in ("spec", "status"))
    if crd["spec"]["names"]["kind"] == "ModelDeployment":
        assert rows["spec.replicas.min"][3].startswith(">= 0; <= 10000")
        assert rows["spec.slo.ttftP95Ms"][3] == "> 0"
        assert rows["spec.scaling.predictor"][3] == "`constant`, `trend`"
