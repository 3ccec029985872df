"""``hold_scale_in`` is pure: a table of (what the plan places, what runs where, health)
-> the replica counts applied now. A move between pools lowers one pool only as far as
the deployment's other Ready replicas still cover the desired count (make-before-break);
a plain scale-in (load fell) is not held."""

from __future__ import annotations

import pytest

from modelfleet.clusters import ClusterUnreachable
from modelfleet.clusters.workloads import WorkloadPlacement
from modelfleet.reconciler.observe import ClusterObservation, ObservedWorkload
from modelfleet.reconciler.retire import hold_scale_in


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


def _plan(**by_cluster: dict[str, int]) -> dict[str, list[WorkloadPlacement]]:
    return {
        c: [WorkloadPlacement(c, it, "OnDemand", n) for it, n in pools.items()]
        for c, pools in by_cluster.items()
    }


HEALTHY = {"east": "Healthy", "west": "Healthy"}

CASES = [
    # (id, plan, desired, observed, health, applied now)
    (
        "move 3 of 6 east -> west, west not ready: east held at 6",
        _plan(east={"e": 3}, west={"w": 3}),
        6,
        [_obs("east", ("e", 6, 6)), _obs("west", ("w", 3, 0))],
        HEALTHY,
        {"east": {"e": 6}, "west": {"w": 3}},
    ),
    (
        "move half done (west 2 of 3 ready): east gives up 2",
        _plan(east={"e": 3}, west={"w": 3}),
        6,
        [_obs("east", ("e", 6, 6)), _obs("west", ("w", 3, 2))],
        HEALTHY,
        {"east": {"e": 4}, "west": {"w": 3}},
    ),
    (
        "move done: east lowered to the plan",
        _plan(east={"e": 3}, west={"w": 3}),
        6,
        [_obs("east", ("e", 6, 6)), _obs("west", ("w", 3, 3))],
        HEALTHY,
        {"east": {"e": 3}, "west": {"w": 3}},
    ),
    (
        "plain scale-in (load fell, 8 ready for 5): not held",
        _plan(east={"e": 5}),
        5,
        [_obs("east", ("e", 8, 8))],
        {"east": "Healthy"},
        {"east": {"e": 5}},
    ),
    (
        "replicas not Ready go at once",
        _plan(east={"e": 2}, west={"w": 2}),
        4,
        [_obs("east", ("e", 4, 2)), _obs("west", ("w", 2, 0))],
        HEALTHY,
        {"east": {"e": 2}, "west": {"w": 2}},
    ),
    (
        "Ready replicas on a Failed cluster cover nothing (and are not lowered either)",
        _plan(east={"e": 2}, west={"w": 2}),
        4,
        [_obs("east", ("e", 4, 4)), _obs("west", ("w", 4, 4))],
        {"east": "Healthy", "west": "Failed"},
        {"east": {"e": 4}, "west": {"w": 4}},
    ),
    (
        "an unreachable cluster covers nothing",
        _plan(east={"e": 2}),
        2,
        [_obs("east", ("e", 4, 4)), _obs("west", down=True)],
        HEALTHY,
        {"east": {"e": 2}},
    ),
    (
        "scale-up untouched",
        _plan(east={"e": 5}),
        5,
        [_obs("east", ("e", 3, 3))],
        {"east": "Healthy"},
        {"east": {"e": 5}},
    ),
]


@pytest.mark.parametrize(
    ("plan", "desired", "observed", "health", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_hold_scale_in(
    plan: dict[str, list[WorkloadPlacement]],
    desired: int,
    observed: list[ClusterObservation],
    health: dict[str, str],
    expected: dict[str, dict[str, int]],
) -> None:
    got = hold_scale_in(
        plan, desired=desired, observed={o.cluster: o for o in observed}, health=health
    )
    assert {c: {p.instance_type: p.replicas for p in ps} for c, ps in got.items()} == expected
