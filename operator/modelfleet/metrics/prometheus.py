"""Reads the SLO signals from Prometheus over its HTTP API (``/api/v1/query``).

Two layers: ``PrometheusClient`` speaks the HTTP API (instant queries, a per-request timeout,
bounded retries of connection errors and 5xx, errors translated into ``MetricsUnavailable``
or ``QueryError`` here and nowhere else), and ``PrometheusMetricsSource`` implements the
``MetricsSource`` port with it: it builds the engine's queries (``queries``), runs them
concurrently at one evaluation time and reduces each answer to one number or ``None``.

Credentials (a bearer token, basic auth, or user:password in the URL) are sent but never
logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp

from modelfleet.api.modeldeployment import MetricsQueries
from modelfleet.metrics.queries import (
    QuerySettings,
    QueryTemplateError,
    Signal,
    build_queries,
    reporting_query,
)
from modelfleet.metrics.source import MetricsTarget, MetricsUnavailable, SignalValues

log = logging.getLogger(__name__)

_SUMMED: Final[frozenset[Signal]] = frozenset(
    {"queue_depth", "request_rate", "tokens_per_second", "kv_cache_usage", "requests_running"}
)
"""Signals whose several series (an override without ``sum``) add up; the others take the
worst (largest) series."""


class QueryError(Exception):
    """Prometheus rejected one query (HTTP 400 bad_data, 422 execution error) or answered
    with a result type other than an instant vector or a scalar. Only that signal is lost."""


@dataclass(frozen=True)
class PrometheusAuth:
    """Credentials for a Prometheus behind authentication: a bearer token or basic auth.

    ``repr`` hides the secrets so that logging a settings object cannot leak them.
    """

    bearer_token: str | None = field(default=None, repr=False)
    """Sent as ``Authorization: Bearer <token>``."""
    username: str | None = None
    """Basic-auth user name (with ``password``)."""
    password: str | None = field(default=None, repr=False)
    """Basic-auth password."""

    def __post_init__(self) -> None:
        if self.bearer_token is not None and self.username is not None:
            raise ValueError("set either a bearer token or basic auth, not both")

    def headers(self) -> dict[str, str]:
        """The Authorization header, or nothing when no credentials are set."""
        if self.bearer_token is not None:
            return {"Authorization": f"Bearer {self.bearer_token}"}
        if self.username is not None:
            return {"Authorization": _basic_auth(self.username, self.password or "")}
        return {}


@dataclass(frozen=True)
class Sample:
    """One series of an instant-query result."""

    labels: Mapping[str, str]
    value: float
    """May be NaN or infinite: Prometheus returns NaN for an empty histogram."""


@dataclass(frozen=True)
class InstantResult:
    """An instant query's answer."""

    evaluated_at: datetime
    """Evaluation time, as Prometheus reports it (UTC)."""
    samples: tuple[Sample, ...]
    """Empty when no series matched."""


