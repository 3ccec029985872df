"""AWS errors -> modelfleet's typed provider errors, in exactly one place.

``classify`` is the single translation point for everything boto3/botocore raise (and for
node group health issue codes, through ``classify_issue``). It duck-types botocore's
exceptions (``ClientError.response``, class names in the MRO) so that it imports nothing
and works on errors from real clients, Stubber and fault-injecting fakes alike.

Decisions worth knowing (also in docs/providers.md):

- ``InstanceLimitExceeded``/``VcpuLimitExceeded``/``MaxSpotInstanceCountExceeded`` are
  account limits, so ``QuotaExceeded`` (only a quota increase ends them), not capacity.
- ``InsufficientFreeAddresses`` (the subnets ran out of IPs) is ``InsufficientCapacity``:
  like a stockout it ends only when something elsewhere changes, and placement should fall
  through to another cluster meanwhile.
- ``AsgInstanceLaunchFailures`` carries the EC2 code in its message; that code decides.
  When none is recognised it counts as ``InsufficientCapacity`` (GPU launches fail for
  capacity far more often than for anything else, and falling through is the safe answer).
- ``ResourceInUseException`` (another operation on the node group is in progress) becomes a
  retryable ``Throttled`` with a 30 s hint: the contract has no "busy" error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from modelfleet.providers.base import NodePool, PoolIssue
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

THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
    }
)
CAPACITY_CODES: Final = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientCapacityError",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "UnfulfillableCapacity",
        "Unsupported",
        "InsufficientFreeAddresses",
        "InsufficientFreeAddressesInSubnet",
        "UnsupportedAvailabilityZoneException",
        "AsgInstanceLaunchFailures",
    }
)
QUOTA_CODES: Final = frozenset(
    {
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
        "MaxSpotInstanceCountExceeded",
        "ResourceLimitExceededException",
        "ServiceQuotaExceededException",
        "LimitExceededException",
    }
)
NOT_FOUND_CODES: Final = frozenset({"ResourceNotFoundException", "NotFoundException"})
PERMISSION_CODES: Final = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
)
CREDENTIAL_CODES: Final = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
    }
)
INVALID_CODES: Final = frozenset(
    {
        "InvalidParameterException",
        "InvalidParameterValue",
        "InvalidParameterCombination",
        "InvalidRequestException",
        "ValidationException",
        "InvalidInstanceType",
        "InvalidSubnetID.NotFound",
        "InvalidSubnetID.Malformed",
        # Node group health issues that only a settings change fixes.
        "IamNodeRoleNotFound",
        "IamInstanceProfileNotFound",
        "Ec2SubnetInvalidConfiguration",
        "Ec2SubnetNotFound",
        "Ec2SecurityGroupNotFound",
        "Ec2LaunchTemplateNotFound",
    }
)
SERVER_CODES: Final = frozenset(
    {
        "InternalFailure",
        "InternalError",
        "InternalServerException",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Unavailable",
    }
)
BUSY_CODES: Final = frozenset({"ResourceInUseException"})
BUSY_RETRY_AFTER_S: Final = 30.0

_CREDENTIAL_ERRORS: Final = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "NoRegionError"}
)
# botocore: EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ProxyConnectionError
# and ConnectionClosedError all derive from HTTPClientError.
_NETWORK_ERRORS: Final = frozenset({"HTTPClientError", "ConnectionError", "TimeoutError"})
_DENIED_ACTION = re.compile(r"not authorized to perform:?\s*([a-z0-9-]+:[A-Za-z0-9*]+)")
_ZONE = re.compile(r"\b([a-z]{2}(?:-[a-z]+)+-\d[a-z])\b")
_CODE_TOKEN = re.compile(r"\b([A-Z][A-Za-z]+(?:\.[A-Za-z]+)?)\b")


def classify(
    error: BaseException,
    *,
    operation: str,
    instance_type: str | None = None,
    capacity_type: str | None = None,
) -> ProviderError:
    """Translate an exception raised by a boto3 call into a typed ``ProviderError``.

    ``operation`` is the IAM action of the call (``eks:CreateNodegroup``): it names the
    missing permission on AccessDenied and prefixes every message. ``instance_type`` and
    ``capacity_type`` are attached to capacity and quota errors. Never raises; a
    ``ProviderError`` is returned unchanged; unknown errors become a plain, non-retryable
    ``ProviderError``. Messages carry AWS's own text, which never contains credentials.
    """
    if isinstance(error, ProviderError):
        return error
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & _CREDENTIAL_ERRORS:
        return InvalidConfiguration(
            f"{operation}: no usable AWS credentials or region ({type(error).__name__}); "
            "configure IRSA/instance profile or spec.credentialsSecretRef"
        )
    parts = client_error_parts(error)
    if parts is None:
        if names & _NETWORK_ERRORS:
            return Unreachable(f"{operation}: AWS API unreachable: {error}")
        return ProviderError(f"{operation} failed: {type(error).__name__}: {error}")
    code, message, status = parts
    result = classify_code(
        code,
        message,
        operation=operation,
        instance_type=instance_type,
        capacity_type=capacity_type,
    )
    if type(result) is ProviderError and status >= 500:
        return Unreachable(f"{operation}: AWS API error {status}: {message}", cloud_code=code)
    return result


def classify_code(
    code: str,
    message: str,
    *,
    operation: str,
    instance_type: str | None = None,
    capacity_type: str | None = None,
) -> ProviderError:
    """The typed error for an AWS error/health-issue ``code`` with AWS's ``message``."""
    text = f"{operation}: {message}" if message else f"{operation}: {code}"
    if code == "AsgInstanceLaunchFailures":
        inner = _inner_code(message)
        if inner is not None:
            inner_error = classify_code(
                inner,
                message,
                operation=operation,
                instance_type=instance_type,
                capacity_type=capacity_type,
            )
            inner_error.cloud_code = f"{code}/{inner}"
            return inner_error
    if code in THROTTLING_CODES:
        return Throttled(f"{text} (rate limited)", cloud_code=code)
    if code in BUSY_CODES:
        return Throttled(
            f"{text} (another operation is in progress)",
            retry_after=BUSY_RETRY_AFTER_S,
            cloud_code=code,
        )
    if code in CAPACITY_CODES:
        return InsufficientCapacity(
            text,
            instance_type=instance_type or "unknown",
            capacity_type=capacity_type or "unknown",
            zone=_zone(message),
            cloud_code=code,
        )
    if code in QUOTA_CODES:
        return QuotaExceeded(
            text, instance_type=instance_type, capacity_type=capacity_type, cloud_code=code
        )
    if code in NOT_FOUND_CODES:
        return NotFound(text, cloud_code=code)
    if code in PERMISSION_CODES:
        permission = denied_permission(message) or operation
        return PermissionDenied(
            f"{operation}: the operator's AWS identity lacks {permission} ({message})",
            permission=permission,
            cloud_code=code,
        )
    if code in CREDENTIAL_CODES:
        return PermissionDenied(
            f"{operation}: AWS rejected the credentials ({code}); check IRSA or the "
            "credentials Secret",
            cloud_code=code,
        )
    if code in INVALID_CODES:
        return InvalidConfiguration(text, cloud_code=code)
    if code in SERVER_CODES:
        return Unreachable(text, cloud_code=code)
    return ProviderError(text, cloud_code=code)


