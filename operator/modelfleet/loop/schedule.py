"""When each object is next due: the operator's one scheduling implementation.

Every periodic job of the operator (reconciling a ModelDeployment, probing a FleetCluster,
pool upkeep, offering discovery) is a ``Schedule``: a due time per key, set after each run
to the regular interval, a requeue (sooner, while something is under way), or an error
backoff (doubling from ``backoff_seconds`` up to ``max_backoff_seconds`` while runs keep
failing). The kopf timers and the simulator's virtual clock both ask the same schedules;
time is always passed in, never read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Cadence:
    """How often a job runs (seconds)."""

    interval_seconds: float
    backoff_seconds: float = 5.0
    max_backoff_seconds: float = 300.0


class Schedule:
    """Due times per key (a uid or a cluster name) for one kind of job."""

    def __init__(self, cadence: Cadence) -> None:
        self.cadence = cadence
        self._due: dict[str, datetime] = {}
        self._failures: dict[str, int] = {}

    def due(self, key: str, now: datetime) -> bool:
        """Whether ``key`` should run at ``now`` (never run: due)."""
        when = self._due.get(key)
        return when is None or now >= when

    def take(self, key: str, now: datetime) -> bool:
        """``due``, and if so book the next regular run at once (for jobs that must not
        start twice while one is in flight)."""
        if not self.due(key, now):
            return False
        self._due[key] = now + timedelta(seconds=self.cadence.interval_seconds)
        return True

    def done(self, key: str, now: datetime, *, requeue_after: float | None = None) -> None:
        """A run succeeded: next at ``requeue_after`` seconds, else the regular interval."""
        self._failures.pop(key, None)
        delay = self.cadence.interval_seconds if requeue_after is None else requeue_after
        self._due[key] = now + timedelta(seconds=delay)

    def failed(self, key: str, now: datetime) -> float:
        """A run raised: back off (doubling per consecutive failure); returns the delay."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = float(
            min(
                self.cadence.backoff_seconds * 2 ** min(failures - 1, 20),
                self.cadence.max_backoff_seconds,
            )
        )
        self._due[key] = now + timedelta(seconds=delay)
        return delay

    def failing(self, key: str) -> bool:
        """Whether ``key``'s last run raised (it is backing off)."""
        return key in self._failures

    def wake(self, key: str, now: datetime) -> None:
        """An event asks for a run at once (as kopf runs the update handler of a changed
        object): ``key`` is due at ``now`` unless it already is."""
        when = self._due.get(key)
        if when is not None and when > now:
            self._due[key] = now

    def next_due(self, key: str) -> datetime | None:
        return self._due.get(key)

    def forget(self, key: str) -> None:
        self._due.pop(key, None)
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._due)
