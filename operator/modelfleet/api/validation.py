"""Validate manifests the way both modelfleet and a Kubernetes API server would.

``modelfleet validate`` and the tests run three checks on every ModelDeployment,
FleetCluster and ModelRoute document:

1. the pydantic models (what the operator itself will accept);
2. the generated CRD's OpenAPI schema, after applying the schema's defaults as the API server
   does (jsonschema, with OpenAPI's ``nullable`` translated);
3. the CRD's CEL rules (``x-kubernetes-validations``) evaluated with cel-python;
4. the object metadata the API server checks for every kind, custom resources included:
   ``metadata.name`` a lowercase RFC 1123 subdomain (at most 253 characters) and
   ``metadata.namespace`` an RFC 1123 label (at most 63).

jsonschema does not know Kubernetes' list types, so ``x-kubernetes-list-type: set`` (no
repeated item) and ``map`` (no two items with the same ``x-kubernetes-list-map-keys``) are
checked here as the API server does (``Duplicate value``).

Every error names the file, the document, the object and the field path.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from modelfleet import API_VERSION
from modelfleet.api.crdgen import all_crds
from modelfleet.api.fleetcluster import FleetCluster
from modelfleet.api.modeldeployment import ModelDeployment
from modelfleet.api.modelroute import ModelRoute

if TYPE_CHECKING:
    import celpy

KINDS: dict[str, type[BaseModel]] = {
    "ModelDeployment": ModelDeployment,
    "FleetCluster": FleetCluster,
    "ModelRoute": ModelRoute,
}


@dataclass(frozen=True)
class Document:
    """One YAML document of a manifest file."""

    source: str
    index: int
    data: dict[str, Any]

    @property
    def label(self) -> str:
        kind = self.data.get("kind", "?")
        name = (self.data.get("metadata") or {}).get("name", "?")
        return f"{self.source} (document {self.index + 1}, {kind}/{name})"


@dataclass(frozen=True)
class ManifestError:
    """A problem found in one document: ``field`` is a dotted path such as spec.replicas.min."""

    document: str
    field: str
    message: str
    check: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.document}: {where}{self.message} [{self.check}]"


class ManifestLoadError(Exception):
    """A file could not be read or parsed as YAML."""


def manifest_files(paths: list[Path]) -> list[Path]:
    """The files ``paths`` name: files as given, folders searched for ``*.yaml``/``*.yml``
    recursively (sorted). Raises ManifestLoadError for a path that does not exist."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        elif path.exists():
            files.append(path)
        else:
            raise ManifestLoadError(f"{path}: no such file or directory")
    return files


def load_file(file: Path) -> list[Document]:
    """Every non-empty YAML document of ``file`` (an empty file gives ``[]``). Raises
    ManifestLoadError naming the file (and line) when it cannot be read or parsed, or when
    a document is not a mapping."""
    try:
        # A named stream, so that YAML errors say the file rather than "<unicode string>".
        with file.open(encoding="utf-8") as stream:
            docs = list(yaml.safe_load_all(stream))
    except yaml.YAMLError as exc:
        raise ManifestLoadError(f"{file}: not valid YAML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestLoadError(f"{file}: cannot be read: {exc}") from exc
    found = []
    for index, data in enumerate(docs):
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ManifestLoadError(f"{file} (document {index + 1}): not a mapping")
        found.append(Document(str(file), index, data))
    return found


def iter_documents(paths: list[Path]) -> Iterator[Document]:
    """Yield every non-empty YAML document under ``paths`` (files, or folders searched for
    ``*.yaml``/``*.yml`` recursively, in sorted order). Raises ManifestLoadError at the first
    file that cannot be read or parsed (``modelfleet validate`` goes on per file instead)."""
    for file in manifest_files(paths):
        yield from load_file(file)


def pydantic_errors(doc: Document, exc: ValidationError) -> list[ManifestError]:
    """Translate a pydantic ValidationError into ManifestErrors naming each field."""
    out = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        out.append(ManifestError(doc.label, field, message, "model"))
    return out


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema draft 4: ``nullable: true`` becomes a null type alternative."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill ``default`` values of absent properties, recursively, as the API server does."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        result = dict(value)
        for name, sub in props.items():
            if name not in result and "default" in sub:
                result[name] = copy.deepcopy(sub["default"])
            if name in result:
                result[name] = apply_defaults(sub, result[name])
        return result
    if isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], item) for item in value]
    return value


