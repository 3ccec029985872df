"""The arrivals counter behind the scale-from-zero demand query (docs/gateway.md).

``spec.metrics.demand`` is read in requests/s, so the documented query is
``rate(modelfleet_gateway_received_requests_total[1m])``. rate() needs a sample before the
first request: each known deployment's child must exist at 0 as soon as the gateway learns
of the deployment, and a request must count once, on arrival, whether it is then held,
refused with 503, or answered.
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from modelfleet.gateway.app import Gateway, api_app
from modelfleet.gateway.catalog import catalog_from_static
from modelfleet.gateway.metrics import RECEIVED_REQUESTS, GatewayMetrics
from modelfleet.gateway.settings import GatewaySettings

STATIC = """
deployments:
  - name: cold
    namespace: team
    model: m
    endpoints:
      - {url: "http://127.0.0.1:9", name: a, ready: false}
  - name: idle
    namespace: team
    model: other
    endpoints: []
"""


def received(metrics: GatewayMetrics) -> dict[tuple[str, str], float]:
    """(namespace, deployment) -> value of every ``..._received_requests_total`` sample."""
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == RECEIVED_REQUESTS:
                out[sample.labels["namespace"], sample.labels["deployment"]] = sample.value
    return out


async def test_each_known_deployment_has_its_counter_at_zero_before_any_request() -> None:
    metrics = GatewayMetrics(process_metrics=False)
    gateway = Gateway(GatewaySettings(scrape_interval=0), metrics=metrics)
    try:
        assert received(metrics) == {}  # no deployment known yet: no series
        gateway.set_catalog(catalog_from_static(STATIC))
        assert received(metrics) == {("team", "cold"): 0.0, ("team", "idle"): 0.0}
    finally:
        await gateway.close()


async def test_a_held_request_counts_once_on_arrival_and_a_refused_one_not_at_all() -> None:
    metrics = GatewayMetrics(process_metrics=False)
    settings = GatewaySettings(scrape_interval=0, hold_timeout=0.2, retry_after_seconds=1)
    gateway = Gateway(settings, metrics=metrics)
    gateway.set_catalog(catalog_from_static(STATIC))
    client = TestClient(TestServer(api_app(gateway)))
    await client.start_server()
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        # No ready endpoint: held 0.2 s, then 503. It arrived: demand counts it once.
        answer = await client.post("/v1/chat/completions", json=body)
        assert answer.status == 503
        assert received(metrics) == {("team", "cold"): 1.0, ("team", "idle"): 0.0}
        # A model no deployment serves is refused before routing: no deployment's demand.
        unknown = await client.post("/v1/chat/completions", json={**body, "model": "nope"})
        assert unknown.status == 404
        assert received(metrics) == {("team", "cold"): 1.0, ("team", "idle"): 0.0}
    finally:
        await client.close()
        await gateway.close()
