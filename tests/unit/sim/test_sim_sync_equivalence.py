"""The kubelet model skips a pool whose pods are settled (``fleet._settled``: as many as
wanted, in the sync's order, the bound ones within the nodes' GPUs, no room for a pending
one): the same world, tick by
tick, as working every pool through (the code it replaced, kept here as the reference),
over a spot reclaim wave and a region outage, under modelfleet and a baseline."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from modelfleet.sim import fleet
from modelfleet.sim.engine import PolicyRun, run_policy
from modelfleet.sim.fleet import ClusterTwin, FleetWorld, Pod, PoolKey
from modelfleet.sim.scenario import load_scenario

ROOT = Path(__file__).parents[3]


def _sync_pools_as_it_was(
    self: FleetWorld,
    twin: ClusterTwin,
    counts: dict[PoolKey, tuple[int, int]],
    now: float,
    dt: float,
    lost: dict[str, int],
) -> None:
    """``FleetWorld._sync_pools`` as it was: every pool worked through at every tick."""
    wanted: dict[PoolKey, dict[tuple[str, str], int]] = defaultdict(dict)
    for (md, name, instance_type, cap), n in twin.desired.items():
        wanted[(instance_type, cap)][(md, name)] = n
    # Sorted: set order varies with string hashing between processes, and the order
    # pods are created in decides which start time each draws (determinism).
    for pool in sorted(set(wanted) | set(twin.pods)):
        pods = twin.pods[pool]
        want = wanted.get(pool, {})
        # Deployment controller: match each workload's pod count.
        have: dict[tuple[str, str], list[Pod]] = defaultdict(list)
        for pod in pods:
            have[(pod.md, pod.workload)].append(pod)
        kept: list[Pod] = []
        for key in sorted(set(have) | set(want)):
            mine = have.get(key, [])
            n = want.get(key, 0)
            if len(mine) > n:
                # Scale in: pending first, then not ready, then the newest.
                mine.sort(
                    key=lambda p: (p.scheduled is not None, p.ready(now), -(p.scheduled or 0.0))
                )
                mine = mine[len(mine) - n :]
            elif len(mine) < n:
                md, workload = key
                gpus = self.gpus_per_replica.get(md, 1)
                mine = mine + [Pod(md, workload, gpus, now) for _ in range(n - len(mine))]
            kept.extend(mine)
        offering = twin.offerings.get(pool[0])
        capacity = counts.get(pool, (0, 0))[0] * (offering.gpus_per_node if offering else 0)
        bound = sorted(
            (p for p in kept if p.scheduled is not None), key=lambda p: p.scheduled or 0.0
        )
        used = sum(p.gpus for p in bound)
        while used > capacity and bound:
            # Nodes went away: the newest pods lose their place (abruptly).
            pod = bound.pop()
            used -= pod.gpus
            if pod.ready(now):
                lost[pod.md] += 1
            pod.scheduled = None
            pod.ready_at = None
            pod.seen_ready = False
        node_times: list[float] | None = None
        for pod in kept:
            if pod.scheduled is None and used + pod.gpus <= capacity:
                bound_at = now
                if pod.created < now and offering is not None:
                    # Waiting since an earlier tick: bound when the node it needed got
                    # Ready, if that was since the last tick (else the room was made
                    # at this one, by a pod leaving).
                    if node_times is None:
                        node_times = [
                            (t - self.clock.start).total_seconds()
                            for t in twin.provider.ready_node_times(*pool)
                        ]
                    nodes = -(-(used + pod.gpus) // offering.gpus_per_node)
                    if 0 < nodes <= len(node_times) and node_times[nodes - 1] > now - dt:
                        bound_at = max(pod.created, node_times[nodes - 1])
                pod.scheduled = bound_at
                pod.ready_at = bound_at + self._starts.draw(twin.name, pod.md)
                used += pod.gpus
        twin.pods[pool] = kept
    for pool in [p for p, pods in twin.pods.items() if not pods]:
        del twin.pods[pool]


def _fingerprint(run: PolicyRun) -> list[object]:
    """Everything the report reads from the world and the serving, as bytes or values."""
    world = run.world
    assert isinstance(world, FleetWorld)
    out: list[object] = [
        run.cost.tobytes(),
        run.gpus.tobytes(),
        run.on_demand_cost.tobytes(),
        [(k, a.tobytes()) for k, a in sorted(run.ready.items())],
        [(k, a.tobytes()) for k, a in sorted(run.desired.items())],
        [(k, a.tobytes()) for k, a in sorted(run.region_ready.items())],
        world.losses,
        world.became_ready,
        world.event_log,
    ]
    for key, d in sorted(run.load.deployments.items()):
        out.append((key, d.served.tobytes(), d.failed.tobytes(), d.wait.tobytes()))
    account = run.gpu_account
    assert account is not None
    out.append([(k, a.tobytes()) for k, a in sorted(account.gpus.items())])
    return out


@pytest.mark.parametrize(
    ("scenario", "hours", "policy"),
    [
        ("spot-reclaim.toml", 1.1, "modelfleet"),  # the reclaim at 1:00
        ("region-outage.toml", 2.0, "hpa-failover"),  # the outage at 1:30
    ],
)
def test_settled_pools_skipped_give_the_same_world(
    scenario: str, hours: float, policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_scenario(
        ROOT / "examples/scenarios" / scenario, overrides={"durationHours": hours}
    )
    seen = {True: 0, False: 0}
    settled = fleet._settled

    def counted(*args: object) -> bool:
        answer = settled(*args)  # type: ignore[arg-type]
        seen[answer] += 1
        return answer

    monkeypatch.setattr(fleet, "_settled", counted)
    new = run_policy(policy, loaded)  # type: ignore[arg-type]
    monkeypatch.setattr(FleetWorld, "_sync_pools", _sync_pools_as_it_was)
    old = run_policy(policy, loaded)  # type: ignore[arg-type]
    assert _fingerprint(new) == _fingerprint(old)
    assert new.world.losses  # the event took running replicas: evictions were compared
    # Both ways were taken: pools skipped, and pools scaled, bound or evicted.
    assert seen[True] > 2 * seen[False] > 0