@functools.cache
def _cel() -> celpy.Environment:
    """The CEL environment, built on first use: importing celpy and building its parser
    takes ~0.5 s, which readers of manifests that check no CEL (the simulator) skip."""
    import celpy

    return celpy.Environment()


def cel_errors(schema: dict[str, Any], value: Any, path: str) -> list[tuple[str, str]]:
    """Evaluate every ``x-kubernetes-validations`` rule below ``schema`` against ``value``.

    Returns ``(field path, message)`` for each rule that evaluates to false. A rule that
    fails to compile raises ``celpy.CELParseError``: that is a bug in our models.
    """
    from celpy.adapter import json_to_cel
    from celpy.celtypes import BoolType

    errors: list[tuple[str, str]] = []
    if value is None:
        return errors
    for rule in schema.get("x-kubernetes-validations", []):
        cel = _cel()
        program = cel.program(cel.compile(rule["rule"]))
        result = program.evaluate({"self": json_to_cel(value)})
        if not isinstance(result, BoolType):
            errors.append((path, f"{rule['message']} (rule did not evaluate to a bool)"))
        elif not result:
            errors.append((path, rule["message"]))
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                child = f"{path}.{name}" if path else name
                errors.extend(cel_errors(sub, value[name], child))
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors.extend(cel_errors(schema["items"], item, f"{path}[{i}]"))
    return errors


def list_type_errors(schema: dict[str, Any], value: Any, path: str) -> list[tuple[str, str]]:
    """``(field path, message)`` for each repeated item of an ``x-kubernetes-list-type``
    ``set`` or ``map`` list below ``schema`` (the API server's ``Duplicate value``)."""
    errors: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                child = f"{path}.{name}" if path else name
                errors.extend(list_type_errors(sub, value[name], child))
    elif isinstance(value, list) and "items" in schema:
        list_type = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen: set[str] = set()
        for i, item in enumerate(value):
            if list_type == "set":
                identity: Any = item
            elif list_type == "map" and isinstance(item, dict):
                identity = {k: item.get(k) for k in keys}
            else:
                identity = None
            if identity is not None:
                token = yaml.safe_dump(identity, default_flow_style=True).strip()
                if token in seen:
                    kind = "keys " + ", ".join(keys) if list_type == "map" else "set"
                    errors.append((f"{path}[{i}]", f"Duplicate value: {token} (list {kind})"))
                seen.add(token)
            errors.extend(list_type_errors(schema["items"], item, f"{path}[{i}]"))
    return errors


def _crd_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for crd in all_crds().values():
        kind = crd["spec"]["names"]["kind"]
        schemas[kind] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schemas


def _without_value(err: Any) -> str:
    """jsonschema's message without the offending value it starts with, unless that value
    is a number, a boolean or null: a string or an object there may be a secret (an
    ``env`` value of the wrong type) or a whole subtree (a YAML alias bomb printed 430 KB,
    lines of 47,684 characters). The field path already says where it is."""
    message = str(err.message)
    instance = err.instance
    if instance is None or isinstance(instance, (bool, int, float)):
        return message
    shown = repr(instance)
    if message.startswith(shown):
        what = (
            "the string"
            if isinstance(instance, str)
            else "the object"
            if isinstance(instance, dict)
            else "the list"
            if isinstance(instance, list)
            else "the value"
        )
        return what + message[len(shown) :]
    return message


