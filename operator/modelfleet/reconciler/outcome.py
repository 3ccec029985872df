"""What a reconcile pass produces, shared by every stage: Events, problems, capacity errors.

The stage modules (snapshot, pools, apply, retire, finalize, status) record into one
``PassLog``; the Reconciler turns it into a ``ReconcileOutcome`` the operator loop acts on
(status write, Events, metrics, when to come back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from modelfleet.api.common import CapacityType
from modelfleet.api.modeldeployment import ModelDeploymentStatus
from modelfleet.core import Plan

EventType = Literal["Normal", "Warning"]


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

    def warn(self, reason: str, message: str) -> None:
        """A Warning Event that also makes the deployment Degraded."""
        self.events.append(EventRecord("Warning", reason, message))
        self.problems.append(message)

    def still(self, message: str) -> None:
        """A problem said already (its Warning posted in an earlier pass, and the status's
        Degraded condition still names it): Degraded again, no Event again. A problem that
        lasts (a missing claim) re-runs the pass every few seconds; a Warning each time spent
        the deployment's Event budget (``event_budget``) on one message and dropped every
        other Event of it (br15d)."""
        self.problems.append(message)

    def note(self, type_: EventType, reason: str, message: str) -> None:
        """An Event that does not degrade the deployment."""
        self.events.append(EventRecord(type_, reason, message))


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
