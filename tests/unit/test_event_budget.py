"""The per-object Event budget (client-go's spam filter): a burst, then a refill on an
injected clock, each object on its own, and a bounded table."""

from __future__ import annotations

import pytest

from modelfleet.event_budget import BURST, MAX_OBJECTS, REFILL_SECONDS, EventBudget, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def posted(budget: EventBudget, key: str, times: int) -> int:
    return sum(budget.take(key).post for _ in range(times))


def test_client_go_figures() -> None:
    # k8s.io/client-go/tools/record/events_cache.go: defaultSpamBurst, defaultSpamQPS,
    # maxLruCacheEntries.
    assert (BURST, REFILL_SECONDS, MAX_OBJECTS) == (25, 300.0, 4096)


def test_a_burst_then_nothing_until_a_token_refills() -> None:
    clock = Clock()
    budget = EventBudget(clock=clock)
    assert posted(budget, "uid-a", 25) == 25
    assert budget.take("uid-a") is Verdict.DROP_FIRST  # said once...
    assert budget.take("uid-a") is Verdict.DROP  # ...then quiet
    assert budget.dropped == 2
    clock.now += 299.0
    assert not budget.take("uid-a").post
    clock.now += 1.0  # 300 s since the last post: one token
    assert budget.take("uid-a") is Verdict.POST
    assert budget.take("uid-a") is Verdict.DROP_FIRST  # said again after a post
    clock.now += 3 * 300.0
    assert posted(budget, "uid-a", 10) == 3
    assert budget.dropped == 3 + 1 + 7


def test_the_bucket_refills_to_the_burst_and_no_more() -> None:
    clock = Clock()
    budget = EventBudget(burst=3, refill_seconds=10.0, clock=clock)
    assert posted(budget, "a", 3) == 3
    clock.now += 1e6
    assert posted(budget, "a", 10) == 3


def test_each_object_has_its_own_budget() -> None:
    clock = Clock()
    budget = EventBudget(burst=2, refill_seconds=60.0, clock=clock)
    assert posted(budget, "tenant-a-route", 50) == 2
    assert posted(budget, "tenant-b-route", 5) == 2
    assert posted(budget, "tenant-c-deployment", 1) == 1


def test_objects_are_forgotten_once_their_bucket_is_full_again() -> None:
    clock = Clock()
    budget = EventBudget(burst=4, refill_seconds=10.0, clock=clock)
    for i in range(100):
        budget.take(f"uid-{i}")
    assert len(budget) == 100
    clock.now += 39.0  # not yet full again (4 x 10 s)
    budget.take("other")
    assert len(budget) == 101
    clock.now += 1.0
    budget.take("other")
    assert len(budget) == 1
    # Forgetting changed nothing: a forgotten object's bucket was full anyway.
    assert posted(budget, "uid-0", 10) == 4


def test_the_table_is_capped_least_recently_seen_first() -> None:
    clock = Clock()
    budget = EventBudget(burst=1, max_objects=3, clock=clock)
    for key in ("a", "b", "c"):
        assert budget.take(key).post
    assert not budget.take("a").post  # "a" is now the most recently seen
    assert budget.take("d").post  # evicts "b"
    assert len(budget) == 3
    assert not budget.take("a").post and not budget.take("c").post
    assert budget.take("b").post  # forgotten: a new bucket


@pytest.mark.parametrize(
    "kwargs",
    [{"burst": 0}, {"refill_seconds": 0.0}, {"refill_seconds": float("nan")}, {"max_objects": 0}],
)
def test_a_budget_that_would_drop_everything_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="burst >= 1"):
        EventBudget(**kwargs)  # type: ignore[arg-type]
