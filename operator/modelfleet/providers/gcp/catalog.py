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
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import yaml

from modelfleet.api.fleetcluster import GpuOffering
from modelfleet.providers.base import Offering


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


@dataclass(frozen=True)
class PriceTable:
    """Bundled list prices: region -> machine type -> (on-demand, spot) USD per node-hour."""

    as_of: str
    source: str
    regions: Mapping[str, Mapping[str, tuple[float | None, float | None]]]

    def price(self, region: str, machine_type: str) -> tuple[float | None, float | None]:
        """(on-demand, spot) per node-hour; None where the table has no figure."""
        return self.regions.get(region, {}).get(machine_type, (None, None))


def load_price_table(name: str = "gcp.yaml") -> PriceTable:
    """Read a bundled price table from ``modelfleet/providers/prices``.

    Raises ``FileNotFoundError`` or ``ValueError`` for a missing or malformed table (a
    packaging bug, not a runtime condition).
    """
    text = resources.files("modelfleet.providers").joinpath("prices", name).read_text("utf-8")
    document: Any = yaml.safe_load(text)
    if not isinstance(document, dict) or "regions" not in document:
        raise ValueError(f"price table {name} has no regions")
    regions: dict[str, dict[str, tuple[float | None, float | None]]] = {}
    for region, machines in dict(document["regions"]).items():
        regions[str(region)] = {
            str(machine): (_price(entry.get("onDemand")), _price(entry.get("spot")))
            for machine, entry in dict(machines).items()
        }
    return PriceTable(str(document["asOf"]), str(document["source"]), regions)


def _price(value: object) -> float | None:
    return None if value is None else float(str(value))


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


def merge_declared(
    discovered: Sequence[Offering], declared: Sequence[GpuOffering] | None
) -> list[Offering]:
    """Discovered offerings with the FleetCluster's declared ones applied: a declared offering
    with the same instance type wins field by field (fields it leaves unset keep the
    discovered value); declared instance types not discovered are added as declared."""
    by_type = {offering.instance_type: offering for offering in discovered}
    for item in declared or ():
        base = by_type.get(item.instance_type)
        mine = Offering(
            gpu=item.gpu,
            gpu_memory_gib=item.gpu_memory_gi_b,
            gpus_per_node=item.gpus_per_node,
            instance_type=item.instance_type,
            on_demand_per_hour=item.on_demand_per_hour,
            spot_per_hour=item.spot_per_hour,
            max_nodes=item.max_nodes,
            zones=tuple(item.zones or ()),
        )
        if base is None:
            by_type[item.instance_type] = mine
            continue
        by_type[item.instance_type] = replace(
            mine,
            spot_per_hour=base.spot_per_hour if item.spot_per_hour is None else item.spot_per_hour,
            max_nodes=base.max_nodes if item.max_nodes is None else item.max_nodes,
            zones=base.zones if item.zones is None else tuple(item.zones),
        )
    return [by_type[key] for key in sorted(by_type)]