def classify_issue(issue: PoolIssue, *, instance_type: str, capacity_type: str) -> ProviderError:
    """The typed error a node group health issue stands for (same table as ``classify``)."""
    return classify_code(
        issue.code,
        issue.message,
        operation="eks:nodegroup health",
        instance_type=instance_type,
        capacity_type=capacity_type,
    )


def capacity_issue(pool: NodePool) -> InsufficientCapacity | QuotaExceeded | None:
    """The first health issue of ``pool`` that means "no capacity/quota here", else None.

    EKS accepts a resize and only later reports that instances could not launch, as a
    health issue (``AsgInstanceLaunchFailures``, ``InsufficientFreeAddresses``, ...).
    ``get_pool``/``ensure_pool`` return such issues as ``PoolIssue``s already flagged
    ``capacity`` (the same ``classify_issue`` decides); this gives the typed error for one,
    e.g. to tell capacity from quota. The reconciler's pools stage reads the flag
    (``providers.capacity_issue``) and records a stockout mark exactly as if
    ``ensure_pool`` had raised.
    """
    for issue in pool.issues:
        error = classify_issue(
            issue, instance_type=pool.instance_type, capacity_type=pool.capacity_type
        )
        if isinstance(error, InsufficientCapacity | QuotaExceeded):
            return error
    return None


def client_error_parts(error: BaseException) -> tuple[str, str, int] | None:
    """(code, message, HTTP status) of a botocore ``ClientError``-shaped error, else None."""
    response: Any = getattr(error, "response", None)
    if not isinstance(response, Mapping):
        return None
    err = response.get("Error")
    if not isinstance(err, Mapping):
        return None
    code = str(err.get("Code") or "")
    if not code:
        return None
    meta = response.get("ResponseMetadata")
    status = meta.get("HTTPStatusCode", 0) if isinstance(meta, Mapping) else 0
    return code, str(err.get("Message") or ""), int(status or 0)


def denied_permission(message: str) -> str | None:
    """The IAM action an AccessDenied message names (``... not authorized to perform: X``)."""
    match = _DENIED_ACTION.search(message)
    return match.group(1) if match else None


def _zone(message: str) -> str | None:
    match = _ZONE.search(message)
    return match.group(1) if match else None


def _inner_code(message: str) -> str | None:
    """The first known EC2 code quoted in an AsgInstanceLaunchFailures message."""
    known = CAPACITY_CODES | QUOTA_CODES | PERMISSION_CODES | INVALID_CODES
    for token in _CODE_TOKEN.findall(message):
        if token in known and token != "AsgInstanceLaunchFailures":
            return str(token)
    lowered = message.lower()
    if "vcpu limit" in lowered or "instance limit" in lowered:
        return "VcpuLimitExceeded"
    if "sufficient" in lowered and "capacity" in lowered:
        return "InsufficientInstanceCapacity"
    return None
