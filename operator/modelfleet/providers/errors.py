"""Typed errors every NodePoolProvider raises, whatever the cloud.

Each provider translates its SDK's errors into these in exactly one place (its
``classify`` function); the reconciler's pools stage turns them into decisions: an
InsufficientCapacity or QuotaExceeded becomes a stockout mark and a re-plan in the same pass;
a ``retryable`` error (Throttled, Unreachable) a Warning Event and a retry on the next pass
(requeued within seconds) without degrading the deployment; any other error (PermissionDenied,
InvalidConfiguration, ...) a Warning Event and ``Degraded=True`` on the deployment, with the
message naming what to fix, retried on every pass. Messages never contain credentials.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every provider error. ``retryable`` says whether trying again may succeed."""

    retryable: bool = False
    code: str = "ProviderError"

    def __init__(self, message: str, *, cloud_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cloud_code = (
            cloud_code  # the cloud's own error code, e.g. ZONE_RESOURCE_POOL_EXHAUSTED
        )

    def __str__(self) -> str:
        suffix = f" ({self.cloud_code})" if self.cloud_code else ""
        return f"{self.message}{suffix}"


class InsufficientCapacity(ProviderError):
    """The cloud has no capacity of this instance type / capacity type right now.

    Feeds the decision core's stockout memory for (cluster, gpu, capacityType).
    """

    code = "InsufficientCapacity"

    def __init__(
        self,
        message: str,
        *,
        instance_type: str,
        capacity_type: str,
        zone: str | None = None,
        cloud_code: str | None = None,
    ) -> None:
        super().__init__(message, cloud_code=cloud_code)
        self.instance_type = instance_type
        self.capacity_type = capacity_type
        self.zone = zone


class QuotaExceeded(ProviderError):
    """The account's quota for this GPU family / region is exhausted (a stockout that only a
    quota increase ends)."""

    code = "QuotaExceeded"

    def __init__(
        self,
        message: str,
        *,
        instance_type: str | None = None,
        capacity_type: str | None = None,
        cloud_code: str | None = None,
    ) -> None:
        super().__init__(message, cloud_code=cloud_code)
        self.instance_type = instance_type
        self.capacity_type = capacity_type


class Throttled(ProviderError):
    """The cloud API rate-limited us; retry after ``retry_after`` seconds (with jitter)."""

    code = "Throttled"
    retryable = True

    def __init__(
        self, message: str, *, retry_after: float = 5.0, cloud_code: str | None = None
    ) -> None:
        super().__init__(message, cloud_code=cloud_code)
        self.retry_after = retry_after


class NotFound(ProviderError):
    """The pool (or cluster) does not exist."""

    code = "NotFound"


class PermissionDenied(ProviderError):
    """Our identity lacks a permission; ``permission`` names it (e.g. eks:CreateNodegroup)."""

    code = "PermissionDenied"

    def __init__(
        self, message: str, *, permission: str | None = None, cloud_code: str | None = None
    ) -> None:
        super().__init__(message, cloud_code=cloud_code)
        self.permission = permission


class Unreachable(ProviderError):
    """The cloud API could not be reached (network, DNS, TLS, 5xx)."""

    code = "Unreachable"
    retryable = True


class InvalidConfiguration(ProviderError):
    """The FleetCluster's provider settings are unusable (unknown cluster, bad subnet, ...)."""

    code = "InvalidConfiguration"


class ProviderUnavailable(ProviderError):
    """The provider's optional extra is not installed (``pip install "modelfleet[aws]"``)."""

    code = "ProviderUnavailable"


def is_capacity_error(error: BaseException) -> bool:
    """True for errors that should become a stockout mark (capacity or quota)."""
    return isinstance(error, InsufficientCapacity | QuotaExceeded)
