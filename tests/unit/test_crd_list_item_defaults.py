"""No schema default inside an item of a ModelDeployment or FleetCluster spec list.

The API server writes a schema default into every stored item that leaves the field out.
An atomic list (no ``x-kubernetes-list-type: map``) then differs, item by item, from the
list in git, and Argo CD's default diff (three-way, a JSON merge patch, which replaces a
list whole) shows the object OutOfSync for good; with self-heal it syncs again and again.
``spec.capacityProfiles[].source`` had ``default: Declared`` (docs/gitops.md says no
``ignoreDifferences`` is needed for these objects). The models still apply the default:
a profile without ``source`` is Declared (``api.crdgen``, ``DEFAULT_IN_CODE``).

ModelRoute ``rules[].backends[].weight`` keeps its default: its CEL rule reads it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelfleet.api.crdgen import all_crds
from modelfleet.api.modeldeployment import ModelDeploymentSpec


def _defaults_in_list_items(node: Any, path: str, in_items: bool) -> Iterator[str]:
    if not isinstance(node, dict):
        return
    if in_items and "default" in node:
        yield path
    for name, prop in (node.get("properties") or {}).items():
        yield from _defaults_in_list_items(prop, f"{path}.{name}", in_items)
    if "items" in node:
        yield from _defaults_in_list_items(node["items"], f"{path}[]", True)


@pytest.mark.parametrize("plural", ["modeldeployments", "fleetclusters"])
def test_no_default_in_a_spec_list_item(plural: str) -> None:
    crd = all_crds()[f"{plural}.modelfleet.io.yaml"]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    found = list(_defaults_in_list_items(schema["properties"]["spec"], "spec", False))
    assert found == []
    assert "x-modelfleet" not in str(schema)  # the marker never reaches the CRD


def test_a_profile_without_source_is_still_declared() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"name": "llama-3.1-8b-instruct"},
            "replicas": {"min": 1, "max": 2},
            "capacityProfiles": [
                {"gpu": "H100", "prefillTokensPerSecond": 1, "decodeTokensPerSecond": 1}
            ],
        }
    )
    assert spec.capacity_profiles[0].source == "Declared"
