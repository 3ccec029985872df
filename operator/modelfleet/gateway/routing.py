"""The gateway's decisions, as pure functions: which deployment a request goes to (ModelRoute
rules, weights, fallbacks) and which endpoint of it (health, load, latency, locality and
prompt-prefix affinity).

No I/O and no clock: the caller passes the catalog, the facts of the request, a snapshot of
each endpoint's load and a ``random.Random``; same inputs, same answer. That is what lets the
tests table-drive every rule and the benchmark time the picker alone.

Endpoint choice, in order:

1. **Locality with headroom.** Endpoints in the gateway's own region are used while one of
   them has headroom (requests in flight below the cap, engine queue and KV-cache use below
   their thresholds where scraped); then any endpoint with headroom; then all of them.
2. **Prefix affinity.** A prompt at least ``affinity_prefix_chars`` long is keyed by its
   first that-many characters. Endpoints are ordered by rendezvous hashing of that key
   (consistent: adding or removing an endpoint moves only its own share), and the first
   whose load stays within ``affinity_load_factor`` of the mean takes it (consistent
   hashing with bounded loads, Mirrokni et al. 2018), so engines reuse their prefix cache
   without one hot prefix overloading a replica.
3. **Least expected wait.** Otherwise the cost of an endpoint is (load + 1) x its moving
   TTFT; with more than two candidates two are drawn at random and the cheaper wins (the
   power of two choices keeps several stateless gateway replicas from herding on the same
   scraped figures).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelfleet.api.modelroute import RouteMatch, RouteRule
from modelfleet.gateway.catalog import (
    Catalog,
    DeploymentKey,
    DeploymentTarget,
    RouteTarget,
)
from modelfleet.gateway.settings import GatewaySettings


@dataclass(frozen=True)
class RequestFacts:
    """What routing looks at in a request."""

    model: str
    headers: Mapping[str, str]
    """Request headers with lower-case names."""
    prompt_chars: int
    """Characters of prompt text (chat: every message's text; completions: the prompt)."""


@dataclass(frozen=True)
class RouteDecision:
    """Where a request may go, best first."""

    candidates: tuple[DeploymentKey, ...]
    """The chosen deployment, then the rule's other backends (by weight), then the route's
    fallbacks; the first with a ready endpoint serves the request."""
    route: str | None = None
    """``namespace/name`` of the ModelRoute used, if any."""
    rule: str | None = None
    """Name (or index) of the rule that matched, if any."""

    @property
    def primary(self) -> DeploymentKey:
        """The deployment the request was meant for (held against when none is ready)."""
        return self.candidates[0]


class UnknownModel(LookupError):
    """No route or deployment serves the requested model name."""


class NoRuleMatched(LookupError):
    """The model's ModelRoute has no rule matching the request and rejects it."""


def matches(match: RouteMatch | None, facts: RequestFacts) -> bool:
    """Whether every condition of ``match`` holds for the request (None always holds)."""
    if match is None:
        return True
    for header in match.headers or ():
        value = facts.headers.get(header.name.lower())
        if value is None or (header.value is not None and value != header.value):
            return False
    if match.min_prompt_chars is not None and facts.prompt_chars < match.min_prompt_chars:
        return False
    return not (match.max_prompt_chars is not None and facts.prompt_chars > match.max_prompt_chars)


def _weighted_order(rule: RouteRule, rng: random.Random) -> list[str]:
    """Backends of a rule: one drawn by weight first, then the rest by weight (descending)."""
    weighted = [b for b in rule.backends if b.weight > 0]
    total = sum(b.weight for b in weighted)
    point = rng.random() * total
    chosen = weighted[-1].deployment
    for backend in weighted:
        point -= backend.weight
        if point < 0:
            chosen = backend.deployment
            break
    rest = sorted((b for b in rule.backends if b.deployment != chosen), key=lambda b: -b.weight)
    return [chosen, *(b.deployment for b in rest)]


def decide_route(catalog: Catalog, facts: RequestFacts, rng: random.Random) -> RouteDecision:
    """The deployments a request may go to, best first.

    Raises ``UnknownModel`` when no route or deployment answers to ``facts.model`` and
    ``NoRuleMatched`` when its route has no matching rule and ``onNoMatch`` is Reject.
    """
    target = catalog.resolve(facts.model)
    if target is None:
        raise UnknownModel(facts.model)
    if isinstance(target, DeploymentTarget):
        return RouteDecision(candidates=(target.key,))
    assert isinstance(target, RouteTarget)
    spec = target.spec
    fallback = [DeploymentKey(target.namespace, name) for name in spec.fallback or ()]
    route = f"{target.namespace}/{target.name}"
    for index, rule in enumerate(spec.rules):
        if matches(rule.match, facts):
            order = [DeploymentKey(target.namespace, n) for n in _weighted_order(rule, rng)]
            keys = list(dict.fromkeys([*order, *fallback]))
            return RouteDecision(tuple(keys), route=route, rule=rule.name or str(index))
    if spec.on_no_match == "Fallback" and fallback:
        return RouteDecision(tuple(dict.fromkeys(fallback)), route=route, rule="fallback")
    raise NoRuleMatched(f"no rule of ModelRoute {route} matches the request")


# -- endpoint choice ---------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointLoad:
    """One candidate endpoint and what is known of its load right now."""

    url: str
    region: str | None
    outstanding: int
    """Requests this gateway has in flight to it."""
    queue: float | None = None
    """Requests waiting in its engine (scraped), None when unknown."""
    kv_cache: float | None = None
    """Engine KV-cache use, 0..1 (scraped), None when unknown."""
    ttft: float | None = None
    """Moving time to first byte, seconds, None before the first answer."""

    @property
    def load(self) -> float:
        """Requests in flight plus waiting in the engine."""
        return self.outstanding + (self.queue or 0.0)


def has_headroom(endpoint: EndpointLoad, settings: GatewaySettings) -> bool:
    """Whether the endpoint can take more work without queueing beyond the thresholds."""
    if endpoint.outstanding >= settings.max_outstanding_per_endpoint:
        return False
    if endpoint.queue is not None and endpoint.queue > settings.queue_headroom:
        return False
    return not (endpoint.kv_cache is not None and endpoint.kv_cache > settings.kv_cache_headroom)


def prefix_key(prompt: str, settings: GatewaySettings) -> bytes | None:
    """The affinity key of a prompt (a digest of its first ``affinity_prefix_chars``), or
    None when the prompt is shorter or affinity is off."""
    size = settings.affinity_prefix_chars
    if size <= 0 or len(prompt) < size:
        return None
    return hashlib.blake2b(prompt[:size].encode("utf-8", "replace"), digest_size=16).digest()


def _rendezvous(key: bytes, url: str) -> bytes:
    return hashlib.blake2b(url.encode(), key=key, digest_size=8).digest()


def pick_endpoint(
    endpoints: Sequence[EndpointLoad],
    *,
    settings: GatewaySettings,
    rng: random.Random,
    affinity: bytes | None = None,
) -> EndpointLoad | None:
    """The endpoint to send a request to, or None when ``endpoints`` is empty (see the
    module docstring for the order of criteria). ``endpoints`` are healthy (not ejected)."""
    if not endpoints:
        return None
    roomy = [e for e in endpoints if has_headroom(e, settings)]
    local = [e for e in roomy if settings.region and e.region == settings.region]
    pool = local or roomy or list(endpoints)
    if len(pool) == 1:
        return pool[0]
    if affinity is not None:
        total = sum(e.load for e in pool) + 1
        cap = math.ceil(settings.affinity_load_factor * total / len(pool))
        for endpoint in sorted(pool, key=lambda e: _rendezvous(affinity, e.url), reverse=True):
            if endpoint.load + 1 <= cap:
                return endpoint
    known = [e.ttft for e in pool if e.ttft is not None]
    default_ttft = sum(known) / len(known) if known else 1.0

    def cost(e: EndpointLoad) -> float:
        return (e.load + 1) * max(e.ttft if e.ttft is not None else default_ttft, 1e-4)

    if len(pool) > 2:
        first, second = rng.sample(pool, 2)
        return first if cost(first) <= cost(second) else second
    best = min(cost(e) for e in pool)
    return rng.choice([e for e in pool if cost(e) == best])
