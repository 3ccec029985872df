"""Orphan pool GC: unneeded managed pools go to zero first, are deleted after the grace
period, and pools modelfleet does not own are never touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelfleet import labels
from modelfleet.providers.base import NodePool, PoolState, pool_id
from modelfleet.providers.gc import plan_orphan_gc, zero_size_spec

NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=30)
MANAGED_TAGS = {labels.MANAGED: "true", labels.CLUSTER: "aws-use1", labels.OFFERING: "g6e.xlarge"}


def pool(
    name: str,
    *,
    desired: int = 2,
    managed: bool = True,
    state: PoolState = "Active",
    capacity: str = "OnDemand",
) -> NodePool:
    return NodePool(
        name=name,
        instance_type="g6e.xlarge",
        capacity_type="Spot" if capacity == "Spot" else "OnDemand",
        desired_nodes=desired,
        ready_nodes=desired,
        state=state,
        managed=managed,
        tags=MANAGED_TAGS if managed else {"team": "ml"},
    )


def ago(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


# (case, pools, needed, orphan_since, scale_to_zero, delete, orphan_since after)
CASES = [
    ("needed pool untouched", [pool("a")], {"a"}, {}, [], [], {}),
    ("new orphan scaled to zero", [pool("a")], set(), {}, ["a"], [], {"a": NOW}),
    (
        "orphan within grace keeps clock",
        [pool("a")],
        set(),
        {"a": ago(10)},
        ["a"],
        [],
        {"a": ago(10)},
    ),
    (
        "orphan already at zero waits",
        [pool("a", desired=0)],
        set(),
        {"a": ago(10)},
        [],
        [],
        {"a": ago(10)},
    ),
    (
        "orphan past grace deleted",
        [pool("a", desired=0)],
        set(),
        {"a": ago(30)},
        [],
        ["a"],
        {"a": ago(30)},
    ),
    (
        "past grace deleted even if not yet zero",
        [pool("a")],
        set(),
        {"a": ago(45)},
        [],
        ["a"],
        {"a": ago(45)},
    ),
    ("needed again clears clock", [pool("a")], {"a"}, {"a": ago(20)}, [], [], {}),
    ("gone pool clears clock", [], set(), {"a": ago(20)}, [], [], {}),
    (
        "deleting pool gets no action",
        [pool("a", state="Deleting")],
        set(),
        {"a": ago(90)},
        [],
        [],
        {"a": ago(90)},
    ),
    ("unmanaged pool never touched", [pool("x", managed=False)], set(), {}, [], [], {}),
    (
        "unmanaged past 'grace' never deleted",
        [pool("x", managed=False, desired=0)],
        set(),
        {"x": ago(999)},
        [],
        [],
        {},
    ),
    (
        "future clock clamped to now",
        [pool("a")],
        set(),
        {"a": NOW + timedelta(hours=1)},
        ["a"],
        [],
        {"a": NOW},
    ),
    (
        "mixed",
        [pool("a"), pool("b", desired=0), pool("c"), pool("x", managed=False)],
        {"c"},
        {"b": ago(31)},
        ["a"],
        ["b"],
        {"a": NOW, "b": ago(31)},
    ),
]


@pytest.mark.parametrize(
    ("pools", "needed", "since", "scaled", "deleted", "after"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_plan_orphan_gc(
    pools: list[NodePool],
    needed: set[str],
    since: dict[str, datetime],
    scaled: list[str],
    deleted: list[str],
    after: dict[str, datetime],
) -> None:
    actions = plan_orphan_gc(pools, needed, orphan_since=since, now=NOW, grace=GRACE)
    assert [p.name for p in actions.scale_to_zero] == scaled
    assert [p.name for p in actions.delete] == deleted
    assert dict(actions.orphan_since) == after


def test_a_pool_is_never_deleted_the_run_it_is_first_orphaned() -> None:
    actions = plan_orphan_gc([pool("a", desired=0)], set(), orphan_since={}, now=NOW, grace=GRACE)
    assert actions.delete == ()
    later = plan_orphan_gc(
        [pool("a", desired=0)],
        set(),
        orphan_since=actions.orphan_since,
        now=NOW + GRACE,
        grace=GRACE,
    )
    assert [p.name for p in later.delete] == ["a"]


@pytest.mark.parametrize("capacity", ["OnDemand", "Spot"])
def test_zero_size_spec_addresses_the_same_pool(capacity: str) -> None:
    spec = zero_size_spec(pool("mf-x", capacity=capacity))
    assert spec.nodes == 0
    assert spec.capacity_type == capacity
    assert spec.pool_id == pool_id("aws-use1", "g6e.xlarge", capacity)


def test_zero_size_spec_refuses_untagged_pool() -> None:
    with pytest.raises(ValueError, match=r"modelfleet\.io/cluster"):
        zero_size_spec(pool("x", managed=False))
