"""What a reconcile pass produces, shared by every stage: Events, problems, capacity errors.

The stage modules (snapshot, pools, apply, retire, finalize, status) record into one
``PassLog``; the Reconciler turns it into a ``ReconcileOutcome`` the operator loop acts on
(status write, Events, metrics, when to come back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from modelfleet.api import conditions as C
from modelfleet.api.common import CapacityType
from modelfleet.api.modeldeployment import ModelDeploymentStatus
from modelfleet.core import Plan

EventType = Literal["Normal", "Warning"]

REANNOUNCE_SECONDS = 30 * 60.0
"""How often a lasting problem's Warning is posted again (seconds) while the deployment's
recorded Degraded condition still says it. A default kube-apiserver keeps Events 1 h
(``--event-ttl``): every 30 min keeps one live Event of the problem in ``kubectl describe``
at all times (at most two), and costs one Event in six of the deployment's refill rate
(``event_budget``: one per 5 min once its 25 are spent)."""

DEGRADED_JOIN = "; "
"""What ``status.build_status`` joins the problems of the Degraded message with."""


@dataclass(frozen=True)
class EventRecord:
    """A Kubernetes Event to post on the object the pass was about."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class CapacityError:
    """A capacity problem met in a pass: refused by the cloud, reported by it after an
    accepted resize (``late``), or nodes not Ready within the launch timeout."""

    cluster: str
    gpu: str
    capacity_type: CapacityType
    instance_type: str
    message: str
    late: bool = False


@dataclass
class PassLog:
    """Mutable record of one pass (each stage appends)."""

    events: list[EventRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    capacity_errors: list[CapacityError] = field(default_factory=list)
    retry: bool = False
    """A transient error (``ProviderError.retryable``, a timeout) wants the pass repeated
    soon, without degrading the deployment."""
    said: str = ""
    """The recorded ``Degraded=True`` message whose problems need no Warning again this pass
    (``said_before``); empty: every problem is posted."""

    def warn(self, reason: str, message: str) -> None:
        """A problem: it makes the deployment Degraded, and is posted as a Warning Event
        unless ``said`` already carries it (a problem that lasts re-runs the pass every 5 s
        while Degraded; a Warning each time spent the deployment's Event budget,
        ``event_budget``, on one message and dropped every other Event of it: br15d).
        A changed message (another cluster, another error) is posted at once."""
        if not _carries(self.said, message):
            self.events.append(EventRecord("Warning", reason, message))
        self.problems.append(message)

    def note(self, type_: EventType, reason: str, message: str) -> None:
        """An Event that does not degrade the deployment."""
        self.events.append(EventRecord(type_, reason, message))


def said_before(
    status: ModelDeploymentStatus | None, now: datetime, *, every: float = REANNOUNCE_SECONDS
) -> str:
    """What a pass at ``now`` need not post again: the message of ``status``'s recorded
    ``Degraded=True`` condition, or "" when there is none or its problems are due again.
    They are due once every ``every`` seconds of the condition being True (counted from its
    ``lastTransitionTime``): the pass whose window since the last one
    (``status.lastReconcileTime``, exclusive, to ``now``) holds such a mark posts them again,
    and so does the first pass after the operator was down for longer than ``every``.
    Raises nothing."""
    if status is None:
        return ""
    degraded = next(
        (c for c in status.conditions or () if c.type == C.DEGRADED and c.status == "True"), None
    )
    if degraded is None or status.last_reconcile_time is None:
        return ""
    since = degraded.last_transition_time
    before = (status.last_reconcile_time - since).total_seconds() // every
    if (now - since).total_seconds() // every > max(before, 0.0):
        return ""  # a re-announce mark lies between the last pass and this one
    return degraded.message or ""


def _carries(said: str, message: str) -> bool:
    """Whether the joined Degraded message ``said`` holds ``message`` as whole problems (not
    a mere substring: "...: timed out" is not "...: timed out after 5 s")."""
    return (
        bool(said)
        and f"{DEGRADED_JOIN}{message}{DEGRADED_JOIN}" in f"{DEGRADED_JOIN}{said}{DEGRADED_JOIN}"
    )


@dataclass(frozen=True)
class ReconcileOutcome:
    """What one pass produced: the status to write, Events to post, and when to come back
    (``requeue_after`` seconds; None: the periodic interval is soon enough)."""

    status: ModelDeploymentStatus
    events: tuple[EventRecord, ...]
    plan: Plan
    requeue_after: float | None = None
    capacity_errors: tuple[CapacityError, ...] = ()
    """Every capacity error met in this pass (each became a stockout mark)."""

    @property
    def stockouts(self) -> tuple[tuple[str, str, str], ...]:
        """(cluster, gpu, capacity type) of every capacity error (for metrics)."""
        return tuple((e.cluster, e.gpu, e.capacity_type) for e in self.capacity_errors)


@dataclass(frozen=True)
class FinalizeOutcome:
    """Deletion progress: ``done`` when every cluster is clean (or abandoned)."""

    done: bool
    pending: tuple[str, ...] = ()
    abandoned: tuple[str, ...] = ()
    events: tuple[EventRecord, ...] = ()
