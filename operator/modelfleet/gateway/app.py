"""The gateway's HTTP front: OpenAI paths, authentication, rate limits, input checks, then
routing and forwarding; plus a separate management app for /metrics, /healthz and /readyz.

The order of checks is the order of cost: the key (401) and its rate (429) before the body
is read, the body's size (413) before it is parsed, its shape (400) and model (404) before
any endpoint is chosen. A refused request reaches no replica. Every refusal is an
OpenAI-shaped error (``errors``) so OpenAI clients raise their usual exceptions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Final

import aiohttp
from aiohttp import web

from modelfleet.gateway.auth import ApiKeys, RateLimiter, bearer_token, retry_after
from modelfleet.gateway.catalog import Catalog, DeploymentKey, DeploymentTarget, RouteTarget
from modelfleet.gateway.endpoints import EndpointPool
from modelfleet.gateway.errors import (
    BadRequest,
    GatewayError,
    ModelNotFound,
    NoRoute,
    RateLimited,
    TooLarge,
    Unauthenticated,
)
from modelfleet.gateway.holding import HoldQueue
from modelfleet.gateway.metrics import GatewayMetrics
from modelfleet.gateway.proxy import ClientGone, Forwarder, NoEndpointLeft, rewrite_model
from modelfleet.gateway.routing import (
    NoRuleMatched,
    RequestFacts,
    UnknownModel,
    decide_route,
    prefix_key,
)
from modelfleet.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

CLIENT_CLOSED: Final = 499
"""Status recorded in metrics when the client left mid-answer (nginx's convention)."""
MAX_REHOLDS: Final = 2
"""Times a request whose every endpoint refused (and was ejected) goes back to holding."""


class _NotJsonNumber(ValueError):
    """``NaN``/``Infinity``/``-Infinity`` in a body: Python's json reads them, JSON (RFC 8259)
    and the engines do not."""


def _reject_constant(name: str) -> Any:
    raise _NotJsonNumber(name)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[:limit] + "…"


def prompt_text(kind: str, payload: dict[str, Any]) -> str:
    """The prompt's text, for size rules and prefix affinity. Raises BadRequest when the
    request lacks what its kind requires."""
    if kind == "chat":
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' is required: a non-empty list of messages")
        parts: list[str] = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise BadRequest(f"'messages[{index}]' must be an object with role and content")
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return "\n".join(parts)
    prompt = payload.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt:
        return "\n".join(p if isinstance(p, str) else json.dumps(p) for p in prompt)
    raise BadRequest("'prompt' is required: a string, a list of strings or of token ids")


class Gateway:
    """Everything one gateway process routes with. Build inside a running event loop."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        keys: ApiKeys | None = None,
        metrics: GatewayMetrics | None = None,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.keys = keys if keys is not None else ApiKeys()
        self.metrics = metrics if metrics is not None else GatewayMetrics()
        self._own_session = session is None
        self.session = session or aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=30),
            auto_decompress=False,
        )
        self.catalog = Catalog()
        self.loaded = False
        """True once a source delivered its first catalog (readiness)."""
        self.holds = HoldQueue(settings, self.metrics)
        self.pool = EndpointPool(
            settings, self.metrics, self.session, on_recovered=self.holds.notify, clock=clock
        )
        self.limiter = RateLimiter(
            settings.rate_limit_per_second, settings.rate_limit_burst, clock=clock
        )
        self._rng = rng or random.Random()
        self._clock = clock
        self.forwarder = Forwarder(
            settings=settings,
            pool=self.pool,
            holds=self.holds,
            metrics=self.metrics,
            session=self.session,
            catalog=lambda: self.catalog,
            rng=self._rng,
            clock=clock,
        )

    def set_catalog(self, catalog: Catalog) -> None:
        """Route with ``catalog`` from now on; wakes held requests."""
        for conflict in set(catalog.conflicts) - set(self.catalog.conflicts):
            log.warning("%s", conflict)
        self.catalog = catalog
        self.loaded = True
        for key in catalog.deployments:
            # The arrivals counter's child at 0 before the first request: rate() needs a
            # sample before it (cached, so a known deployment costs a dict lookup).
            self.metrics.received(key)
        self.pool.update(catalog)
        self.holds.notify()

    def start(self) -> None:
        """Start background work (engine-metrics scrapes)."""
        self.pool.start()

    async def close(self) -> None:
        """Stop background work and close the upstream connections."""
        await self.pool.close()
        if self._own_session:
            await self.session.close()

    # -- request handling --------------------------------------------------------------

    def authenticate(self, request: web.Request) -> str:
        """The caller's key id ("anonymous" when keys are off). Raises Unauthenticated or
        RateLimited."""
        key_id = "anonymous"
        if self.keys.enabled:
            token = bearer_token(request.headers.get("Authorization"))
            found = self.keys.identify(token) if token else None
            if found is None:
                raise Unauthenticated(
                    "missing or invalid API key: send 'Authorization: Bearer <key>'"
                    if token is None
                    else "invalid API key",
                    headers={"WWW-Authenticate": 'Bearer realm="modelfleet"'},
                )
            key_id = found
        wait = self.limiter.take(key_id)
        if wait > 0:
            raise RateLimited(
                f"rate limit of {self.settings.rate_limit_per_second:g} requests/s exceeded "
                "for this API key",
                headers={"Retry-After": retry_after(wait)},
            )
        return key_id

    async def read_json(self, request: web.Request) -> tuple[bytes, dict[str, Any]]:
        """The body (raw) and parsed object. Raises TooLarge or BadRequest."""
        limit = self.settings.max_request_bytes
        if request.content_length is not None and request.content_length > limit:
            raise TooLarge(f"request body of {request.content_length} bytes exceeds {limit}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise TooLarge(f"request body exceeds {limit} bytes") from None
        try:
            payload = json.loads(body, parse_constant=_reject_constant)
        except _NotJsonNumber as exc:
            raise BadRequest(
                f"request body is not valid JSON: {exc} is not a JSON number"
            ) from None
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise BadRequest("request body must be a JSON object")
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required: the name of a model (see /v1/models)")
        stream = payload.get("stream", False)
        if stream is not None and not isinstance(stream, bool):
            raise BadRequest("'stream' must be true or false")
        return body, payload

    async def handle(self, request: web.Request, *, path: str, kind: str) -> web.StreamResponse:
        """Serve one OpenAI request (``kind`` chat or completion) to ``path`` upstream."""
        started = self._clock()
        key: DeploymentKey | None = None
        try:
            self.authenticate(request)
            body, payload = await self.read_json(request)
            text = prompt_text(kind, payload)
            headers = {k.lower(): v for k, v in request.headers.items()}
            facts = RequestFacts(model=payload["model"], headers=headers, prompt_chars=len(text))
            try:
                decision = decide_route(self.catalog, facts, self._rng)
            except UnknownModel:
                raise ModelNotFound(
                    f"model {shorten(payload['model'], self.settings.max_echoed_model_chars)!r}"
                    " does not exist (see /v1/models)"
                ) from None
            except NoRuleMatched as exc:
                raise NoRoute(str(exc)) from None
            key = decision.primary
            # Demand, counted once on arrival before any hold (the scale-from-zero rate).
            self.metrics.received(key).inc()
            waited = 0.0
            for rehold in range(MAX_REHOLDS + 1):
                hold_started = self._clock()
                deployment = await self.forwarder.choose_deployment(decision)
                waited += self._clock() - hold_started
                key = deployment.key
                upstream_body = rewrite_model(body, payload, deployment.served_model)
                try:
                    response, endpoint = await self.forwarder.forward(
                        request,
                        path=path,
                        body=upstream_body,
                        deployment=deployment,
                        affinity=prefix_key(text, self.settings),
                        own_since=started + waited,
                    )
                    break
                except NoEndpointLeft as gone:
                    # Every endpoint failed to connect and is now ejected: the request
                    # reached no engine, so hold it like the ones arriving after it.
                    if rehold == MAX_REHOLDS:
                        raise gone.error from None
                    waited = self._clock() - started
        except GatewayError as error:
            if key is None:
                self.metrics.rejected(error.reason).inc()
            else:
                self.metrics.requests(key, "", error.status).inc()
                self.metrics.duration(key).observe(self._clock() - started)
            return error.response()
        except ClientGone as gone:
            if key is not None:
                self.metrics.requests(key, str(gone), CLIENT_CLOSED).inc()
            raise
        except asyncio.CancelledError:  # the client hung up (handler cancellation)
            if key is not None:
                self.metrics.requests(key, "", CLIENT_CLOSED).inc()
            raise
        self.metrics.requests(key, endpoint, response.status).inc()
        self.metrics.duration(key).observe(self._clock() - started)
        return response

    def models(self, request: web.Request) -> web.Response:
        """GET /v1/models: every model name the gateway answers to."""
        try:
            self.authenticate(request)
        except GatewayError as error:
            self.metrics.rejected(error.reason).inc()
            return error.response()
        data = []
        for name, target in sorted(self.catalog.models.items()):
            if isinstance(target, RouteTarget):
                owner = target.namespace
            else:
                assert isinstance(target, DeploymentTarget)
                owner = target.key.namespace
            data.append({"id": name, "object": "model", "created": 0, "owned_by": owner})
        return web.json_response({"object": "list", "data": data})


def api_app(gateway: Gateway) -> web.Application:
    """The client-facing app: /v1/chat/completions, /v1/completions, /v1/models."""
    app = web.Application(client_max_size=gateway.settings.max_request_bytes + 1)

    async def chat(request: web.Request) -> web.StreamResponse:
        return await gateway.handle(request, path="/v1/chat/completions", kind="chat")

    async def completions(request: web.Request) -> web.StreamResponse:
        return await gateway.handle(request, path="/v1/completions", kind="completion")

    async def models(request: web.Request) -> web.StreamResponse:
        return gateway.models(request)

    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    return app


def management_app(gateway: Gateway) -> web.Application:
    """The operator-facing app: /metrics (Prometheus), /healthz, /readyz."""
    app = web.Application()

    async def metrics(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=gateway.metrics.render(), content_type="text/plain", charset="utf-8"
        )

    async def healthz(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async def readyz(request: web.Request) -> web.StreamResponse:
        if not gateway.loaded:
            return web.Response(status=503, text="no catalog yet")
        return web.Response(text="ok")

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
