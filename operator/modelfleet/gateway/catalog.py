"""What the gateway can route to: deployments, their endpoints and the routes, as one
immutable snapshot.

A source (the hub watch or a static file, see ``discovery``) builds a new ``Catalog`` on
every change and hands it over whole; request handling reads whichever snapshot is current
without locks. Live state that must survive a new snapshot (outstanding requests, moving
TTFT, ejections) is kept apart, per endpoint URL, in ``endpoints``.

A model name is claimed by a ModelRoute's ``model`` or alias, or by a ModelDeployment's
``spec.model.name`` (the name its engine serves). When several objects claim one name, the
rule is first come across namespaces - the Gateway API's rule for conflicting routes,
extended to both kinds - so that a tenant's new claim cannot take over another tenant's
model name (and its requests). A claim is dated by when it began, as its trusted writer
recorded it, so that an old object edited to claim a name does not take it (br13):

- a ModelRoute's claim on a name: ``status.modelNames[].since`` (written by the gateway,
  ``route_status``) when the name is listed; the catalog's ``now`` when the route has a list
  that lacks the name (an edit added it, not recorded yet); ``metadata.creationTimestamp``
  when it has no list (never recorded: a new route, or one from before the list);
- a ModelDeployment's: ``status.servedModel.since`` (written by the operator) when
  ``status.servedModel.name`` is ``spec.model.name``; ``now`` when it names another (edited,
  the operator not caught up yet); ``metadata.creationTimestamp`` when absent;
- static files and ``validate``: the creation time if any (usually none).

1. the name belongs to the namespace of its oldest claim, ModelRoute or ModelDeployment
   (objects without a date - static files, ``validate`` - come after those with one; same
   age: the first in (namespace, name) order);
2. within that namespace a ModelRoute comes before a ModelDeployment (a tenant's route in
   front of its own deployment, e.g. a canary), then the oldest, then the first by name.

Every loser is reported in ``Catalog.problems`` with the winner and why it wins (with the
objects involved, so ``modelfleet validate`` can name their documents: this module is the
one owner of these rules, for the gateway at run time and for ``validate`` before it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelfleet.api.modeldeployment import ModelDeployment
from modelfleet.api.modelroute import (
    MODEL_NAME_PATTERN,
    STORED_CONTEXT,
    ModelRoute,
    ModelRouteSpec,
)

log = logging.getLogger(__name__)


class DeploymentKey(NamedTuple):
    """A ModelDeployment's identity: (namespace, name)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EndpointInfo:
    """One URL serving a deployment: a member cluster's Service (hub) or a replica (file)."""

    id: str
    """Stable label for metrics and logs: the FleetCluster name, or the file's ``name``."""
    url: str
    """Base URL without a trailing slash; the OpenAI path is appended."""
    region: str | None
    """Region of the endpoint, for locality; None when unknown."""
    ready: bool
    """Whether it has ready replicas (status.placements[].ready > 0 on the hub)."""


@dataclass(frozen=True)
class DeploymentInfo:
    """A deployment the gateway routes to."""

    key: DeploymentKey
    served_model: str
    """The model name its engine serves; the gateway rewrites ``model`` to it."""
    endpoints: tuple[EndpointInfo, ...]
    created: datetime | None = None
    """``metadata.creationTimestamp`` (hub watch); None when unknown (static file,
    ``validate``): it then comes after dated claims of a model name (see module doc)."""
    uid: str | None = None
    """``metadata.uid`` (hub watch), for Events about it; None when unknown."""
    name_since: datetime | None = None
    """``status.servedModel.since`` when that records ``served_model`` (the claim's date);
    None when not recorded (the claim is then dated by ``created``)."""
    name_edited: bool = False
    """Whether ``status.servedModel`` records another name: ``spec.model.name`` was edited
    and the operator has not recorded it yet (the claim is dated by the catalog's now)."""

    @property
    def ready_endpoints(self) -> tuple[EndpointInfo, ...]:
        """Endpoints with ready replicas."""
        return tuple(e for e in self.endpoints if e.ready)


