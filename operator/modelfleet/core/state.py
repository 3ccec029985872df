"""Decision state a deployment carries from one plan to the next.

The planner is a pure function, so anything it must remember between reconciles (the
recommendation history of the stabilisation windows, the idle timer of scale-to-zero, the
spot fallback timer, the learned per-replica capacity) travels in a ``DecisionState`` that the shell persists (status field or
annotation) as plain JSON via ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_ts(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"decision state: {field} must be an ISO 8601 string, got {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"decision state: {field} must carry a timezone, got {value!r}")
    return parsed


def _positive(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"decision state: {field} must be a positive number, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class DecisionState:
    """What the planner remembers about one deployment.

    - ``recommendations``: ``(time, replicas)`` raw autoscaler recommendations, oldest first,
      pruned to the longest stabilisation window.
    - ``last_desired``: the desired replica count of the previous plan (None: never planned).
    - ``idle_since``: when the request rate was first observed at zero (scale-to-zero timer).
    - ``spot_fallback_replicas``: replicas moved to on-demand after a spot loss.
    - ``spot_unavailable_at``: last time a spot loss or spot stockout affected the
      deployment; spot returns ``spot_return_after_seconds`` after it.
    - ``capacity_per_replica``: learned requests/s one replica sustains within the SLOs
      (None: not learned yet); scale-down sizes the fleet from it.
    - ``capacity_bounded_at``: when a breach last bounded ``capacity_per_replica`` (None: only
      a demonstrated lower bound; scale-down then takes bounded steps).
    - ``capacity_correction``: online correction of the capacity profile: observed capacity
      / the profile's prediction, within [0.5, 1.5] (None: 1, nothing learned yet).
    - ``corrected_profile``: ``core.profiles.profiles_digest`` of the profiles the
      correction was learned against (None: no profiles, or a status written before it
      was recorded); an edit of the profiles or the mix drops the correction.
    - ``rate_history``: ``(time, requests/s)`` samples the demand predictor reads, at least
      30 s apart, the last 10 minutes.
    - ``lead_time_seconds``: provisioning lead time (scale-up until the replicas serve)
      learned from observed starts (None: not observed yet).
    - ``short_since``: since when fewer replicas serve than desired (times the lead time).
    """

    recommendations: tuple[tuple[datetime, int], ...] = ()
    last_desired: int | None = None
    idle_since: datetime | None = None
    spot_fallback_replicas: int = 0
    spot_unavailable_at: datetime | None = None
    capacity_per_replica: float | None = None
    capacity_bounded_at: datetime | None = None
    capacity_correction: float | None = None
    rate_history: tuple[tuple[datetime, float], ...] = ()
    lead_time_seconds: float | None = None
    short_since: datetime | None = None
    corrected_profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A dict of JSON types; ``from_dict`` inverts it exactly. The shape (camelCase,
        recommendations as ``{at, replicas}``) matches ``status.decision`` of the API."""
        return {
            "recommendations": [
                {"at": t.isoformat(), "replicas": n} for t, n in self.recommendations
            ],
            "lastDesired": self.last_desired,
            "idleSince": _ts(self.idle_since),
            "spotFallbackReplicas": self.spot_fallback_replicas,
            "spotUnavailableAt": _ts(self.spot_unavailable_at),
            "capacityPerReplica": self.capacity_per_replica,
            "capacityBoundedAt": _ts(self.capacity_bounded_at),
            "capacityCorrection": self.capacity_correction,
            "rateHistory": [{"at": t.isoformat(), "rate": r} for t, r in self.rate_history],
            "leadTimeSeconds": self.lead_time_seconds,
            "shortSince": _ts(self.short_since),
            "correctedProfile": self.corrected_profile,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DecisionState:
        """Parse ``to_dict`` output; None or ``{}`` give the empty state.

        Raises ValueError naming the field when a value has the wrong type.
        """
        if not data:
            return cls()
        recs: list[tuple[datetime, int]] = []
        for item in data.get("recommendations") or []:
            if not (isinstance(item, dict) and isinstance(item.get("replicas"), int)):
                raise ValueError(f"decision state: bad recommendations entry {item!r}")
            when = _parse_ts(item.get("at"), "recommendations[].at")
            if when is None:
                raise ValueError(f"decision state: recommendations entry without at: {item!r}")
            recs.append((when, item["replicas"]))
        last = data.get("lastDesired")
        if last is not None and not isinstance(last, int):
            raise ValueError(f"decision state: lastDesired must be an integer, got {last!r}")
        fallback = data.get("spotFallbackReplicas") or 0
        if not isinstance(fallback, int):
            raise ValueError(
                f"decision state: spotFallbackReplicas must be an integer, got {fallback!r}"
            )
        capacity = data.get("capacityPerReplica")
        if capacity is not None and (
            isinstance(capacity, bool)
            or not isinstance(capacity, int | float)
            or not math.isfinite(capacity)
            or capacity <= 0
        ):
            raise ValueError(
                f"decision state: capacityPerReplica must be a positive number, got {capacity!r}"
            )
        rates: list[tuple[datetime, float]] = []
        for item in data.get("rateHistory") or []:
            rate = item.get("rate") if isinstance(item, dict) else None
            if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
                raise ValueError(f"decision state: bad rateHistory entry {item!r}")
            at = _parse_ts(item.get("at"), "rateHistory[].at")
            if at is None:
                raise ValueError(f"decision state: rateHistory entry without at: {item!r}")
            rates.append((at, float(rate)))
        digest = data.get("correctedProfile")
        if digest is not None and not isinstance(digest, str):
            raise ValueError(f"decision state: correctedProfile must be a string, got {digest!r}")
        return cls(
            corrected_profile=digest,
            capacity_correction=_positive(data.get("capacityCorrection"), "capacityCorrection"),
            rate_history=tuple(rates),
            lead_time_seconds=_positive(data.get("leadTimeSeconds"), "leadTimeSeconds"),
            short_since=_parse_ts(data.get("shortSince"), "shortSince"),
            recommendations=tuple(recs),
            last_desired=last,
            idle_since=_parse_ts(data.get("idleSince"), "idleSince"),
            spot_fallback_replicas=fallback,
            spot_unavailable_at=_parse_ts(data.get("spotUnavailableAt"), "spotUnavailableAt"),
            capacity_per_replica=None if capacity is None else float(capacity),
            capacity_bounded_at=_parse_ts(data.get("capacityBoundedAt"), "capacityBoundedAt"),
        )
