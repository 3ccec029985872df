"""Stockout memory: remember capacity errors with an exponential backoff.

When a cloud answers "insufficient capacity" for (cluster, gpu, capacity type), the shell
records it here and writes the marks to the FleetCluster's ``status.stockouts``; the planner
skips that candidate until the mark expires and falls through to the next one in the same
plan. The first error blocks for 3 minutes (Karpenter's insufficient-capacity cache), each
consecutive error doubles it up to 30 minutes, and a success resets it. Marks outlive their
expiry so the next error knows how many came before; ``prune`` drops old ones.

All functions are pure over an immutable tuple of ``StockoutMark``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from modelfleet.core.types import CapacityType, StockoutMark

Marks = tuple[StockoutMark, ...]


def _same_key(
    mark: StockoutMark,
    gpu: str,
    capacity_type: str,
    instance_type: str | None,
    zone: str | None = None,
) -> bool:
    return (
        mark.gpu == gpu
        and mark.capacity_type == capacity_type
        and mark.instance_type == instance_type
        and mark.zone == zone
    )


def backoff_seconds(
    failures: int, *, initial_seconds: float = 180.0, max_seconds: float = 1800.0
) -> float:
    """Block time after ``failures`` consecutive capacity errors: initial * 2^(n-1), capped."""
    if failures < 1:
        raise ValueError(f"failures must be >= 1, got {failures}")
    return float(min(initial_seconds * (2 ** min(failures - 1, 30)), max_seconds))


def record_capacity_error(
    marks: Marks,
    gpu: str,
    *,
    capacity_type: CapacityType,
    now: datetime,
    instance_type: str | None = None,
    message: str | None = None,
    initial_seconds: float = 180.0,
    max_seconds: float = 1800.0,
    zone: str | None = None,
) -> Marks:
    """Marks after a capacity error at ``now``: a new mark (3 min) or the existing one with
    its failure count incremented and its expiry pushed to ``now + backoff``.

    Idempotent per error only if called once per error; order of the result is stable
    (existing marks keep their position, a new mark is appended).
    """
    for i, mark in enumerate(marks):
        if _same_key(mark, gpu, capacity_type, instance_type, zone):
            failures = mark.failures + 1
            until = now + timedelta(
                seconds=backoff_seconds(
                    failures, initial_seconds=initial_seconds, max_seconds=max_seconds
                )
            )
            updated = StockoutMark(
                gpu=gpu,
                capacity_type=capacity_type,
                until=until,
                failures=failures,
                instance_type=instance_type,
                since=mark.since or now,
                message=message or mark.message,
                zone=zone,
            )
            return (*marks[:i], updated, *marks[i + 1 :])
    until = now + timedelta(
        seconds=backoff_seconds(1, initial_seconds=initial_seconds, max_seconds=max_seconds)
    )
    new = StockoutMark(gpu, capacity_type, until, 1, instance_type, now, message, zone)
    return (*marks, new)


def record_capacity_success(
    marks: Marks,
    gpu: str,
    *,
    capacity_type: CapacityType,
    instance_type: str | None = None,
    zones: tuple[str, ...] = (),
) -> Marks:
    """Marks after capacity was obtained: every mark covering that instance type (and the
    GPU-wide mark) is removed, so the backoff starts over. When the capacity was obtained
    in ``zones`` only, zone marks of other zones stay. Idempotent."""
    return tuple(
        m
        for m in marks
        if not (
            m.gpu == gpu
            and m.capacity_type == capacity_type
            and (
                m.instance_type is None or instance_type is None or m.instance_type == instance_type
            )
            and (not zones or m.zone is None or m.zone in zones)
        )
    )


def active_stockout(
    marks: Marks, gpu: str, *, capacity_type: str, instance_type: str, now: datetime
) -> StockoutMark | None:
    """The active mark blocking (gpu, capacity type, instance type) at ``now``, if any
    (the one expiring last when several match)."""
    best: StockoutMark | None = None
    for mark in marks:
        if (
            now < mark.until
            and mark.covers(gpu, capacity_type, instance_type)
            and (best is None or mark.until > best.until)
        ):
            best = mark
    return best


def blocked_zones(
    marks: Marks, gpu: str, *, capacity_type: str, instance_type: str, now: datetime
) -> dict[str, StockoutMark]:
    """Zones with an active zone mark for (gpu, capacity type, instance type) at ``now``,
    each with the mark expiring last."""
    out: dict[str, StockoutMark] = {}
    for mark in marks:
        if (
            mark.zone is not None
            and now < mark.until
            and mark.covers(gpu, capacity_type, instance_type)
            and (mark.zone not in out or mark.until > out[mark.zone].until)
        ):
            out[mark.zone] = mark
    return out


def pool_stockout(
    marks: Marks,
    gpu: str,
    *,
    capacity_type: str,
    instance_type: str,
    zones: tuple[str, ...],
    now: datetime,
) -> StockoutMark | None:
    """The active mark closing the whole pool at ``now``, or None while some zone is open.

    A mark without a zone closes the pool (``active_stockout``). Zone marks close only
    their zone: the pool is closed once every zone of ``zones`` (the offering's) is marked,
    and then the mark returned is the zone mark expiring first (when the pool reopens).
    Without zone data (``zones`` empty) any zone mark closes the pool: today's behaviour for
    clusters that report no zones.
    """
    whole = active_stockout(
        tuple(m for m in marks if m.zone is None),
        gpu,
        capacity_type=capacity_type,
        instance_type=instance_type,
        now=now,
    )
    if whole is not None:
        return whole
    blocked = blocked_zones(
        marks, gpu, capacity_type=capacity_type, instance_type=instance_type, now=now
    )
    if not blocked:
        return None
    if zones and any(z not in blocked for z in zones):
        return None
    relevant = [m for z, m in blocked.items() if not zones or z in zones]
    return min(relevant, key=lambda m: (m.until, m.zone or ""))


def open_zones(
    marks: Marks,
    gpu: str,
    *,
    capacity_type: str,
    instance_type: str,
    zones: tuple[str, ...],
    now: datetime,
) -> tuple[str, ...]:
    """The zones of ``zones`` without an active zone mark: where a pool may still grow
    (fall-through zone -> zone in the same plan). Empty when none is blocked or no zone data
    (the pool's default zones apply)."""
    blocked = blocked_zones(
        marks, gpu, capacity_type=capacity_type, instance_type=instance_type, now=now
    )
    if not zones or not any(z in blocked for z in zones):
        return ()
    return tuple(z for z in zones if z not in blocked)


def prune(marks: Marks, now: datetime, *, keep_seconds: float = 3600.0) -> Marks:
    """Drop marks that expired more than ``keep_seconds`` ago (their backoff is forgotten)."""
    horizon = now - timedelta(seconds=keep_seconds)
    return tuple(m for m in marks if m.until > horizon)