@dataclass(frozen=True)
class RouteTarget:
    """A model name that resolves through a ModelRoute."""

    namespace: str
    name: str
    spec: ModelRouteSpec


@dataclass(frozen=True)
class DeploymentTarget:
    """A model name that resolves straight to a deployment (its served model name)."""

    key: DeploymentKey


Target = RouteTarget | DeploymentTarget


class ObjectRef(NamedTuple):
    """A ModelRoute or ModelDeployment named in a problem: (kind, namespace, name)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


ProblemKind = Literal["route-name-clash", "name-shadowed", "name-taken", "missing-deployment"]


@dataclass(frozen=True)
class CatalogProblem:
    """Something wrong with the set of routes and deployments (not with one object).

    ``kind``: ``route-name-clash`` (a ModelRoute loses one of its model names, to another
    route or to an older claim from another namespace: it is ignored for that name),
    ``name-shadowed`` (a deployment's served model name is taken by a route or another
    deployment of its own namespace: often on purpose, a route in front of its deployment),
    ``name-taken`` (a deployment's served model name belongs to another namespace, whose
    claim is older: the deployment is not reachable by that name),
    ``missing-deployment`` (a route's backend or fallback names no known deployment: its
    requests would be held until the hold timeout). ``objects``: the object at fault first,
    then the one it clashes with. ``model``: the model name claimed twice (clashes only).
    ``why``: why the winner wins, one clause (clashes only; also in ``message``).
    """

    kind: ProblemKind
    message: str
    objects: tuple[ObjectRef, ...]
    model: str | None = None
    why: str | None = None

    @property
    def serious(self) -> bool:
        """Whether it is a mistake (``validate`` fails on it) rather than a note."""
        return self.kind != "name-shadowed"


@dataclass(frozen=True)
class Catalog:
    """An immutable snapshot: deployments by key and model names to targets."""

    deployments: Mapping[DeploymentKey, DeploymentInfo] = field(default_factory=dict)
    models: Mapping[str, Target] = field(default_factory=dict)
    problems: tuple[CatalogProblem, ...] = ()
    """Model names claimed twice (the loser is named) and routes to unknown deployments."""
    route_claims: Mapping[tuple[ObjectRef, str], datetime | None] = field(default_factory=dict)
    """The date each (ModelRoute, model name) claim was given (module doc); None: none
    (static file, ``validate``). What the route status writer records when not yet there."""

    def claimed_since(self, ref: ObjectRef, name: str) -> datetime | None:
        """The date the catalog gave route ``ref``'s claim on ``name`` (None: undated or not
        a claim in this catalog)."""
        return self.route_claims.get((ref, name))

    @property
    def conflicts(self) -> tuple[str, ...]:
        """The problems as human-readable lines (logged by the gateway when they appear)."""
        return tuple(p.message for p in self.problems)

    def problems_of(self, ref: ObjectRef) -> tuple[CatalogProblem, ...]:
        """The problems whose object at fault (``objects[0]``) is ``ref``, in ``problems``
        order. Indexed once per catalog: the route status writer asks for every route at
        every catalog, and a scan of every problem per route was quadratic in the routes."""
        return self._problems_by_object.get(ref, ())

    @cached_property
    def _problems_by_object(self) -> dict[ObjectRef, tuple[CatalogProblem, ...]]:
        index: dict[ObjectRef, list[CatalogProblem]] = {}
        for problem in self.problems:
            if problem.objects:
                index.setdefault(problem.objects[0], []).append(problem)
        return {ref: tuple(found) for ref, found in index.items()}

    def resolve(self, model: str) -> Target | None:
        """The target of a model name, or None when nothing serves it."""
        return self.models.get(model)

    def deployment(self, namespace: str, name: str) -> DeploymentInfo | None:
        """A deployment by namespace and name, or None."""
        return self.deployments.get(DeploymentKey(namespace, name))


class _Claim(NamedTuple):
    """One object's claim on one model name."""

    ref: ObjectRef
    created: datetime | None
    """The claim's date (module doc), None when it has none."""
    target: Target
    dated: str = "created"
    """What the date is, for messages: ``created`` (the object's creation) or ``claimed``."""

    @property
    def age_key(self) -> tuple[bool, datetime, str, str]:
        """Oldest first, unknown age last, then (namespace, name): rule 1 of the module doc."""
        return _age_key(self.ref.namespace, self.ref.name, self.created)

    @property
    def rank_key(self) -> tuple[bool, bool, datetime, str]:
        """Within the winning namespace: route first, then oldest, then name (rule 2)."""
        return (self.ref.kind != "ModelRoute", *self.age_key[:2], self.ref.name)


