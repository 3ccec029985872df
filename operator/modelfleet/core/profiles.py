"""Capacity profiles: what one replica sustains within the SLO, per GPU type and count.

A profile says how fast one replica works through the two phases of a request, as
aggregate throughputs at the highest load that still meets the deployment's TTFT and TPOT
objectives: ``prefill_tokens_per_second`` (prompt tokens) and
``decode_tokens_per_second`` (generated tokens). That form survives a change of request
mix: a request of ``P`` prompt and ``O`` output tokens occupies a replica for
``P / prefill + O / decode`` seconds of its capacity, so

    requests/s within the SLO = 1 / (P / prefill_tokens_per_second + O / decode_tokens_per_second)

Three sources, in this order of trust (``best_profile``): measured (``modelfleet
profile``), declared (written by hand in the ModelDeployment), and online correction (a
factor the autoscaler learns from observed latency against the profile's prediction,
``DecisionState.capacity_correction``), which only ever scales a profile that exists.

Placement ranks offerings by cost per unit of capacity (``cost_per_capacity``), so a slow
cheap GPU is never "cheapest" while it cannot meet the SLO: an offering whose profile
gives no capacity (0) is not a candidate at all. Pure: no I/O, no clock.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from modelfleet.core.gpus import DATASHEETS, speed_ratio
from modelfleet.core.latency_curve import CurvePoint

ProfileSource = Literal["Measured", "Declared"]
TRUST: dict[ProfileSource, int] = {"Measured": 2, "Declared": 1}
"""Higher wins when several profiles match one (GPU type, GPU count)."""

DEFAULT_PROMPT_TOKENS = 512.0
"""Mix assumed when neither the deployment nor the profile states one (prompt tokens)."""
DEFAULT_OUTPUT_TOKENS = 256.0
"""Mix assumed when neither the deployment nor the profile states one (output tokens)."""


@dataclass(frozen=True, slots=True)
class CapacityProfile:
    """One replica on ``gpu_count`` GPUs of type ``gpu``, within the deployment's SLO.

    Throughputs are tokens/s of the whole replica at its highest load within the SLO; 0
    means "cannot meet the SLO on this GPU" (never placed there). ``prompt_tokens`` and
    ``output_tokens`` are the mean lengths it was measured at (informational, and the mix
    used when the deployment declares none).
    """

    gpu: str
    prefill_tokens_per_second: float
    decode_tokens_per_second: float
    gpu_count: int | None = None
    source: ProfileSource = "Declared"
    prompt_tokens: float | None = None
    output_tokens: float | None = None
    curve: tuple[CurvePoint, ...] = ()
    """The measured latency-vs-load sweep, loads relative to the capacity point
    (``core.latency_curve``); () when the profile has none."""

    def requests_per_second(self, prompt_tokens: float, output_tokens: float) -> float:
        """Requests/s one replica sustains within the SLO at mean lengths ``prompt_tokens``
        and ``output_tokens`` (both >= 0); 0.0 when the profile says it cannot."""
        if self.prefill_tokens_per_second <= 0 or self.decode_tokens_per_second <= 0:
            return 0.0
        seconds = (
            max(0.0, prompt_tokens) / self.prefill_tokens_per_second
            + max(0.0, output_tokens) / self.decode_tokens_per_second
        )
        return math.inf if seconds <= 0 else 1.0 / seconds


@dataclass(frozen=True, slots=True)
class Workload:
    """Mean request lengths a deployment is sized for (tokens); None: not declared."""

    prompt_tokens: float | None = None
    output_tokens: float | None = None


def applicable(profiles: Iterable[CapacityProfile], gpu_count: int) -> tuple[CapacityProfile, ...]:
    """The profiles that can describe a replica on ``gpu_count`` GPUs: those without a
    count and those of that count (``best_profile`` never picks another). When none is
    left the deployment has no profile for its replicas, and its capacity is learned online
    as without any: a 1-GPU profile of a 2-GPU deployment (``modelfleet profile`` without
    ``--gpu-count 2``) used to leave it sized at 1 req/s per replica."""
    return tuple(p for p in profiles if p.gpu_count is None or p.gpu_count == gpu_count)


def best_profile(
    profiles: Iterable[CapacityProfile], gpu: str, gpu_count: int
) -> CapacityProfile | None:
    """The most trusted profile for ``gpu`` x ``gpu_count`` (measured over declared; a
    profile without a count matches any count), or None when there is none."""
    best: CapacityProfile | None = None
    for p in profiles:
        if p.gpu != gpu or (p.gpu_count is not None and p.gpu_count != gpu_count):
            continue
        exact = p.gpu_count is not None
        rank = (TRUST[p.source], exact)
        if best is None or rank > (TRUST[best.source], best.gpu_count is not None):
            best = p
    return best


def profiles_digest(profiles: tuple[CapacityProfile, ...], workload: Workload) -> str | None:
    """A short digest of what the online correction corrects: the profiles and the mix
    they are read at (16 hex digits, stable across processes: ``repr`` of frozen
    dataclasses of floats, ints and strings); None without profiles. The planner drops a
    correction learned against another digest (``DecisionState.corrected_profile``)."""
    if not profiles:
        return None
    return hashlib.sha256(repr((profiles, workload)).encode()).hexdigest()[:16]


def mix_of(workload: Workload, profile: CapacityProfile | None) -> tuple[float, float]:
    """The (prompt, output) mean lengths to size for: the deployment's, else the profile's
    measurement mix, else the defaults."""
    prompt = workload.prompt_tokens
    output = workload.output_tokens
    if prompt is None:
        prompt = profile.prompt_tokens if profile and profile.prompt_tokens else None
    if output is None:
        output = profile.output_tokens if profile and profile.output_tokens else None
    return (
        DEFAULT_PROMPT_TOKENS if prompt is None else prompt,
        DEFAULT_OUTPUT_TOKENS if output is None else output,
    )


def capacity_for(
    profiles: Iterable[CapacityProfile], workload: Workload, gpu: str, gpu_count: int
) -> float | None:
    """Requests/s one replica of ``gpu_count`` x ``gpu`` sustains within the SLO for
    ``workload``; None when no profile covers that GPU (unknown, not zero)."""
    return _capacity_for(tuple(profiles), workload, gpu, gpu_count)


@functools.lru_cache(maxsize=4096)
def _capacity_for(
    profiles: tuple[CapacityProfile, ...], workload: Workload, gpu: str, gpu_count: int
) -> float | None:
    # Memoised (pure; every argument is immutable): the planner asks for every candidate
    # of every deployment on every reconcile.
    profile = best_profile(profiles, gpu, gpu_count)
    if profile is None:
        return None
    prompt, output = mix_of(workload, profile)
    return profile.requests_per_second(prompt, output)


def cost_per_capacity(price_per_replica_hour: float, capacity: float | None) -> float:
    """USD per hour per request/s of capacity; the bare replica price when the capacity is
    unknown (no profile), ``inf`` when the profile says the GPU cannot meet the SLO."""
    if capacity is None:
        return price_per_replica_hour
    if capacity <= 0:
        return math.inf
    return price_per_replica_hour / capacity


class _GpuCount(Protocol):
    @property
    def count(self) -> int: ...


class ProfiledDeployment(Protocol):
    """What ``replica_capacity`` reads of a deployment: ``core.types.DeploymentSpec``.

    Structural, so that this module stays below ``core.types`` (whose ``DeploymentSpec``
    holds ``CapacityProfile`` and ``Workload``) instead of importing it back.
    """

    @property
    def profiles(self) -> tuple[CapacityProfile, ...]: ...

    @property
    def workload(self) -> Workload: ...

    @property
    def gpu(self) -> _GpuCount: ...


class GpuOffering(Protocol):
    """What ``replica_capacity`` reads of an offering (``core.types.Offering``): its GPU."""

    @property
    def gpu(self) -> str: ...


@dataclass(frozen=True, slots=True)
class CapacityBasis:
    """Where a replica's capacity on one GPU type comes from (``capacity_basis``).

    ``capacity``: requests/s one replica sustains within the SLO (0.0: not a candidate).
    ``kind``: ``"Profiled"`` (a profile of this GPU type), ``"Estimated"`` (scaled from the
    profile of ``reference`` by ``ratio``, ``core.gpus.speed_ratio``), ``"NoFigures"`` (no
    profile and no data-sheet figures to estimate from: 0.0), ``"Unprofiled"`` (the
    deployment has no profile for its replicas: 1.0, every offering counts the same).
    """

    capacity: float
    kind: Literal["Profiled", "Estimated", "NoFigures", "Unprofiled"]
    reference: str | None = None
    ratio: float = 1.0


def replica_capacity(spec: ProfiledDeployment, offering: GpuOffering) -> float:
    """Capacity of one replica of ``spec`` on ``offering``, for placement and autoscaling.

    Units: requests/s within the SLO at the deployment's mix when ``spec`` has profiles
    for its replicas' GPU count (``applicable``); when it has none at all, 1.0 (one
    replica's worth: every offering counts the same, the behaviour before profiles). An
    offering whose GPU no profile covers gets an estimate from the profiled ones
    (``capacity_basis``): ``min over profiled types P of cap(P) x min(1, bw(T)/bw(P),
    tflops(T)/tflops(P))`` with the data-sheet figures of ``core.gpus.DATASHEETS``, never
    above any measured GPU; 0.0 (not a candidate) when the table does not know its GPU.
    0.0 also when the profile says it cannot meet the SLO. Pure; used by the autoscaler
    (replicas per unit of demand) and by placement (cost per unit of capacity).
    """
    return capacity_basis(spec, offering.gpu).capacity


def capacity_basis(spec: ProfiledDeployment, gpu: str) -> CapacityBasis:
    """The capacity of one replica of ``spec`` on GPU type ``gpu`` and where it comes from
    (``CapacityBasis``; ``replica_capacity`` gives its ``capacity``).

    A type ``T`` no applicable profile covers, while others are profiled: for each profiled
    type ``P`` whose capacity is above 0 and that ``core.gpus.DATASHEETS`` knows,
    ``cap(P) x speed_ratio(T, P)`` (the slower of the bandwidth and BF16 ratios, at most 1);
    the smallest wins, so an estimate is never above any measured GPU. A profiled type that
    cannot meet the SLO (capacity 0) bounds ``T`` at 0 when ``T`` is no faster on either
    figure. ``T`` missing from the table, or no profiled type in it: ``"NoFigures"``, 0.0 —
    never silently as fast as a profiled GPU. (The smallest profiled capacity whatever the
    GPU, the rule before, sized an L40S at an H100's 12.9 req/s and placed it first.)
    """
    profiles = applicable(spec.profiles, spec.gpu.count)
    if not profiles:
        return CapacityBasis(1.0, "Unprofiled")
    return _capacity_basis(profiles, spec.workload, gpu, spec.gpu.count)


@functools.lru_cache(maxsize=4096)
def _capacity_basis(
    profiles: tuple[CapacityProfile, ...], workload: Workload, gpu: str, gpu_count: int
) -> CapacityBasis:
    own = _capacity_for(profiles, workload, gpu, gpu_count)
    if own is not None:
        return CapacityBasis(own, "Profiled", gpu)
    best: CapacityBasis | None = None
    for ref in sorted({p.gpu for p in profiles}):
        cap = _capacity_for(profiles, workload, ref, gpu_count)
        ratio = speed_ratio(gpu, ref)
        if cap is None or ratio is None:
            continue
        if cap <= 0:
            # No faster than a GPU that cannot meet the SLO: neither can it.
            own_sheet, ref_sheet = DATASHEETS[gpu], DATASHEETS[ref]
            no_faster = (
                own_sheet.memory_bandwidth_tbs <= ref_sheet.memory_bandwidth_tbs
                and own_sheet.dense_bf16_tflops <= ref_sheet.dense_bf16_tflops
            )
            if not no_faster:
                continue
        estimate = CapacityBasis(cap * ratio, "Estimated", ref, ratio)
        if best is None or estimate.capacity < best.capacity:
            best = estimate
    return best if best is not None else CapacityBasis(0.0, "NoFigures")
