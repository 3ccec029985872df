"""A per-object budget of Kubernetes Events: what client-go's ``EventSourceObjectSpamFilter``
does for every Go controller, for the Events modelfleet posts itself.

A tenant drives some of our Events: each edit of a ModelRoute that flips its verdict makes
the gateway post one (br15c F3: 20 edits, 54 Events, 23 of them on another tenant's route).
So every object gets a token bucket: ``burst`` Events at once, then one more every
``refill_seconds``; an Event over budget is dropped (the caller counts it; the status, which
carries the truth, is written regardless). The defaults are client-go's
(``k8s.io/client-go/tools/record/events_cache.go``: ``defaultSpamBurst = 25``,
``defaultSpamQPS = 1/300``, an LRU of ``maxLruCacheEntries = 4096`` keys). Keys are the
involved object's uid (the source is implicit: one budget per process, so per replica, as
in client-go).

Bounded memory: an object not seen for ``burst * refill_seconds`` (its bucket is full again
by then, so forgetting it changes nothing) is forgotten, and at most ``max_objects`` are
kept (the least recently seen goes first; it starts again with a full bucket, as in
client-go's LRU).

``EventRepeats`` is the other half of client-go's ``EventCorrelator``, in its simplest form:
an Event identical to one posted on the same object (same key, type, reason and message)
less than ``REPEAT_SECONDS`` ago is not posted again (client-go instead bumps the stored
Event's ``count``; we post nothing). The caller asks it before the budget, so a repeat
spends no token: a reconcile pass reporting the same change or the same lasting problem
every 5 to 15 s no longer uses up the object's budget and crowds out its other Events.

Pure: no I/O, no clock of its own (``clock`` is injected: seconds, monotonic). It sits
beside the gateway and the operator (neither may import the other; import-linter) and
imports nothing of modelfleet.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

BURST: Final = 25
"""Events an object may get at once (client-go ``defaultSpamBurst``)."""
REFILL_SECONDS: Final = 300.0
"""Seconds per Event after the burst (client-go ``defaultSpamQPS = 1/300``)."""
MAX_OBJECTS: Final = 4096
"""Objects remembered at most (client-go ``maxLruCacheEntries``)."""
REPEAT_SECONDS: Final = 600.0
"""Seconds during which an identical Event is not posted again: client-go's
``defaultAggregateIntervalInSeconds = 600``, the window in which its ``EventAggregator``
folds similar Events of one object into one. Under the API server's default Event TTL (1
hour), so a lasting problem still shows in ``kubectl describe``."""
MAX_REPEATS: Final = 4096
"""Distinct Events remembered at most (client-go's ``maxLruCacheEntries`` again)."""


class Verdict(enum.Enum):
    """What to do with one Event."""

    POST = "post"
    DROP_FIRST = "drop-first"
    """Drop it: the first drop since this object's last posted Event (log it)."""
    DROP = "drop"
    """Drop it quietly: already said for this object."""

    @property
    def post(self) -> bool:
        """Whether to post the Event."""
        return self is Verdict.POST


@dataclass
class _Bucket:
    tokens: float
    seen: float
    """When it was last touched (the clock's seconds)."""
    said: bool = False
    """Whether a drop was reported since the last Event posted."""


class EventBudget:
    """Per-object token buckets (see module doc).

    ``take(key)`` says whether an Event on the object ``key`` (its uid) may be posted, and
    takes a token if so. ``dropped`` counts the Events refused. Raises ValueError for a
    ``burst`` under 1 or a non-positive ``refill_seconds`` or ``max_objects``.
    """

    def __init__(
        self,
        *,
        burst: int = BURST,
        refill_seconds: float = REFILL_SECONDS,
        max_objects: int = MAX_OBJECTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or not refill_seconds > 0 or max_objects < 1:
            raise ValueError(
                f"an Event budget needs burst >= 1, refill_seconds > 0 and max_objects >= 1 "
                f"(got {burst}, {refill_seconds}, {max_objects})"
            )
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.max_objects = max_objects
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        """Least recently seen first."""
        self.dropped = 0
        """Events refused so far."""

    @property
    def forget_after(self) -> float:
        """Seconds after which an unseen object's bucket is full again (and is forgotten)."""
        return self.burst * self.refill_seconds

    def __len__(self) -> int:
        """Objects remembered now."""
        return len(self._buckets)

    def take(self, key: str) -> Verdict:
        """Whether an Event on object ``key`` may be posted now; a token is taken if so."""
        now = self._clock()
        self._forget(now)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), seen=now)
        else:
            elapsed = max(0.0, now - bucket.seen)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed / self.refill_seconds)
            bucket.seen = now
        self._buckets[key] = bucket  # the most recently seen, last
        while len(self._buckets) > self.max_objects:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.said = False
            return Verdict.POST
        self.dropped += 1
        if bucket.said:
            return Verdict.DROP
        bucket.said = True
        return Verdict.DROP_FIRST

    def _forget(self, now: float) -> None:
        """Drop the objects not seen for ``forget_after`` (their buckets are full again)."""
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            if now - oldest.seen < self.forget_after:
                return
            del self._buckets[key]


class EventRepeats:
    """Which Events repeat one posted less than ``window_seconds`` ago (see module doc).

    ``repeat(key, type_, reason, message)`` is True (and ``deduplicated`` counts it) when
    the same Event was ``posted`` on the object ``key`` (its uid) less than
    ``window_seconds`` ago; skipped repeats do not extend the window, so a lasting Event is
    posted once per window. Only Events actually posted are recorded (``posted``): one the
    budget dropped is not a repeat of anything. At most ``max_events`` Events are
    remembered (the least recently posted is forgotten first), and one older than the window
    is forgotten. Raises ValueError for a non-positive ``window_seconds`` or ``max_events``.
    """

    def __init__(
        self,
        *,
        window_seconds: float = REPEAT_SECONDS,
        max_events: int = MAX_REPEATS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not window_seconds > 0 or max_events < 1:
            raise ValueError(
                f"Event repeats need window_seconds > 0 and max_events >= 1 "
                f"(got {window_seconds}, {max_events})"
            )
        self.window_seconds = window_seconds
        self.max_events = max_events
        self._clock = clock
        self._posted: OrderedDict[tuple[str, str, str, str], float] = OrderedDict()
        """When each Event was last posted (the clock's seconds), least recent first."""
        self.deduplicated = 0
        """Repeats found so far (Events not posted)."""

    def __len__(self) -> int:
        """Events remembered now."""
        return len(self._posted)

    def repeat(self, key: str, type_: str, reason: str, message: str) -> bool:
        """Whether this Event on object ``key`` was posted less than the window ago."""
        now = self._clock()
        self._forget(now)
        if (key, type_, reason, message) not in self._posted:
            return False
        self.deduplicated += 1
        return True

    def posted(self, key: str, type_: str, reason: str, message: str) -> None:
        """Record that this Event on object ``key`` was posted now."""
        now = self._clock()
        event = (key, type_, reason, message)
        self._posted.pop(event, None)
        self._posted[event] = now  # the most recently posted, last
        while len(self._posted) > self.max_events:
            self._posted.popitem(last=False)

    def _forget(self, now: float) -> None:
        """Drop the Events posted ``window_seconds`` ago or more (in posting order)."""
        while self._posted:
            event, at = next(iter(self._posted.items()))
            if now - at < self.window_seconds:
                return
            del self._posted[event]
