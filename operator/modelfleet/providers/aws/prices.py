"""On-demand prices for EC2 GPU instance types, from a bundled, dated table.

EC2 has no cheap price API: the Pricing API is served from us-east-1 only and answers with
gigabytes of offers. Spot prices are live (``DescribeSpotPriceHistory``), but on-demand list
prices change a few times a year, so ``providers/prices/aws.yaml`` carries them with an
``asOf`` date. Users override per cluster through ``spec.gpuOfferings`` or replace the table
with the file named by ``MODELFLEET_AWS_PRICES``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from modelfleet.providers.errors import InvalidConfiguration

PRICES_ENV = "MODELFLEET_AWS_PRICES"


@dataclass(frozen=True)
class PriceTable:
    """On-demand USD per instance-hour by region then instance type, valid as of ``as_of``."""

    as_of: date | None
    """Date the prices were read from the source."""
    source: str
    """Where the prices come from (URL or file)."""
    regions: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """region -> instance type -> on-demand price per node-hour."""

    def on_demand(self, region: str, instance_type: str) -> float | None:
        """The on-demand price of ``instance_type`` in ``region``, None when not listed."""
        return self.regions.get(region, {}).get(instance_type)


def parse_price_table(document: Any, *, source: str) -> PriceTable:
    """Validate a loaded YAML document of the ``aws.yaml`` shape into a ``PriceTable``.

    Raises ``InvalidConfiguration`` naming ``source`` when the shape or a price is wrong.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("regions"), Mapping):
        raise InvalidConfiguration(f"price table {source}: expected a mapping with 'regions'")
    regions: dict[str, dict[str, float]] = {}
    for region, prices in document["regions"].items():
        if not isinstance(prices, Mapping):
            raise InvalidConfiguration(f"price table {source}: region {region} is not a mapping")
        table: dict[str, float] = {}
        for instance_type, price in prices.items():
            if not isinstance(price, int | float) or isinstance(price, bool) or price < 0:
                raise InvalidConfiguration(
                    f"price table {source}: {region}/{instance_type} has invalid price {price!r}"
                )
            table[str(instance_type)] = float(price)
        regions[str(region)] = table
    raw_as_of = document.get("asOf")
    as_of: date | None
    try:
        as_of = date.fromisoformat(str(raw_as_of)) if raw_as_of is not None else None
    except ValueError as exc:
        raise InvalidConfiguration(f"price table {source}: asOf is not a date") from exc
    return PriceTable(as_of=as_of, source=str(document.get("source") or source), regions=regions)


def load_price_table(path: str | Path | None = None) -> PriceTable:
    """The price table at ``path``, else ``$MODELFLEET_AWS_PRICES``, else the bundled one.

    Reads a file (call it once per provider, not per reconcile). Raises
    ``InvalidConfiguration`` when the file is missing or malformed.
    """
    chosen = path or os.environ.get(PRICES_ENV)
    if chosen:
        try:
            text = Path(chosen).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidConfiguration(f"price table {chosen}: {exc.strerror}") from exc
        return parse_price_table(yaml.safe_load(text), source=str(chosen))
    bundled = resources.files("modelfleet.providers").joinpath("prices/aws.yaml")
    return parse_price_table(yaml.safe_load(bundled.read_text(encoding="utf-8")), source="bundled")
