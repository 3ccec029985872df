"""Live state of every endpoint: requests in flight, moving TTFT, failures, ejection and
probe-back, and the engine load scraped from its /metrics.

This is the only mutable routing state, owned by the event loop (no locks: every method
runs on the loop). It is keyed by endpoint URL so it survives new catalog snapshots, and a
gateway replica keeps its own: replicas share nothing, so any number can run.

One URL may serve several deployments (one vLLM serving a base model and a LoRA adapter,
listed as two deployments): what belongs to the engine (in-flight count, moving TTFT,
failures, ejection, scraped load) is kept once per URL, because it is one engine; what is
counted per request (requests, TTFT, upstream errors, overhead, in-flight gauge) is labelled
with the deployment the request was for and that deployment's name for the endpoint, carried
by the ``Attempt`` that ``acquire`` returns. An ejection takes the engine out for every
deployment that lists it, and its metrics are set under each of them.

Outlier ejection follows Envoy's: ``eject_after_failures`` consecutive failures (a refused
connection at once) eject an endpoint for ``eject_base_seconds`` doubled on every ejection
in a row (capped); when the time is up a probe (GET ``probe_path``) brings it back or ejects
it again. HTTP errors may eject at most ``max_ejected_fraction`` of a deployment (a bad
request that makes every replica fail must not empty the deployment); refused connections
are not capped.
"""

from __future__ import annotations

import asyncio
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
    """What the gateway knows of one endpoint URL (one engine) right now."""

    url: str
    labels: dict[DeploymentKey, str]
    """Every deployment of the current catalog that lists the URL, and its endpoint id there
    (the ``endpoint`` metrics label)."""
    outstanding: int = 0
    ttft: float | None = None
    consecutive_failures: int = 0
    ejections_in_a_row: int = 0
    ejected_until: float = 0.0
    queue: float | None = None
    kv_cache: float | None = None
    ejected_as: set[tuple[DeploymentKey, str]] = field(default_factory=set)
    """(deployment, label) series whose ejected gauge was raised, so probe-back lowers the
    same ones even if the catalog relabelled the endpoint since."""

    @property
    def label(self) -> str:
        """The endpoint id for logs: the first deployment's (they usually agree)."""
        return next(iter(self.labels.values()), self.url.split("://", 1)[-1])

    @property
    def deployment(self) -> DeploymentKey | None:
        """The first deployment that lists the URL, or None once none does."""
        return next(iter(self.labels), None)

    def seen_by(self, deployment: DeploymentKey | None = None) -> Attempt:
        """An attempt's labels for a request to ``deployment`` (default: the first one)."""
        key = deployment if deployment is not None else self.deployment
        if key is None:
            key = DeploymentKey("", "")
        return Attempt(self, key, self.labels.get(key, self.label))

    @property
    def ejected(self) -> bool:
        """Whether it is out of rotation: from its ejection until a probe succeeds (the
        probe starts at ``ejected_until``)."""
        return self.ejected_until > 0.0


@dataclass(frozen=True)
class Attempt:
    """One request's use of an endpoint: the shared engine state, and the labels its metrics
    go under (the deployment the request was for and that deployment's endpoint id), fixed at
    ``acquire`` so a catalog update during the request cannot move its series."""

    state: EndpointState
    deployment: DeploymentKey
    label: str

    @property
    def url(self) -> str:
        """The endpoint's base URL."""
        return self.state.url


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
        labels: dict[str, dict[DeploymentKey, str]] = {}
        for deployment in catalog.deployments.values():
            for endpoint in deployment.endpoints:
                labels.setdefault(endpoint.url, {})[deployment.key] = endpoint.id
        for url, by_deployment in labels.items():
            state = self._states.get(url)
            if state is None:
                self._states[url] = EndpointState(url, by_deployment)
            else:
                state.labels = by_deployment
        for url in [u for u, s in self._states.items() if u not in labels and s.outstanding == 0]:
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

    def acquire(self, url: str, deployment: DeploymentKey | None = None) -> Attempt:
        """Count a request for ``deployment`` in flight to ``url`` (pair with ``release``).
        Its metrics go under ``deployment`` (default: the first that lists the URL) and that
        deployment's endpoint id. Raises KeyError for a URL not in the catalog."""
        attempt = self._states[url].seen_by(deployment)
        attempt.state.outstanding += 1
        self._metrics.outstanding(attempt.deployment, attempt.label).inc()
        return attempt

    def release(self, attempt: Attempt) -> None:
        """The request counted by ``acquire`` is over (lowers the series it raised)."""
        attempt.state.outstanding -= 1
        self._metrics.outstanding(attempt.deployment, attempt.label).dec()

    def succeeded(self, who: Attempt | EndpointState, ttft: float) -> None:
        """The endpoint answered (first byte after ``ttft`` seconds): reset its failures and
        fold ``ttft`` into the moving average."""
        state = who.state if isinstance(who, Attempt) else who
        state.consecutive_failures = 0
        alpha = self._settings.ttft_smoothing
        state.ttft = ttft if state.ttft is None else (1 - alpha) * state.ttft + alpha * ttft

    def failed(self, who: Attempt | EndpointState, failure: Failure) -> bool:
        """Record a failure of an attempt (an ``EndpointState``: as seen by the first
        deployment that lists it); returns True when it ejected the endpoint."""
        attempt = who if isinstance(who, Attempt) else who.seen_by()
        state = attempt.state
        self._metrics.upstream_errors(attempt.deployment, attempt.label, failure.value).inc()
        if failure in (Failure.STATUS_429, Failure.STREAM):
            return False  # busy, or broke mid-answer: not evidence the endpoint is down
        state.consecutive_failures += 1
        if state.ejected:
            return False
        if failure is not Failure.REFUSED:
            if state.consecutive_failures < self._settings.eject_after_failures:
                return False
            if not self._may_eject_for_errors(attempt):
                return False
        self._eject(attempt, self._clock())
        return True

    def _may_eject_for_errors(self, attempt: Attempt) -> bool:
        """Whether ejecting keeps within ``max_ejected_fraction`` of the requested
        deployment's ready endpoints."""
        deployment = self._catalog.deployments.get(attempt.deployment)
        peers = [e.url for e in deployment.ready_endpoints] if deployment else [attempt.url]
        ejected = sum(1 for u in peers if (s := self._states.get(u)) is not None and s.ejected)
        return ejected + 1 <= math.floor(self._settings.max_ejected_fraction * len(peers))

    def _eject(self, attempt: Attempt, now: float) -> None:
        state = attempt.state
        seconds = min(
            self._settings.eject_base_seconds * 2**state.ejections_in_a_row,
            self._settings.eject_max_seconds,
        )
        state.ejections_in_a_row += 1
        state.ejected_until = now + seconds
        # One engine: out for every deployment that lists it, counted under each.
        series = set(state.labels.items()) or {(attempt.deployment, attempt.label)}
        for key, label in series:
            self._metrics.ejections(key, label).inc()
            self._metrics.ejected(key, label).set(1)
        state.ejected_as |= series
        log.warning(
            "ejected endpoint %s (%s) for %.1fs after %d failure(s)",
            attempt.label,
            ", ".join(f"{label} of {key}" for key, label in sorted(series)),
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
                for key, label in state.ejected_as | set(state.labels.items()):
                    self._metrics.ejected(key, label).set(0)
                state.ejected_as.clear()
                log.info("endpoint %s (%s) is back", state.label, state.url)
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
