"""A ModelRoute the gateway ignores as invalid, and what it still records on it.

The API server admitted the route, but the gateway's API model refuses it (a rule the
server did not enforce: a CRD from an earlier release, a server without CEL validation), so
the catalog leaves it out: it serves no name. Its claims are still recorded
(``status.modelNames``), because the first-come rule dates a route's claim on a name by
that record (``catalog``): a route never recorded is dated by its creation, so an old
invalid route fixed and renamed to another tenant's name in one edit would otherwise take
the name (br13's hole by another door). Recorded while invalid, a name the fix adds is
dated by the fix like any edit, and a name the route keeps through the fix keeps its date.

Its owner is told too: ``Accepted=False``, reason ``InvalidSpec``, with what is wrong
(written by ``route_status``, which owns the writes; this module is pure).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from modelfleet.api.common import ObjectMeta
from modelfleet.api.modelroute import (
    MODEL_NAME_PATTERN,
    STORED_CONTEXT,
    ModelRoute,
    ModelRouteStatus,
)
from modelfleet.gateway.catalog import route_from_object

REASON_INVALID: Final = "InvalidSpec"
"""Reason of ``Accepted=False`` on a route the gateway ignores as invalid."""
MAX_ERROR_CHARS: Final = 1000
"""The validation errors quoted in the condition are cut to this many characters."""
_MODEL_NAME: Final = re.compile(MODEL_NAME_PATTERN)


@dataclass(frozen=True)
class InvalidRoute:
    """A ModelRoute object the gateway ignores: its metadata and status as stored, the model
    names it declares and why it is refused."""

    metadata: ObjectMeta
    status: ModelRouteStatus | None
    """``status`` as stored; None when absent or unreadable (then written afresh)."""
    names: tuple[str, ...]
    """``spec.model`` then ``spec.aliases``, each once, keeping only valid model names
    (``MODEL_NAME_PATTERN``, at most 253 characters): any other can never be served, so a
    fix must rename it, and a renamed claim is dated by the fix anyway."""
    error: str
    """The API model's complaints, ``path: message`` joined by ``; `` (cut to
    ``MAX_ERROR_CHARS``)."""


def invalid_route(obj: Mapping[str, Any], exc: ValidationError) -> InvalidRoute | None:
    """The ``InvalidRoute`` of a ModelRoute object that failed validation with ``exc``, or
    None when even its metadata is unreadable (nothing can be written to it). Pure."""
    try:
        metadata = ObjectMeta.model_validate(obj.get("metadata") or {})
    except ValidationError:
        return None
    try:
        status = ModelRouteStatus.model_validate(obj["status"]) if obj.get("status") else None
    except ValidationError:
        status = None
    spec = obj.get("spec")
    declared: list[Any] = []
    if isinstance(spec, Mapping):
        declared.append(spec.get("model"))
        aliases = spec.get("aliases")
        if isinstance(aliases, list):
            declared.extend(aliases)
    names = tuple(
        dict.fromkeys(
            n for n in declared if isinstance(n, str) and len(n) <= 253 and _MODEL_NAME.match(n)
        )
    )
    error = "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'the object'}: "
        f"{e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    )
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 3] + "..."
    return InvalidRoute(metadata=metadata, status=status, names=names, error=error)


def invalid_message(route: InvalidRoute) -> str:
    """The message of ``Accepted=False`` (reason ``REASON_INVALID``) on ``route``. Pure."""
    return (
        f"the gateway ignores this route: {route.error}. It serves no model name until the "
        "spec is fixed (modelfleet validate checks a manifest with the same rules)."
    )


def invalid_model_names(route: InvalidRoute, now: datetime) -> tuple[tuple[str, datetime], ...]:
    """``status.modelNames`` for ``route``, (name, since) in ``route.names`` order, dated as
    the catalog dates a valid route's claims: a listed name keeps its entry; a new one gets
    ``metadata.creationTimestamp`` when the route has no list (never recorded:
    grandfathered, as ``catalog`` dates it), else ``now`` (an edit added it); a listed name
    no longer declared is dropped. Pure."""
    listed = route.status.model_names if route.status is not None else None
    recorded = {e.name: e.since for e in listed or ()}
    created = route.metadata.creation_timestamp if listed is None else None
    return tuple(
        (name, (recorded.get(name) or created or now).astimezone(UTC)) for name in route.names
    )


def parse_route(obj: Mapping[str, Any]) -> ModelRoute | InvalidRoute | None:
    """A ModelRoute object as the hub serves it: the route (``route_from_object``: logged
    and de-duplicated when it holds repeats), else the ``InvalidRoute`` the gateway ignores
    (logged), else None (its metadata unreadable too)."""
    route = route_from_object(obj)
    if route is not None:
        return route
    try:
        ModelRoute.model_validate(obj, context=STORED_CONTEXT)
    except ValidationError as exc:
        return invalid_route(obj, exc)
    return None  # pragma: no cover - route_from_object refused it with the same validation
