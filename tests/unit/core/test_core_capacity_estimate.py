"""A GPU type no capacity profile covers, while others are profiled (brk15a G1,
docs/decisions.md "Predictive mode"): its capacity is the profiled ones' scaled by the
data-sheet figures (``core.gpus``), never above any measured GPU, and a GPU the table does
not know is not a candidate. Before, every unprofiled GPU got the smallest profiled
capacity: with an H100 profile of 12.9 req/s an L40S counted as 12.9 req/s and, cheaper
per replica, was placed first."""

from __future__ import annotations

from dataclasses import replace

import pytest
from core_builders import cluster, offering, placed, run, spec

from modelfleet.core import DecisionState
from modelfleet.core import reasons as R
from modelfleet.core.gpus import DATASHEETS, speed_ratio
from modelfleet.core.profiles import CapacityProfile, Workload, capacity_basis, replica_capacity
from modelfleet.core.types import DeploymentSpec
from modelfleet.sim.world import World

H100 = CapacityProfile("H100", 40_000.0, 4_000.0, source="Measured")  # 12.9 req/s at 600/250
H100_CAP = 1 / (600 / 40_000 + 250 / 4_000)


def _spec(*profiles: CapacityProfile) -> DeploymentSpec:
    return replace(spec(), profiles=profiles, workload=Workload(600, 250))


def test_an_unprofiled_gpu_is_scaled_by_the_slower_data_sheet_ratio() -> None:
    s = _spec(H100)
    l40s = capacity_basis(s, "L40S")
    # Bandwidth 0.864/3.35 = 0.258, BF16 181/989 = 0.183: the slower one.
    assert l40s.kind == "Estimated" and l40s.reference == "H100"
    assert l40s.ratio == pytest.approx(181 / 989)
    assert l40s.capacity == pytest.approx(H100_CAP * 181 / 989)
    # A100-80GB: BF16 312/989 = 0.315 below bandwidth 2.039/3.35 = 0.609.
    a100 = replica_capacity(s, offering(gpu="A100-80GB"))
    assert a100 == pytest.approx(H100_CAP * 312 / 989)
    # L4: bandwidth 0.3/3.35 = 0.0896 below BF16 121/989 = 0.122.
    l4 = replica_capacity(s, offering(gpu="L4"))
    assert l4 == pytest.approx(H100_CAP * 0.3 / 3.35)


def test_a_faster_unprofiled_gpu_is_capped_at_the_measured_one() -> None:
    """H200 has more bandwidth than H100 and the same BF16: the ratio is capped at 1."""
    assert speed_ratio("H200", "H100") == 1.0
    basis = capacity_basis(_spec(H100), "H200")
    assert basis.kind == "Estimated" and basis.capacity == pytest.approx(H100_CAP)
    # From a slow measured GPU, a fast one is never above it.
    l4 = CapacityProfile("L4", 6_000.0, 400.0, source="Measured")
    l4_cap = 1 / (600 / 6_000 + 250 / 400)
    assert replica_capacity(_spec(l4), offering(gpu="H100")) == pytest.approx(l4_cap)


def test_the_smallest_estimate_over_the_profiled_types_wins() -> None:
    """An H100 and a generous L4 profile: the A100's estimate is the smaller of
    H100 x 0.315 and L4 x 1 (A100 is faster than L4 on both figures: capped at 1)."""
    l4 = CapacityProfile("L4", 6_000.0, 400.0, source="Measured")
    l4_cap = 1 / (600 / 6_000 + 250 / 400)
    basis = capacity_basis(_spec(H100, l4), "A100")
    assert min(H100_CAP * 312 / 989, l4_cap) == pytest.approx(l4_cap)
    assert basis.reference == "L4" and basis.capacity == pytest.approx(l4_cap)


def test_a_gpu_no_faster_than_one_that_cannot_meet_the_slo_cannot_either() -> None:
    never = CapacityProfile("L40S", 0.0, 0.0, source="Measured")
    s = _spec(H100, never)
    assert replica_capacity(s, offering(gpu="L4")) == 0.0
    # A100-80GB is faster than L40S: the L40S verdict says nothing about it.
    a100 = capacity_basis(s, "A100-80GB")
    assert a100.reference == "H100" and a100.capacity == pytest.approx(H100_CAP * 312 / 989)


def test_a_gpu_the_table_does_not_know_is_not_a_candidate() -> None:
    s = _spec(H100)
    assert "MI300X" not in DATASHEETS
    basis = capacity_basis(s, "MI300X")
    assert basis.kind == "NoFigures" and basis.capacity == 0.0
    # Profiled only on a GPU the table does not know: nothing to scale from.
    odd = CapacityProfile("MI300X", 40_000.0, 4_000.0, source="Measured")
    assert capacity_basis(_spec(odd), "H100").kind == "NoFigures"
    # Without any profile every GPU counts the same, known to the table or not.
    assert replica_capacity(spec(), offering(gpu="MI300X")) == 1.0


def test_the_plan_places_by_the_estimate_and_says_so() -> None:
    """H100 at $10/h (12.9 req/s: $0.78 per req/s) and an unprofiled L40S at $2/h: sized at
    12.9 req/s it cost $0.16 per req/s and won; estimated at 2.36 it costs $0.85."""
    fleet = [
        cluster("a", offering("l40s", gpu="L40S", od=2.0), offering("h100", gpu="H100", od=10.0))
    ]
    p = run(_spec(H100), fleet, state=DecisionState(last_desired=1))
    assert set(k[1] for k in placed(p)) == {"h100"}
    estimated = [r for r in p.reasons if r.code == R.CAPACITY_ESTIMATED]
    assert [(r.cluster, r.offering) for r in estimated] == [("a", "l40s")]
    assert "estimated at 2.36 req/s per replica from the H100 profile" in estimated[0].message


def test_the_plan_leaves_out_a_gpu_without_figures_and_says_why() -> None:
    fleet = [
        cluster(
            "a",
            offering("mi", gpu="MI300X", mem=192, od=1.0),
            offering("h100", gpu="H100", od=10.0),
        )
    ]
    p = run(_spec(H100), fleet, state=DecisionState(last_desired=1))
    assert set(k[1] for k in placed(p)) == {"h100"}
    (why,) = [r for r in p.reasons if r.code == R.NO_CAPACITY_PROFILE]
    assert (why.cluster, why.offering) == ("a", "mi")
    assert "no profile and no data-sheet figures for GPU MI300X: add a profile" in why.message
    # Only that GPU on offer: nothing is placed, and Unplaced names the reason.
    q = run(_spec(H100), [cluster("a", offering("mi", gpu="MI300X", mem=192, od=1.0))])
    assert not placed(q)
    (unplaced,) = [r for r in q.reasons if r.code == R.UNPLACED]
    assert "NoCapacityProfile x1" in unplaced.message


def test_the_simulator_world_has_the_same_data_sheet_figures() -> None:
    """sim.world.GpuProfile defaults are built from core.gpus.DATASHEETS: one table."""
    world = World().gpus
    assert set(world) == set(DATASHEETS)
    for name, sheet in DATASHEETS.items():
        assert world[name].memory_bandwidth_tbs == sheet.memory_bandwidth_tbs
        assert world[name].dense_bf16_tflops == sheet.dense_bf16_tflops
        assert world[name].memory_gib == sheet.memory_gib
