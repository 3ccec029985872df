"""``labels.zoned_time``: the one reader of the RFC 3339 times the wake-up annotation and a
demand Lease's ``spec.renewTime`` carry (the gateway, the relay, the sweep and the
reconciler all read them through it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from modelfleet.labels import zoned_time


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-12-01T12:00:00Z", datetime(2026, 12, 1, 12, tzinfo=UTC)),
        ("2026-12-01T12:00:00.123456Z", datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        (
            " 2026-12-01T12:00:00+02:00 ",
            datetime(2026, 12, 1, 12, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_a_zoned_time_is_read(raw: str, expected: datetime) -> None:
    assert zoned_time(raw) == expected


@pytest.mark.parametrize("raw", ["2026-12-01T12:00:00", "", "yesterday", None, 5, ["x"]])
def test_anything_else_is_none_never_an_error(raw: object) -> None:
    # A time without a zone is ambiguous between the gateway's and the operator's clocks.
    assert zoned_time(raw) is None
