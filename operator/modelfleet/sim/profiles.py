"""Capacity profiles in the simulator: the world's truth, and what a policy is allowed to know.

``true_capacity`` is the highest rate (requests/s per replica) at which the world's serving
model (``sim/serving.py``) keeps a request with a 95th-percentile prompt within the TTFT
objective (queue wait of one replica's slots included) and the step time within the TPOT
objective. The ``oracle`` policy reads it directly.

A modelfleet policy reads *measured* profiles instead, as it would after running
``modelfleet profile`` on real hardware: the truth times ``1 + e``, with ``e`` drawn once
per (run seed, GPU type) uniformly in ``[-profileError, +profileError]`` (``world.control
.profileError``, 0.15 by default: a load test on a different day, driver or prompt set is
typically that far off). The online correction of ``core.profiles`` must absorb the error.
"""

from __future__ import annotations

import zlib

import numpy as np

from modelfleet.api import ModelDeployment
from modelfleet.api.profiles import (
    CapacityProfileSpec,
    ProfileMeasurement,
    ProfilePoint,
    WorkloadMix,
)
from modelfleet.sim.serving import ReplicaModel, waiting_time
from modelfleet.sim.traffic import Traffic


def true_capacity(
    model: ReplicaModel,
    *,
    ttft_ms: float | None,
    tpot_ms: float | None,
    prompt_p95: float,
) -> float:
    """Requests/s per replica within the objectives (bisection over ``[0, mu_max]``);
    0.0 when even an idle replica misses them."""

    def meets(lam: float) -> bool:
        tau = model.step_time(lam)
        if tpot_ms is not None and tau * 1000.0 > tpot_ms:
            return False
        if ttft_ms is None:
            return lam <= 0.95 * model.mu_max
        batch = model.batch(lam)
        service = batch / lam if lam > 0 else 0.0
        wait = waiting_time(batch / model.concurrency, model.concurrency, service)
        return model.ttft_s(lam, prompt_p95, wait=wait, residual=1.0) * 1000.0 <= ttft_ms

    if not meets(0.0):
        return 0.0
    lo, hi = 0.0, model.mu_max * 0.95
    if meets(hi):
        return hi
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if meets(mid) else (lo, mid)
    return lo


SWEEP_LOADS = (0.25, 0.5, 0.625, 0.75, 0.875, 1.0, 1.125, 1.25)
"""Rates of the simulated ``modelfleet profile`` sweep, as fractions of the true capacity
(the real search's geometric climb and bisection land on a handful of rates like these)."""


def sweep(
    model: ReplicaModel, *, truth: float, factor: float, prompt_p95: float
) -> list[ProfilePoint]:
    """The latency-vs-load points a ``modelfleet profile`` run would write: at true rate
    ``u x truth`` the world's TTFT p95 (a 95th-percentile prompt, queue wait included, the
    whole current step to finish) and TPOT (the step time), recorded at rate ``u x truth x
    factor``: the sweep carries the same drawn error as the capacity point."""
    points = []
    for u in SWEEP_LOADS:
        lam = u * truth
        tau = model.step_time(lam)
        batch = model.batch(lam)
        # Past saturation the replica serves mu_max, not lam (step_time and batch clamp the
        # rate the same way): dividing by lam would shorten the service time as the rate
        # rises and make the queue wait, and so the TTFT p95, fall (a curve the API rejects).
        served = min(lam, model.mu_max)
        service = batch / served if served > 0 else 0.0
        wait = waiting_time(batch / model.concurrency, model.concurrency, service)
        ttft = model.ttft_s(lam, prompt_p95, wait=wait, residual=1.0)
        points.append(
            ProfilePoint(
                requests_per_second=round(lam * factor, 3),
                ttft_p95_ms=round(min(ttft * 1000.0, 1e7), 1),
                tpot_p95_ms=round(tau * 1000.0, 2),
            )
        )
    return points


def profile_error(seed: int, gpu: str, bound: float) -> float:
    """The measurement error of ``gpu``'s profiles in a run: uniform in [-bound, bound],
    the same for every deployment and policy of the run."""
    rng = np.random.default_rng((seed * 7_919 + zlib.crc32(gpu.encode())) % 2**32)
    return float(rng.uniform(-bound, bound))


def measured_profiles(
    md: ModelDeployment,
    models: tuple[ReplicaModel, ...],
    traffic: Traffic,
    *,
    seed: int,
    error: float,
) -> ModelDeployment:
    """``md`` with ``spec.capacityProfiles`` as a ``modelfleet profile`` run would have
    written them (truth x (1 + per-GPU error), with the latency-vs-load sweep
    at rates carrying the same error: ``sweep``) and ``spec.workload`` set to the traffic's
    mean lengths. Leaves profiles the manifest already declares in place."""
    if md.spec.capacity_profiles:
        return md
    slo = md.spec.slo
    prompt_p95 = traffic.prompt_p95
    prompt, output = traffic.prompt_mean, traffic.output_mean
    profiles = []
    for model in models:
        truth = true_capacity(
            model, ttft_ms=slo.ttft_p95_ms, tpot_ms=slo.tpot_p95_ms, prompt_p95=prompt_p95
        )
        factor = 1.0 + profile_error(seed, model.gpu, error)
        prefill = model.prefill_rate * factor
        measured = truth * factor
        if measured <= 0:
            decode = 0.0
        else:
            per_request = 1.0 / measured - prompt / prefill
            decode = output / per_request if per_request > 0 else 0.0
        profiles.append(
            CapacityProfileSpec(
                gpu=model.gpu,
                gpu_count=md.spec.resources.gpu.count,
                prefill_tokens_per_second=round(prefill, 1) if decode > 0 else 0.0,
                decode_tokens_per_second=round(decode, 1),
                source="Measured",
                prompt_tokens=round(prompt, 1),
                output_tokens=round(output, 1),
                measurement=ProfileMeasurement(
                    requests_per_second=round(measured, 3),
                    curve=sweep(model, truth=truth, factor=factor, prompt_p95=prompt_p95),
                )
                if measured > 0
                else None,
            )
        )
    spec = md.spec.model_copy(
        update={
            "capacity_profiles": profiles,
            "workload": WorkloadMix(prompt_tokens=prompt, output_tokens=output),
        }
    )
    return md.model_copy(update={"spec": spec})