def schema_errors(doc: Document) -> list[ManifestError]:
    """Check ``doc`` against its generated CRD schema and CEL rules (defaults applied)."""
    kind = doc.data.get("kind")
    schema = _crd_schemas().get(str(kind))
    if schema is None:
        return []
    defaulted = apply_defaults(schema, doc.data)
    # Imported here: the simulator imports this module for its manifest loading and
    # never validates against the schema (jsonschema is ~0.1 s of every start).
    import jsonschema

    validator = jsonschema.Draft4Validator(_openapi_to_jsonschema(schema))
    out = []
    for err in sorted(validator.iter_errors(defaulted), key=lambda e: list(e.absolute_path)):
        field = ".".join(str(p) for p in err.absolute_path)
        out.append(ManifestError(doc.label, field, _without_value(err), "crd-schema"))
    for field, message in list_type_errors(schema, defaulted, ""):
        out.append(ManifestError(doc.label, field, message, "crd-schema"))
    if not out:
        for field, message in cel_errors(schema, defaulted, ""):
            out.append(ManifestError(doc.label, field, message, "crd-cel"))
    return out


_RFC1123_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"{_RFC1123_LABEL}(?:\.{_RFC1123_LABEL})*")
_LABEL = re.compile(_RFC1123_LABEL)


def metadata_errors(doc: Document) -> list[ManifestError]:
    """The API server's checks of ``metadata.name`` (every kind's name, custom resources
    included, must be a lowercase RFC 1123 subdomain of at most 253 characters) and of
    ``metadata.namespace`` (an RFC 1123 label of at most 63). A missing or non-string
    value is left to the API model, which reports it. The value is not repeated: the
    document's label names the object."""
    meta = doc.data.get("metadata")
    if not isinstance(meta, dict):
        return []
    out = []
    name = meta.get("name")
    if isinstance(name, str) and name and (len(name) > 253 or not _SUBDOMAIN.fullmatch(name)):
        out.append(
            ManifestError(
                doc.label,
                "metadata.name",
                "not a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', starting and "
                "ending with a letter or digit, at most 253 characters)",
                "api-server",
            )
        )
    namespace = meta.get("namespace")
    if isinstance(namespace, str) and (len(namespace) > 63 or not _LABEL.fullmatch(namespace)):
        out.append(
            ManifestError(
                doc.label,
                "metadata.namespace",
                "not a lowercase RFC 1123 label (a-z, 0-9 and '-', starting and ending with "
                "a letter or digit, at most 63 characters)",
                "api-server",
            )
        )
    return out


def validate_document(doc: Document) -> list[ManifestError]:
    """Every problem with one document (empty when valid). Unknown kinds are an error."""
    api_version = doc.data.get("apiVersion")
    kind = doc.data.get("kind")
    model = KINDS.get(str(kind))
    if api_version != API_VERSION or model is None:
        return [
            ManifestError(
                doc.label,
                "kind",
                f"not a modelfleet resource ({api_version}/{kind}); expected {API_VERSION} "
                f"with kind one of {', '.join(KINDS)}",
                "model",
            )
        ]
    errors: list[ManifestError] = metadata_errors(doc)
    try:
        model.model_validate(doc.data)
    except ValidationError as exc:
        errors.extend(pydantic_errors(doc, exc))
    errors.extend(schema_errors(doc))
    return errors


def load_objects(paths: list[Path]) -> tuple[list[ModelDeployment], list[FleetCluster]]:
    """Parse every ModelDeployment and FleetCluster under ``paths`` into API objects
    (ModelRoutes are validated and skipped: only the gateway reads them).

    Raises ManifestLoadError naming the file, document and field of the first invalid one.
    """
    deployments: list[ModelDeployment] = []
    clusters: list[FleetCluster] = []
    for doc in iter_documents(paths):
        errors = validate_document(doc)
        if errors:
            raise ManifestLoadError("\n".join(str(e) for e in errors))
        if doc.data["kind"] == "ModelDeployment":
            deployments.append(ModelDeployment.model_validate(doc.data))
        elif doc.data["kind"] == "FleetCluster":
            clusters.append(FleetCluster.model_validate(doc.data))
    return deployments, clusters
