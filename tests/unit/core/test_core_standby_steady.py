"""The warm standby is placed and serving (docs/decisions.md section 1): the steady-fleet
check of the reactive rule and of the online correction compare the ready replicas
(standby included) with desired + standby, and the reactive need
``ready x ratio`` counts the standby among the serving replicas."""

from __future__ import annotations

from dataclasses import replace

import pytest
from core_builders import cluster, existing, offering, run, signals, spec

from modelfleet.core import ClusterSignals, DecisionState
from modelfleet.core.profiles import CapacityProfile, Workload
from modelfleet.core.types import GpuNeed

H100 = CapacityProfile("H100", 40_000.0, 4_000.0, source="Measured")
CAP = 1 / 0.0775  # 12.9 req/s per replica for the 600/250-token mix below


def _spec(standby: int = 1):  # type: ignore[no-untyped-def]
    return replace(
        spec(
            1,
            40,
            gpu=GpuNeed(1),
            scaling={"ttft_p95_ms": 200.0, "headroom": 0.2, "predictor": "constant"},
            failover={"warm_standby_replicas": standby},
        ),
        profiles=(H100,),
        workload=Workload(600, 250),
    )


@pytest.mark.parametrize(
    ("ready_a", "ready_b", "expected"),
    [
        # 3 desired + 1 standby placed, all 4 ready, TTFT 3x: 4 serving x 3 = 12 serving
        # replicas, one of them the standby placed on top: 11 desired (not 12).
        (3, 1, 11),
        # 3 desired + 1 standby placed, 3 ready (the standby's replacement starting): not
        # steady, the breach is backlog: hold at the placed count (the forecast needs
        # ceil(30 x 1.2 / 12.9) = 3), not 3 x 3 = 9 (what comparing 3 ready with 3
        # desired, standby left out, decided).
        (3, 0, 3),
    ],
)
def test_reactive_rule_counts_the_standby(ready_a: int, ready_b: int, expected: int) -> None:
    sig = ClusterSignals(ready_replicas=ready_a + ready_b, ttft_p95_ms=600.0, request_rate=30.0)
    p = run(
        _spec(),
        [
            cluster("a", offering(gpu="H100", od=10.0)),
            cluster("b", offering(gpu="H100", od=12.0)),
        ],
        placements=(existing("a", replicas=3, ready=ready_a), existing("b", ready=ready_b)),
        metrics=signals(a=sig),
        state=DecisionState(last_desired=3),
    )
    assert p.desired_replicas == expected
    assert p.standby_replicas == 1