def redact_url(url: str) -> str:
    """``url`` without user:password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _basic_auth(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _utc(moment: datetime) -> datetime:
    # A naive datetime is taken as UTC (the operator passes aware ones).
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _unix(moment: datetime) -> float:
    return _utc(moment).timestamp()


def _parse_float(text: Any) -> float:
    # Prometheus sends values as strings: "1.5", "NaN", "+Inf", "-Inf".
    return float(text)


class PrometheusClient:
    """Instant queries against Prometheus' HTTP API.

    One client serves every cluster (the base URL is per call) and owns one aiohttp session,
    created on first use inside the running event loop; close it with ``close()`` or use the
    client as an async context manager. A session passed in is used and left open.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        retries: int = 2,
        retry_backoff_s: float = 0.2,
        auth: PrometheusAuth | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        """``timeout_s`` bounds each HTTP request (connect included); a timeout is not
        retried. Connection errors and 5xx answers are retried ``retries`` times, waiting
        ``retry_backoff_s`` doubled at each attempt."""
        if timeout_s <= 0 or retries < 0 or retry_backoff_s < 0:
            raise ValueError("timeout_s must be > 0, retries and retry_backoff_s >= 0")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_s = retry_backoff_s
        self._headers = (auth or PrometheusAuth()).headers()
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session this client created (idempotent)."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def query(
        self, base_url: str, promql: str, *, at: datetime | None = None
    ) -> InstantResult:
        """Evaluate ``promql`` at ``at`` (Prometheus' own clock when ``None``).

        ``base_url`` is the Prometheus root, e.g. ``http://prometheus.monitoring:9090``
        (a path prefix is kept). Raises ``QueryError`` when Prometheus rejects this query,
        ``MetricsUnavailable`` when it cannot be reached within the timeout, keeps failing
        with connection errors or 5xx after the retries, or answers with another status or
        an unreadable body.
        """
        safe_url = redact_url(base_url)
        headers = self._headers
        parts = urlsplit(base_url)
        if parts.username is not None and not headers:
            # user:password in the URL is basic auth (explicit credentials take precedence).
            user, password = unquote(parts.username), unquote(parts.password or "")
            headers = {"Authorization": _basic_auth(user, password)}
        endpoint = safe_url.rstrip("/") + "/api/v1/query"
        form = {"query": promql}
        if at is not None:
            form["time"] = f"{_unix(at):.3f}"
        failure = "no attempt made"
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
            try:
                async with self._client_session().post(
                    endpoint, data=form, headers=headers, timeout=self._timeout
                ) as response:
                    status = response.status
                    body = await response.read()
            except TimeoutError:
                # Not retried: a slow Prometheus stays slow and the reconcile must go on.
                raise MetricsUnavailable(
                    f"{safe_url} did not answer within {self._timeout_s:g}s"
                ) from None
            except aiohttp.ClientConnectionError as error:
                failure = f"cannot connect to {safe_url} ({type(error).__name__})"
                log.debug("prometheus attempt %d failed: %s", attempt + 1, failure)
                continue
            except aiohttp.ClientError as error:
                raise MetricsUnavailable(
                    f"request to {safe_url} failed ({type(error).__name__})"
                ) from None
            if status >= 500:
                failure = f"{safe_url} answered HTTP {status}"
                log.debug("prometheus attempt %d failed: %s", attempt + 1, failure)
                continue
            return self._parse(status, body, safe_url=safe_url, at=at)
        raise MetricsUnavailable(f"{failure} after {self._retries + 1} attempts")

    @staticmethod
    def _parse(status: int, body: bytes, *, safe_url: str, at: datetime | None) -> InstantResult:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if status in (400, 422) and isinstance(payload, dict):
            raise QueryError(f"{payload.get('errorType', 'error')}: {payload.get('error', '')}")
        if status != 200:
            raise MetricsUnavailable(f"{safe_url} answered HTTP {status}")
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise MetricsUnavailable(f"{safe_url} sent an unreadable query response")
        data = payload.get("data") or {}
        result_type = data.get("resultType")
        result: Any = data.get("result")
        try:
            if result_type == "vector":
                samples = tuple(
                    Sample(labels=dict(item["metric"]), value=_parse_float(item["value"][1]))
                    for item in result
                )
                stamps = [float(item["value"][0]) for item in result]
            elif result_type == "scalar":
                samples = (Sample(labels={}, value=_parse_float(result[1])),)
                stamps = [float(result[0])]
            else:
                raise QueryError(f"query returns a {result_type}; want an instant vector or scalar")
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise MetricsUnavailable(
                f"{safe_url} sent a malformed {result_type} ({type(error).__name__})"
            ) from None
        if stamps:
            evaluated_at = datetime.fromtimestamp(stamps[0], tz=UTC)
        else:
            evaluated_at = _utc(at) if at is not None else datetime.now(UTC)
        return InstantResult(evaluated_at=evaluated_at, samples=samples)


