"""Offering helpers shared by the cloud providers (pure).

- ``declared_offerings``/``offering_of``: a FleetCluster's offerings as providers see them.
- ``merge_declared``: a FleetCluster's declared ``gpuOfferings`` over the discovered ones
  (``offering_from_api`` turns one declared entry into an ``Offering``).
- ``PriceTable``/``load_price_table``: the bundled, dated (on-demand, spot) price tables in
  ``providers/prices`` that the GCP and Azure providers price discovered offerings from
  (AWS bundles on-demand prices only and reads spot prices live; see ``aws.prices``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import yaml

from modelfleet.api.fleetcluster import FleetCluster, GpuOffering
from modelfleet.providers.base import Offering


def offering_from_api(offering: GpuOffering) -> Offering:
    """The provider-side Offering of a FleetCluster's declared ``gpuOfferings`` entry."""
    return Offering(
        gpu=offering.gpu,
        gpu_memory_gib=offering.gpu_memory_gi_b,
        gpus_per_node=offering.gpus_per_node,
        instance_type=offering.instance_type,
        on_demand_per_hour=offering.on_demand_per_hour,
        spot_per_hour=offering.spot_per_hour,
        max_nodes=offering.max_nodes,
        zones=tuple(offering.zones or ()),
    )


def declared_offerings(cluster: FleetCluster) -> list[Offering]:
    """The FleetCluster's declared offerings, in declaration order."""
    return [offering_from_api(o) for o in cluster.spec.gpu_offerings or []]


def offering_of(cluster: FleetCluster | None, instance_type: str) -> Offering | None:
    """The Offering for ``instance_type`` in ``cluster``: declared first, then discovered
    (``status.offerings``); None when the cluster offers no such type."""
    if cluster is None:
        return None
    for offering in cluster.spec.gpu_offerings or []:
        if offering.instance_type == instance_type:
            return offering_from_api(offering)
    for discovered in (cluster.status.offerings if cluster.status else None) or []:
        if discovered.instance_type == instance_type:
            return offering_from_api(discovered)
    return None


def merge_declared(
    discovered: Sequence[Offering], declared: Sequence[GpuOffering] | None
) -> list[Offering]:
    """Discovered offerings overlaid with declared ones, keyed by instance type.

    A declared field wins whenever it is set (its required fields always are; an unset
    ``spotPerHour``/``maxNodes``/``zones`` keeps the discovered value). A declared offering
    the cloud did not report is added as declared (fills a gap). Sorted by instance type.
    """
    merged = {offering.instance_type: offering for offering in discovered}
    for item in declared or ():
        base = merged.get(item.instance_type)
        overlay = offering_from_api(item)
        if base is not None:
            overlay = replace(
                overlay,
                spot_per_hour=base.spot_per_hour
                if item.spot_per_hour is None
                else item.spot_per_hour,
                max_nodes=base.max_nodes if item.max_nodes is None else item.max_nodes,
                zones=base.zones if item.zones is None else tuple(item.zones),
            )
        merged[item.instance_type] = overlay
    return [merged[k] for k in sorted(merged)]


@dataclass(frozen=True)
class PriceTable:
    """Bundled list prices: region -> instance type -> (on-demand, spot) USD per node-hour."""

    as_of: str
    source: str
    regions: Mapping[str, Mapping[str, tuple[float | None, float | None]]]

    def price(self, region: str, instance_type: str) -> tuple[float | None, float | None]:
        """(on-demand, spot) per node-hour; None where the table has no figure."""
        return self.regions.get(region, {}).get(instance_type, (None, None))


def load_price_table(name: str) -> PriceTable:
    """Read the bundled price table ``name`` (e.g. ``gcp.yaml``) from
    ``modelfleet/providers/prices``.

    Raises ``FileNotFoundError`` or ``ValueError`` for a missing or malformed table (a
    packaging bug, not a runtime condition).
    """
    text = resources.files("modelfleet.providers").joinpath("prices", name).read_text("utf-8")
    document: Any = yaml.safe_load(text)
    if not isinstance(document, dict) or "regions" not in document:
        raise ValueError(f"price table {name} has no regions")
    regions = {
        str(region): {
            str(instance_type): (_price(entry.get("onDemand")), _price(entry.get("spot")))
            for instance_type, entry in dict(prices).items()
        }
        for region, prices in dict(document["regions"]).items()
    }
    return PriceTable(str(document["asOf"]), str(document["source"]), regions)


def _price(value: object) -> float | None:
    return None if value is None else float(str(value))
