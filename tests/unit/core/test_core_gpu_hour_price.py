"""The placement's GPU-hour shadow price (``PlannerSettings.gpu_hour_price``, docs/decisions.md
section 2): at about the same price per unit of capacity, the offering that needs fewer GPUs
for it wins; the reported cost stays the node prices."""

from __future__ import annotations

from dataclasses import replace

import pytest
from core_builders import cluster, offering, placed, run, spec

from modelfleet.core import DecisionState
from modelfleet.core.profiles import CapacityProfile, Workload
from modelfleet.core.types import DEFAULT_SETTINGS, GpuNeed

# 1,000-token prompts, 100 output tokens: 1.0 req/s on the L40S, 2.0 on the A100.
SLOW = CapacityProfile("L40S", 2_000.0, 200.0, source="Measured")
FAST = CapacityProfile("A100", 4_000.0, 400.0, source="Measured")


def _spec():  # type: ignore[no-untyped-def]
    return replace(
        spec(4, 8, gpu=GpuNeed(1, 40)), profiles=(SLOW, FAST), workload=Workload(1_000, 100)
    )


FLEET = [
    cluster(
        "a",
        offering("l40s", gpu="L40S", mem=48, od=1.00),  # $1.00 per req/s
        offering("a100", gpu="A100", mem=80, od=2.10),  # $1.05 per req/s
    )
]


@pytest.mark.parametrize(
    ("price", "chosen", "cost"),
    [
        # No shadow price: the L40S is 5% cheaper per unit of capacity: 4 x $1.00.
        (0.0, "l40s", 4.0),
        # $1 per GPU-hour (the default): (1.00 + 1) / 1.0 = 2.00 vs (2.10 + 1) / 2.0 = 1.55
        # per unit of capacity: the A100, with half the GPUs for the same capacity once the
        # autoscaler sizes with its profile. The plan's cost is the node prices: 4 x $2.10.
        (1.0, "a100", 8.4),
    ],
)
def test_gpu_hour_price_prefers_fewer_gpus_at_about_the_same_price(
    price: float, chosen: str, cost: float
) -> None:
    p = run(
        _spec(),
        FLEET,
        state=DecisionState(last_desired=4),
        settings=replace(DEFAULT_SETTINGS, gpu_hour_price=price),
    )
    assert {k[1] for k in placed(p)} == {chosen}
    assert p.cost_per_hour == pytest.approx(cost)


def test_gpu_hour_price_never_picks_a_clearly_dearer_offering() -> None:
    # The A100 at $3.50 is $1.75 per req/s, 75% dearer than the L40S: with the shadow price
    # it is (3.50 + 1) / 2.0 = 2.25 against (1.00 + 1) / 1.0 = 2.00: the L40S stays.
    fleet = [
        cluster(
            "a",
            offering("l40s", gpu="L40S", mem=48, od=1.00),
            offering("a100", gpu="A100", mem=80, od=3.50),
        )
    ]
    p = run(_spec(), fleet, state=DecisionState(last_desired=4))
    assert DEFAULT_SETTINGS.gpu_hour_price == 1.0
    assert {k[1] for k in placed(p)} == {"l40s"}
