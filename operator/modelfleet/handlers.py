"""kopf wiring, and nothing else: which events feed which call of the operator loop.

- ModelDeployment: create/update/resume reconcile at once (apply -> workloads in under a
  couple of seconds); a timer ticks every ``TICK_SECONDS`` and reconciles when the loop's
  schedule says the object is due (requeue, regular interval, error backoff); delete runs
  the finalizer.
- FleetCluster: create/resume and a timer probe health, publish stockouts, rediscover
  offerings, upkeep pools, all when the loop says they are due.
- Two in-memory indexes (kopf indexes) give every handler the whole fleet and every
  deployment's recorded placements without extra API calls.

Status is written explicitly through kopf's ``patch.status`` (a merge patch to the /status
subresource) with every declared field, ``null`` for the ones that went away: handler
return values would land in ``status.<handler>`` and be pruned by the structural schema.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any, TypeVar

import kopf
from pydantic import BaseModel, ValidationError

from modelfleet import GROUP, VERSION
from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api import conditions as C
from modelfleet.event_budget import Verdict
from modelfleet.reconciler import EventRecord
from modelfleet.runtime import OperatorContext

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)

MD = (GROUP, VERSION, "modeldeployments")
FC = (GROUP, VERSION, "fleetclusters")
FINALIZER = f"{GROUP}/cleanup"
TICK_SECONDS = 2.0
"""Timers tick this often; ``OperatorContext`` decides what is actually due (so intervals
are settings, not decorator constants)."""


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """kopf's own state in annotations under modelfleet.io (status would be pruned)."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.ERROR  # we post our own Events, not log lines
    settings.peering.standalone = True  # one replica, Recreate: peering is not needed
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


# -- indexes ------------------------------------------------------------------------------


@kopf.index(*FC)
def fleet_clusters(name: str, body: kopf.Body, **_: Any) -> dict[str, FleetCluster] | None:
    """Every valid FleetCluster, parsed once per change (invalid ones are not indexed; their
    own handler reports them)."""
    parsed = _parse(FleetCluster, body)
    return {name: parsed} if parsed is not None else None


@kopf.index(*MD)
def model_deployments(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], ModelDeployment] | None:
    """Every valid ModelDeployment, parsed once per change: reconciles read their peers'
    placements from here without re-validating N objects per pass."""
    parsed = _parse(ModelDeployment, body)
    return {(namespace or "", name): parsed} if parsed is not None else None


def _parse(model: type[T], body: kopf.Body) -> T | None:
    try:
        return model.model_validate(dict(body))
    except ValidationError:
        return None


def _all(index: kopf.Index[Any, T]) -> list[T]:
    return [obj for store in index.values() for obj in store]


# -- ModelDeployment ----------------------------------------------------------------------


@kopf.on.resume(*MD)
@kopf.on.create(*MD)
@kopf.on.update(*MD)
async def model_deployment_changed(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: OperatorContext,
    **kwargs: Any,
) -> None:
    await _reconcile(body, patch, memo, kwargs["fleet_clusters"], kwargs["model_deployments"])


@kopf.timer(*MD, interval=TICK_SECONDS, initial_delay=TICK_SECONDS)
async def model_deployment_tick(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: OperatorContext,
    **kwargs: Any,
) -> None:
    if body.metadata.get("deletionTimestamp"):
        return
    if memo.loop.deployment_due(str(body.metadata.uid)):
        await _reconcile(body, patch, memo, kwargs["fleet_clusters"], kwargs["model_deployments"])


async def _reconcile(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: OperatorContext,
    fleet_index: kopf.Index[str, FleetCluster],
    md_index: kopf.Index[tuple[str, str], ModelDeployment],
) -> None:
    uid = str(body.metadata.uid)
    try:
        md = ModelDeployment.model_validate(dict(body))
    except ValidationError as exc:
        _reject(body, patch, memo, exc)
        memo.loop.invalid(uid)
        return
    outcome = await memo.loop.reconcile(uid, md, fleet=_all(fleet_index), others=_all(md_index))
    if outcome is None:
        return  # logged and backed off by the loop
    patch.status.update(outcome.status.model_dump(mode="json", by_alias=True))
    _post(body, memo, outcome.events)