_NEVER = datetime.max.replace(tzinfo=UTC)


def _age_key(
    namespace: str, name: str, created: datetime | None
) -> tuple[bool, datetime, str, str]:
    when = created.astimezone(UTC) if created is not None else _NEVER
    return (created is None, when, namespace, name)


def _age(claim: _Claim) -> tuple[bool, datetime, str, str]:
    return claim.age_key


def _rank(claim: _Claim) -> tuple[bool, bool, datetime, str]:
    return claim.rank_key


def _stamp(created: datetime) -> str:
    return created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _why(loser: _Claim, winner: _Claim, oldest: Mapping[str, _Claim]) -> str:
    """Why ``winner`` keeps the name ``loser`` also claims (one clause, for messages);
    ``oldest``: the oldest claim on that name of each namespace that claims it."""
    if loser.ref.namespace == winner.ref.namespace:
        if winner.ref.kind != loser.ref.kind:
            return "a ModelRoute comes before a ModelDeployment of its own namespace"
        first, other = winner, loser
        prefix = ""
    else:
        # The namespaces' oldest claims decided.
        first = oldest[winner.ref.namespace]
        other = oldest[loser.ref.namespace]
        prefix = f"the name belongs to namespace {winner.ref.namespace!r}, the first to claim it: "
    if first.created is not None and other.created is None:
        return (
            f"{prefix}{first.ref} has a creation time ({_stamp(first.created)}) and "
            f"{other.ref} has none"
        )
    if first.created is not None and other.created is not None and _age(first)[1] < _age(other)[1]:
        return (
            f"{prefix}{first.ref} is older ({first.dated} {_stamp(first.created)}, "
            f"{other.ref}{'' if other.dated == first.dated else ' ' + other.dated} "
            f"{_stamp(other.created)})"
        )
    return f"{prefix}same age or no creation time, the first in namespace/name order keeps it"


def _route_claim(route: ModelRoute, name: str, now: datetime) -> tuple[datetime | None, str]:
    """The date of ``route``'s claim on ``name`` and what it is (module doc)."""
    recorded = route.status.model_names if route.status is not None else None
    if recorded is None:
        return route.metadata.creation_timestamp, "created"
    for entry in recorded:
        if entry.name == name:
            return entry.since, "claimed"
    return now, "claimed"


def _deployment_claim(info: DeploymentInfo, now: datetime) -> tuple[datetime | None, str]:
    """The date of ``info``'s claim on its served model name and what it is (module doc)."""
    if info.name_edited:
        return now, "claimed"
    if info.name_since is not None:
        return info.name_since, "claimed"
    return info.created, "created"


