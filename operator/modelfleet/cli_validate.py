"""What ``modelfleet validate`` checks beyond one document at a time.

Two checks, each reusing the gateway's own rule so there is one owner of it:

- the set of documents given together: two ModelRoutes claiming one model name or alias,
  and (when any ModelDeployment is given) backends and fallbacks naming a deployment that
  none of the files defines. The rule is ``gateway.catalog.build_catalog``'s, the one the
  gateway applies at run time; here each problem names the documents involved.
- a static endpoints file (``modelfleet gateway --endpoints-file``): checked by
  ``gateway.catalog.catalog_from_static_data``, the gateway's start-up check, plus the
  same set rules within the file. A static file is the gateway's whole world: its routes
  and deployments are not mixed with the manifests given beside it.

A document that is invalid on its own is left out of the set check (its own errors are
already reported). Everything here is pure: it returns lines; the command prints them.

Also the file ``modelfleet profile --out`` writes: a ``spec.capacityProfiles`` patch, no
kind, checked against the API model of a profile (``check_profile_patch``), so that it can
be validated before ``kubectl patch``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from modelfleet.api.modeldeployment import ModelDeployment
from modelfleet.api.modelroute import ModelRoute
from modelfleet.api.profiles import CapacityProfileSpec
from modelfleet.api.validation import Document
from modelfleet.gateway.catalog import (
    Catalog,
    CatalogProblem,
    DeploymentInfo,
    DeploymentKey,
    ObjectRef,
    StaticFileError,
    build_catalog,
    catalog_from_static_data,
    looks_like_static_file,
)

__all__ = [
    "Findings",
    "check_profile_patch",
    "check_set",
    "check_static_file",
    "looks_like_profile_patch",
    "looks_like_static_file",
]

MAX_PROFILES = 64
"""``spec.capacityProfiles`` holds at most this many entries (the API model's and CRD's)."""


def looks_like_profile_patch(data: Mapping[str, Any]) -> bool:
    """Whether a YAML document is the patch ``modelfleet profile --out`` writes: no
    ``kind``/``apiVersion``, only ``spec.capacityProfiles``."""
    spec = data.get("spec")
    return (
        "kind" not in data
        and "apiVersion" not in data
        and set(data) == {"spec"}
        and isinstance(spec, dict)
        and set(spec) == {"capacityProfiles"}
    )


def check_profile_patch(doc: Document) -> tuple[int, list[str]]:
    """The profiles of a ``spec.capacityProfiles`` patch and its problems (each naming the
    field), by the API model's rules for a profile (lengths, rates, the curve's order)."""
    items = doc.data["spec"]["capacityProfiles"]
    if not isinstance(items, list):
        return 0, [f"{doc.label}: spec.capacityProfiles: expected a list of profiles"]
    problems = []
    if len(items) > MAX_PROFILES:
        problems.append(f"{doc.label}: spec.capacityProfiles: more than {MAX_PROFILES} entries")
    try:
        _PROFILES.validate_python(items)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{doc.label}: spec.capacityProfiles.{field}: {message}")
    return len(items), problems


_PROFILES = TypeAdapter(list[CapacityProfileSpec])


@dataclass
class Findings:
    """Lines to print: ``errors`` fail the command (exit 1), ``notes`` do not."""

    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _ref(doc: Document) -> ObjectRef:
    meta = doc.data.get("metadata") or {}
    return ObjectRef(str(doc.data["kind"]), meta.get("namespace") or "default", meta["name"])


def _report(
    problems: Sequence[CatalogProblem], where: dict[ObjectRef, str], *, notes: bool = False
) -> Findings:
    """Problems as lines; with ``notes``, every one is a note that applies only if the
    objects share one gateway."""
    found = Findings()
    for problem in problems:
        places = []
        for ref in problem.objects:
            if ref in where:
                places.append(f"{ref} in {where[ref]}")
            else:
                places.append(f"no {ref} in the files given")
        if notes:
            found.notes.append(
                f"{problem.message} ({'; '.join(places)}) [set, if they share one gateway]"
            )
            continue
        line = f"{problem.message} ({'; '.join(places)}) [set]"
        (found.errors if problem.serious else found.notes).append(line)
    return found


def check_set(docs: Sequence[Document]) -> Findings:
    """Problems of the ModelRoutes and ModelDeployments of ``docs`` taken together.

    ``docs`` must each be valid on their own. Backends and fallbacks are checked against
    the deployments only when at least one ModelDeployment is among them (routes validated
    alone may point at deployments applied from elsewhere). The files given need not be one
    gateway's world (examples/ holds variants of one deployment and one model served in
    several namespaces), so a name shadowed within a namespace is not reported, a name a
    ModelDeployment claims in another namespace is a note (``notes``: which claim would
    serve it in one gateway and why - manifests seldom carry a creation time, so on a hub
    the older claim may win instead), and of one object defined twice the later is used,
    as ``kubectl apply`` of both would leave it. Two ModelRoutes claiming one name, in any
    namespaces, are an error (``errors``).
    """
    where: dict[ObjectRef, str] = {}
    routes: dict[ObjectRef, ModelRoute] = {}
    deployments: dict[ObjectRef, DeploymentInfo] = {}
    for doc in docs:
        kind = doc.data.get("kind")
        if kind not in ("ModelRoute", "ModelDeployment"):
            continue
        ref = _ref(doc)
        where[ref] = doc.label
        if kind == "ModelRoute":
            routes[ref] = ModelRoute.model_validate(doc.data)
        else:
            md = ModelDeployment.model_validate(doc.data)
            key = DeploymentKey(ref.namespace, ref.name)
            created = md.metadata.creation_timestamp  # as exported by `kubectl get -o yaml`
            deployments[ref] = DeploymentInfo(key, md.spec.model.name, (), created)
    catalog = build_catalog(deployments.values(), routes.values())
    problems = [p for p in catalog.problems if deployments or p.kind != "missing-deployment"]
    found = _report([p for p in problems if not _across_with_deployment(p)], where)
    notes = [p for p in problems if _across_with_deployment(p)]
    found.notes = _report(notes, where, notes=True).notes
    return found


def _across_with_deployment(problem: CatalogProblem) -> bool:
    """A model name claimed in two namespaces, one claim a ModelDeployment."""
    if problem.model is None or len(problem.objects) != 2:
        return False
    loser, winner = problem.objects
    kinds = {loser.kind, winner.kind}
    return loser.namespace != winner.namespace and "ModelDeployment" in kinds


def check_static_file(doc: Document) -> tuple[Catalog | None, Findings]:
    """The gateway's start-up check of a static endpoints file, plus its set problems
    (named by their place in the file). Returns the catalog (None when invalid)."""
    found = Findings()
    try:
        catalog = catalog_from_static_data(doc.data)
    except StaticFileError as exc:
        found.errors.append(f"{doc.source}: {exc} [static-endpoints]")
        return None, found
    where: dict[ObjectRef, str] = {}
    for index, item in enumerate(doc.data.get("deployments") or []):
        ref = ObjectRef("ModelDeployment", item.get("namespace") or "default", item["name"])
        where[ref] = f"{doc.source} deployments.{index}"
    for index, item in enumerate(doc.data.get("routes") or []):
        meta = item.get("metadata") or {}
        ref = ObjectRef("ModelRoute", meta.get("namespace") or "default", meta["name"])
        where[ref] = f"{doc.source} routes.{index}"
    report = _report(catalog.problems, where)
    found.errors += report.errors
    found.notes += report.notes
    return catalog, found
