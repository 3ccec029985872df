"""What the gateway wants on a ModelRoute's status, and whether the stored status is it.

Pure (tested on its own): ``route_status`` does the writing and owns the rules' description
(its module doc and docs/gateway.md "ModelRoute status and events"). ``route_conditions``
gives ``Accepted`` and ``ResolvedRefs`` from the catalog's verdict, ``model_names`` the
claim record, ``wanted_status`` both for any route the hub holds (one ignored as invalid
included, ``invalid_routes``), and ``up_to_date`` says whether a write is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from modelfleet.api.common import Condition
from modelfleet.api.modelroute import ModelRoute
from modelfleet.gateway.catalog import Catalog, ObjectRef
from modelfleet.gateway.invalid_routes import (
    REASON_INVALID,
    InvalidRoute,
    invalid_message,
    invalid_model_names,
)

ACCEPTED: Final = "Accepted"
RESOLVED_REFS: Final = "ResolvedRefs"
REASON_CLASH: Final = "ModelNameClash"
REASON_MISSING: Final = "DeploymentNotFound"


@dataclass(frozen=True)
class RouteCondition:
    """One condition the gateway wants on a route (no timestamp: that is the writer's)."""

    type: str
    status: Literal["True", "False"]
    reason: str
    message: str


LISTED: Final = 8
"""A condition message names at most this many model names, clashes or missing deployments,
then says how many more: a route may declare 33 names of 253 characters and name 520
deployments, and listing all of them made a message of up to ~75,000 characters, over the
32,768 the CRD allows (``Condition.message``, as metav1.Condition): the API server refused
the whole status (422) and the owner was told nothing (br15c)."""
MAX_MESSAGE_CHARS: Final = 16384
"""A condition message is cut to this many characters (a bound whatever the names: half the
CRD's 32,768)."""


def _listed(items: Iterable[str], sep: str = ", ") -> str:
    """``items`` joined by ``sep``, the first ``LISTED`` of them then ``and N more``."""
    every = list(items)
    shown = sep.join(every[:LISTED])
    return f"{shown}{sep}and {len(every) - LISTED} more" if len(every) > LISTED else shown


def _quoted(names: Iterable[str]) -> str:
    return _listed(repr(n) for n in names)


def _bounded(condition: RouteCondition) -> RouteCondition:
    """``condition`` with its message cut to ``MAX_MESSAGE_CHARS``."""
    if len(condition.message) <= MAX_MESSAGE_CHARS:
        return condition
    message = condition.message[: MAX_MESSAGE_CHARS - 3] + "..."
    return RouteCondition(condition.type, condition.status, condition.reason, message)


def route_conditions(catalog: Catalog, route: ModelRoute) -> tuple[RouteCondition, ...]:
    """The ``Accepted`` and ``ResolvedRefs`` conditions of ``route`` in ``catalog`` (which
    must have been built from a set of routes that holds it). Pure."""
    namespace = route.metadata.namespace or "default"
    me = ObjectRef("ModelRoute", namespace, route.metadata.name)
    lost: dict[str, tuple[ObjectRef, str]] = {}
    missing: dict[ObjectRef, None] = {}
    for problem in catalog.problems_of(me):
        if problem.kind == "route-name-clash" and problem.model is not None:
            lost.setdefault(problem.model, (problem.objects[1], problem.why or ""))
        elif problem.kind == "missing-deployment":
            missing[problem.objects[1]] = None
    kept = [n for n in route.spec.names if n not in lost]
    if lost:
        taken = _listed(
            (
                f"model name {name!r} is served by {winner} ({why})"
                for name, (winner, why) in lost.items()
            ),
            "; ",
        )
        still = f"it still serves {_quoted(kept)}" if kept else "it serves no model name"
        accepted = RouteCondition(
            ACCEPTED,
            "False",
            REASON_CLASH,
            f"{taken}. This route gets no requests for {_quoted(lost)}; {still}. Rename "
            "spec.model or spec.aliases, or delete the other claim.",
        )
    else:
        accepted = RouteCondition(
            ACCEPTED, "True", ACCEPTED, f"serves model name(s) {_quoted(route.spec.names)}"
        )
    if missing:
        resolved = RouteCondition(
            RESOLVED_REFS,
            "False",
            REASON_MISSING,
            f"{_listed(map(str, missing))} named as backend or fallback does not exist: "
            "requests routed to it are held until the gateway's hold timeout, then fail. "
            "Create the ModelDeployment or fix the route.",
        )
    else:
        resolved = RouteCondition(
            RESOLVED_REFS, "True", RESOLVED_REFS, "every backend and fallback deployment exists"
        )
    return (_bounded(accepted), _bounded(resolved))


def model_names(
    catalog: Catalog, route: ModelRoute, now: datetime
) -> tuple[tuple[str, datetime], ...]:
    """``status.modelNames`` as the gateway wants it, (name, since) in ``spec.names`` order:
    a name already listed keeps its entry; a new one gets the date ``catalog`` gave the
    claim (``now`` when it gave none); a listed name the route no longer claims is dropped.
    Pure."""
    namespace = route.metadata.namespace or "default"
    me = ObjectRef("ModelRoute", namespace, route.metadata.name)
    recorded = {e.name: e.since for e in (route.status.model_names if route.status else None) or ()}
    wanted = []
    for name in dict.fromkeys(route.spec.names):
        since = recorded.get(name) or catalog.claimed_since(me, name) or now
        wanted.append((name, since.astimezone(UTC)))
    return tuple(wanted)


Route = ModelRoute | InvalidRoute
"""A route whose status the gateway writes: served, or ignored as invalid (``invalid_routes``)."""


def recorded_names(route: Route) -> tuple[tuple[str, datetime], ...] | None:
    """``status.modelNames`` as stored, (name, since UTC); None when there is no list."""
    names = route.status.model_names if route.status is not None else None
    if names is None:
        return None
    return tuple((e.name, e.since.astimezone(UTC)) for e in names)


def stored_conditions(route: Route) -> dict[str, Condition]:
    """The stored conditions by type."""
    conditions = (route.status.conditions if route.status else None) or []
    return {c.type: c for c in conditions}


def differs(have: Condition | None, want: RouteCondition) -> bool:
    """Whether ``have`` (stored) says other than ``want`` (times and generations aside)."""
    if have is None:
        return True
    return (have.status, have.reason, have.message) != (want.status, want.reason, want.message)


def up_to_date(
    route: Route,
    wanted: Sequence[RouteCondition],
    names: tuple[tuple[str, datetime], ...],
    *,
    names_pruned: bool = False,
) -> bool:
    """Whether ``route``'s stored status is what the gateway wants; ``names_pruned``: the
    server is known to drop ``status.modelNames`` (an older CRD), so none is no difference."""
    stored = stored_conditions(route)
    generation = route.metadata.generation
    if route.status is None or route.status.observed_generation != generation:
        return False
    recorded = recorded_names(route)
    if recorded != names and not (names_pruned and recorded is None):
        return False
    return not any(
        differs(stored.get(w.type), w) or stored[w.type].observed_generation != generation
        for w in wanted
    )


def status_seen(route: Route) -> tuple[object, ...]:
    """The route's status as this watch delivered it (without times)."""
    if route.status is None:
        return ()
    conditions = sorted(
        (c.type, c.status, c.reason, c.message, c.observed_generation)
        for c in route.status.conditions or ()
    )
    return (route.status.observed_generation, recorded_names(route), *conditions)


def wanted_status(
    catalog: Catalog, route: Route, now: datetime
) -> tuple[tuple[RouteCondition, ...], tuple[tuple[str, datetime], ...]]:
    """The conditions and ``status.modelNames`` the gateway wants on ``route``: a served
    route's from ``catalog`` (``route_conditions``, ``model_names``); a route ignored as
    invalid gets ``Accepted=False`` alone (reason ``InvalidSpec``: it routes nothing, so its
    refs are not resolved) and its names dated by ``invalid_model_names``. Pure."""
    if isinstance(route, InvalidRoute):
        accepted = _bounded(
            RouteCondition(ACCEPTED, "False", REASON_INVALID, invalid_message(route))
        )
        return (accepted,), invalid_model_names(route, now)
    return route_conditions(catalog, route), model_names(catalog, route, now)
