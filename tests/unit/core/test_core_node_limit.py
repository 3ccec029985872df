"""The nodes a deployment may hold on a pool whose fleet is over its quota
(``core.placement.node_limit``, docs/decisions.md "Exact placement"): the pool closes to
growth, but the deployment keeps the use of the nodes it already holds. The fast path and
the MILP ask the same rule (they had diverged: the fast path counted another deployment's
overuse against the deployment's own nodes)."""

from __future__ import annotations

import pytest
from core_builders import spec

from modelfleet.core.candidates import Candidate
from modelfleet.core.placement import PlaceOptions, node_limit, place

POOL = ("c1", "g1", "OnDemand")
CAND = Candidate(
    order=0,
    key=POOL,
    cluster="c1",
    cloud="aws",
    region="r1",
    gpu="L40S",
    instance_type="g1",
    capacity_type="OnDemand",
    price=2.0,
    effective=2.0,
    replicas_per_node=1,
    max_nodes=4,
    preferred=False,
)


def test_an_over_quota_pool_leaves_the_deployment_its_own_nodes() -> None:
    assert node_limit(POOL, {POOL: -2}, {POOL: 3}) == 3
    assert node_limit(POOL, {POOL: 1}, {POOL: 3}) == 4
    assert node_limit(POOL, {POOL: None}, {POOL: 3}) is None
    assert node_limit(POOL, {}, {}) is None


@pytest.mark.parametrize("greedy", [True, False], ids=["fast-path", "default"])
def test_both_paths_bring_replicas_back_onto_own_nodes(greedy: bool) -> None:
    # The deployment holds 3 nodes of the pool, one with a replica still on it; another
    # deployment's nodes put the fleet 2 over the pool's quota. Back to 3 replicas: its own
    # two idle nodes take them (no new node), on the fast path as on the default one.
    result = place(
        spec(3, 3),
        main=3,
        standby=0,
        growth=[CAND],
        known={POOL: CAND},
        sticky={POOL: 1},
        free={POOL: -2},
        own_nodes={POOL: 3},
        on_demand_base=0,
        options=PlaceOptions(greedy=greedy),
    )
    assert result.counts == {POOL: 3}