def spec_problems(exc: ValidationError) -> str:
    """``exc`` as ``field.path: message; ...`` for an Event or condition: the fields and
    what is wrong, never the values (``str(exc)`` quotes them: a URL with a credential in it,
    a whole spec)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors(include_input=False, include_url=False)
    )


def _reject(
    body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, exc: ValidationError
) -> None:
    """A spec the schema let through but the models refuse: say what to change, once.
    Nothing else is done until the spec changes: no crash loop. ``status.servedModel`` is
    recorded all the same (``_served_model_of``)."""
    served = _served_model_of(body, memo)
    if served is not None:
        patch.status["servedModel"] = served
    _say_invalid(body, patch, memo, f"the spec is invalid: {spec_problems(exc)}")


def _served_model_of(body: kopf.Body, memo: OperatorContext) -> dict[str, str] | None:
    """``status.servedModel`` of a deployment whose spec the models refuse, as
    ``reconciler.status.served_model`` gives it for a valid one; None when the recorded one
    stands or ``spec.model.name`` is not a name. Recorded for an invalid spec too: else an
    old deployment kept invalid, then fixed and renamed in one edit, would date its new name
    from its creation (the gateway's first-come rule, br13)."""
    model = (body.get("spec") or {}).get("model")
    name = model.get("name") if isinstance(model, Mapping) else None
    if not isinstance(name, str) or not name:
        return None
    recorded = (body.get("status") or {}).get("servedModel")
    if isinstance(recorded, Mapping) and recorded.get("name") == name:
        return None
    created = body.metadata.get("creationTimestamp")
    now = memo.clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"name": name, "since": created if recorded is None and created else now}


def _say_invalid(body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, message: str) -> None:
    """Ready=False, reason InvalidSpec, with ``message`` (at most 1,024 characters: the
    fields and what is wrong, never the values, as ``spec_problems`` writes them) and one
    Warning Event per new message or generation, not one per periodic pass; the condition
    keeps its ``lastTransitionTime`` while it stays False."""
    generation = body.metadata.get("generation")
    message = message[:1024]
    conditions = (body.get("status") or {}).get("conditions") or []
    old = next((c for c in conditions if c.get("type") == C.READY), None) or {}
    if (old.get("reason"), old.get("message"), old.get("observedGeneration")) == (
        "InvalidSpec",
        message,
        generation,
    ):
        return  # said already
    since = old.get("lastTransitionTime") if old.get("status") == "False" else None
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = [
        {
            "type": C.READY,
            "status": "False",
            "reason": "InvalidSpec",
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": since or memo.clock().isoformat(),
        }
    ]
    _event(body, memo, "Warning", "InvalidSpec", message)


@kopf.on.delete(*MD)
async def model_deployment_deleted(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: OperatorContext,
    retry: int,
    **kwargs: Any,
) -> None:
    try:
        md = ModelDeployment.model_validate(dict(body))
    except ValidationError:
        await _forget_demand(body, memo)
        return  # nothing of an invalid deployment was ever created
    outcome = await memo.loop.finalize(
        str(body.metadata.uid),
        md,
        fleet=_all(kwargs["fleet_clusters"]),
        others=_all(kwargs["model_deployments"]),
    )
    _post(body, memo, outcome.events)
    if not outcome.done:
        patch.status["conditions"] = [
            {
                "type": C.DEGRADED,
                "status": "True",
                "reason": "CleanupPending",
                "message": f"waiting to remove workloads from {', '.join(outcome.pending)}",
                "observedGeneration": body.metadata.get("generation"),
                "lastTransitionTime": memo.clock().isoformat(),
            }
        ]
        raise kopf.TemporaryError(
            f"cleanup pending in {', '.join(outcome.pending)}", delay=min(300, 10 * 2**retry)
        )
    await _forget_demand(body, memo)


async def _forget_demand(body: kopf.Body, memo: OperatorContext) -> None:
    """The deployment's demand Lease goes with it (``loop/demand_leases.py``)."""
    if memo.demand_leases is not None:
        await memo.demand_leases.forget(body.metadata.namespace or "default", body.metadata.name)


# -- FleetCluster -------------------------------------------------------------------------


@kopf.on.resume(*FC)
@kopf.on.create(*FC)
@kopf.on.update(*FC, field="spec")
async def fleet_cluster_changed(
    body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, **_: Any
) -> None:
    await _probe(body, patch, memo)


