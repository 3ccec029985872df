"""The operator's side of the gateway's demand Leases: a fresh one wakes its deployment.

The gateway, holding a request for a deployment with no ready replica, renews a
``coordination.k8s.io/v1`` Lease in its own namespace (``gateway/activator.py``): one per
ModelDeployment, ``spec.renewTime`` the time of the held request. The gateway needs no
right on ModelDeployments for it, so a compromised gateway can at most forge demand.

``DemandRelay`` watches those Leases (an ``Informer``: LIST, then WATCH with the
``labels.DEMAND_LEASE`` selector, in that one namespace only: demand claimed by a Lease
anywhere else is not the gateway's) and copies a fresh renewal onto the deployment's
wake-up annotation (``labels.DEMAND_SEEN_AT``) with a JSON merge patch. The annotation is
what the reconciler reads as demand at zero (``reconciler/activator.py``) and its change
is an update event, so kopf reconciles the deployment at once: the first node is requested
within two watch latencies of the first held request. The operator may patch
ModelDeployments anyway; it writes only this one annotation, only from a Lease renewed at
most ``FRESH_SECONDS`` ago (and not more than ``SKEW_SECONDS`` ahead), and at most once per
``interval`` per deployment however many gateway replicas renew the Lease, and only for a
deployment whose last pass wanted no replica (``at_zero``): the gateway also holds requests
while a ``min > 0`` deployment starts or fails over, and the annotation is no news then.

A Lease naming a deployment that does not exist is ignored (the patch's 404 is logged at
debug level). Patches run in the background; ``close`` cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from modelfleet import GROUP, VERSION
from modelfleet.clusters import ClusterError, ClusterNotFound, ResourceKind
from modelfleet.clusters.informer import Informer, InformerSettings, ListWatchClient
from modelfleet.clusters.objects import JsonObject
from modelfleet.labels import (
    DEMAND_FOR_DEPLOYMENT,
    DEMAND_FOR_NAMESPACE,
    DEMAND_LEASE,
    DEMAND_SEEN_AT,
)
from modelfleet.reconciler.activator import FRESH_SECONDS, SKEW_SECONDS

log = logging.getLogger(__name__)

LEASE: Final = ResourceKind("coordination.k8s.io/v1", "Lease", "leases", namespaced=True)
MODEL_DEPLOYMENT: Final = ResourceKind(
    f"{GROUP}/{VERSION}", "ModelDeployment", "modeldeployments", namespaced=True
)
SELECTOR: Final = {DEMAND_LEASE: "true"}


class MergePatcher(Protocol):
    """What the relay needs of the hub's client (``KubernetesClusterClient``)."""

    async def merge_patch(
        self,
        kind: ResourceKind,
        name: str,
        body: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> JsonObject:
        """Merge-patch one object; raises ``ClusterNotFound`` when it does not exist."""
        ...


def lease_demand(lease: Mapping[str, Any]) -> tuple[str, str, datetime] | None:
    """(namespace, name, renew time) of the ModelDeployment a demand Lease speaks for; None
    when the Lease does not say (no ``namespace/name`` annotation nor labels, no
    ``spec.renewTime`` with a zone): such a Lease is ignored, never an error."""
    meta = lease.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    key = str(annotations.get(DEMAND_FOR_DEPLOYMENT) or "")
    namespace, _, name = key.partition("/")
    if not (namespace and name):
        namespace = str(labels.get(DEMAND_FOR_NAMESPACE) or "")
        name = str(labels.get(DEMAND_FOR_DEPLOYMENT) or "")
    raw = (lease.get("spec") or {}).get("renewTime")
    if not (namespace and name and isinstance(raw, str)):
        return None
    try:
        renewed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if renewed.tzinfo is None:
        return None
    return namespace, name, renewed


class DemandRelay:
    """Copies fresh demand Leases onto the wake-up annotation (see the module docstring).

    ``patcher`` writes to the hub; ``clock`` is the operator's clock (freshness);
    ``interval`` the least time (seconds, of renew times) between two patches of one
    deployment; ``at_zero(namespace, name)``, when given, says whether the deployment's
    last pass wanted no replica (unknown deployments: True). Use on one event loop.
    """

    def __init__(
        self,
        patcher: MergePatcher,
        *,
        clock: Callable[[], datetime],
        interval: float = 15.0,
        at_zero: Callable[[str, str], bool] | None = None,
    ) -> None:
        self._at_zero = at_zero
        self._patcher = patcher
        self._clock = clock
        self._interval = timedelta(seconds=interval)
        self._last: dict[tuple[str, str], datetime] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.patches = 0
        """Annotations written."""

    def seen(self, lease: Mapping[str, Any]) -> None:
        """A demand Lease as listed or changed: patch its deployment's annotation if the
        renewal is fresh and ``interval`` newer than the last one relayed. Returns at once."""
        demand = lease_demand(lease)
        if demand is None:
            return
        namespace, name, renewed = demand
        if self._at_zero is not None and not self._at_zero(namespace, name):
            return  # replicas wanted already: nothing to wake
        now = self._clock()
        fresh = now - timedelta(seconds=FRESH_SECONDS) <= renewed
        if not fresh or renewed > now + timedelta(seconds=SKEW_SECONDS):
            return
        last = self._last.get((namespace, name))
        if last is not None and renewed - last < self._interval:
            return
        self._last[(namespace, name)] = renewed
        task = asyncio.get_running_loop().create_task(self._patch(namespace, name, renewed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _patch(self, namespace: str, name: str, renewed: datetime) -> None:
        stamp = renewed.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = {"metadata": {"annotations": {DEMAND_SEEN_AT: stamp}}}
        try:
            await self._patcher.merge_patch(MODEL_DEPLOYMENT, name, body, namespace=namespace)
        except ClusterNotFound:
            log.debug("demand Lease for %s/%s: no such ModelDeployment", namespace, name)
            return
        except ClusterError as exc:
            log.warning("could not relay demand for %s/%s: %s", namespace, name, exc)
            return
        self.patches += 1

    @property
    def in_flight(self) -> int:
        """Patches started and not finished."""
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel patches still in flight."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


class DemandLeaseWatch:
    """The relay fed by an informer of the demand Leases in ``namespace``: ``start`` it on
    the operator's event loop, ``close`` it on the way out (no task outlives it)."""

    def __init__(
        self,
        *,
        namespace: str,
        watch_client: ListWatchClient,
        patcher: MergePatcher,
        clock: Callable[[], datetime],
        settings: InformerSettings | None = None,
        at_zero: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.relay = DemandRelay(patcher, clock=clock, at_zero=at_zero)

        async def client() -> ListWatchClient:
            return watch_client

        base = settings or InformerSettings()
        self.informer = Informer(
            cluster="hub",
            namespace=namespace,
            kind=LEASE,
            selector=SELECTOR,
            client_for=client,
            # Read by nobody (the relay acts on changes): never idle.
            settings=InformerSettings(
                watch_timeout_seconds=base.watch_timeout_seconds,
                backoff_initial_seconds=base.backoff_initial_seconds,
                backoff_max_seconds=base.backoff_max_seconds,
                idle_seconds=math.inf,
            ),
            transform=lambda obj: {"metadata": obj.get("metadata") or {}},
            on_change=self.relay.seen,
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start listing and watching (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.informer.run(), name="demand leases"
            )

    async def close(self) -> None:
        """Stop the watch and the patches in flight."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.relay.close()
