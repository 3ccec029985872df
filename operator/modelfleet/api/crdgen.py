"""Generate the CustomResourceDefinitions from the pydantic models.

The CRDs are never written by hand: ``modelfleet crds`` renders them from ``modelfleet.api``
so the schema a real API server enforces and the validation ``modelfleet validate`` runs
cannot drift apart. pydantic emits JSON Schema 2020-12; Kubernetes wants a *structural*
OpenAPI v3 schema, so this module:

- inlines every ``$ref`` (structural schemas forbid references) and drops ``$defs``;
- turns ``anyOf: [X, {type: null}]`` into ``X`` with ``nullable: true``;
- rewrites numeric ``exclusiveMinimum``/``exclusiveMaximum`` into the OpenAPI v3.0 form
  (``minimum`` + ``exclusiveMinimum: true``);
- removes ``title`` and ``default: null`` noise and boolean ``additionalProperties``
  (pruning already drops unknown fields; ``false`` is not allowed next to ``properties``);
- drops the ``default`` of a field marked ``DEFAULT_IN_CODE`` (the models apply it): a
  default the API server writes into an item of an atomic list makes the stored list differ
  from the one in git, which Argo CD's default diff (a JSON merge patch replaces lists
  whole) shows as OutOfSync for good;
- keeps the ``x-kubernetes-*`` annotations the models declare (CEL rules, list types).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from pydantic import BaseModel

from modelfleet import GROUP, VERSION
from modelfleet.api.common import DEFAULT_IN_CODE
from modelfleet.api.fleetcluster import FleetClusterSpec, FleetClusterStatus
from modelfleet.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus
from modelfleet.api.modelroute import ModelRouteSpec, ModelRouteStatus

JsonDict = dict[str, Any]


def _resolve(node: Any, defs: JsonDict) -> Any:
    """Return ``node`` with every ``$ref`` inlined, recursively (no cycles in our API)."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        target = copy.deepcopy(defs[name])
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        # The field's own description wins over the model docstring.
        target.update(siblings)
        return _resolve(target, defs)
    # pydantic wraps a described $ref in allOf on some versions.
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = _resolve(node["allOf"][0], defs)
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return _resolve({**inner, **rest}, defs)
    return {key: _resolve(value, defs) for key, value in node.items()}


def _structural(node: Any) -> Any:
    """Rewrite a resolved JSON Schema node into Kubernetes' structural OpenAPI dialect."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        non_null = [s for s in any_of if s != {"type": "null"}]
        if len(non_null) == 1 and len(non_null) < len(any_of):
            merged = {**non_null[0], **{k: v for k, v in node.items() if k != "anyOf"}}
            merged["nullable"] = True
            node = merged
        else:
            raise ValueError(f"unions are not structural: {any_of!r}")
    node.pop("title", None)
    if "default" in node and node["default"] is None:
        node.pop("default")
    if isinstance(node.get("default"), dict | list):
        node.pop("default")  # object defaults would be applied by the server; keep them in code
    if node.pop(DEFAULT_IN_CODE, False):
        node.pop("default", None)
    if isinstance(node.get("additionalProperties"), bool):
        node.pop("additionalProperties")
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            node[inclusive] = value
            node[bound] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    out: JsonDict = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _structural(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _structural(value)
        else:
            out[key] = value
    return out


def openapi_schema(model: type[BaseModel]) -> JsonDict:
    """The structural OpenAPI v3 schema of ``model`` (validation mode, camelCase names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    resolved = _resolve(raw, defs)
    schema: JsonDict = _structural(resolved)
    return schema


def _crd(
    *,
    kind: str,
    plural: str,
    short: str,
    scope: str,
    description: str,
    spec: type[BaseModel],
    status: type[BaseModel] | None,
    columns: list[JsonDict],
) -> JsonDict:
    properties: JsonDict = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": openapi_schema(spec),
    }
    if status is not None:
        properties["status"] = openapi_schema(status)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "modelfleet"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["modelfleet"],
            },
            "scope": scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    **({"subresources": {"status": {}}} if status is not None else {}),
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": properties,
                        }
                    },
                }
            ],
        },
    }


def model_deployment_crd() -> JsonDict:
    """The ModelDeployment CRD (namespaced, short name ``md``)."""
    return _crd(
        kind="ModelDeployment",
        plural="modeldeployments",
        short="md",
        scope="Namespaced",
        description="A model served on GPUs across a fleet of clusters, clouds and regions, "
        "within an SLO and a budget.",
        spec=ModelDeploymentSpec,
        status=ModelDeploymentStatus,
        columns=[
            {
                "name": "Ready",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            },
            {"name": "Desired", "type": "integer", "jsonPath": ".status.replicas.desired"},
            {"name": "Ready Replicas", "type": "integer", "jsonPath": ".status.replicas.ready"},
            {"name": "Regions", "type": "string", "jsonPath": ".status.regions"},
            {"name": "Cost/h", "type": "number", "jsonPath": ".status.costPerHour"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            {
                "name": "Headroom/h",
                "type": "number",
                "priority": 1,  # kubectl get -o wide
                "jsonPath": ".status.headroomCostPerHour",
            },
        ],
    )


def fleet_cluster_crd() -> JsonDict:
    """The FleetCluster CRD (cluster-scoped, short name ``fc``)."""
    return _crd(
        kind="FleetCluster",
        plural="fleetclusters",
        short="fc",
        scope="Cluster",
        description="A member cluster modelfleet may place model replicas on, with the cloud "
        "account that sizes its GPU node pools.",
        spec=FleetClusterSpec,
        status=FleetClusterStatus,
        columns=[
            {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
            {"name": "Region", "type": "string", "jsonPath": ".spec.region"},
            {"name": "Health", "type": "string", "jsonPath": ".status.health"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )


def model_route_crd() -> JsonDict:
    """The ModelRoute CRD (namespaced, short name ``mr``; the status is the gateway's)."""
    return _crd(
        kind="ModelRoute",
        plural="modelroutes",
        short="mr",
        scope="Namespaced",
        description="How the modelfleet gateway maps a model name clients send to "
        "ModelDeployments: aliases, header and prompt-size rules, weighted splits, fallbacks.",
        spec=ModelRouteSpec,
        status=ModelRouteStatus,
        columns=[
            {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
            {
                "name": "Accepted",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="Accepted")].status',
            },
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )


def all_crds() -> dict[str, JsonDict]:
    """Every CRD keyed by its file name (``<plural>.<group>.yaml``)."""
    crds = [model_deployment_crd(), fleet_cluster_crd(), model_route_crd()]
    return {f"{crd['metadata']['name']}.yaml": crd for crd in crds}


def render(crd: JsonDict) -> str:
    """YAML text of one CRD, stable across runs (sorted keys off, block style)."""
    header = "# Generated by `modelfleet crds` from modelfleet.api: do not edit by hand.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, default_flow_style=False, width=100)
