"""The per-object Event budget (client-go's spam filter): a burst, then a refill on an
injected clock, each object on its own, and a bounded table."""

from __future__ import annotations

import pytest

from modelfleet.event_budget import (
    BURST,
    MAX_OBJECTS,
    MAX_REPEATS,
    REFILL_SECONDS,
    REPEAT_SECONDS,
    EventBudget,
    EventRepeats,
    Verdict,
)


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


# EventRepeats: an identical Event on one object is posted once per 10 minutes.


def test_repeats_use_client_go_aggregation_window() -> None:
    # k8s.io/client-go/tools/record/events_cache.go: defaultAggregateIntervalInSeconds,
    # maxLruCacheEntries.
    assert (REPEAT_SECONDS, MAX_REPEATS) == (600.0, 4096)


def _post_unless_repeat(repeats: EventRepeats, key: str, reason: str, message: str) -> bool:
    if repeats.repeat(key, "Warning", reason, message):
        return False
    repeats.posted(key, "Warning", reason, message)
    return True


def test_an_identical_event_is_not_posted_again_within_10_minutes() -> None:
    clock = Clock()
    repeats = EventRepeats(clock=clock)
    assert _post_unless_repeat(repeats, "uid-a", "NoCandidates", "no cluster fits")
    for _ in range(39):  # a pass every 15 s for 9 m 45 s
        clock.now += 15.0
        assert not _post_unless_repeat(repeats, "uid-a", "NoCandidates", "no cluster fits")
    assert repeats.deduplicated == 39
    clock.now += 14.9  # 599.9 s since it was posted (skipped repeats do not extend it)
    assert repeats.repeat("uid-a", "Warning", "NoCandidates", "no cluster fits")
    clock.now += 0.1  # 600 s
    assert _post_unless_repeat(repeats, "uid-a", "NoCandidates", "no cluster fits")
    clock.now += 599.0
    assert not _post_unless_repeat(repeats, "uid-a", "NoCandidates", "no cluster fits")


def test_another_message_type_reason_or_object_is_posted() -> None:
    clock = Clock()
    repeats = EventRepeats(clock=clock)
    assert _post_unless_repeat(repeats, "uid-a", "Placed", "Placed +2 replica(s) on east")
    assert _post_unless_repeat(repeats, "uid-a", "Placed", "Placed +1 replica(s) on east")
    assert _post_unless_repeat(repeats, "uid-a", "Removed", "Placed +2 replica(s) on east")
    assert _post_unless_repeat(repeats, "uid-b", "Placed", "Placed +2 replica(s) on east")
    assert not repeats.repeat("uid-a", "Normal", "Placed", "Placed +2 replica(s) on east")
    assert repeats.repeat("uid-a", "Warning", "Placed", "Placed +2 replica(s) on east")
    assert repeats.deduplicated == 1


def test_an_event_not_posted_is_no_repeat() -> None:
    # The caller records only what it posted (the budget may have dropped the first one).
    repeats = EventRepeats(clock=Clock())
    assert not repeats.repeat("uid-a", "Warning", "BudgetExceeded", "over")
    assert not repeats.repeat("uid-a", "Warning", "BudgetExceeded", "over")
    assert repeats.deduplicated == 0


def test_repeats_memory_is_bounded() -> None:
    clock = Clock()
    repeats = EventRepeats(max_events=3, clock=clock)
    for i in range(10):
        repeats.posted("uid-a", "Warning", "ClaimMissing", f"claim {i} not found")
        clock.now += 1.0
    assert len(repeats) == 3
    # The least recently posted went first: only the last 3 are still repeats.
    assert not repeats.repeat("uid-a", "Warning", "ClaimMissing", "claim 6 not found")
    assert repeats.repeat("uid-a", "Warning", "ClaimMissing", "claim 7 not found")
    assert repeats.repeat("uid-a", "Warning", "ClaimMissing", "claim 9 not found")
    # Posting again makes an Event the most recent: it outlives the older ones.
    repeats.posted("uid-a", "Warning", "ClaimMissing", "claim 7 not found")
    repeats.posted("uid-b", "Normal", "Placed", "x")
    assert repeats.repeat("uid-a", "Warning", "ClaimMissing", "claim 7 not found")
    assert not repeats.repeat("uid-a", "Warning", "ClaimMissing", "claim 8 not found")
    # Past the window, everything is forgotten.
    clock.now += REPEAT_SECONDS
    assert not repeats.repeat("uid-b", "Normal", "Placed", "x")
    assert len(repeats) == 0


@pytest.mark.parametrize("kwargs", [{"window_seconds": 0.0}, {"max_events": 0}])
def test_repeats_refuse_a_nonsense_configuration(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Event repeats need"):
        EventRepeats(**kwargs)  # type: ignore[arg-type]
