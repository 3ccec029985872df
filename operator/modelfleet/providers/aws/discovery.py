"""Turning EC2's answers about GPU instance types into modelfleet ``Offering``s (pure).

The provider makes the calls; the functions here only read the responses, so the rules are
testable without AWS:

- GPU names: EC2's ``GpuInfo`` says "A100" for both p4d (40 GB) and p4de (80 GB); ours tell
  them apart by memory (``A100-80GB``). Only NVIDIA GPUs are offered (the nodes run the
  NVIDIA AMI and carry the ``nvidia.com/gpu`` taint). Memory is reported as EC2 does, in
  GiB per GPU (an L40S shows 44.7, not the marketing 48).
- Spot price: the latest price per zone, then the *highest* over the zones the offering can
  use. A spot node group spans several zones and EC2's price-capacity-optimized allocation
  may land in any of them, so the maximum never under-estimates a budget.
- Quota: EC2 GPU quotas are vCPUs per family (P or G and VT) per region, shared by every
  size; ``max_nodes`` is the on-demand quota divided by the type's vCPUs, an upper bound
  per offering (two offerings of one family share it). Unknown quota -> None.
- Declared offerings (``spec.gpuOfferings``) win over discovered ones field by field and
  fill gaps (``merge_offerings``, i.e. ``providers.offerings.merge_declared``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from modelfleet.core.types import Offering
from modelfleet.providers.offerings import merge_declared

GPU_FAMILIES: Final = ("p5", "p5e", "p5en", "p4d", "p4de", "g6e", "g6", "g5")
"""Instance families discovered by default (``<family>.*``)."""

# Service Quotas codes (service ec2), in vCPUs: (on-demand, spot) per quota family.
QUOTA_CODES: Final = {
    "P": ("L-417A185B", "L-7212CCBC"),  # Running On-Demand P / All P Spot Instance Requests
    "G": ("L-DB2E81BA", "L-3819A6DF"),  # Running On-Demand G and VT / All G and VT Spot
}
SPOT_PRODUCTS: Final = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")

_GPU_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class GpuType:
    """What ``DescribeInstanceTypes`` says about one GPU instance type."""

    instance_type: str
    gpu: str
    gpu_memory_gib: float
    gpus_per_node: int
    vcpus: int


def gpu_name(aws_name: str, *, manufacturer: str, memory_mib: int) -> str | None:
    """modelfleet's GPU name for EC2's ``GpuInfo`` entry; None for non-NVIDIA GPUs."""
    if manufacturer.upper() != "NVIDIA":
        return None
    name = _GPU_NAME.sub("-", aws_name.strip()).strip("-")
    if name.upper() == "A100":
        return "A100-80GB" if memory_mib >= 80 * 1024 else "A100"
    return name or None


def parse_instance_types(items: Iterable[Mapping[str, Any]]) -> dict[str, GpuType]:
    """GPU types from ``DescribeInstanceTypes`` ``InstanceTypes`` entries, by instance type.

    Entries without NVIDIA GPUs are dropped. A type with several GPU kinds uses the first.
    """
    out: dict[str, GpuType] = {}
    for item in items:
        gpus = (item.get("GpuInfo") or {}).get("Gpus") or []
        for gpu in gpus:
            memory_mib = int((gpu.get("MemoryInfo") or {}).get("SizeInMiB") or 0)
            name = gpu_name(
                str(gpu.get("Name") or ""),
                manufacturer=str(gpu.get("Manufacturer") or ""),
                memory_mib=memory_mib,
            )
            count = int(gpu.get("Count") or 0)
            if name is None or count < 1 or memory_mib <= 0:
                continue
            instance_type = str(item["InstanceType"])
            out[instance_type] = GpuType(
                instance_type=instance_type,
                gpu=name,
                gpu_memory_gib=round(memory_mib / 1024, 2),
                gpus_per_node=count,
                vcpus=int((item.get("VCpuInfo") or {}).get("DefaultVCpus") or 0),
            )
            break
    return out


def parse_zone_offerings(items: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    """Zones per instance type from ``DescribeInstanceTypeOfferings`` (availability-zone)."""
    zones: dict[str, set[str]] = {}
    for item in items:
        zones.setdefault(str(item["InstanceType"]), set()).add(str(item["Location"]))
    return {k: tuple(sorted(v)) for k, v in zones.items()}


def spot_prices(
    items: Iterable[Mapping[str, Any]], *, zones: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Spot price per instance type: the latest per zone, then the max over usable zones.

    ``items`` are ``SpotPriceHistory`` entries; only Linux/UNIX products count. A zone not in
    ``zones[instance_type]`` is ignored when that mapping has the type.
    """
    latest: dict[tuple[str, str], tuple[datetime, float]] = {}
    for item in items:
        if str(item.get("ProductDescription")) not in SPOT_PRODUCTS:
            continue
        key = (str(item["InstanceType"]), str(item["AvailabilityZone"]))
        stamp: datetime = item["Timestamp"]
        price = float(item["SpotPrice"])
        if key not in latest or stamp > latest[key][0]:
            latest[key] = (stamp, price)
    out: dict[str, float] = {}
    for (instance_type, zone), (_, price) in latest.items():
        usable = zones.get(instance_type)
        if usable is not None and zone not in usable:
            continue
        out[instance_type] = max(price, out.get(instance_type, 0.0))
    return out


def quota_family(instance_type: str) -> str | None:
    """The EC2 vCPU quota family ("P" or "G") an instance type counts against, else None."""
    family = instance_type.split(".", 1)[0].lower()
    if family.startswith("p"):
        return "P"
    if family.startswith(("g", "vt")):
        return "G"
    return None


def max_nodes_for_quota(vcpu_quota: float | None, vcpus: int) -> int | None:
    """Nodes of a type with ``vcpus`` vCPUs that a vCPU quota allows (None if unknown)."""
    if vcpu_quota is None or vcpus <= 0:
        return None
    return int(vcpu_quota // vcpus)


def build_offerings(
    types: Mapping[str, GpuType],
    zones: Mapping[str, Sequence[str]],
    *,
    on_demand: Mapping[str, float],
    spot: Mapping[str, float],
    vcpu_quota: Mapping[str, float],
    cluster_zones: Sequence[str] = (),
) -> list[Offering]:
    """Offerings for types offered in at least one usable zone, sorted by instance type.

    ``on_demand``/``spot`` are prices by instance type (missing: None), ``vcpu_quota`` the
    on-demand vCPU quota by quota family ("P"/"G"), ``cluster_zones`` the FleetCluster's
    zones (empty: every zone).
    """
    out: list[Offering] = []
    for instance_type in sorted(types):
        gpu_type = types[instance_type]
        offered = tuple(zones.get(instance_type, ()))
        if cluster_zones:
            offered = tuple(z for z in offered if z in cluster_zones)
        if not offered:
            continue
        family = quota_family(instance_type)
        out.append(
            Offering(
                gpu=gpu_type.gpu,
                gpu_memory_gib=gpu_type.gpu_memory_gib,
                gpus_per_node=gpu_type.gpus_per_node,
                instance_type=instance_type,
                on_demand_per_hour=on_demand.get(instance_type),
                spot_per_hour=spot.get(instance_type),
                max_nodes=max_nodes_for_quota(
                    vcpu_quota.get(family) if family else None, gpu_type.vcpus
                ),
                zones=offered,
            )
        )
    return out


merge_offerings = merge_declared
"""Discovered offerings overlaid with declared ones (see ``providers.offerings``)."""
