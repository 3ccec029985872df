"""One request's journey upstream: choose a deployment and endpoint, hold when none is
ready, forward, retry before the first byte, stream the answer through.

The line that matters is the first byte sent to the client. Before it, a refused or broken
connection, a 5xx or a 429 from the endpoint is retried on another endpoint of the same
deployment (at most ``max_attempts`` endpoints per request, and only while the retry budget
allows: retries may add ``retry_budget_ratio`` of the recent requests, or
``retry_budget_min_per_second``, so a failing fleet is not hit with a retry storm). After
it, nothing is retried: a streaming client gets a clean SSE error event and the stream ends.
The client's response is prepared only when the endpoint's first body chunk arrives, so an
endpoint that sends headers and then dies is still retried.

Answers are passed through as they arrive: each upstream chunk is written to the client and
``write`` waits for the client's socket to drain, while aiohttp stops reading the endpoint's
socket when its buffer fills, so a slow client slows the endpoint's socket, not the
gateway's memory.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from modelfleet.gateway.catalog import Catalog, DeploymentInfo
from modelfleet.gateway.endpoints import Attempt, EndpointPool, Failure
from modelfleet.gateway.errors import (
    GatewayError,
    StreamBroken,
    Unavailable,
    UpstreamFailed,
    UpstreamTimeout,
)
from modelfleet.gateway.holding import HoldOutcome, HoldQueue
from modelfleet.gateway.metrics import GatewayMetrics
from modelfleet.gateway.routing import RouteDecision, pick_endpoint
from modelfleet.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

FORWARDED_REQUEST_HEADERS: Final = frozenset({"accept", "user-agent"})
"""Request headers passed upstream, besides ``x-*`` ones (never Authorization: the caller's
key is for the gateway). Content-Type is set, not passed: the gateway parsed the body as JSON
whatever the caller called it, and engines refuse a body not labelled application/json."""
DROPPED_X_HEADERS: Final = frozenset({"x-api-key", "x-forwarded-for"})
PASSED_RESPONSE_HEADERS: Final = ("Content-Type", "Cache-Control", "X-Request-Id")
RETRYABLE_STATUS: Final = frozenset({429, 500, 502, 503, 504})


class ClientGone(Exception):
    """The client closed its connection mid-answer (its endpoint label is the message)."""


class NoEndpointLeft(Exception):
    """Every try failed before reaching an engine's answer and the deployment has no healthy
    endpoint left (all ejected during the request): the request may be held like those that
    arrive after it. ``error`` is what to answer when it may not."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


