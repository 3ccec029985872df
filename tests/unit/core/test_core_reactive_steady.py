"""Predictive mode with a profile: the reactive latency ratio raises the count only on a
steady fleet (docs/decisions.md section 1). While placed replicas start, a breach is their
backlog: the count holds at max(forecast count, placed) instead of ready x ratio."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from core_builders import cluster, existing, offering, run, signals, spec

from modelfleet.core import ClusterSignals, DecisionState
from modelfleet.core.profiles import CapacityProfile, Workload
from modelfleet.core.types import GpuNeed

H100 = CapacityProfile("H100", 40_000.0, 4_000.0, source="Measured")
CAP = 1 / 0.0775  # 12.9 req/s per replica for the 600/250-token mix below


def _spec():  # type: ignore[no-untyped-def]
    return replace(
        spec(
            1,
            40,
            gpu=GpuNeed(1),
            scaling={"ttft_p95_ms": 200.0, "headroom": 0.2, "predictor": "constant"},
        ),
        profiles=(H100,),
        workload=Workload(600, 250),
    )


@pytest.mark.parametrize(
    ("placed", "ready", "rate", "ttft", "expected"),
    [
        # Steady (8 placed, 8 ready), TTFT 3x: reactive 8 x 3 = 24 wins over the forecast.
        (8, 8, 80.0, 600.0, 24),
        # 8 placed, 6 ready (two replacements starting), TTFT 3x: hold at the placed 8
        # (the forecast needs ceil(80 x 1.2 / 12.9) = 8), not 6 x 3 = 18.
        (8, 6, 80.0, 600.0, 8),
        # Starting, but the rate itself needs more: the forecast count (120 req/s -> 12).
        (8, 6, 120.0, 600.0, math.ceil(120.0 * 1.2 / CAP)),
        # No breach, steady: the forecast count.
        (8, 8, 80.0, 150.0, math.ceil(80.0 * 1.2 / CAP)),
    ],
)
def test_reactive_ratio_only_on_a_steady_fleet(
    placed: int, ready: int, rate: float, ttft: float, expected: int
) -> None:
    sig = ClusterSignals(ready_replicas=ready, ttft_p95_ms=ttft, request_rate=rate)
    p = run(
        _spec(),
        [cluster("a", offering(gpu="H100", od=10.0))],
        placements=(existing("a", replicas=placed, ready=ready),),
        metrics=signals(a=sig),
        state=DecisionState(last_desired=placed),
    )
    assert p.desired_replicas == expected
