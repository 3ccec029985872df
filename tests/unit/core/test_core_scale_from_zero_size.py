"""Scale from zero sized for the demand (docs/decisions.md, "Scale from zero"): with a
capacity profile and a demand rate at zero replicas, the first step is the predictive count
for that rate, not one replica. One replica first meant a burst arriving at zero waited two
lead times: one replica starts, its load is seen only once it serves, then the rest start
(QA, 40 req/s at zero: 1 desired at minute 30, 4 at minute 36, 4 ready near minute 44)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from core_builders import cluster, offering, run, signals, spec

from modelfleet.core import ClusterSignals, DecisionState
from modelfleet.core.profiles import CapacityProfile, Workload
from modelfleet.core.types import GpuNeed

H100 = CapacityProfile("H100", 40_000.0, 4_000.0, source="Measured")
# 600 prompt + 250 output tokens: 600/40,000 + 250/4,000 = 0.0775 s -> 12.9 req/s per replica.


def _plan(rate: float | None, *, profiled: bool = True, hi: int = 40):  # type: ignore[no-untyped-def]
    s = spec(
        0,
        hi,
        gpu=GpuNeed(1),
        scaling={"ttft_p95_ms": 200.0, "headroom": 0.2, "predictor": "constant"},
    )
    s = replace(s, profiles=(H100,) if profiled else (), workload=Workload(600, 250))
    metrics = (
        signals(a=ClusterSignals(ready_replicas=0, request_rate=rate)) if rate is not None else None
    )
    return run(
        s,
        [cluster("a", offering(gpu="H100", od=10.0))],
        metrics=metrics,
        state=DecisionState(last_desired=0),
    )


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (40.0, 4),  # ceil(40 x 1.2 / 12.9) = ceil(3.72)
        (100.0, 10),  # ceil(9.3)
        (3.0, 1),  # a trickle still gets one replica
        (1000.0, 40),  # clamped to max
    ],
)
def test_the_first_step_from_zero_is_sized_for_the_demand(rate: float, expected: int) -> None:
    p = _plan(rate)
    assert p.desired_replicas == expected
    assert [c.code for c in p.changes][:1] == ["ScaleFromZero"]


def test_without_a_profile_the_first_step_is_one_replica() -> None:
    """No capacity to divide by: one replica, then the reactive rules on its own load."""
    assert _plan(40.0, profiled=False).desired_replicas == 1


def test_no_demand_at_zero_stays_at_zero() -> None:
    assert _plan(0.0).desired_replicas == 0
    assert _plan(None).desired_replicas == 0


@pytest.mark.parametrize(
    ("rate", "prefill", "decode"),
    [
        (1.7e308, 40_000.0, 4_000.0),  # a demand query answering near the float limit
        (5.0, 40_000.0, 1e-305),  # a declared profile of (almost) no decode capacity
        (5.0, 1e-305, 4_000.0),
    ],
)
def test_a_need_beyond_any_number_is_clamped_to_max_not_an_overflow(
    rate: float, prefill: float, decode: float
) -> None:
    """forecast x (1 + headroom) / capacity is +inf here; its ceil raised OverflowError,
    which failed every pass of the deployment (kopf retrying, status never written). Both
    inputs are finite and pass the schema (``minimum: 0``)."""
    profile = CapacityProfile("H100", prefill, decode, source="Declared")
    s = spec(
        0,
        40,
        gpu=GpuNeed(1),
        scaling={"ttft_p95_ms": 200.0, "headroom": 0.2, "predictor": "constant"},
    )
    s = replace(s, profiles=(profile,), workload=Workload(600, 250))
    p = run(
        s,
        [cluster("a", offering(gpu="H100", od=10.0))],
        metrics=signals(a=ClusterSignals(ready_replicas=0, request_rate=rate)),
        state=DecisionState(last_desired=0),
    )
    assert p.desired_replicas == 40
