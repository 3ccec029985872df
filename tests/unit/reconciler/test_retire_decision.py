"""``decide_retire`` is pure: a table of (what the plan places, what runs where, health)
-> what may be removed now."""

from __future__ import annotations

import pytest

from modelfleet.clusters import ClusterUnreachable
from modelfleet.reconciler.observe import ClusterObservation, ObservedWorkload
from modelfleet.reconciler.retire import decide_retire


def _obs(cluster: str, *workloads: tuple[str, int, int], down: bool = False) -> ClusterObservation:
    """``cluster`` holding workloads (instance type, replicas, ready), all on-demand."""
    if down:
        return ClusterObservation(cluster, error=ClusterUnreachable("down", cluster=cluster))
    return ClusterObservation(
        cluster,
        workloads=tuple(
            ObservedWorkload(f"llama-{it}", it, "OnDemand", replicas, ready)
            for it, replicas, ready in workloads
        ),
    )


CASES = [
    # (id, planned, desired, observed, health, expected removals)
    (
        "replacement ready: old goes",
        {("west", "w", "OnDemand")},
        2,
        [_obs("east", ("e", 2, 2)), _obs("west", ("w", 2, 2))],
        {"east": "Healthy", "west": "Healthy"},
        {"east": ("llama-e",)},
    ),
    (
        "replacement not ready: old kept (make-before-break)",
        {("west", "w", "OnDemand")},
        2,
        [_obs("east", ("e", 2, 2)), _obs("west", ("w", 2, 1))],
        {"east": "Healthy", "west": "Healthy"},
        {},
    ),
    (
        "nothing placed (unplaced): the only replicas stay",
        set(),
        2,
        [_obs("east", ("e", 2, 2))],
        {"east": "Recovering"},
        {},
    ),
    (
        "Failed cluster that answers: nothing destructive, even when replaced",
        {("west", "w", "OnDemand")},
        2,
        [_obs("east", ("e", 2, 2)), _obs("west", ("w", 2, 2))],
        {"east": "Failed", "west": "Healthy"},
        {},
    ),
    (
        "Suspect cluster: nothing destructive",
        {("west", "w", "OnDemand")},
        2,
        [_obs("east", ("e", 2, 2)), _obs("west", ("w", 2, 2))],
        {"east": "Suspect", "west": "Healthy"},
        {},
    ),
    (
        "survivors on a Recovering cluster go once the replacements are ready",
        {("west", "w", "OnDemand")},
        2,
        [_obs("east", ("e", 2, 2)), _obs("west", ("w", 2, 2))],
        {"east": "Recovering", "west": "Healthy"},
        {"east": ("llama-e",)},
    ),
    (
        "a workload with no ready replica serves nothing: removable at once",
        {("west", "w", "OnDemand")},
        2,
        [_obs("east", ("e", 2, 0)), _obs("west", ("w", 2, 0))],
        {"east": "Healthy", "west": "Healthy"},
        {"east": ("llama-e",)},
    ),
    (
        "unreachable cluster: untouched",
        {("west", "w", "OnDemand")},
        2,
        [_obs("east", down=True), _obs("west", ("w", 2, 2))],
        {"east": "Healthy", "west": "Healthy"},
        {},
    ),
    (
        "planned workloads are never removed, only the unplanned one",
        {("east", "e", "OnDemand")},
        2,
        [_obs("east", ("e", 2, 2), ("old", 1, 1))],
        {"east": "Healthy"},
        {"east": ("llama-old",)},
    ),
    (
        "scale to zero: nothing must serve, everything unplanned goes",
        set(),
        0,
        [_obs("east", ("e", 1, 1))],
        {"east": "Healthy"},
        {"east": ("llama-e",)},
    ),
]


@pytest.mark.parametrize(
    ("planned", "desired", "observed", "health", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide_retire(
    planned: set[tuple[str, str, str]],
    desired: int,
    observed: list[ClusterObservation],
    health: dict[str, str],
    expected: dict[str, tuple[str, ...]],
) -> None:
    decision = decide_retire(
        planned=planned,
        desired=desired,
        observed={o.cluster: o for o in observed},
        health=health,
    )
    assert dict(decision.remove) == expected
    held = {o.cluster for o in observed} - set(expected)
    for name in held:
        unplanned = [
            w
            for w in (next(o for o in observed if o.cluster == name)).workloads
            if (name, w.instance_type, w.capacity_type) not in planned
        ]
        if unplanned or not next(o for o in observed if o.cluster == name).reachable:
            assert name in decision.held, f"{name}: kept without a reason"


def test_survivors_held_for_failback_stay_even_when_replaced() -> None:
    observed = [_obs("east", ("e", 2, 2)), _obs("west", ("w", 2, 2))]
    args = {
        "planned": {("west", "w", "OnDemand")},
        "desired": 2,
        "observed": {o.cluster: o for o in observed},
        "health": {"east": "Recovering", "west": "Healthy"},
    }
    assert dict(decide_retire(**args).remove) == {"east": ("llama-e",)}  # type: ignore[arg-type]
    held = decide_retire(**args, held={("east", "e", "OnDemand")})  # type: ignore[arg-type]
    assert dict(held.remove) == {}
    assert held.held["east"] == "held for failback"
