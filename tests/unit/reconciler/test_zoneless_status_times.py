"""A status time written without a zone is read as UTC, not a TypeError on every pass.

The CRDs type every time as ``format: date-time``, and the API server's date-time accepts
``2026-12-01T20:00:00`` (no zone). pydantic read it as a naive datetime, and the operator
compares status times with its own aware clock: ``status.nodePools[].scaleInSince`` (read
back after a restart, nd2) raised ``TypeError: can't subtract offset-naive and
offset-aware datetimes`` in the pool sizing, so every pass of every deployment booked on
that FleetCluster failed until someone fixed the status by hand; ``idleSince`` and the
other status times had the same fault. The operator writes its status times in UTC, so one
that lost its ``Z`` (a hand edit, a restore by a tool that drops it) is the operator's own
UTC time. A ``scaleInSince`` read back from the future counts from the restart instead.
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pydantic
from reconciler_world import scaled_in

import modelfleet.api as api
from modelfleet.api import FleetCluster, dump
from modelfleet.api.common import ApiModel
from modelfleet.reconciler.ledger import PoolLedger

POOL = ("east-h100", "OnDemand")


async def test_a_zoneless_scale_in_clock_is_read_after_a_restart() -> None:
    world = await scaled_in(held=5, booked=3)
    started = world.clock()
    world.clock.advance(300)
    await world.probe()  # publishes the clock
    body: dict[str, Any] = dump(world.fleet["east"])
    (pool,) = body["status"]["nodePools"]
    assert pool["scaleInSince"].endswith("Z"), pool
    pool["scaleInSince"] = started.astimezone(UTC).replace(tzinfo=None).isoformat()
    world.fleet["east"] = FleetCluster.model_validate(body)  # the zone lost, by hand

    world.reconciler.ledger = PoolLedger()  # the operator restarts
    world.clock.advance(5)
    await world.reconcile("a")  # raised TypeError (the pass failed) on every pass
    assert world.pool_sizes("east")[POOL][1] == 5, "the restart skipped the scale-in delay"
    world.clock.advance(300)  # 605 s after the bookings dropped
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL][1] == 3


def _api_models() -> list[type[ApiModel]]:
    seen: list[type[ApiModel]] = []
    todo = [getattr(api, n) for n in api.__all__]
    while todo:
        cls = todo.pop()
        if not (isinstance(cls, type) and issubclass(cls, ApiModel)) or cls in seen:
            continue
        seen.append(cls)
        for field in cls.model_fields.values():
            todo.extend(_types_in(field.annotation))
    return seen


def _types_in(tp: Any) -> list[Any]:
    return [tp, *(t for arg in typing.get_args(tp) for t in _types_in(arg))]


def test_every_api_time_reads_a_zoneless_value_as_utc() -> None:
    """Every datetime field of every API type (status times, conditions, metadata):
    the same instant, in UTC."""
    checked = []
    for cls in _api_models():
        for name, field in cls.model_fields.items():
            if datetime not in _types_in(field.annotation):
                continue
            tp: Any = field.annotation
            if field.metadata:
                tp = Annotated[(tp, *field.metadata)]
            adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(tp)
            value = adapter.validate_python("2026-12-01T20:00:00")
            assert value == datetime(2026, 12, 1, 20, tzinfo=UTC), f"{cls.__name__}.{name}"
            zoned = adapter.validate_python("2026-12-01T22:00:00+02:00")
            assert zoned == datetime(2026, 12, 1, 20, tzinfo=UTC), f"{cls.__name__}.{name}"
            assert zoned.utcoffset() == timedelta(hours=2), "a zone given is kept"
            checked.append(f"{cls.__name__}.{name}")
    # The fields the operator reads back and compares with its clock are among them.
    for name in (
        "NodePoolStatus.scale_in_since",
        "FleetClusterStatus.health_since",
        "DecisionStatus.idle_since",
        "Condition.last_transition_time",
    ):
        assert name in checked, checked


async def test_a_scale_in_clock_in_the_future_counts_from_now() -> None:
    """A ``scaleInSince`` later than the operator's clock (another replica's clock ahead,
    a hand edit) held the warm nodes until that time plus the delay: a clock set a year
    ahead kept them a year. It counts from the first sizing after the restart instead
    (later than the bookings' drop, never sooner: the delay is still kept)."""
    world = await scaled_in(held=5, booked=3)
    world.clock.advance(300)
    await world.probe()
    body: dict[str, Any] = dump(world.fleet["east"])
    (pool,) = body["status"]["nodePools"]
    ahead = world.clock() + timedelta(days=365)
    pool["scaleInSince"] = ahead.isoformat()
    world.fleet["east"] = FleetCluster.model_validate(body)

    world.reconciler.ledger = PoolLedger()  # the operator restarts
    world.clock.advance(5)
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL][1] == 5, "the restart skipped the scale-in delay"
    world.clock.advance(601)
    await world.reconcile("a")
    assert world.pool_sizes("east")[POOL][1] == 3, "a clock in the future held the nodes"