class PrometheusMetricsSource:
    """``MetricsSource`` backed by each cluster's Prometheus (``FleetCluster.spec.prometheus``).

    Runs the signal queries (docs/metrics.md) concurrently, all evaluated at ``now``. A query with no
    series, or whose value is NaN or infinite, gives ``None``. Several series (an override
    without aggregation) are added for queue depth and rates and maxed for percentiles.
    """

    def __init__(self, client: PrometheusClient, *, settings: QuerySettings | None = None) -> None:
        self._client = client
        self._settings = settings or QuerySettings()

    async def fetch(self, target: MetricsTarget, *, now: datetime) -> SignalValues:
        """The signals of ``target`` at ``now``; contract in ``MetricsSource``.

        Raises ``MetricsUnavailable`` when the cluster has no Prometheus, or when every
        query sent failed to reach it; a single failed query only loses its signal.
        """
        if target.prometheus is None:
            raise MetricsUnavailable("no spec.prometheus configured", cluster=target.cluster)
        base_url = target.prometheus.url
        queries = build_queries(
            target.engine,
            target.overrides,
            deployment=target.deployment,
            namespace=target.namespace,
            cluster=target.cluster,
            settings=self._settings,
        )
        if target.demand_only:
            demand = target.overrides.demand if target.overrides is not None else None
            if demand:
                queries = build_queries(
                    target.engine,
                    MetricsQueries(request_rate=demand),
                    deployment=target.deployment,
                    namespace=target.namespace,
                    cluster=target.cluster,
                    settings=self._settings,
                )
            queries = {"request_rate": queries["request_rate"]}
        signals = list(queries)
        # How many pods report, beside the signals (not at zero: there are none).
        count = (
            None
            if target.demand_only
            else reporting_query(
                target.engine,
                deployment=target.deployment,
                namespace=target.namespace,
                cluster=target.cluster,
                settings=self._settings,
            )
        )
        outcomes = await asyncio.gather(
            *(self._run(base_url, queries[s], at=now) for s in signals),
            *((self._run(base_url, count, at=now),) if count else ()),
            return_exceptions=True,
        )
        reporting = _reporting(outcomes.pop()) if count else None
        values: dict[Signal, float | None] = {}
        errors: dict[Signal, str] = {}
        unavailable: list[MetricsUnavailable] = []
        observed_at: datetime | None = None
        for signal, outcome in zip(signals, outcomes, strict=True):
            if isinstance(outcome, MetricsUnavailable):
                unavailable.append(outcome)
                errors[signal] = outcome.reason
            elif isinstance(outcome, QueryTemplateError | QueryError):
                errors[signal] = str(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                observed_at = observed_at or outcome.evaluated_at
                values[signal] = _reduce(signal, outcome.samples, errors)
        sent = [q for q in queries.values() if isinstance(q, str)]
        if unavailable and len(unavailable) == len(sent):
            raise MetricsUnavailable(unavailable[0].reason, cluster=target.cluster)
        return SignalValues.from_signals(
            values,
            ready_replicas=target.ready_replicas,
            observed_at=observed_at or _utc(now),
            errors=errors,
            reporting_pods=reporting,
        )

    async def _run(
        self, base_url: str, query: str | QueryTemplateError, *, at: datetime
    ) -> InstantResult:
        if isinstance(query, QueryTemplateError):
            raise query
        return await self._client.query(base_url, query, at=at)


def _reporting(outcome: InstantResult | BaseException) -> int | None:
    # A failed count is unknown, never a reason to fail the signals.
    if isinstance(outcome, BaseException) or not outcome.samples:
        return None
    value = outcome.samples[0].value
    return int(value) if math.isfinite(value) and value >= 0 else None


def _reduce(signal: Signal, samples: tuple[Sample, ...], errors: dict[Signal, str]) -> float | None:
    if not samples:
        errors[signal] = "no series"
        return None
    finite = [s.value for s in samples if math.isfinite(s.value)]
    if not finite:
        errors[signal] = (
            "no data in window (NaN)"
            if any(math.isnan(s.value) for s in samples)
            else "non-finite value"
        )
        return None
    return sum(finite) if signal in _SUMMED else max(finite)
