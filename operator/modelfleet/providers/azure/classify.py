"""The one place where Azure SDK errors become modelfleet's typed provider errors.

ARM reports errors as ``{"error": {"code", "message", "details": [...]}}``; AKS often wraps
the Compute error that matters (``ZonalAllocationFailed``, ``QuotaExceeded``) inside its own
(``ReconcileVMSSAgentPoolFailed``) or only mentions it in the message, so the rules search the
code, the nested detail codes and the message, most specific first, and look at the HTTP
status last. The same function handles synchronous responses and failed long-running
operations. Messages keep the cloud's text (never a token or a secret).
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
    "OverconstrainedZonalAllocationRequest",
    "OverconstrainedAllocationRequest",
    "ZonalAllocationFailed",
    "AllocationFailed",
    "SkuNotAvailable",
)
QUOTA_CODES = (
    "ErrCode_InsufficientVCPUQuota",
    "InsufficientVCPUQuota",
    "QuotaExceeded",
)
THROTTLE_CODES = ("SubscriptionRequestsThrottled", "TooManyRequests", "Throttled")
NOT_FOUND_CODES = ("ResourceNotFound", "NotFound", "ResourceGroupNotFound")
AUTH_CODES = ("AuthorizationFailed", "LinkedAuthorizationFailed", "InvalidAuthenticationToken")
BUSY_CODES = ("AnotherOperationInProgress", "OperationNotAllowed", "Conflict")
PRECONDITION_FAILED = "PreconditionFailed"
DEFAULT_RETRY_AFTER = 5.0
BUSY_RETRY_AFTER = 15.0

_ACTION_IN_MESSAGE = re.compile(r"perform action '([^']+)'")


@dataclass(frozen=True)
class CallContext:
    """What a failed call was doing: the ARM RBAC action it needs and, for pool mutations,
    the VM size and capacity type."""

    action: str
    instance_type: str | None = None
    capacity_type: str | None = None


@dataclass(frozen=True)
class _Facts:
    status: int | None
    code: str
    codes: tuple[str, ...]  # the top code and every nested detail code
    message: str
    retry_after: float | None

    def find(self, candidates: Iterable[str], *, in_message: bool = True) -> str | None:
        """The first candidate code present in the codes (and the message, when asked)."""
        haystack = " ".join((*self.codes, self.message if in_message else ""))
        return next((code for code in candidates if code in haystack), None)


def capacity_code(code: str) -> bool:
    """Whether an agent pool provisioning error code means no capacity or no quota (AKS
    reports those on the pool after accepting the change)."""
    return code in CAPACITY_CODES or code in QUOTA_CODES


def classify(error: BaseException, context: CallContext) -> ProviderError:
    """Translate any exception from an Azure SDK call (or its LRO poller) into a
    ProviderError. ProviderErrors pass through.

    Rules, first match wins: allocation/SKU codes -> InsufficientCapacity; quota codes, or
    OperationNotAllowed mentioning quota -> QuotaExceeded; 429 / throttling codes ->
    Throttled with Retry-After; 404 / ResourceNotFound -> NotFound; 401/403 /
    AuthorizationFailed -> PermissionDenied naming the action; 409 / another operation in
    progress -> Throttled (retry later); other 4xx -> InvalidConfiguration (412
    PreconditionFailed keeps that cloud code); connection errors, timeouts, 5xx ->
    Unreachable. Never raises.
    """
    if isinstance(error, ProviderError):
        return error
    kind = type(error).__name__
    what = f"Azure {context.action}"
    if kind == "CredentialUnavailableError":
        return InvalidConfiguration(
            f"{what}: no Azure credentials found (workload identity, managed identity, "
            "environment, or a credentials secret with tenant_id/client_id/client_secret)",
            cloud_code=kind,
        )
    facts = _facts(error)
    if facts is None:
        if kind in (
            "ServiceRequestError",
            "ServiceResponseError",
            "ServiceRequestTimeoutError",
            "ServiceResponseTimeoutError",
        ) or isinstance(error, OSError | TimeoutError):
            return Unreachable(f"{what}: cannot reach the API ({kind})", cloud_code=kind)
        return Unreachable(f"{what}: unexpected {kind}", cloud_code=kind)
    if kind == "ClientAuthenticationError" and facts.status is None:
        return PermissionDenied(
            f"{what}: Azure credentials were rejected while fetching a token: {facts.message}",
            cloud_code=facts.code or kind,
        )
    capacity = facts.find(CAPACITY_CODES)
    if capacity:
        return InsufficientCapacity(
            f"{what}: no capacity: {facts.message}",
            instance_type=context.instance_type or "unknown",
            capacity_type=context.capacity_type or "unknown",
            cloud_code=capacity,
        )
    quota = facts.find(QUOTA_CODES)
    if quota or ("OperationNotAllowed" in facts.codes and "quota" in facts.message.lower()):
        return QuotaExceeded(
            f"{what}: quota exhausted: {facts.message}",
            instance_type=context.instance_type,
            capacity_type=context.capacity_type,
            cloud_code=quota or "OperationNotAllowed",
        )
    throttle = facts.find(THROTTLE_CODES, in_message=False)
    if facts.status == 429 or throttle:
        return Throttled(
            f"{what}: rate limited: {facts.message}",
            retry_after=facts.retry_after or DEFAULT_RETRY_AFTER,
            cloud_code=throttle or facts.code or "TooManyRequests",
        )
    code = facts.code or (str(facts.status) if facts.status else None)
    if facts.status == 404 or facts.find(NOT_FOUND_CODES, in_message=False):
        return NotFound(f"{what}: not found: {facts.message}", cloud_code=code)
    if facts.status in (401, 403) or facts.find(AUTH_CODES, in_message=False):
        match = _ACTION_IN_MESSAGE.search(facts.message)
        action = match.group(1) if match else context.action
        return PermissionDenied(
            f"Azure identity lacks permission {action}: {facts.message}",
            permission=action,
            cloud_code=code,
        )
    if facts.status == 409 or facts.find(BUSY_CODES, in_message=False):
        return Throttled(
            f"{what}: another operation is in progress: {facts.message}",
            retry_after=facts.retry_after or BUSY_RETRY_AFTER,
            cloud_code=code,
        )
    if facts.status == 412:  # If-None-Match / If-Match precondition: the caller decides
        return InvalidConfiguration(f"{what}: {facts.message}", cloud_code=PRECONDITION_FAILED)
    if facts.status is not None and 400 <= facts.status < 500:
        return InvalidConfiguration(f"{what}: rejected: {facts.message}", cloud_code=code)
    return Unreachable(f"{what}: API unavailable: {facts.message}", cloud_code=code)


def _facts(error: BaseException) -> _Facts | None:
    """The parts of an azure.core HttpResponseError (duck-typed; the SDK is lazy)."""
    if not hasattr(error, "status_code") or not hasattr(error, "reason"):
        return None
    odata: Any = getattr(error, "error", None)
    code = str(getattr(odata, "code", "") or "")
    message = str(getattr(odata, "message", "") or getattr(error, "message", "") or "")
    codes = [code, *_detail_codes(getattr(odata, "details", None) or ())]
    response: Any = getattr(error, "response", None)
    headers: Any = getattr(response, "headers", None) or {}
    status = getattr(error, "status_code", None)
    return _Facts(
        status=status if isinstance(status, int) else None,
        code=code,
        codes=tuple(c for c in codes if c),
        message=message,
        retry_after=retry_after_seconds(headers.get("Retry-After")),
    )


def _detail_codes(details: Iterable[Any]) -> list[str]:
    codes = []
    for detail in details:
        codes.append(str(getattr(detail, "code", "") or ""))
        codes.extend(_detail_codes(getattr(detail, "details", None) or ()))
    return codes
