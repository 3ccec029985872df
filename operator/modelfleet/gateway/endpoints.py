"""Live state of every endpoint: requests in flight, moving TTFT, failures, ejection and
probe-back, and the engine load scraped from its /metrics.

This is the only mutable routing state, owned by the event loop (no locks: every method
runs on the loop). It is keyed by endpoint URL so it survives new catalog snapshots, and a
gateway replica keeps its own: replicas share nothing, so any number can run.

Outlier ejection follows Envoy's: ``eject_after_failures`` consecutive failures (a refused
connection at once) eject an endpoint for ``eject_base_seconds`` doubled on every ejection
in a row (capped); when the time is up a probe (GET ``probe_path``) brings it back or ejects
it again. HTTP errors may eject at most ``max_ejected_fraction`` of a deployment (a bad
request that makes every replica fail must not empty the deployment); refused connections
are not capped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from modelfleet.gateway.catalog import Catalog, DeploymentInfo, DeploymentKey
from modelfleet.gateway.metrics import GatewayMetrics
from modelfleet.gateway.routing import EndpointLoad
from modelfleet.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

QUEUE_METRICS: Final = (
    "vllm:num_requests_waiting",
    "sglang:num_queue_reqs",
    "tgi_queue_size",
    "modelfleet_queue_depth",
)
"""Engine gauges of requests waiting, per engine (docs/metrics.md); the first found is used."""
KV_CACHE_METRICS: Final = (
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "sglang:token_usage",
)
"""Engine gauges of KV-cache use as a 0..1 fraction; the first found is used."""


class Failure(StrEnum):
    """Why an attempt against an endpoint failed (a metrics label)."""

    REFUSED = "refused"
    """No connection could be opened (refused, unreachable, DNS, connect timeout)."""
    RESET = "reset"
    """The connection broke before the first byte of the answer."""
    STATUS_5XX = "status_5xx"
    STATUS_429 = "status_429"
    TIMEOUT = "timeout"
    """No first byte within ``first_byte_timeout``."""
    STREAM = "stream"
    """The answer broke after it started (never retried)."""


@dataclass
class EndpointState:
    """What the gateway knows of one endpoint right now."""

    url: str
    label: str
    deployment: DeploymentKey
    outstanding: int = 0
    ttft: float | None = None
    consecutive_failures: int = 0
    ejections_in_a_row: int = 0
    ejected_until: float = 0.0
    queue: float | None = None
    kv_cache: float | None = None
    counted: collections.Counter[tuple[DeploymentKey, str]] = field(
        default_factory=collections.Counter
    )
    """(deployment, label) under which each request in flight raised the in-flight gauge, so
    its release lowers the same series even if the catalog relabelled the endpoint since."""

    @property
    def ejected(self) -> bool:
        """Whether it is out of rotation: from its ejection until a probe succeeds (the
        probe starts at ``ejected_until``)."""
        return self.ejected_until > 0.0


class EndpointPool:
    """Per-endpoint state, ejection, probes and scrapes. Create and use on one event loop.

    ``on_recovered`` is called after an ejected endpoint is probed back (the hold queue
    wakes up on it). ``clock`` is monotonic seconds (tests and the benchmark pass their own).
    """

    def __init__(
        self,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
        session: aiohttp.ClientSession,
        *,
        on_recovered: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._session = session
        self._on_recovered = on_recovered
        self._clock = clock
        self._states: dict[str, EndpointState] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._scraper: asyncio.Task[None] | None = None
        self._catalog = Catalog()

    # -- catalog -----------------------------------------------------------------------

    def update(self, catalog: Catalog) -> None:
        """Take a new catalog: create state for new endpoints, forget vanished idle ones."""
        self._catalog = catalog
        live: set[str] = set()
        for deployment in catalog.deployments.values():
            for endpoint in deployment.endpoints:
                live.add(endpoint.url)
                state = self._states.get(endpoint.url)
                if state is None:
                    self._states[endpoint.url] = EndpointState(
                        endpoint.url, endpoint.id, deployment.key
                    )
                else:
                    state.label, state.deployment = endpoint.id, deployment.key
        for url in [u for u, s in self._states.items() if u not in live and s.outstanding == 0]:
            del self._states[url]
            task = self._probes.pop(url, None)
            if task is not None:
                task.cancel()

    def state(self, url: str) -> EndpointState | None:
        """The state of an endpoint of the current catalog, or None."""
        return self._states.get(url)

    def healthy(self, deployment: DeploymentInfo) -> list[EndpointLoad]:
        """Ready, non-ejected endpoints of ``deployment`` with their load, for the picker."""
        out = []
        for endpoint in deployment.endpoints:
            state = self._states.get(endpoint.url)
            if not endpoint.ready or state is None or state.ejected:
                continue
            out.append(
                EndpointLoad(
                    url=endpoint.url,
                    region=endpoint.region,
                    outstanding=state.outstanding,
                    queue=state.queue,
                    kv_cache=state.kv_cache,
                    ttft=state.ttft,
                )
            )
        return out

    # -- per request -------------------------------------------------------------------

    def acquire(self, url: str) -> EndpointState:
        """Count a request in flight to ``url`` (pair with ``release``)."""
        state = self._states[url]
        state.outstanding += 1
        labels = (state.deployment, state.label)
        state.counted[labels] += 1
        self._metrics.outstanding(*labels).inc()
        return state

    def release(self, state: EndpointState) -> None:
        """The request counted by ``acquire`` is over."""
        state.outstanding -= 1
        labels = (state.deployment, state.label)
        if state.counted[labels] <= 0:  # relabelled since: lower a series that was raised
            labels = next(iter(+state.counted), labels)
        state.counted[labels] -= 1
        if state.counted[labels] <= 0:
            del state.counted[labels]
        self._metrics.outstanding(*labels).dec()

    def succeeded(self, state: EndpointState, ttft: float) -> None:
        """The endpoint answered (first byte after ``ttft`` seconds): reset its failures and
        fold ``ttft`` into the moving average."""
        state.consecutive_failures = 0
        alpha = self._settings.ttft_smoothing
        state.ttft = ttft if state.ttft is None else (1 - alpha) * state.ttft + alpha * ttft

    def failed(self, state: EndpointState, failure: Failure) -> bool:
        """Record a failure; returns True when it ejected the endpoint."""
        self._metrics.upstream_errors(state.deployment, state.label, failure.value).inc()
        if failure in (Failure.STATUS_429, Failure.STREAM):
            return False  # busy, or broke mid-answer: not evidence the endpoint is down
        state.consecutive_failures += 1
        if state.ejected:
            return False
        if failure is not Failure.REFUSED:
            if state.consecutive_failures < self._settings.eject_after_failures:
                return False
            if not self._may_eject_for_errors(state):
                return False
        self._eject(state, self._clock())
        return True

    def _may_eject_for_errors(self, state: EndpointState) -> bool:
        deployment = self._catalog.deployments.get(state.deployment)
        peers = [e.url for e in deployment.ready_endpoints] if deployment else [state.url]
        ejected = sum(1 for u in peers if (s := self._states.get(u)) is not None and s.ejected)
        return ejected + 1 <= math.floor(self._settings.max_ejected_fraction * len(peers))

    def _eject(self, state: EndpointState, now: float) -> None:
        seconds = min(
            self._settings.eject_base_seconds * 2**state.ejections_in_a_row,
            self._settings.eject_max_seconds,
        )
        state.ejections_in_a_row += 1
        state.ejected_until = now + seconds
        self._metrics.ejections(state.deployment, state.label).inc()
        self._metrics.ejected(state.deployment, state.label).set(1)
        log.warning(
            "ejected endpoint %s of %s for %.1fs after %d failure(s)",
            state.label,
            state.deployment,
            seconds,
            state.consecutive_failures,
        )
        if state.url not in self._probes or self._probes[state.url].done():
            self._probes[state.url] = asyncio.create_task(self._probe_back(state.url))

    async def _probe_back(self, url: str) -> None:
        """Wait out the ejection, then probe until the endpoint answers (re-ejecting)."""
        while True:
            state = self._states.get(url)
            if state is None:
                return
            await asyncio.sleep(max(0.0, state.ejected_until - self._clock()))
            if await self._probe(url):
                state.ejections_in_a_row = 0
                state.consecutive_failures = 0
                state.ejected_until = 0.0
                self._metrics.ejected(state.deployment, state.label).set(0)
                log.info("endpoint %s of %s is back", state.label, state.deployment)
                self._on_recovered()
                return
            self._eject_again(state)

    def _eject_again(self, state: EndpointState) -> None:
        seconds = min(
            self._settings.eject_base_seconds * 2**state.ejections_in_a_row,
            self._settings.eject_max_seconds,
        )
        state.ejections_in_a_row += 1
        state.ejected_until = self._clock() + seconds

    async def _probe(self, url: str) -> bool:
        timeout = aiohttp.ClientTimeout(total=self._settings.connect_timeout + 5.0)
        try:
            async with self._session.get(url + self._settings.probe_path, timeout=timeout) as r:
                await r.read()
                return 200 <= r.status < 300
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    # -- scraping ----------------------------------------------------------------------

    def start(self) -> None:
        """Start scraping engine metrics (when ``scrape_interval`` > 0)."""
        if self._settings.scrape_interval > 0 and self._scraper is None:
            self._scraper = asyncio.create_task(self._scrape_forever())

    async def close(self) -> None:
        """Stop probes and scrapes."""
        tasks = [t for t in (self._scraper, *self._probes.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._probes.clear()
        self._scraper = None

    async def _scrape_forever(self) -> None:
        while True:
            urls = [
                e.url for d in self._catalog.deployments.values() for e in d.endpoints if e.ready
            ]
            await asyncio.gather(*(self.scrape(u) for u in urls))
            await asyncio.sleep(self._settings.scrape_interval)

    async def scrape(self, url: str) -> None:
        """Read queue depth and KV-cache use from the endpoint's /metrics (Prometheus text).
        A failed scrape leaves both unknown: no signal is not zero load."""
        state = self._states.get(url)
        if state is None:
            return
        timeout = aiohttp.ClientTimeout(total=max(1.0, self._settings.scrape_interval))
        try:
            async with self._session.get(url + "/metrics", timeout=timeout) as response:
                if response.status != 200:
                    raise aiohttp.ClientResponseError(
                        response.request_info, (), status=response.status
                    )
                text = await response.text()
            state.queue, state.kv_cache = parse_engine_load(text)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            state.queue = state.kv_cache = None


def parse_engine_load(text: str) -> tuple[float | None, float | None]:
    """(requests waiting, KV-cache use 0..1) from an engine's Prometheus text, summed over
    series (an engine process may label by model); None for what it does not export."""
    found: dict[str, float] = {}
    wanted = set(QUEUE_METRICS) | set(KV_CACHE_METRICS)
    for family in text_string_to_metric_families(text):
        if family.name in wanted:
            samples = [s.value for s in family.samples if s.name == family.name]
            if samples:
                found[family.name] = sum(samples) if family.name in QUEUE_METRICS else max(samples)
    return _first(found, QUEUE_METRICS), _first(found, KV_CACHE_METRICS)


def _first(found: dict[str, float], names: Iterable[str]) -> float | None:
    for name in names:
        if name in found:
            return found[name]
    return None
