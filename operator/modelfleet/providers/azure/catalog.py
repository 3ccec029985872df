"""What GPU capacity an AKS cluster's region can offer, assembled from ARM facts.

Resource SKUs say which VM sizes exist in the region and zones, how many vCPUs and GPUs each
has, and where the subscription is restricted from using them; compute usages say how much
of each VM family's vCPU quota is left. Neither names the GPU model, so a small table maps
VM size names to GPUs. Prices come from ``prices`` (Retail Prices API, else the bundled
table), and declared ``gpuOfferings`` win field by field. Everything here is pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelfleet.core.types import Offering
from modelfleet.providers.offerings import PriceTable
from modelfleet.providers.offerings import load_price_table as load_bundled_table

# VM size name -> (GPU, memory per GPU GiB). First match wins; unmatched sizes (partial-GPU
# NV sizes, AMD MI300X, retired K80/P100 sizes) are not offered.
GPU_SIZES: Sequence[tuple[re.Pattern[str], str, float]] = (
    (re.compile(r"_H200_", re.IGNORECASE), "H200", 141),
    (re.compile(r"^Standard_NC\d+ads_H100_v5$", re.IGNORECASE), "H100", 94),  # H100 NVL
    (re.compile(r"_H100_", re.IGNORECASE), "H100", 80),
    (re.compile(r"_A100_v4$", re.IGNORECASE), "A100-80GB", 80),
    (re.compile(r"^Standard_ND96asr_v4$", re.IGNORECASE), "A100", 40),
    (re.compile(r"_T4_v3$", re.IGNORECASE), "T4", 16),
    (re.compile(r"^Standard_NC\d+s_v3$", re.IGNORECASE), "V100", 16),
)
REGIONAL_VCPUS = "cores"  # usage name of the regional total vCPU quota


def gpu_for_size(vm_size: str) -> tuple[str, float] | None:
    """(GPU, memory GiB) of a VM size, e.g. Standard_ND96isr_H100_v5 -> (H100, 80)."""
    for pattern, gpu, memory in GPU_SIZES:
        if pattern.search(vm_size):
            return gpu, memory
    return None


@dataclass(frozen=True)
class GpuSku:
    """A virtualMachines resource SKU with GPUs, usable in the region."""

    name: str
    family: str
    vcpus: int
    gpus: int
    zones: tuple[str, ...]


def usable_gpu_skus(skus: Iterable[Any], *, region: str) -> list[GpuSku]:
    """GPU VM sizes the subscription may use in ``region``: virtualMachines SKUs with a GPUs
    capability, minus those restricted for the location; zones restricted for the
    subscription are dropped. ``skus`` are ResourceSku models (or alike)."""
    usable = []
    for sku in skus:
        if (sku.resource_type or "") != "virtualMachines" or not sku.name:
            continue
        capabilities = {c.name: c.value for c in sku.capabilities or ()}
        gpus = _int(capabilities.get("GPUs"))
        if gpus < 1:
            continue
        zones: set[str] = set()
        for info in sku.location_info or ():
            if (info.location or "").lower() == region.lower():
                zones.update(info.zones or ())
        restricted_here = False
        for restriction in sku.restrictions or ():
            info = restriction.restriction_info
            locations = [loc.lower() for loc in (info.locations or ())] if info else []
            if restriction.type == "Location" and region.lower() in locations:
                restricted_here = True
            elif restriction.type == "Zone" and info is not None:
                zones.difference_update(info.zones or ())
        if restricted_here:
            continue
        usable.append(
            GpuSku(
                sku.name,
                sku.family or "",
                _int(capabilities.get("vCPUs")),
                gpus,
                tuple(sorted(zones)),
            )
        )
    return usable


def available_vcpus(usages: Iterable[tuple[str, float, float]]) -> dict[str, float]:
    """usage name (lowercased) -> limit minus current value, from compute usages."""
    return {name.lower(): max(0.0, limit - current) for name, limit, current in usages}


def load_price_table(name: str = "azure.yaml") -> PriceTable:
    """The bundled Azure price table (see ``providers.offerings.load_price_table``)."""
    return load_bundled_table(name)


def build_offerings(
    skus: Iterable[GpuSku],
    *,
    cluster_zones: Sequence[str],
    vcpus_left: Mapping[str, float],
    prices: Mapping[str, tuple[float | None, float | None]],
) -> list[Offering]:
    """One offering per GPU SKU with a known GPU model. Zones: the SKU's unrestricted zones
    (within the cluster's, when set). ``max_nodes`` = floor(min(family vCPUs left, regional
    vCPUs left) / vCPUs per VM); None when the family has no usage entry. ``prices`` maps VM
    size -> (on-demand, spot). Sorted by VM size."""
    offerings = []
    for sku in sorted(skus, key=lambda s: s.name):
        gpu = gpu_for_size(sku.name)
        if gpu is None:
            continue
        zones = [z for z in sku.zones if not cluster_zones or z in cluster_zones]
        family_left = vcpus_left.get(sku.family.lower())
        max_nodes = None
        if family_left is not None and sku.vcpus > 0:
            left = min(family_left, vcpus_left.get(REGIONAL_VCPUS, family_left))
            max_nodes = math.floor(left / sku.vcpus)
        on_demand, spot = prices.get(sku.name, (None, None))
        offerings.append(
            Offering(
                gpu=gpu[0],
                gpu_memory_gib=gpu[1],
                gpus_per_node=sku.gpus,
                instance_type=sku.name,
                on_demand_per_hour=on_demand,
                spot_per_hour=spot,
                max_nodes=max_nodes,
                zones=tuple(zones),
            )
        )
    return offerings


def _int(value: object) -> int:
    try:
        return int(float(str(value)))
    except ValueError:
        return 0
