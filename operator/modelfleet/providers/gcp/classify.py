"""The one place where Google Cloud errors become modelfleet's typed provider errors.

GKE and Compute Engine report the same condition in several shapes: an HTTP status, a
canonical status (``RESOURCE_EXHAUSTED``), an ErrorInfo reason (``RATE_LIMIT_EXCEEDED``) and
codes buried in the message (``ZONE_RESOURCE_POOL_EXHAUSTED``, ``GCE_STOCKOUT``). A stockout,
for instance, may arrive as 503, 429 or 400 depending on the path, so the rules look at the
codes first and the HTTP status last. The message kept is the API's own (never a request,
header or credential).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelfleet.providers.errors import (
    InsufficientCapacity,
    InvalidConfiguration,
    NotFound,
    PermissionDenied,
    ProviderError,
    QuotaExceeded,
    Throttled,
    Unreachable,
)
from modelfleet.providers.retry import retry_after_seconds

CAPACITY_CODES = (
    "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
    "ZONE_RESOURCE_POOL_EXHAUSTED",
    "GCE_STOCKOUT",
    "STOCKOUT",
)
CAPACITY_PHRASES = ("resource pool exhausted", "does not have enough resources available")
QUOTA_CODES = ("GCE_QUOTA_EXCEEDED", "QUOTA_EXCEEDED", "quotaExceeded")
QUOTA_PHRASES = ("insufficient regional quota", "insufficient quota", "quota exceeded")
RATE_LIMIT_CODES = ("RATE_LIMIT_EXCEEDED", "rateLimitExceeded", "userRateLimitExceeded")
RATE_LIMIT_PHRASES = ("per minute", "per second", "rate limit")
BUSY_CODES = ("CLUSTER_ALREADY_HAS_OPERATION",)
BUSY_PHRASES = ("incompatible operation", "already has an operation", "operation in progress")
DEFAULT_RETRY_AFTER = 5.0
BUSY_RETRY_AFTER = 15.0

_PERMISSION_IN_MESSAGE = re.compile(r"\b((?:container|compute|iam)\.[A-Za-z]+\.[A-Za-z]+)\b")
_ZONE_IN_MESSAGE = re.compile(r"zones?/([a-z]+-[a-z]+[0-9]+-[a-z])\b|'([a-z]+-[a-z]+[0-9]+-[a-z])'")


@dataclass(frozen=True)
class CallContext:
    """What a failed call was doing: the IAM permission it needs (also its name in
    messages) and, for pool mutations, the pool's machine type and capacity type."""

    permission: str
    instance_type: str | None = None
    capacity_type: str | None = None


@dataclass(frozen=True)
class _Facts:
    http_status: int | None
    status: str  # canonical status, e.g. RESOURCE_EXHAUSTED
    reasons: tuple[str, ...]  # ErrorInfo / errors[] reasons
    message: str  # the API's message
    metadata: dict[str, str]
    retry_after: float | None

    def has_code(self, codes: Iterable[str]) -> str | None:
        haystack = " ".join((self.status, *self.reasons, self.message))
        return next((code for code in codes if code in haystack), None)

    def has_phrase(self, phrases: Iterable[str]) -> bool:
        lowered = self.message.lower()
        return any(phrase in lowered for phrase in phrases)


def capacity_issue_text(code: str, message: str) -> bool:
    """Whether a node pool condition/status (``code``, ``message``) means a stockout or an
    exhausted quota: GKE reports those on the pool after accepting a resize."""
    lowered = message.lower()
    return (
        code in CAPACITY_CODES
        or code in QUOTA_CODES
        or any(p in lowered for p in CAPACITY_PHRASES)
        or any(p in lowered for p in QUOTA_PHRASES)
    )


