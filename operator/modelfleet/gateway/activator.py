"""The gateway as activator: wake the operator when a request is held at zero replicas.

Holding a request for a deployment with no ready endpoint (``holding.HoldQueue``) makes
demand visible through ``modelfleet_gateway_pending_requests``, but the operator sees that
gauge only after a Prometheus scrape and its next reconcile. KServe's activator instead
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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.labels import (
    DEMAND_FOR_DEPLOYMENT,
    DEMAND_FOR_NAMESPACE,
    DEMAND_LEASE,
    demand_lease_name,
)

log = logging.getLogger(__name__)

LEASE_SECONDS = 120
"""``spec.leaseDurationSeconds`` written: how long the operator takes a demand as current
(``reconciler.activator.FRESH_SECONDS``)."""


def demand_lease(key: DeploymentKey, namespace: str, when: datetime, holder: str) -> dict[str, Any]:
    """The demand Lease of ``key`` in ``namespace`` (the gateway's), renewed at ``when``."""
    labels = {DEMAND_LEASE: "true", DEMAND_FOR_NAMESPACE: key.namespace}
    if len(key.name) <= 63:
        labels[DEMAND_FOR_DEPLOYMENT] = key.name
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": demand_lease_name(key.namespace, key.name),
            "namespace": namespace,
            "labels": labels,
            "annotations": {DEMAND_FOR_DEPLOYMENT: f"{key.namespace}/{key.name}"},
        },
        "spec": _renewal(when, holder)["spec"],
    }


def _micro_time(when: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339, exactly six fractional digits, UTC)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _renewal(when: datetime, holder: str) -> dict[str, Any]:
    return {
        "spec": {
            "holderIdentity": holder,
            "renewTime": _micro_time(when),
            "leaseDurationSeconds": LEASE_SECONDS,
        }
    }


class DemandWaker:
    """Writes the demand Leases of held deployments. Use on one event loop.

    ``api_client`` is a ``kubernetes_asyncio.client.ApiClient`` for the hub; ``namespace``
    the gateway's own namespace (where its Leases live); ``interval`` the least time
    (seconds) between two writes for one deployment; ``clock`` gives monotonic seconds for
    that limit and ``wall`` the time written; ``holder`` the ``holderIdentity`` (the pod).
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
    ) -> None:
        self._api = api_client
        self.namespace = namespace
        self._interval = interval
        self._clock = clock
        self._wall = wall
        self._holder = holder or socket.gethostname()
        self._last: dict[DeploymentKey, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
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
        task = asyncio.get_running_loop().create_task(self._write(key, self._wall()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
                    name, self.namespace, _renewal(when, self._holder), **options
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                # The first held request for this deployment: no Lease yet. (A dict body is
                # sent as JSON as it is; the stubs ask for the generated V1Lease model.)
                lease: Any = demand_lease(key, self.namespace, when, self._holder)
                try:
                    await api.create_namespaced_lease(self.namespace, lease)
                except ApiException as again:
                    if again.status != 409:
                        raise
                    # Another gateway replica created it meanwhile: renew it.
                    await api.patch_namespaced_lease(
                        name, self.namespace, _renewal(when, self._holder), **options
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

    @property
    def in_flight(self) -> int:
        """Writes started and not finished."""
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel writes still in flight."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
