"""Typed errors every ClusterClient raises, whatever the transport.

A member cluster's API server answers with HTTP statuses and ``Status`` objects; the
reconciler must not parse either. The real client translates them into these errors in
exactly one place (``clusters.client._classify``), the in-memory fake raises them directly,
and the reconciler maps them onto decisions: ``ClusterUnreachable`` and ``ClusterThrottled``
feed the cluster's health and are retried, ``ClusterForbidden`` becomes a condition naming the
missing RBAC rule, ``ClusterConfigError`` a condition on the FleetCluster naming the Secret.
Messages never contain kubeconfig contents, tokens or certificates.
"""

from __future__ import annotations


class ClusterError(Exception):
    """Base of every member-cluster error. ``retryable``: trying again later may succeed."""

    retryable: bool = False
    code: str = "ClusterError"

    def __init__(self, message: str, *, cluster: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.cluster = cluster  # FleetCluster name, when the caller knows it
        self.status = status  # HTTP status from the API server, when there was one

    def __str__(self) -> str:
        where = f"cluster {self.cluster}: " if self.cluster else ""
        status = f" (HTTP {self.status})" if self.status else ""
        return f"{where}{self.message}{status}"


class ClusterUnreachable(ClusterError):
    """The API server could not be reached in time: connection refused, DNS, TLS, timeout, or
    a 5xx answer. Feeds the cluster's health (Suspect, then Failed)."""

    code = "ClusterUnreachable"
    retryable = True


class ClusterThrottled(ClusterError):
    """The API server answered 429 (API priority and fairness); retry after ``retry_after``."""

    code = "ClusterThrottled"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float = 1.0,
        cluster: str | None = None,
        status: int | None = 429,
    ) -> None:
        super().__init__(message, cluster=cluster, status=status)
        self.retry_after = retry_after


class ClusterForbidden(ClusterError):
    """401 or 403: the credentials are expired/invalid (401) or lack an RBAC rule (403).
    ``verb`` and ``resource`` name the rule that was missing (see docs/member-clusters.md)."""

    code = "ClusterForbidden"

    def __init__(
        self,
        message: str,
        *,
        verb: str | None = None,
        resource: str | None = None,
        cluster: str | None = None,
        status: int | None = 403,
    ) -> None:
        super().__init__(message, cluster=cluster, status=status)
        self.verb = verb
        self.resource = resource


class ClusterNotFound(ClusterError):
    """The object (or its resource type) does not exist in the member cluster."""

    code = "ClusterNotFound"


class ClusterConflict(ClusterError):
    """An object of that name exists but is not modelfleet's (no ``modelfleet.io/managed``
    label), or a concurrent writer won a race. modelfleet never overwrites such objects."""

    code = "ClusterConflict"


class ClusterRejected(ClusterError):
    """The API server refused the object as invalid (400/422): a rendering bug or an
    admission webhook. Not retryable without a change."""

    code = "ClusterRejected"


class ClusterConfigError(ClusterError):
    """The FleetCluster's access configuration is unusable: the kubeconfig Secret or key is
    missing, or its content is not a usable kubeconfig. Names the Secret, never its content."""

    code = "ClusterConfigError"
