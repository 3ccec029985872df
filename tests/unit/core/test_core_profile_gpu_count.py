"""A capacity profile of another GPU count than the deployment's replicas (a breaker's
find, brk15a): ``modelfleet profile`` writes ``gpuCount: 1`` unless given ``--gpu-count``,
and a 2-GPU deployment patched with it was sized at **1 req/s per replica**: the profile
matched no replica (``best_profile`` needs the count), but the deployment still "had
profiles", so ``replica_capacity`` fell back to its no-profile unit of one replica's worth
and the autoscaler read that as 1 req/s (`modelfleet plan`: "forecast 40 req/s ... at 1
req/s per replica needs 48"). Profiles that describe none of its replicas now count as
none: the capacity is learned online, as the docs say of a deployment without profiles."""

from __future__ import annotations

from dataclasses import replace

from core_builders import cluster, existing, offering, run, signals, spec

from modelfleet.core import ClusterSignals, DecisionState
from modelfleet.core.profiles import CapacityProfile, Workload, applicable, replica_capacity
from modelfleet.core.types import GpuNeed

ONE_GPU = CapacityProfile("H100", 40_000.0, 4_000.0, gpu_count=1, source="Measured")
SLO = {"ttft_p95_ms": 200.0, "tpot_p95_ms": 50.0, "headroom": 0.2}


def _two_gpu(profiles: tuple[CapacityProfile, ...]):  # type: ignore[no-untyped-def]
    base = spec(1, 64, gpu=GpuNeed(2), scaling=SLO)
    return replace(base, profiles=profiles, workload=Workload(600, 250))


def test_a_profile_of_another_gpu_count_applies_to_no_replica() -> None:
    assert applicable((ONE_GPU,), 2) == ()
    assert applicable((ONE_GPU,), 1) == (ONE_GPU,)
    anycount = replace(ONE_GPU, gpu_count=None)
    assert applicable((ONE_GPU, anycount), 2) == (anycount,)


def test_a_two_gpu_deployment_with_a_one_gpu_profile_plans_as_without_profiles() -> None:
    fleet = [cluster("a", offering(gpu="H100", per_node=8, od=98.0))]
    busy = ClusterSignals(ready_replicas=2, ttft_p95_ms=150, tpot_p95_ms=30, request_rate=40.0)

    def plan_of(profiles: tuple[CapacityProfile, ...]):  # type: ignore[no-untyped-def]
        return run(
            _two_gpu(profiles),
            fleet,
            placements=(existing("a", replicas=2),),
            metrics=signals(a=busy),
            state=DecisionState(last_desired=2),
        )

    with_profile, without = plan_of((ONE_GPU,)), plan_of(())
    assert with_profile.desired_replicas == without.desired_replicas, with_profile.reasons
    assert with_profile.desired_replicas < 10  # was 48: 40 x 1.2 at "1 req/s per replica"
    assert replica_capacity(_two_gpu((ONE_GPU,)), offering(gpu="H100", per_node=8)) == 1.0