def build_catalog(
    deployments: Iterable[DeploymentInfo],
    routes: Iterable[ModelRoute],
    *,
    now: datetime | None = None,
) -> Catalog:
    """Index deployments and routes by every model name they answer to; every claim that
    loses a name is a problem naming the winner and why (rules: module doc). ``now`` (UTC;
    default the clock) dates claims added by an edit not yet recorded."""
    moment = now if now is not None else datetime.now(UTC)
    by_key = {d.key: d for d in deployments}
    ordered_routes = sorted(
        routes,
        key=lambda r: _age_key(
            r.metadata.namespace or "default", r.metadata.name, r.metadata.creation_timestamp
        ),
    )
    claims: list[_Claim] = []
    claimed: list[str] = []
    route_claims: dict[tuple[ObjectRef, str], datetime | None] = {}
    for route in ordered_routes:
        namespace = route.metadata.namespace or "default"
        target = RouteTarget(namespace, route.metadata.name, route.spec)
        ref = ObjectRef("ModelRoute", namespace, route.metadata.name)
        for name in dict.fromkeys(route.spec.names):
            since, dated = _route_claim(route, name, moment)
            route_claims[(ref, name)] = since
            claims.append(_Claim(ref, since, target, dated))
            claimed.append(name)
    for key in sorted(by_key):
        ref = ObjectRef("ModelDeployment", key.namespace, key.name)
        since, dated = _deployment_claim(by_key[key], moment)
        claims.append(_Claim(ref, since, DeploymentTarget(key), dated))
        claimed.append(by_key[key].served_model)
    # Per name, each namespace's oldest claim and its best-ranked one: one pass over the
    # claims (a scan of a name's claims per loser made a catalog quadratic in the claims on
    # one name: 2,000 routes of one tenant on a name took 2.8 s, on the event loop, at every
    # watch event; br13).
    oldest: dict[str, dict[str, _Claim]] = {}
    best: dict[str, dict[str, _Claim]] = {}
    for name, claim in zip(claimed, claims, strict=True):
        namespace = claim.ref.namespace
        found = oldest.setdefault(name, {}).get(namespace)
        if found is None or _age(claim) < _age(found):
            oldest[name][namespace] = claim
        found = best.setdefault(name, {}).get(namespace)
        if found is None or _rank(claim) < _rank(found):
            best[name][namespace] = claim
    winners: dict[str, _Claim] = {}
    for name, firsts in oldest.items():
        namespace = min(firsts.values(), key=_age).ref.namespace
        winners[name] = best[name][namespace]
    models: dict[str, Target] = {name: winner.target for name, winner in winners.items()}
    problems: list[CatalogProblem] = []
    for name, claim in zip(claimed, claims, strict=True):
        winner = winners[name]
        if claim is winner:
            continue
        kind: ProblemKind
        if claim.ref.kind == "ModelRoute":
            kind = "route-name-clash"
        elif claim.ref.namespace == winner.ref.namespace:
            kind = "name-shadowed"
        else:
            kind = "name-taken"
        why = _why(claim, winner, oldest[name])
        message = f"model {name!r}: {claim.ref} ignored, {winner.ref} serves it ({why})"
        problems.append(CatalogProblem(kind, message, (claim.ref, winner.ref), name, why))
    for route in ordered_routes:
        # A missing deployment would hold the route's requests until the hold timeout as if
        # it were scaling from zero: say so (it may also just not be created yet).
        namespace = route.metadata.namespace or "default"
        owner = ObjectRef("ModelRoute", namespace, route.metadata.name)
        backends = dict.fromkeys(b.deployment for r in route.spec.rules for b in r.backends)
        for role, names in (("backend", backends), ("fallback", route.spec.fallback or ())):
            for name in dict.fromkeys(names):
                if DeploymentKey(namespace, name) not in by_key:
                    message = f"{owner}: {role} deployment {namespace}/{name} does not exist"
                    missing = ObjectRef("ModelDeployment", namespace, name)
                    problems.append(CatalogProblem("missing-deployment", message, (owner, missing)))
    return Catalog(
        deployments=by_key, models=models, problems=tuple(problems), route_claims=route_claims
    )


