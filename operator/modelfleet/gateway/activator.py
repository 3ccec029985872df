"""The gateway as activator: wake the operator when a request is held at zero replicas.

A request for a deployment with no ready endpoint is held (``holding.HoldQueue``); its
arrival shows in ``modelfleet_gateway_received_requests_total``, whose rate is the demand
query, but the operator sees that counter only after a Prometheus scrape and its next
reconcile. KServe's activator instead
tells the autoscaler at once; here the gateway records the time of the held request in a
``coordination.k8s.io/v1`` Lease of its own namespace, one per ModelDeployment
(``labels.demand_lease_name``, labelled ``labels.DEMAND_LEASE``, ``spec.renewTime`` the
time). The operator watches those Leases and turns a fresh one into a wake-up of the
deployment (``loop/demand_leases.py``).

Why a Lease and not the ModelDeployment itself: RBAC cannot narrow ``patch`` on
ModelDeployments to one annotation, so a gateway allowed to annotate them could change any
field of any deployment (``spec.runtime.image`` included). A Lease in the gateway's own
namespace needs only ``create`` and ``patch`` on ``leases`` there: a compromised gateway can
at most forge demand (start a deployment at zero up to what its spec allows).

The write: a JSON merge patch of the Lease (``renewTime``, ``holderIdentity``); a 404 (no
Lease yet) creates it, and a 409 on that create (another gateway replica was first) patches
again. At most one write per deployment per ``interval`` seconds (a burst of held requests
is one write), whether the last one worked or not: a refused write (403: the RBAC verbs
missing) is tried again after ``interval``, not on the next held request, so a client
opening and closing held requests in a loop cannot turn each of them into an API call.
Writes run in the background and never delay or fail a request: an API error is logged (a
403 names the RBAC verbs the chart grants).

A write that succeeds proves nothing: the operator reads demand Leases in one namespace only
(its own), and a gateway writing elsewhere (another ``--activator-namespace``, another
release's namespace) used to wake nothing without a word. So each write is checked once,
``answer_seconds`` later, by reading the deployment back (``get`` on ModelDeployments, which
the gateway has anyway): one that still wants no replica and whose wake-up annotation is
older than the write was not answered, which is logged as a warning naming the namespace
written to and counted in ``modelfleet_gateway_demand_unanswered_total``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from modelfleet import GROUP, VERSION
from modelfleet.background import TaskSet
from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.labels import (
    DEMAND_FOR_DEPLOYMENT,
    DEMAND_FOR_NAMESPACE,
    DEMAND_LEASE,
    DEMAND_RELEASE,
    DEMAND_SEEN_AT,
    demand_lease_name,
    zoned_time,
)

log = logging.getLogger(__name__)

LEASE_SECONDS = 120
"""``spec.leaseDurationSeconds`` written: how long the operator takes a demand as current
(``reconciler.activator.FRESH_SECONDS``)."""


def demand_lease(
    key: DeploymentKey,
    namespace: str,
    when: datetime,
    holder: str,
    *,
    release: str | None = None,
) -> dict[str, Any]:
    """The demand Lease of ``key`` in ``namespace`` (the gateway's), renewed at ``when``,
    labelled with the chart ``release`` when there is one."""
    renewal = _renewal(key, when, holder, release)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": demand_lease_name(key.namespace, key.name),
            "namespace": namespace,
            **renewal["metadata"],
        },
        "spec": renewal["spec"],
    }


def _micro_time(when: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339, exactly six fractional digits, UTC)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _renewal(
    key: DeploymentKey, when: datetime, holder: str, release: str | None = None
) -> dict[str, Any]:
    """The merge patch of a renewal. It carries the labels the operator selects the Lease
    by and the annotation it reads the deployment from, so that a Lease of that name the
    gateway did not create (by hand, by another version, a label removed) is made visible
    rather than renewed unseen; labels and annotations of others stay (a merge patch)."""
    labels = {DEMAND_LEASE: "true", DEMAND_FOR_NAMESPACE: key.namespace}
    if len(key.name) <= 63:
        labels[DEMAND_FOR_DEPLOYMENT] = key.name
    if release:
        labels[DEMAND_RELEASE] = release
    return {
        "metadata": {
            "labels": labels,
            "annotations": {DEMAND_FOR_DEPLOYMENT: f"{key.namespace}/{key.name}"},
        },
        "spec": {
            "holderIdentity": holder,
            "renewTime": _micro_time(when),
            "leaseDurationSeconds": LEASE_SECONDS,
        },
    }


WARN_EVERY_SECONDS = 600.0
"""Least time (monotonic seconds) between two unanswered-Lease warnings for one deployment."""


def _answered(md: Mapping[str, Any], since: datetime) -> bool:
    """Whether an operator answered demand for ``md`` since ``since``: it wants replicas
    (``status.replicas.desired`` above 0: woken, or never at zero), or its wake-up
    annotation is a time at ``since`` or later."""
    desired = ((md.get("status") or {}).get("replicas") or {}).get("desired")
    if isinstance(desired, int) and desired > 0:
        return True
    seen = zoned_time(((md.get("metadata") or {}).get("annotations") or {}).get(DEMAND_SEEN_AT))
    return seen is not None and seen >= since


class DemandWaker:
    """Writes the demand Leases of held deployments. Use on one event loop.

    ``api_client`` is a ``kubernetes_asyncio.client.ApiClient`` for the hub; ``namespace``
    the gateway's own namespace (where its Leases live); ``interval`` the least time
    (seconds) between two writes for one deployment; ``clock`` gives monotonic seconds for
    that limit and ``wall`` the time written; ``holder`` the ``holderIdentity`` (the pod);
    ``release`` the chart release its Leases are labelled with (``labels.DEMAND_RELEASE``).

    ``answer_seconds`` after a write, the deployment is read back: if it still wants no
    replica (``status.replicas.desired`` 0 or absent) and its wake-up annotation is older
    than the write (less ``interval``, which the operator may skip), no operator read the
    Lease: a warning names the Lease's namespace and ``on_unanswered(key)`` is called (the
    ``modelfleet_gateway_demand_unanswered_total`` counter). One check per deployment at
    a time, one warning per deployment per ``WARN_EVERY_SECONDS``.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        namespace: str,
        interval: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        holder: str | None = None,
        release: str | None = None,
        answer_seconds: float = 60.0,
        on_unanswered: Callable[[DeploymentKey], None] | None = None,
    ) -> None:
        self._api = api_client
        self.release = release or None
        self._answer_seconds = answer_seconds
        self._on_unanswered = on_unanswered
        self._checking: set[DeploymentKey] = set()
        self._checks = TaskSet()
        self._warned: dict[DeploymentKey, float] = {}
        self.unanswered = 0
        """Checks that found the Lease unanswered."""
        self.namespace = namespace
        self._interval = interval
        self._clock = clock
        self._wall = wall
        self._holder = holder or socket.gethostname()
        self._last: dict[DeploymentKey, float] = {}
        self._writes = TaskSet()
        self.writes = 0
        """Lease writes that succeeded."""

    def held(self, key: DeploymentKey) -> None:
        """A request for ``key`` is being held: write its Lease unless a write was started
        (worked or not) within ``interval``. Returns at once (the write runs in the
        background)."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return
        self._last[key] = now
        self._writes.spawn(self._write(key, self._wall()))

    def _renewal(self, key: DeploymentKey, when: datetime) -> dict[str, Any]:
        return _renewal(key, when, self._holder, self.release)

    async def _write(self, key: DeploymentKey, when: datetime) -> None:
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        api = client.CoordinationV1Api(self._api)
        name = demand_lease_name(key.namespace, key.name)
        # A merge patch (the generated client's stubs do not declare _content_type).
        options: dict[str, Any] = {"_content_type": "application/merge-patch+json"}
        try:
            try:
                await api.patch_namespaced_lease(
                    name, self.namespace, self._renewal(key, when), **options
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                # The first held request for this deployment: no Lease yet. (A dict body is
                # sent as JSON as it is; the stubs ask for the generated V1Lease model.)
                lease: Any = demand_lease(
                    key, self.namespace, when, self._holder, release=self.release
                )
                try:
                    await api.create_namespaced_lease(self.namespace, lease)
                except ApiException as again:
                    if again.status != 409:
                        raise
                    # Another gateway replica created it meanwhile: renew it.
                    await api.patch_namespaced_lease(
                        name, self.namespace, self._renewal(key, when), **options
                    )
        except ApiException as exc:  # the limit stays: tried again after ``interval``
            hint = (
                f" (the gateway needs 'create' and 'patch' on leases in {self.namespace})"
                if exc.status == 403
                else ""
            )
            log.warning("could not wake the operator for %s: %s%s", key, exc.status, hint)
            return
        except Exception as exc:  # transport errors: the Prometheus signal still follows
            log.warning("could not wake the operator for %s: %s", key, exc)
            return
        self.writes += 1
        if self._answer_seconds > 0 and key not in self._checking:
            self._checking.add(key)
            self._checks.spawn(self._check(key, when))

    async def _check(self, key: DeploymentKey, when: datetime) -> None:
        """``answer_seconds`` after the write at ``when``: did an operator answer it?"""
        try:
            await asyncio.sleep(self._answer_seconds)
            md = await self._read(key)
            if md is None or _answered(md, when - timedelta(seconds=self._interval + 1.0)):
                return
            self.unanswered += 1
            if self._on_unanswered is not None:
                self._on_unanswered(key)
            now = self._clock()
            last = self._warned.get(key)
            if last is not None and now - last < WARN_EVERY_SECONDS:
                return
            self._warned[key] = now
            log.warning(
                "no operator answered the demand Lease %s/%s for %s within %.0f s (the "
                "deployment wants no replica and its wake-up annotation %s is older): this "
                "gateway writes demand Leases in namespace %s (--activator-namespace); the "
                "operator reads them only in its own ($MODELFLEET_POD_NAMESPACE, logged at its "
                "start as 'demand Leases: watching namespace ...'). Until both agree, a "
                "deployment at zero starts from the Prometheus demand signal alone",
                self.namespace,
                demand_lease_name(key.namespace, key.name),
                key,
                self._answer_seconds,
                DEMAND_SEEN_AT,
                self.namespace,
            )
        finally:
            self._checking.discard(key)

    async def _read(self, key: DeploymentKey) -> dict[str, Any] | None:
        """The ModelDeployment of ``key`` (None when gone or unreadable: nothing to say)."""
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        api = client.CustomObjectsApi(self._api)
        try:
            md: Any = await api.get_namespaced_custom_object(
                GROUP, VERSION, key.namespace, "modeldeployments", key.name
            )
        except ApiException as exc:
            log.debug("demand check of %s: %s", key, exc.status)
            return None
        except Exception as exc:  # transport errors: try again with the next write
            log.debug("demand check of %s: %s", key, exc)
            return None
        return md if isinstance(md, dict) else None

    @property
    def in_flight(self) -> int:
        """Writes started and not finished."""
        return self._writes.in_flight

    @property
    def checks_in_flight(self) -> int:
        """Answer checks (``answer_seconds`` after a write) not finished."""
        return self._checks.in_flight

    async def close(self) -> None:
        """Cancel writes and answer checks still in flight."""
        await self._writes.close()
        await self._checks.close()
