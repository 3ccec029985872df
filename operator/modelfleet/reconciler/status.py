"""Turn a plan and what was observed into the ModelDeployment status a human can trust.

Pure functions: the reconciler passes the plan, the observation, the SLO figures and the
previous conditions, and gets the complete declared status back (the handler writes it
explicitly; kopf's handler results would be pruned by the structural schema). Conditions
follow KEP-1623: ``lastTransitionTime`` changes only when ``status`` does, reasons are
CamelCase, messages say what is wrong and what to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any, Literal

from modelfleet.api import ModelDeployment
from modelfleet.api import conditions as C
from modelfleet.api.common import Condition
from modelfleet.api.modeldeployment import (
    DecisionStatus,
    Endpoint,
    ModelDeploymentStatus,
    PlacementStatus,
    RateSample,
    Recommendation,
    ReplicaCounts,
    RetiringStatus,
    ServedModelStatus,
    SloStatus,
)
from modelfleet.core import DecisionState, Plan, unsatisfiable
from modelfleet.core import reasons as R
from modelfleet.core.result import Retiring
from modelfleet.reconciler.observe import Observation
from modelfleet.reconciler.outcome import DEGRADED_JOIN

Status = Literal["True", "False", "Unknown"]
STOCKOUT_CODES = (R.STOCKOUT, R.SPOT_RECLAIMED)
"""Retiring reasons (their code prefix) that mean capacity ran out under the replicas."""


@dataclass(frozen=True)
class SloFigures:
    """Fleet-wide SLO figures: the planner's own aggregate (``Plan.signals``: worst cluster
    for the percentiles, ready-weighted queue, KV-cache use and running requests per
    replica, summed rate), so that SLOMet and the autoscaler always judge the same numbers."""

    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None
    queue_per_replica: float | None = None
    request_rate: float | None = None
    kv_cache_per_replica: float | None = None
    running_per_replica: float | None = None

    @classmethod
    def of(cls, plan: Plan) -> SloFigures:
        """The figures the planner decided on (all missing when it had none)."""
        signals = plan.signals
        if signals is None:
            return cls()
        return cls(
            ttft_p95_ms=signals.ttft_p95_ms,
            tpot_p95_ms=signals.tpot_p95_ms,
            queue_per_replica=signals.queue_per_replica,
            request_rate=signals.request_rate,
            kv_cache_per_replica=signals.kv_cache_per_replica,
            running_per_replica=signals.running_per_replica,
        )


_AT = attrgetter("at")
_REPLICAS = attrgetter("replicas")
_RATE = attrgetter("rate")


def decision_to_status(
    state: DecisionState, previous: DecisionStatus | None = None
) -> DecisionStatus:
    """The API form of the planner's memory.

    ``previous`` (the status ``state`` was read from) only saves work: an entry equal to
    one of its entries (the same datetime object, an equal number of the same type) reuses
    that immutable API object instead of validating a new one; most of the history is
    unchanged from one pass to the next. The result is the same either way.
    """
    # Keyed by the identity of the timestamp: the state's entries carry the very datetime
    # objects of the status they were read from, so a hit is the same instant and tzinfo.
    recs: dict[int, Recommendation] = {}
    rates: dict[int, RateSample] = {}
    if previous is not None:
        old_recs = previous.recommendations or []
        old_rates = previous.rate_history or []
        recs = dict(zip(map(id, map(_AT, old_recs)), old_recs, strict=True))
        rates = dict(zip(map(id, map(_AT, old_rates)), old_rates, strict=True))
    recommendations = []
    for t, n in state.recommendations:
        rec = recs.get(id(t))
        if rec is None or rec.at is not t or rec.replicas != n or type(n) is not int:
            rec = Recommendation(at=t, replicas=n)
        recommendations.append(rec)
    history = []
    for t, r in state.rate_history:
        sample = rates.get(id(t))
        # Only non-zero floats: -0.0 == 0.0 and 1 == 1.0 but they serialise differently.
        if (
            sample is None
            or sample.at is not t
            or sample.rate != r
            or type(r) is not float
            or r == 0.0
        ):
            sample = RateSample(at=t, rate=r)
        history.append(sample)
    return DecisionStatus(
        recommendations=recommendations,
        last_desired=state.last_desired,
        idle_since=state.idle_since,
        spot_fallback_replicas=state.spot_fallback_replicas,
        spot_unavailable_at=state.spot_unavailable_at,
        capacity_per_replica=state.capacity_per_replica,
        capacity_bounded_at=state.capacity_bounded_at,
        capacity_correction=state.capacity_correction,
        corrected_profile=state.corrected_profile,
        rate_history=history,
        lead_time_seconds=state.lead_time_seconds,
        short_since=state.short_since,
    )


def decision_from_status(
    status: DecisionStatus | None, now: datetime | None = None
) -> DecisionState:
    """The planner's memory from status (empty when never planned).

    ``now`` (the pass's clock) reads a status written by a clock ahead of ours (another
    replica's, a restore, a hand edit) as the past it must be: a rate sample or a
    recommendation dated after ``now`` is dropped (it measured nothing yet, and the
    forecast read it as the latest rate, its age negative; the down-stabilisation window
    kept a future recommendation until its date), and a timer started after ``now``
    (``idleSince``, ``spotUnavailableAt``, ``capacityBoundedAt``, ``shortSince``) starts
    at ``now`` instead: later, never sooner."""
    if status is None:
        return DecisionState()
    recs = status.recommendations or []
    rates = status.rate_history or []
    # (at, value) per entry, the attribute reads in C (map/zip): the history is long.
    state = DecisionState(
        recommendations=tuple(zip(map(_AT, recs), map(_REPLICAS, recs), strict=True)),
        last_desired=status.last_desired,
        idle_since=status.idle_since,
        spot_fallback_replicas=status.spot_fallback_replicas,
        spot_unavailable_at=status.spot_unavailable_at,
        capacity_per_replica=status.capacity_per_replica,
        capacity_bounded_at=status.capacity_bounded_at,
        capacity_correction=status.capacity_correction,
        corrected_profile=status.corrected_profile,
        rate_history=tuple(zip(map(_AT, rates), map(_RATE, rates), strict=True)),
        lead_time_seconds=status.lead_time_seconds,
        short_since=status.short_since,
    )
    return state if now is None else _not_after(state, now)


def _not_after(state: DecisionState, now: datetime) -> DecisionState:
    """``state`` with nothing later than ``now`` (``decision_from_status``); ``state``
    itself when nothing is (the usual case: one comparison per list and time)."""
    changes: dict[str, Any] = {}
    for name in ("recommendations", "rate_history"):
        entries: tuple[tuple[datetime, float], ...] = getattr(state, name)
        if entries and max(map(itemgetter(0), entries)) > now:
            changes[name] = tuple(e for e in entries if e[0] <= now)
    for name in ("idle_since", "spot_unavailable_at", "capacity_bounded_at", "short_since"):
        at: datetime | None = getattr(state, name)
        if at is not None and at > now:
            changes[name] = now
    return replace(state, **changes) if changes else state


def next_condition(
    previous: Mapping[str, Condition],
    type_: str,
    status: Status,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> Condition:
    """The condition ``type_`` to write at ``now`` (the one place of the KEP-1623 rule, for
    ModelDeployments and FleetClusters alike): ``previous[type_]`` itself, the same
    immutable object, when status, reason, message and ``generation`` are all unchanged;
    else a new condition whose ``lastTransitionTime`` moves to ``now`` only when ``status``
    changed (or the condition is new). ``previous`` maps type to the last written
    condition. Raises nothing."""
    old = previous.get(type_)
    if old is not None and old.status == status:
        if (
            old.reason == reason
            and old.message == message
            and old.observed_generation == generation
        ):
            return old  # unchanged: the same immutable object (no validation)
        since = old.last_transition_time
    else:
        since = now
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=since,
    )


def slo_met(md: ModelDeployment, slo: SloFigures) -> tuple[Status, str, str]:
    """(status, reason, message) of the SLOMet condition."""
    targets = md.spec.slo
    checks = [
        ("TTFT p95", slo.ttft_p95_ms, targets.ttft_p95_ms, "ms"),
        ("TPOT p95", slo.tpot_p95_ms, targets.tpot_p95_ms, "ms"),
        ("queue per replica", slo.queue_per_replica, targets.max_queue_per_replica, ""),
    ]
    enforced = [(n, v, t, u) for n, v, t, u in checks if t is not None]
    if not enforced:
        return "True", "NoObjectives", "no SLO objectives are set"
    missing = [n for n, v, _, _ in enforced if v is None]
    if missing:
        return (
            "Unknown",
            "MetricsMissing",
            f"no data for {', '.join(missing)}: check spec.metrics and the FleetClusters' "
            "spec.prometheus (replicas are never scaled down on missing data)",
        )
    breached = [f"{n} {v:.4g}{u} > {t:g}{u}" for n, v, t, u in enforced if v is not None and v > t]
    if breached:
        return "False", "SLOBreached", "; ".join(breached)
    return "True", "WithinObjectives", "every objective is met"


def build_status(
    md: ModelDeployment,
    plan: Plan,
    observation: Observation,
    *,
    endpoints: Sequence[Endpoint],
    problems: Sequence[str],
    now: datetime,
    capacity_errors: Sequence[str] = (),
    regions: Mapping[str, str] | None = None,
) -> ModelDeploymentStatus:
    """The complete status after one reconcile.

    ``problems`` are human messages about clusters or providers that failed this pass
    (unreachable member cluster, provider permission denied, ...): they make the deployment
    Degraded without hiding what the plan achieved. ``capacity_errors`` describe the
    stockouts met this pass (refused, or reported by the cloud after an accepted resize):
    CapacityAvailable is False while they steer replicas elsewhere. ``regions`` (cluster
    name -> region) labels ``status.retiring``.

    The retiring replicas that are not lost (a make-before-break move, a failback) keep
    serving: they are listed in ``status.retiring`` with their observed ready count and
    counted in ``replicas.ready``.
    """
    slo = SloFigures.of(plan)
    generation = md.metadata.generation
    previous = {c.type: c for c in (md.status.conditions if md.status else None) or []}
    cond = {}

    def put(type_: str, status: Status, reason: str, message: str) -> None:
        cond[type_] = next_condition(
            previous, type_, status, reason, message, generation=generation, now=now
        )

    ready_by_key = {
        (name, w.instance_type, w.capacity_type): w.ready
        for name, obs in observation.clusters.items()
        for w in obs.workloads
    }
    nodes_by_key = {(n.cluster, n.instance_type, n.capacity_type): n.nodes for n in plan.node_pools}
    # An entry equal to one of the last status reuses that immutable object (no validation).
    before = {_placement_fields(p): p for p in (md.status.placements if md.status else None) or []}
    placements = []
    for p in plan.placements:
        pool = (p.cluster, p.instance_type, p.capacity_type)
        fields = (
            p.cluster,
            p.cloud,
            p.region,
            p.gpu,
            p.instance_type,
            p.capacity_type,
            p.replicas,
            min(p.replicas, ready_by_key.get(pool, 0)),
            nodes_by_key.get(pool),
        )
        kept = before.get(fields) if all(type(v) is not float for v in fields) else None
        placements.append(
            kept
            if kept is not None
            else PlacementStatus(**dict(zip(_PLACEMENT, fields, strict=True)))
        )
    # Ready replicas of a pool go to its placement first, the rest to its serving retirees.
    left = dict(ready_by_key)
    for placed in placements:
        pool = (placed.cluster, placed.instance_type, placed.capacity_type)
        left[pool] = left.get(pool, 0) - placed.ready
    retiring = []
    for r in plan.retiring:
        if r.lost:
            continue
        pool = (r.cluster, r.instance_type, r.capacity_type)
        serving = max(0, min(r.replicas, left.get(pool, 0)))
        left[pool] = left.get(pool, 0) - serving
        retiring.append(
            RetiringStatus(
                cluster=r.cluster,
                region=(regions or {}).get(r.cluster),
                instance_type=r.instance_type,
                capacity_type=r.capacity_type,
                replicas=r.replicas,
                ready=serving,
                reason=r.reason,
            )
        )
    wanted = plan.desired_replicas + plan.standby_replicas
    placed_ready = sum(x.ready for x in placements)
    ready = placed_ready + sum(r.ready for r in retiring)
    cover = cover_shortfall(plan.unplaced, retiring)
    unplaced = plan.unplaced - cover.held - cover.stranded
    terminal = unsatisfiable(plan)

    # CapacityAvailable: could every wanted replica be placed where the plan wanted it?
    # Replicas kept on a cluster inside its failback window are (they go back to it when
    # the window ends); replicas that still serve where the spec no longer allows them are
    # not, but the message says they serve.
    short = plan.unplaced - cover.held
    stocked_out = [r for r in plan.retiring if r.lost and r.reason.startswith(STOCKOUT_CODES)]
    blocked = [r for r in plan.reasons if r.code == R.STOCKOUT]
    held_note = (
        f" ({cover.held} kept on {cover.held_on} until its failback window ends)"
        if cover.held
        else ""
    )
    if short == 0 and (capacity_errors or stocked_out or blocked):
        detail = (
            "; ".join(capacity_errors)
            or "; ".join(r.reason for r in stocked_out)
            or "; ".join(
                f"{r.cluster} {r.offering} {r.capacity_type}: {r.message}" for r in blocked
            )
        )
        put(
            C.CAPACITY_AVAILABLE,
            "False",
            "Stockout",
            f"capacity ran out ({detail}); {wanted} replica(s) placed on the next "
            f"candidates{held_note}",
        )
    elif short == 0:
        put(
            C.CAPACITY_AVAILABLE,
            "True",
            "AllReplicasPlaced",
            f"{wanted} replica(s) placed{held_note}",
        )
    else:
        code = terminal.code if terminal is not None else "InsufficientCapacity"
        detail = terminal.message if terminal is not None else _first_reason(plan)
        stranded_note = (
            f"; {cover.stranded} of them still serve on {cover.stranded_on} (retiring)"
            if cover.stranded
            else ""
        )
        put(
            C.CAPACITY_AVAILABLE,
            "False",
            code,
            f"{short} of {wanted} replica(s) could not be placed: {detail}{stranded_note}",
        )

    # Ready: is the deployment serving what it should?
    on_retiring = ready - placed_ready
    if terminal is not None and plan.placed_replicas == 0:
        still = f"; {on_retiring} replica(s) still serve (retiring)" if on_retiring else ""
        put(C.READY, "False", terminal.code, terminal.message + still)
    elif wanted == 0:
        put(C.READY, "True", "ScaledToZero", "scaled to zero; the first request scales it up")
    elif ready >= plan.desired_replicas and ready > 0:
        put(C.READY, "True", "AllReplicasReady", _ready_message(ready, wanted, on_retiring))
    else:
        put(
            C.READY,
            "False",
            "ReplicasNotReady",
            f"{_ready_message(ready, wanted, on_retiring)} (desired {plan.desired_replicas})",
        )

    # Progressing: is a rollout, scale or failover under way?
    if plan.retiring or placed_ready < plan.placed_replicas:
        parts = []
        if plan.placed_replicas:
            parts.append(f"{placed_ready} of {plan.placed_replicas} placed replica(s) ready")
        held_back = sum(r.replicas for r in plan.retiring if not r.lost and _failing_back(r))
        moving = sum(r.replicas for r in plan.retiring if not r.lost and not _failing_back(r))
        gone = sum(r.replicas for r in plan.retiring if r.lost)
        if moving:
            parts.append(f"{moving} replica(s) retiring after their replacements are ready")
        if held_back:
            parts.append(
                f"{held_back} replica(s) kept serving on "
                + ", ".join(sorted({r.cluster for r in plan.retiring if _failing_back(r)}))
                + " while it fails back"
            )
        if gone:
            parts.append(f"{gone} lost replica(s) being replaced")
        put(C.PROGRESSING, "True", "RolloutInProgress", "; ".join(parts))
    else:
        put(C.PROGRESSING, "False", "Stable", "placement and replicas are stable")

    # Degraded: is something broken that a human may need to look at? Not a failback that
    # keeps every replica serving: it ends by itself (docs/gitops.md).
    degraded: list[str] = list(problems)
    lost = [r for r in plan.retiring if r.lost]
    if lost:
        degraded.append(
            "replicas lost on "
            + ", ".join(sorted({f"{r.cluster} ({r.reason})" for r in lost}))
            + "; replaced elsewhere"
        )
    if unplaced:
        degraded.append(f"{unplaced} replica(s) unplaced (none serves in their stead)")
    if cover.stranded:
        degraded.append(
            f"{cover.stranded} replica(s) could not be placed within the spec; they still "
            f"serve on {cover.stranded_on} (retiring)"
        )
    if degraded:
        partial = unplaced or cover.stranded
        reason = "ClusterFailed" if lost else ("PartiallyPlaced" if partial else "ClusterErrors")
        if terminal is not None:
            reason = terminal.code
        put(C.DEGRADED, "True", reason, DEGRADED_JOIN.join(degraded))
    else:
        put(C.DEGRADED, "False", "NoProblems", "no problems detected")

    status, reason, message = slo_met(md, slo)
    put(C.SLO_MET, status, reason, message)

    spot = sum(p.replicas for p in plan.placements if p.capacity_type == "Spot") + cover.spot
    held = sorted(
        {p.region for p in plan.placements if p.replicas > 0}
        | {r.region for r in retiring if r.ready > 0 and r.region}
    )
    return ModelDeploymentStatus(
        observed_generation=generation,
        conditions=[
            cond[t] for t in (C.READY, C.PROGRESSING, C.DEGRADED, C.SLO_MET, C.CAPACITY_AVAILABLE)
        ],
        replicas=ReplicaCounts(
            desired=plan.desired_replicas,
            ready=ready,
            spot=spot,
            on_demand=plan.placed_replicas + cover.held + cover.stranded - spot,
            unplaced=unplaced,
        ),
        placements=placements,
        retiring=retiring or None,
        regions=",".join(held),
        slo=SloStatus(
            ttft_p95_ms=slo.ttft_p95_ms,
            tpot_p95_ms=slo.tpot_p95_ms,
            queue_per_replica=slo.queue_per_replica,
            request_rate=slo.request_rate,
            kv_cache_per_replica=slo.kv_cache_per_replica,
            running_per_replica=slo.running_per_replica,
            met=None if status == "Unknown" else status == "True",
        ),
        cost_per_hour=round(plan.cost_per_hour + _retiring_cost(plan, retiring), 4),
        headroom_cost_per_hour=(
            round(plan.headroom_cost_per_hour, 4) if md.spec.failover.tolerate_region_loss else None
        ),
        endpoints=list(endpoints),
        last_reconcile_time=now,
        decision=decision_to_status(
            plan.state, md.status.decision if md.status is not None else None
        ),
        served_model=served_model(md, now),
    )


def served_model(md: ModelDeployment, now: datetime) -> ServedModelStatus:
    """``status.servedModel``: the recorded one while it names ``spec.model.name``; else
    that name since ``now`` (an edit), or since the creation when none was recorded (the
    name the deployment was created with, or had before this field: grandfathered; ``now``
    when the object has no creation time). The gateway dates the deployment's claim on the
    name by it (``gateway.catalog``, first come)."""
    recorded = md.status.served_model if md.status is not None else None
    name = md.spec.model.name
    if recorded is not None and recorded.name == name:
        return recorded
    since = md.metadata.creation_timestamp if recorded is None else None
    return ServedModelStatus(name=name, since=since or now)


_PLACEMENT = (
    "cluster",
    "cloud",
    "region",
    "gpu",
    "instance_type",
    "capacity_type",
    "replicas",
    "ready",
    "nodes",
)
"""The fields of a PlacementStatus, in the order ``_placement_fields`` gives them."""


def _placement_fields(p: PlacementStatus) -> tuple[object, ...]:
    return tuple(getattr(p, name) for name in _PLACEMENT)


def _first_reason(plan: Plan) -> str:
    for reason in plan.reasons:
        if not reason.cluster:
            return reason.message
    return plan.reasons[0].message if plan.reasons else "no candidate had room"


@dataclass(frozen=True)
class Cover:
    """How much of the plan's shortfall (``Plan.unplaced``) replicas still serving on
    retiring pools make up for: ``held`` on a cluster inside its failback window (they go
    back to it when the window ends), ``stranded`` elsewhere (a make-before-break move
    whose replacements could not be placed). ``spot`` of them are Spot; ``held_on`` and
    ``stranded_on`` name the clusters."""

    held: int = 0
    stranded: int = 0
    spot: int = 0
    held_on: str = ""
    stranded_on: str = ""


def cover_shortfall(shortfall: int, retiring: Sequence[RetiringStatus]) -> Cover:
    """The part of ``shortfall`` (replicas the plan could not place, >= 0) made up by the
    Ready replicas of ``retiring`` (non-lost retirees with their observed ready count):
    each serving replica stands in for one unplaced replica, failing-back ones first. A
    replica that serves is not unplaced; one that does not serve counts for nothing."""
    left = shortfall
    held = stranded = spot = 0
    held_on: set[str] = set()
    stranded_on: set[str] = set()
    for r in sorted(retiring, key=lambda r: not _failing_back(r)):
        take = min(left, r.ready)
        if take <= 0:
            continue
        left -= take
        if _failing_back(r):
            held += take
            held_on.add(r.cluster)
        else:
            stranded += take
            stranded_on.add(r.cluster)
        if r.capacity_type == "Spot":
            spot += take
    return Cover(held, stranded, spot, ", ".join(sorted(held_on)), ", ".join(sorted(stranded_on)))


def _failing_back(r: RetiringStatus | Retiring) -> bool:
    return r.reason.startswith(R.CLUSTER_FAILING_BACK)


def _ready_message(ready: int, wanted: int, on_retiring: int) -> str:
    if not on_retiring:
        return f"{ready} of {wanted} replica(s) ready"
    return f"{ready} of {wanted} replica(s) ready, {on_retiring} of them on retiring replicas"


def _retiring_cost(plan: Plan, retiring: Sequence[RetiringStatus]) -> float:
    """USD per hour of the nodes kept for ``retiring`` replicas (they serve until replaced,
    or until their cluster's failback window ends) in pools the plan places nothing on: the
    plan's own cost leaves them out, but they are paid for."""
    placed = {(p.cluster, p.instance_type, p.capacity_type) for p in plan.placements}
    kept = {(r.cluster, r.instance_type, r.capacity_type) for r in retiring} - placed
    return sum(
        n.nodes * n.price_per_node_hour
        for n in plan.node_pools
        if (n.cluster, n.instance_type, n.capacity_type) in kept
    )