def classify(error: BaseException, context: CallContext) -> ProviderError:
    """Translate any exception raised by a Google SDK call into a ProviderError.

    ProviderErrors pass through unchanged. Rules, first match wins: stockout codes ->
    InsufficientCapacity; quota codes (not per-minute API rate limits) -> QuotaExceeded;
    429 / RESOURCE_EXHAUSTED / rate-limit reasons / cluster busy with another operation ->
    Throttled; 404 -> NotFound; 401/403 -> PermissionDenied naming the permission (from the
    ErrorInfo, the message, or the call's own); 400/409/412 -> InvalidConfiguration;
    connection failures, timeouts and 5xx -> Unreachable. Never raises.
    """
    if isinstance(error, ProviderError):
        return error
    facts = _facts(error)
    if facts is None:
        return _non_api_error(error, context)
    what = f"GCP {context.permission}"
    capacity_code = facts.has_code(CAPACITY_CODES)
    if capacity_code or facts.has_phrase(CAPACITY_PHRASES):
        zone = _zone(facts.message)
        return InsufficientCapacity(
            f"{what}: no capacity: {facts.message}",
            instance_type=context.instance_type or "unknown",
            capacity_type=context.capacity_type or "unknown",
            zone=zone,
            cloud_code=capacity_code or "ZONE_RESOURCE_POOL_EXHAUSTED",
        )
    rate_code = facts.has_code(RATE_LIMIT_CODES)
    rate_limited = rate_code is not None or facts.has_phrase(RATE_LIMIT_PHRASES)
    quota_code = facts.has_code(QUOTA_CODES)
    if not rate_limited and (quota_code or facts.has_phrase(QUOTA_PHRASES)):
        return QuotaExceeded(
            f"{what}: quota exhausted: {facts.message}",
            instance_type=context.instance_type,
            capacity_type=context.capacity_type,
            cloud_code=quota_code or "QUOTA_EXCEEDED",
        )
    busy_code = facts.has_code(BUSY_CODES)
    if busy_code or facts.has_phrase(BUSY_PHRASES):
        return Throttled(
            f"{what}: cluster busy with another operation: {facts.message}",
            retry_after=facts.retry_after or BUSY_RETRY_AFTER,
            cloud_code=busy_code or facts.status or None,
        )
    if rate_limited or facts.http_status == 429 or facts.status == "RESOURCE_EXHAUSTED":
        return Throttled(
            f"{what}: rate limited: {facts.message}",
            retry_after=facts.retry_after or DEFAULT_RETRY_AFTER,
            cloud_code=rate_code or facts.status or "RESOURCE_EXHAUSTED",
        )
    code = facts.status or (str(facts.http_status) if facts.http_status else None)
    if facts.http_status == 404 or facts.status == "NOT_FOUND":
        return NotFound(f"{what}: not found: {facts.message}", cloud_code=code)
    if facts.http_status in (401, 403) or facts.status in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
        permission = (
            facts.metadata.get("permission")
            or _first_match(_PERMISSION_IN_MESSAGE, facts.message)
            or context.permission
        )
        return PermissionDenied(
            f"GCP identity lacks permission {permission}: {facts.message}",
            permission=permission,
            cloud_code=code,
        )
    if facts.http_status is not None and 400 <= facts.http_status < 500:
        return InvalidConfiguration(f"{what}: rejected: {facts.message}", cloud_code=code)
    return Unreachable(f"{what}: API unavailable: {facts.message}", cloud_code=code)


def _facts(error: BaseException) -> _Facts | None:
    """The parts of a GoogleAPICallError (duck-typed: the SDK is imported lazily)."""
    if not hasattr(error, "grpc_status_code") or not hasattr(error, "errors"):
        return None
    response: Any = getattr(error, "response", None)
    payload: dict[str, Any] = {}
    headers: Any = {}
    if response is not None and hasattr(response, "json"):
        try:
            body = response.json()
            payload = body.get("error", {}) if isinstance(body, dict) else {}
        except ValueError:
            payload = {}
        headers = getattr(response, "headers", {}) or {}
    reasons = [str(getattr(error, "reason", "") or "")]
    reasons += [
        str(e.get("reason", "")) for e in getattr(error, "errors", ()) or () if isinstance(e, dict)
    ]
    code = getattr(error, "code", None)
    return _Facts(
        http_status=code if isinstance(code, int) else None,
        status=str(payload.get("status") or ""),
        reasons=tuple(r for r in reasons if r),
        message=str(payload.get("message") or getattr(error, "message", "") or error),
        metadata={str(k): str(v) for k, v in (getattr(error, "metadata", None) or {}).items()},
        retry_after=retry_after_seconds(headers.get("Retry-After")),
    )


def _non_api_error(error: BaseException, context: CallContext) -> ProviderError:
    what = f"GCP {context.permission}"
    kind = type(error).__name__
    module = type(error).__module__
    if kind == "DefaultCredentialsError":
        return InvalidConfiguration(
            f"{what}: no GCP credentials found (workload identity, GOOGLE_APPLICATION_CREDENTIALS "
            "or a credentials secret with service_account.json)",
            cloud_code=kind,
        )
    if kind == "RefreshError":
        return PermissionDenied(
            f"{what}: GCP credentials were rejected while fetching a token", cloud_code=kind
        )
    if module.startswith(("requests", "urllib3", "google.auth")) or isinstance(
        error, ConnectionError | TimeoutError | OSError
    ):
        return Unreachable(f"{what}: cannot reach the API ({kind})", cloud_code=kind)
    return Unreachable(f"{what}: unexpected {kind}: {error}", cloud_code=kind)


def _zone(message: str) -> str | None:
    match = _ZONE_IN_MESSAGE.search(message)
    return (match.group(1) or match.group(2)) if match else None


def _first_match(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match else None