@kopf.timer(*FC, interval=TICK_SECONDS, initial_delay=TICK_SECONDS)
async def fleet_cluster_tick(
    body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, **kwargs: Any
) -> None:
    if memo.loop.probe_due(str(body.metadata.name)):
        await _probe(body, patch, memo, kwargs.get("model_deployments"))


@kopf.on.delete(*FC, optional=True)
async def fleet_cluster_deleted(name: str, memo: OperatorContext, **_: Any) -> None:
    await memo.forget_cluster(name)


async def _probe(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: OperatorContext,
    md_index: kopf.Index[tuple[str, str], ModelDeployment] | None = None,
) -> None:
    try:
        cluster = FleetCluster.model_validate(dict(body))
    except ValidationError as exc:
        _reject_cluster(body, patch, memo, exc)
        return
    deployments = _all(md_index) if md_index is not None else None
    outcome = await memo.loop.probe(cluster, deployments=deployments)
    patch.status.update(outcome.status_patch())
    _post(body, memo, outcome.events)


def _reject_cluster(
    body: kopf.Body, patch: kopf.Patch, memo: OperatorContext, exc: ValidationError
) -> None:
    """A FleetCluster the models refuse is left out of the fleet: say so once (see
    ``_say_invalid``). The next probe after a fix writes the conditions afresh, which
    clears this one."""
    message = f"the spec is invalid (the cluster is not used): {spec_problems(exc)}"
    _say_invalid(body, patch, memo, message)


def _post(body: kopf.Body, memo: OperatorContext, events: Iterable[EventRecord]) -> None:
    for event in events:
        _event(body, memo, event.type, event.reason, event.message)


def _budget_key(body: kopf.Body, kind: str, reason: str) -> str:
    """The ``event_budget`` key of an Event on ``body``: its uid (namespace and name when it
    has none), and for a FleetCluster, which every tenant's deployments share, its uid and
    the Event's ``reason``. A tenant drives some of a cluster's Events (``ClaimMissing``:
    each pvc:// claim of its own that goes missing there); on one budget per cluster, those
    spent the budget of ``ClusterFailed``, ``PoolDeleted`` and the rest for every tenant
    (br15d). Reasons are the operator's own few words, so keys stay bounded."""
    meta = body.metadata
    key = str(meta.uid or f"{kind}/{meta.namespace or '-'}/{meta.name}")
    return f"{key}/{reason}" if kind == "FleetCluster" else key


def _event(body: kopf.Body, memo: OperatorContext, type_: str, reason: str, message: str) -> None:
    """An Event on ``body`` (message cut to 1,024 characters) if its object's budget allows
    (``memo.event_budget``: 25, then one per 5 minutes, per uid); else it is dropped,
    counted (``modelfleet_operator_events_dropped_total``) and logged once until one is
    posted again. A tenant's spec edits re-run the reconcile, each edit able to bring an
    Event on its own deployment: the budget bounds what edits can make us post. A
    FleetCluster is every tenant's: its budget is per reason (``_budget_key``).

    Before the budget, an Event identical to one posted on the same object less than 10
    minutes ago (``memo.event_repeats``) is not posted and spends no token, only counted
    (``modelfleet_operator_events_deduplicated_total``): a pass every 5-15 s reporting the
    same change or the same lasting problem (NoCandidates) posts it once per 10 minutes."""
    kind = str(body.get("kind") or "object")
    key = _budget_key(body, kind, reason)
    message = message[:1024]
    if memo.event_repeats.repeat(key, type_, reason, message):
        memo.metrics.events_deduplicated.labels(kind).inc()
        return
    verdict = memo.event_budget.take(key)
    if verdict.post:
        kopf.event(body, type=type_, reason=reason, message=message)
        memo.event_repeats.posted(key, type_, reason, message)
        return
    memo.metrics.events_dropped.labels(kind).inc()
    if verdict is Verdict.DROP_FIRST:
        log.warning(
            "%s %s/%s: Events dropped: more than %d, then one per %.0fs, for one object; "
            "its status is still written (last dropped: %s)",
            kind,
            body.metadata.namespace or "-",
            body.metadata.name,
            memo.event_budget.burst,
            memo.event_budget.refill_seconds,
            reason,
        )


def registered_resources() -> Mapping[str, tuple[str, str, str]]:
    """The resources the handlers watch (for docs and RBAC checks)."""
    return {"ModelDeployment": MD, "FleetCluster": FC}
