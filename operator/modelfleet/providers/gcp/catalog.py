"""What GPU capacity a GKE cluster's region can offer, assembled from Compute Engine facts.

Compute Engine tells us which accelerator types and GPU machine types each zone has and how
much GPU quota the project has left in the region; it does not tell us prices (the Cloud
Billing catalog needs its own API and credentials). Prices therefore come from a bundled,
dated table (``providers/prices/gcp.yaml``) that a FleetCluster's declared ``gpuOfferings``
override field by field. Everything here is pure, so the assembly is unit-testable and the
provider only gathers inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from modelfleet.core.types import Offering
from modelfleet.providers.offerings import PriceTable
from modelfleet.providers.offerings import load_price_table as load_bundled_table


@dataclass(frozen=True)
class Accelerator:
    """A Compute Engine accelerator type as modelfleet names it."""

    gpu: str  # modelfleet GPU name, e.g. H100, A100-80GB
    memory_gib: float
    quota_metric: str  # regional quota metric for on-demand use, e.g. NVIDIA_H100_GPUS

    @property
    def preemptible_quota_metric(self) -> str:
        """Quota metric for Spot/preemptible use (when granted; else on-demand quota applies)."""
        return f"PREEMPTIBLE_{self.quota_metric}"


ACCELERATORS: Mapping[str, Accelerator] = {
    "nvidia-b200": Accelerator("B200", 180, "NVIDIA_B200_GPUS"),
    "nvidia-h200-141gb": Accelerator("H200", 141, "NVIDIA_H200_GPUS"),
    "nvidia-h100-80gb": Accelerator("H100", 80, "NVIDIA_H100_GPUS"),
    "nvidia-h100-mega-80gb": Accelerator("H100", 80, "NVIDIA_H100_MEGA_GPUS"),
    "nvidia-a100-80gb": Accelerator("A100-80GB", 80, "NVIDIA_A100_80GB_GPUS"),
    "nvidia-tesla-a100": Accelerator("A100", 40, "NVIDIA_A100_GPUS"),
    "nvidia-l4": Accelerator("L4", 24, "NVIDIA_L4_GPUS"),
    "nvidia-tesla-t4": Accelerator("T4", 16, "NVIDIA_T4_GPUS"),
    "nvidia-tesla-v100": Accelerator("V100", 16, "NVIDIA_V100_GPUS"),
}
"""Accelerator types modelfleet knows, keyed by their Compute Engine name."""

# Machine-type families with bundled GPUs -> accelerator type; used when a pool is ensured
# before discovery ran in this process (machine type listings carry the same facts).
MACHINE_FAMILIES: Sequence[tuple[str, str]] = (
    ("a4-highgpu-", "nvidia-b200"),
    ("a3-ultragpu-", "nvidia-h200-141gb"),
    ("a3-megagpu-", "nvidia-h100-mega-80gb"),
    ("a3-highgpu-", "nvidia-h100-80gb"),
    ("a3-edgegpu-", "nvidia-h100-80gb"),
    ("a2-ultragpu-", "nvidia-a100-80gb"),
    ("a2-highgpu-", "nvidia-tesla-a100"),
    ("a2-megagpu-", "nvidia-tesla-a100"),
    ("g2-standard-", "nvidia-l4"),
)


def accelerator_for_machine_type(machine_type: str) -> str | None:
    """The accelerator type bundled with a GPU machine type (a3-highgpu-8g ->
    nvidia-h100-80gb), or None for machine types without bundled GPUs (n1-*)."""
    for prefix, accelerator in MACHINE_FAMILIES:
        if machine_type.startswith(prefix):
            return accelerator
    return None


@dataclass(frozen=True)
class GpuMachineType:
    """A machine type with bundled GPUs, as one zone's machineTypes listing reports it."""

    name: str
    accelerator_type: str
    accelerator_count: int
    zone: str


def load_price_table(name: str = "gcp.yaml") -> PriceTable:
    """The bundled GCP price table (see ``providers.offerings.load_price_table``)."""
    return load_bundled_table(name)


def available_quota(quotas: Iterable[tuple[str, float, float]]) -> dict[str, float]:
    """metric -> limit minus usage, from a Region's ``quotas`` (metric, limit, usage)."""
    return {metric: max(0.0, limit - usage) for metric, limit, usage in quotas}


def build_offerings(
    machines: Iterable[GpuMachineType],
    *,
    region: str,
    zone_accelerators: Mapping[str, set[str]],
    quota: Mapping[str, float],
    prices: PriceTable,
) -> list[Offering]:
    """Offerings of one region: one per GPU machine type offered in at least one zone whose
    accelerator listing has its GPU. ``max_nodes`` is floor(available on-demand GPU quota /
    GPUs per node); None when the region reports no quota metric for that GPU. Unknown
    accelerator types are skipped. Sorted by machine type."""
    zones: dict[str, set[str]] = {}
    kinds: dict[str, GpuMachineType] = {}
    for machine in machines:
        if machine.accelerator_type not in ACCELERATORS:
            continue
        if machine.accelerator_type not in zone_accelerators.get(machine.zone, set()):
            continue
        kinds.setdefault(machine.name, machine)
        zones.setdefault(machine.name, set()).add(machine.zone)
    offerings = []
    for name, machine in sorted(kinds.items()):
        accelerator = ACCELERATORS[machine.accelerator_type]
        on_demand, spot = prices.price(region, name)
        available = quota.get(accelerator.quota_metric)
        offerings.append(
            Offering(
                gpu=accelerator.gpu,
                gpu_memory_gib=accelerator.memory_gib,
                gpus_per_node=machine.accelerator_count,
                instance_type=name,
                on_demand_per_hour=on_demand,
                spot_per_hour=spot,
                max_nodes=None
                if available is None
                else math.floor(available / machine.accelerator_count),
                zones=tuple(sorted(zones[name])),
            )
        )
    return offerings
