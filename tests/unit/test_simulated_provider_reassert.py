"""``SimulatedNodePoolProvider.reassert``: the simulator's baselines re-assert every pool's
size at every tick and skip ``ensure_pool`` when the pool already is that size. Two
providers on one clock go through the same random resizes, clock steps, spot reclaims,
stockouts, outages and injected errors, one always calling ``ensure_pool``, the other
``reassert`` first: every pool's nodes, ids, spec and report bookkeeping stay the same,
and so does every outcome of a resize (its error, or none)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from modelfleet.api import FleetCluster
from modelfleet.api.common import CapacityType
from modelfleet.core.from_api import declared_offerings
from modelfleet.providers import NotFound, PoolSpec, ProviderError, Throttled
from modelfleet.providers.simulated import SimulatedNodePoolProvider

T0 = datetime(2026, 1, 1, tzinfo=UTC)

CLUSTER = FleetCluster.model_validate(
    {
        "metadata": {"name": "sim-use1"},
        "spec": {
            "provider": "simulated",
            "region": "us-east-1",
            "simulated": {"provisioningSeconds": 60},
            "gpuOfferings": [
                {
                    "gpu": "H100",
                    "gpuMemoryGiB": 80,
                    "gpusPerNode": 8,
                    "instanceType": "p5.48xlarge",
                    "onDemandPerHour": 98.32,
                    "spotPerHour": 39.2,
                    "maxNodes": 6,
                },
                {
                    "gpu": "L40S",
                    "gpuMemoryGiB": 48,
                    "gpusPerNode": 4,
                    "instanceType": "g6e.12xlarge",
                    "onDemandPerHour": 10.5,
                },
            ],
        },
    }
)
OFFERINGS = {o.instance_type: o for o in declared_offerings(CLUSTER)}
POOLS: list[tuple[str, CapacityType]] = [
    ("p5.48xlarge", "OnDemand"),
    ("p5.48xlarge", "Spot"),
    ("g6e.12xlarge", "OnDemand"),
]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _spec(instance_type: str, capacity: CapacityType, nodes: int) -> PoolSpec:
    offering = OFFERINGS[instance_type]
    return PoolSpec(cluster="sim-use1", offering=offering, capacity_type=capacity, nodes=nodes)


def _state(provider: SimulatedNodePoolProvider) -> object:
    """Everything a pool holds (read without a call, so without side effects)."""
    return {
        key: (pool.spec, pool.node_ready_at, pool.node_ids, pool.reclaimed, pool.ever_ready)
        for key, pool in provider._pools.items()
    }


async def _resize(provider: SimulatedNodePoolProvider, spec: PoolSpec, fast: bool) -> object:
    if fast and provider.reassert(spec):
        return "kept"
    try:
        await provider.ensure_pool(spec)
    except ProviderError as exc:
        return type(exc)
    return "kept"


@pytest.mark.parametrize("seed", range(8))
async def test_reassert_leaves_every_pool_as_ensure_pool_does(seed: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    slow = SimulatedNodePoolProvider(CLUSTER, clock=clock)
    fast = SimulatedNodePoolProvider(CLUSTER, clock=clock)
    sizes = {pool: 0 for pool in POOLS}
    skipped = 0
    for _ in range(400):
        op = rng.randrange(20)
        if op < 4:
            clock.now += timedelta(seconds=rng.choice((5, 30, 61)))
        elif op == 4:
            n = rng.randrange(3)
            assert slow.reclaim_spot(nodes=n) == fast.reclaim_spot(nodes=n)
        elif op == 5:
            until = clock.now + timedelta(seconds=90)
            capacity: CapacityType = rng.choice(("Spot", "OnDemand"))
            for p in (slow, fast):
                p.inject_stockout("p5.48xlarge", capacity, until=until)
        elif op == 6:
            for p in (slow, fast):
                p.inject_outage(until=clock.now + timedelta(seconds=20))
        elif op == 7:
            for p in (slow, fast):
                p.fail_next(Throttled("slow down"))
        else:
            pool = rng.choice(POOLS)
            if rng.random() < 0.3:  # a new size, else the one asked last (the common case)
                sizes[pool] = rng.randrange(5)
            spec = _spec(*pool, sizes[pool])
            before = fast.calls[:]
            outcome = await _resize(fast, spec, True)
            skipped += fast.calls == before
            assert await _resize(slow, spec, False) == outcome
        assert _state(fast) == _state(slow)
        assert fast.node_counts() == slow.node_counts()
    assert skipped > 50  # the fast path ran, often
    # The pools report the same, read through the provider contract.
    clock.now += timedelta(hours=1)
    for pool in POOLS:
        spec = _spec(*pool, sizes[pool])
        got: object
        want: object
        try:
            got = await fast.get_pool(spec)
        except (NotFound, Throttled) as exc:  # no such pool; an injected error left over
            got = type(exc)
        try:
            want = await slow.get_pool(spec)
        except (NotFound, Throttled) as exc:
            want = type(exc)
        assert got == want