def deployment_from_object(obj: Mapping[str, Any]) -> DeploymentInfo | None:
    """A DeploymentInfo from a ModelDeployment object as the hub serves it.

    Endpoints come from ``status.endpoints``; an endpoint is ready when the placements or
    the still-serving retiring replicas (``status.retiring``) of its cluster report ready
    replicas, and its region is theirs; ``created`` is ``metadata.creationTimestamp`` and
    ``name_since``/``name_edited`` come from ``status.servedModel``: they date its claim on
    its served model name (module doc). Returns None (and logs)
    for an object the API model rejects.
    """
    try:
        md = ModelDeployment.model_validate(obj)
    except ValidationError as exc:
        meta = obj.get("metadata") or {}
        log.warning(
            "ignoring ModelDeployment %s/%s: %s",
            meta.get("namespace"),
            meta.get("name"),
            exc.errors()[0]["msg"] if exc.errors() else exc,
        )
        return None
    key = DeploymentKey(md.metadata.namespace or "default", md.metadata.name)
    status = md.status
    ready: dict[str, int] = {}
    regions: dict[str, str] = {}
    for placement in (status.placements if status else None) or []:
        ready[placement.cluster] = ready.get(placement.cluster, 0) + placement.ready
        regions[placement.cluster] = placement.region
    # Replicas being replaced serve until their replacements are ready (absent in old statuses).
    for retiree in (status.retiring if status else None) or []:
        ready[retiree.cluster] = ready.get(retiree.cluster, 0) + retiree.ready
        if retiree.region is not None:
            regions.setdefault(retiree.cluster, retiree.region)
    endpoints = tuple(
        EndpointInfo(
            id=endpoint.cluster,
            url=endpoint.url.rstrip("/"),
            region=regions.get(endpoint.cluster),
            ready=ready.get(endpoint.cluster, 0) > 0,
        )
        for endpoint in ((status.endpoints if status else None) or [])
    )
    recorded = status.served_model if status else None
    named = recorded is not None and recorded.name == md.spec.model.name
    return DeploymentInfo(
        key=key,
        served_model=md.spec.model.name,
        endpoints=endpoints,
        created=md.metadata.creation_timestamp,
        uid=md.metadata.uid,
        name_since=recorded.since if recorded is not None and named else None,
        name_edited=recorded is not None and not named,
    )


def route_from_object(obj: Mapping[str, Any]) -> ModelRoute | None:
    """A ModelRoute from an object as the hub serves it, or None (logged) when invalid.

    The API server admitted it: repeated backends, fallbacks or aliases (refused by the CRD
    since, but possibly stored before) are logged and de-duplicated at routing, not a
    reason to drop the route."""
    meta = obj.get("metadata") or {}
    try:
        route = ModelRoute.model_validate(obj, context=STORED_CONTEXT)
    except ValidationError as exc:
        log.warning("ignoring ModelRoute %s/%s: %s", meta.get("namespace"), meta.get("name"), exc)
        return None
    try:
        ModelRoute.model_validate(obj)
    except ValidationError as exc:
        log.warning(
            "ModelRoute %s/%s: %s (used as stored: a repeated backend's weights add up, a "
            "repeated fallback or alias counts once)",
            meta.get("namespace"),
            meta.get("name"),
            "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()),
        )
    return route


# -- the static endpoints file -----------------------------------------------------------


class _StaticModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StaticEndpoint(_StaticModel):
    """One endpoint in the static file."""

    url: str = Field(pattern=r"^https?://[^\s]+$", description="Base URL of the engine.")
    name: str | None = Field(default=None, description="Label; defaults to host:port.")
    region: str | None = Field(default=None, description="Region, for locality.")
    ready: bool = Field(default=True, description="Whether to route to it.")


class StaticDeployment(_StaticModel):
    """One deployment in the static file."""

    name: str = Field(min_length=1, description="Deployment name.")
    namespace: str = Field(default="default", description="Namespace (for routes, metrics).")
    model: str = Field(pattern=MODEL_NAME_PATTERN, description="Model name the engine serves.")
    endpoints: list[StaticEndpoint] = Field(default_factory=list, description="Its endpoints.")


