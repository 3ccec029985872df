"""Azure VM prices: the public Retail Prices API, with the bundled table as fallback.

https://prices.azure.com/api/retail/prices is public (no credentials) and is Azure's own
source of list prices, including Spot. The operator asks it for the GPU VM sizes it
discovered, one size at a time (the API's filter language is documented for ``eq`` and
``and`` only), keeps Linux pay-as-you-go hourly meters and skips Windows and Low Priority
meters. When the API is switched off or cannot be reached, prices come from the dated table
bundled with modelfleet (``providers/prices/azure.yaml``); a size the API does not price
falls back to the table too. Plain urllib: a handful of GETs does not need another client.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_URL = "https://prices.azure.com/api/retail/prices"
URL_ENV = "MODELFLEET_AZURE_PRICES_URL"
LIVE_ENV = "MODELFLEET_AZURE_LIVE_PRICES"
MAX_PAGES = 10
_URL_SAFE = ":/?&=$%#+,;@()*!~"

Prices = dict[str, tuple[float | None, float | None]]
"""VM size -> (on-demand, spot) USD per node-hour."""


class PricesUnavailable(Exception):
    """The Retail Prices API could not be read (network, HTTP error, unexpected body)."""


def live_prices_enabled(toggle: bool | None) -> bool:
    """The toggle when given, else MODELFLEET_AZURE_LIVE_PRICES (default on; 0/false/no off)."""
    if toggle is not None:
        return toggle
    return os.environ.get(LIVE_ENV, "true").strip().lower() not in ("0", "false", "no", "off")


class RetailPricesClient:
    """Reads Linux on-demand and Spot hourly prices for VM sizes in one region."""

    def __init__(self, url: str | None = None, *, timeout: float = 10.0) -> None:
        self.url = url or os.environ.get(URL_ENV) or DEFAULT_URL
        self._timeout = timeout

    def fetch(self, region: str, vm_sizes: Iterable[str]) -> Prices:
        """Prices for ``vm_sizes`` in ``region`` (sizes without a meter are absent).
        Blocking; raises PricesUnavailable on any failure."""
        prices: Prices = {}
        for size in vm_sizes:
            on_demand: float | None = None
            spot: float | None = None
            for item in self._items(
                f"serviceName eq 'Virtual Machines' and armRegionName eq '{region}' "
                f"and armSkuName eq '{size}' and priceType eq 'Consumption'"
            ):
                kind = _meter_kind(item)
                price = item.get("retailPrice")
                if kind is None or not isinstance(price, int | float):
                    continue
                if kind == "spot":
                    spot = price if spot is None else min(spot, price)
                else:
                    on_demand = price if on_demand is None else min(on_demand, price)
            if on_demand is not None or spot is not None:
                prices[size] = (on_demand, spot)
        return prices

    def _items(self, filter_text: str) -> Iterable[dict[str, Any]]:
        url: str | None = (
            f"{self.url}?currencyCode=USD&$filter={urllib.parse.quote(filter_text, safe='')}"
        )
        for _page in range(MAX_PAGES):
            if not url:
                return
            body = self._get(url)
            items = body.get("Items")
            if not isinstance(items, list):
                raise PricesUnavailable("Retail Prices API answered without Items")
            yield from (item for item in items if isinstance(item, dict))
            next_link = body.get("NextPageLink")
            # Re-quote defensively: only unsafe characters (spaces, quotes) are escaped.
            url = urllib.parse.quote(str(next_link), safe=_URL_SAFE) if next_link else None

    def _get(self, url: str) -> dict[str, Any]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise PricesUnavailable(f"Retail Prices API unavailable: {err}") from err
        if not isinstance(body, dict):
            raise PricesUnavailable("Retail Prices API answered with a non-object")
        return body


def _meter_kind(item: dict[str, Any]) -> str | None:
    """'spot' or 'on-demand' for Linux hourly consumption meters; None for anything else."""
    sku_name = str(item.get("skuName", ""))
    if (
        item.get("type") != "Consumption"
        or item.get("unitOfMeasure") != "1 Hour"
        or "Windows" in str(item.get("productName", ""))
        or "Low Priority" in sku_name
    ):
        return None
    return "spot" if sku_name.endswith("Spot") else "on-demand"
