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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from modelfleet.api.modeldeployment import ModelDeployment
from modelfleet.api.modelroute import ModelRoute
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

__all__ = ["Findings", "check_set", "check_static_file", "looks_like_static_file"]


@dataclass
class Findings:
    """Lines to print: ``errors`` fail the command (exit 1), ``notes`` do not."""

    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _ref(doc: Document) -> ObjectRef:
    meta = doc.data.get("metadata") or {}
    return ObjectRef(str(doc.data["kind"]), meta.get("namespace") or "default", meta["name"])


def _report(problems: Sequence[CatalogProblem], where: dict[ObjectRef, str]) -> Findings:
    found = Findings()
    for problem in problems:
        places = []
        for ref in problem.objects:
            if ref in where:
                places.append(f"{ref} in {where[ref]}")
            else:
                places.append(f"no {ref} in the files given")
        line = f"{problem.message} ({'; '.join(places)}) [set]"
        (found.errors if problem.serious else found.notes).append(line)
    return found


def check_set(docs: Sequence[Document]) -> Findings:
    """Problems of the ModelRoutes and ModelDeployments of ``docs`` taken together (errors
    only: ``notes`` stays empty).

    ``docs`` must each be valid on their own. Backends and fallbacks are checked against
    the deployments only when at least one ModelDeployment is among them (routes validated
    alone may point at deployments applied from elsewhere). The files given need not be one
    gateway's world (examples/ holds variants of one deployment and one model served in
    several namespaces), so a shadowed name is not reported, and of one object defined
    twice the later is used, as ``kubectl apply`` of both would leave it.
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
            deployments[ref] = DeploymentInfo(key, md.spec.model.name, endpoints=())
    catalog = build_catalog(deployments.values(), routes.values())
    problems = [p for p in catalog.problems if deployments or p.kind != "missing-deployment"]
    return Findings(errors=_report(problems, where).errors)


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