class StaticFile(_StaticModel):
    """The static endpoints file: deployments and optional ModelRoute manifests."""

    deployments: list[StaticDeployment] = Field(default_factory=list)
    routes: list[dict[str, Any]] = Field(default_factory=list)


class StaticFileError(ValueError):
    """The static endpoints file is not valid (the message names the field)."""


def catalog_from_static(text: str) -> Catalog:
    """Parse the static endpoints file (YAML, see docs/gateway.md): one document, not a
    Kubernetes manifest. Raises StaticFileError naming the line or the field.

    A ModelRoute or ModelDeployment manifest given instead (the gateway's routes are
    ModelRoutes, so the mix-up is easy) said ``apiVersion: Extra inputs are not
    permitted``, and a multi-document manifest a YAML composer error about
    ``"<unicode string>"``; both now say what the file is and what the flag takes."""
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise StaticFileError(f"not valid YAML{where}: {problem}") from None
    for doc in docs:
        if isinstance(doc, dict) and ("kind" in doc or "apiVersion" in doc):
            raise StaticFileError(
                f"a Kubernetes manifest (kind {doc.get('kind', 'unknown')}), not a static "
                "endpoints file: that file holds `deployments:` and `routes:` "
                "(docs/gateway.md); apply manifests to the hub instead"
            )
    if len(docs) > 1:
        raise StaticFileError(f"{len(docs)} YAML documents; a static endpoints file is one")
    return catalog_from_static_data(docs[0] if docs else None)


def looks_like_static_file(data: Mapping[str, Any]) -> bool:
    """Whether a YAML document is a static endpoints file rather than a Kubernetes object:
    no ``kind``/``apiVersion``, and a ``deployments`` or ``routes`` key."""
    return (
        "kind" not in data
        and "apiVersion" not in data
        and ("deployments" in data or "routes" in data)
    )


def catalog_from_static_data(raw: Any) -> Catalog:
    """The static endpoints file's catalog from its parsed YAML (``None`` is an empty file).
    This is the gateway's start-up check, and ``modelfleet validate``'s for such a file.
    Raises StaticFileError naming the field."""
    if raw is not None and not isinstance(raw, dict):  # pydantic named its class, no field
        found = {list: "a list", str: "a string", bool: "true/false"}.get(type(raw), "a number")
        raise StaticFileError(
            f"not a static endpoints file: found {found} at the top, expected a mapping with "
            "`deployments:` and `routes:` (docs/gateway.md)"
        )
    where: tuple[str | int, ...] = ()
    try:
        parsed = StaticFile.model_validate(raw or {})
        routes = []
        for index, route in enumerate(parsed.routes):
            where = ("routes", index)
            routes.append(ModelRoute.model_validate(route))
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in (*where, *first["loc"]))
        raise StaticFileError(f"{location}: {first['msg']}" if location else first["msg"]) from None
    named: set[tuple[str, str]] = set()
    for index, r in enumerate(routes):
        ident = (r.metadata.namespace or "default", r.metadata.name)
        if ident in named:
            raise StaticFileError(f"routes.{index}: ModelRoute {'/'.join(ident)} appears twice")
        named.add(ident)
    seen: set[tuple[str, str]] = set()
    for index, d in enumerate(parsed.deployments):
        if (d.namespace, d.name) in seen:
            raise StaticFileError(
                f"deployments.{index}: deployment {d.namespace}/{d.name} appears twice"
            )
        seen.add((d.namespace, d.name))
    deployments = [
        DeploymentInfo(
            key=DeploymentKey(d.namespace, d.name),
            served_model=d.model,
            endpoints=tuple(
                EndpointInfo(
                    id=e.name or e.url.split("://", 1)[1].rstrip("/"),
                    url=e.url.rstrip("/"),
                    region=e.region,
                    ready=e.ready,
                )
                for e in d.endpoints
            ),
        )
        for d in parsed.deployments
    ]
    return build_catalog(deployments, routes)