class RetryBudget:
    """Envoy-style retry budget over a sliding window. Call on the event loop."""

    def __init__(self, settings: GatewaySettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._requests: collections.deque[float] = collections.deque()
        self._retries: collections.deque[float] = collections.deque()

    def _prune(self, now: float) -> None:
        horizon = now - self._settings.retry_budget_window
        for queue in (self._requests, self._retries):
            while queue and queue[0] < horizon:
                queue.popleft()

    def request(self) -> None:
        """Count a request (and forget those older than the window: memory stays bounded by
        the window's requests)."""
        now = self._clock()
        self._requests.append(now)
        if self._requests[0] < now - self._settings.retry_budget_window:
            self._prune(now)

    def try_retry(self) -> bool:
        """Spend one retry if the budget allows; False when it is spent."""
        now = self._clock()
        self._prune(now)
        s = self._settings
        allowed = max(
            s.retry_budget_ratio * len(self._requests),
            s.retry_budget_min_per_second * s.retry_budget_window,
        )
        if len(self._retries) >= allowed:
            return False
        self._retries.append(now)
        return True


def upstream_headers(headers: Mapping[str, str], request_id: str | None) -> CIMultiDict[str]:
    """Headers to send upstream: content negotiation and ``x-*`` (request ids, routing
    hints), never the caller's credentials or hop-by-hop headers."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in FORWARDED_REQUEST_HEADERS or (
            lower.startswith("x-") and lower not in DROPPED_X_HEADERS
        ):
            out.add(name, value)
    out["Content-Type"] = "application/json"
    # Answers are passed through byte for byte: ask for them uncompressed.
    out["Accept-Encoding"] = "identity"
    if request_id and "x-request-id" not in out:
        out["X-Request-Id"] = request_id
    return out


def rewrite_model(body: bytes, parsed: dict[str, Any], served_model: str) -> bytes:
    """The body with ``model`` set to the engine's served name (unchanged bytes when it
    already is)."""
    if parsed.get("model") == served_model:
        return body
    return json.dumps({**parsed, "model": served_model}, ensure_ascii=False).encode()


async def read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to ``limit`` bytes of a body (fewer at its end); the rest is left unread (the
    connection is then closed on release, not reused)."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


class Forwarder:
    """Sends requests to endpoints; one per gateway, on one event loop."""

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        pool: EndpointPool,
        holds: HoldQueue,
        metrics: GatewayMetrics,
        session: aiohttp.ClientSession,
        catalog: Callable[[], Catalog],
        rng: random.Random,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._holds = holds
        self._metrics = metrics
        self._session = session
        self._catalog = catalog
        self._rng = rng
        self._clock = clock
        self.budget = RetryBudget(settings, clock)

    def first_available(self, decision: RouteDecision) -> DeploymentInfo | None:
        """The first candidate deployment with a healthy endpoint, or None."""
        catalog = self._catalog()
        for key in decision.candidates:
            deployment = catalog.deployments.get(key)
            if deployment is not None and self._pool.healthy(deployment):
                return deployment
        return None

    async def choose_deployment(self, decision: RouteDecision) -> DeploymentInfo:
        """The deployment to use, holding while none has a healthy endpoint.

        Raises Unavailable (503 with Retry-After) when the hold times out or overflows.
        """
        deployment = self.first_available(decision)
        if deployment is None:
            outcome = await self._holds.wait(
                decision.primary, lambda: self.first_available(decision) is not None
            )
            retry = {"Retry-After": str(self._settings.retry_after_seconds)}
            if outcome is HoldOutcome.OVERFLOW:
                raise Unavailable(
                    f"deployment {decision.primary} has no ready endpoint and "
                    f"{self._settings.max_held_per_deployment} requests are already waiting",
                    headers=retry,
                )
            deployment = self.first_available(decision)
            if deployment is None:
                raise Unavailable(
                    f"deployment {decision.primary} has no ready endpoint (waited "
                    f"{self._settings.hold_timeout:g}s; it may be scaling from zero)",
                    headers=retry,
                )
        if deployment.key != decision.primary:
            self._metrics.fallbacks(decision.primary, deployment.key.name).inc()
        return deployment

    async def forward(
        self,
        request: web.Request,
        *,
        path: str,
        body: bytes,
        deployment: DeploymentInfo,
        affinity: bytes | None,
        own_since: float,
    ) -> tuple[web.StreamResponse, str]:
        """Send the request to endpoints of ``deployment`` until one answers; stream the
        answer to the client. Returns (the response, the endpoint label that answered).

        Raises UpstreamFailed (502) / UpstreamTimeout (504) / Unavailable (503) when no
        endpoint answered before the first byte; the last endpoint's 5xx/429 answer is
        passed through instead when it had one. ``own_since`` is when the gateway's own work
        on the request began (arrival, plus any time held): see ``overhead`` in the metrics.
        """
        settings = self._settings
        headers = upstream_headers(request.headers, request.headers.get("X-Request-Id"))
        tried: set[str] = set()
        deadline = self._clock() + settings.request_timeout
        self.budget.request()
        last_error: GatewayError | None = None
        for attempt in range(settings.max_attempts):
            loads = [e for e in self._pool.healthy(deployment) if e.url not in tried]
            choice = pick_endpoint(loads, settings=settings, rng=self._rng, affinity=affinity)
            if choice is None:
                break
            if attempt > 0:
                if not self.budget.try_retry():
                    self._metrics.budget_exhausted(deployment.key).inc()
                    break
                self._metrics.retries(deployment.key).inc()
            tried.add(choice.url)
            state = self._pool.acquire(choice.url, deployment.key)
            attempt_started = self._clock()
            try:
                outcome = await self._attempt(
                    request,
                    state,
                    path=path,
                    body=body,
                    headers=headers,
                    deadline=deadline,
                    own_since=own_since,
                )
            finally:
                self._pool.release(state)
            own_since += self._clock() - attempt_started  # a failed try is waiting, not work
            if isinstance(outcome, web.StreamResponse):
                return outcome, state.label
            if isinstance(outcome, UpstreamTimeout):
                raise outcome  # the endpoint may still be generating: do not double the work
            last_error = outcome
        if isinstance(last_error, _UpstreamAnswer):
            return last_error.response(), last_error.endpoint
        if last_error is not None:
            if isinstance(last_error, UpstreamFailed) and not self._pool.healthy(deployment):
                raise NoEndpointLeft(last_error)
            raise last_error
        raise Unavailable(
            f"deployment {deployment.key} has no healthy endpoint left to try",
            headers={"Retry-After": str(settings.retry_after_seconds)},
        )

    async def _attempt(
        self,
        request: web.Request,
        state: Attempt,
        *,
        path: str,
        body: bytes,
        headers: CIMultiDict[str],
        deadline: float,
        own_since: float,
    ) -> web.StreamResponse | GatewayError:
        """One try against one endpoint: the client's response once the first byte was
        sent, or the error that makes it worth trying another endpoint."""
        settings = self._settings
        timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout, sock_connect=settings.connect_timeout
        )
        started = self._clock()
        upstream: aiohttp.ClientResponse | None = None
        try:
            try:
                first_byte = min(settings.first_byte_timeout, max(0.0, deadline - started))
                async with asyncio.timeout(first_byte):
                    upstream = await self._session.post(
                        state.url + path, data=body, headers=headers, timeout=timeout
                    )
                    if upstream.status in RETRYABLE_STATUS:
                        limit = settings.max_upstream_error_bytes
                        error_body = await read_at_most(upstream.content, limit + 1)
                        failure = (
                            Failure.STATUS_429 if upstream.status == 429 else Failure.STATUS_5XX
                        )
                        self._pool.failed(state, failure)
                        answer = _UpstreamAnswer(upstream, error_body, state.label)
                        if len(error_body) > limit:  # not read whole: never pass a cut body
                            answer.replace_body(
                                f"endpoint {state.label} answered {upstream.status} with an "
                                f"error body over {limit} bytes (not passed on)"
                            )
                        return answer
                    first = await upstream.content.readany()
            except aiohttp.ClientConnectorError as exc:
                self._pool.failed(state, Failure.REFUSED)
                return UpstreamFailed(
                    f"endpoint {state.label} refused the connection ({exc.os_error.strerror or type(exc).__name__})"
                )
            except (aiohttp.ConnectionTimeoutError, aiohttp.ServerTimeoutError):
                self._pool.failed(state, Failure.REFUSED)
                return UpstreamFailed(
                    f"endpoint {state.label}: no connection within {settings.connect_timeout:g}s"
                )
            except TimeoutError:
                self._pool.failed(state, Failure.TIMEOUT)
                return UpstreamTimeout(
                    f"endpoint {state.label} sent no answer within {first_byte:g}s"
                )
            except (aiohttp.ClientError, OSError) as exc:
                self._pool.failed(state, Failure.RESET)
                return UpstreamFailed(
                    f"endpoint {state.label} closed the connection before answering "
                    f"({type(exc).__name__})"
                )
            ttft = self._clock() - started
            if 200 <= upstream.status < 300:
                self._pool.succeeded(state, ttft)
            self._metrics.ttft(state.deployment, state.label).observe(ttft)
            # The gateway's own time: before sending, and from the first byte to the client.
            before = started - own_since
            return await self._stream(
                request,
                upstream,
                first,
                state,
                deadline=deadline,
                own=lambda: before + self._clock() - started - ttft,
            )
        finally:
            if upstream is not None:
                upstream.release()

    async def _stream(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        first: bytes,
        state: Attempt,
        *,
        deadline: float,
        own: Callable[[], float],
    ) -> web.StreamResponse:
        """Pass the answer through chunk by chunk (the first byte is already read)."""
        headers = {"X-Modelfleet-Endpoint": state.label}
        for name in PASSED_RESPONSE_HEADERS:
            value = upstream.headers.get(name)
            if value is not None:
                headers[name] = value
        sse = headers.get("Content-Type", "").startswith("text/event-stream")
        if not sse and upstream.content_length == len(first):
            # A whole answer in its first chunk (the usual non-streaming case): one write.
            whole = web.Response(
                status=upstream.status, reason=upstream.reason, body=first, headers=headers
            )
            self._metrics.overhead(state.deployment).observe(own())
            return whole
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        response.headers.update(headers)
        if not sse and upstream.content_length is not None:
            response.content_length = upstream.content_length
        await response.prepare(request)
        chunk = first
        read_timeout = self._settings.read_timeout
        whole_request = False
        try:
            while chunk:
                await response.write(chunk)
                if chunk is first:
                    self._metrics.overhead(state.deployment).observe(own())
                left = deadline - self._clock()
                if left <= 0:
                    return await self._broken(response, state, sse=sse, what="request timeout")
                whole_request = left < read_timeout
                async with asyncio.timeout(min(read_timeout, left)):
                    chunk = await upstream.content.readany()
        except (ConnectionResetError, ConnectionError) as exc:
            if request.transport is None or request.transport.is_closing():
                raise ClientGone(state.label) from exc  # nothing left to tell the client
            return await self._broken(response, state, sse=sse, what=type(exc).__name__)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            what = type(exc).__name__
            if isinstance(exc, TimeoutError):
                what = "request timeout" if whole_request else f"no data for {read_timeout:g}s"
            return await self._broken(response, state, sse=sse, what=what)
        await response.write_eof()
        return response

    async def _broken(
        self, response: web.StreamResponse, state: Attempt, *, sse: bool, what: str
    ) -> web.StreamResponse:
        """The endpoint failed mid-answer: end an SSE stream with an error event; a plain
        body can only be cut short (the client sees a truncated answer)."""
        self._pool.failed(state, Failure.STREAM)
        error = StreamBroken(
            f"endpoint {state.label} failed after the answer started ({what}); the "
            "request was not retried"
        )
        log.warning("%s", error.message)
        if sse:
            try:
                await response.write(error.sse_event())
                await response.write_eof()
            except (ConnectionError, RuntimeError):
                pass
        else:
            response.force_close()
        return response


class _UpstreamAnswer(GatewayError):
    """An endpoint's own 5xx/429 answer, kept to pass through if no retry succeeds."""

    def __init__(self, upstream: aiohttp.ClientResponse, body: bytes, endpoint: str) -> None:
        super().__init__(f"endpoint answered {upstream.status}")
        self.status = upstream.status
        self.body = body
        self.endpoint = endpoint
        self.content_type = upstream.headers.get("Content-Type", "application/json")
        self.retry_after = upstream.headers.get("Retry-After")

    def replace_body(self, message: str) -> None:
        """Answer with the gateway's own OpenAI-shaped error instead of the endpoint's body."""
        self.body = json.dumps(
            {
                "error": {
                    "message": message,
                    "type": "server_error",
                    "param": None,
                    "code": "upstream_error_too_large",
                }
            }
        ).encode()
        self.content_type = "application/json"

    def response(self) -> web.Response:
        headers = {"Content-Type": self.content_type, "X-Modelfleet-Endpoint": self.endpoint}
        if self.retry_after:
            headers["Retry-After"] = self.retry_after
        return web.Response(status=self.status, body=self.body, headers=headers)
