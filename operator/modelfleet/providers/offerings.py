"""Offering helpers shared by the cloud providers (pure).

- ``merge_declared``: a FleetCluster's declared ``gpuOfferings`` over the discovered ones
  (``core.from_api.offering_from_api``, the one API -> core converter, turns one declared
  entry into an ``Offering``).
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

from modelfleet.api.fleetcluster import GpuOffering
from modelfleet.core.from_api import offering_from_api
from modelfleet.core.types import Offering


def merge_declared(
    discovered: Sequence[Offering], declared: Sequence[GpuOffering] | None
) -> list[Offering]:
    """Discovered offerings overlaid with declared ones, keyed by instance type.

    A declared field wins whenever it is set (its required fields always are; an unset
    ``onDemandPerHour``/``spotPerHour``/``maxNodes``/``zones`` keeps the discovered value).
    A declared offering the cloud did not report is added as declared (fills a gap).
    Sorted by instance type.
    """
    merged = {offering.instance_type: offering for offering in discovered}
    for item in declared or ():
        base = merged.get(item.instance_type)
        overlay = offering_from_api(item)
        if base is not None:
            overlay = replace(
                overlay,
                on_demand_per_hour=base.on_demand_per_hour
                if item.on_demand_per_hour is None
                else item.on_demand_per_hour,
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
