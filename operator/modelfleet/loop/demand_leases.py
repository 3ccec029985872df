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
deployment whose last pass here wanted no replica (``at_zero``): the gateway also holds
requests while a ``min > 0`` deployment starts or fails over, and the annotation is no news
then; and a deployment this operator does not serve (``--namespace``) is not its to write.

A Lease naming a deployment that does not exist is ignored (the patch's 404 is logged at
debug level), and so is one whose ``namespace/name`` is no Kubernetes name (it would go
into the patch's URL path). Patches run in the background; ``close`` cancels them. No owner
reference can tie a Lease to a ModelDeployment in another namespace, so the operator
deletes a deployment's Lease when the deployment goes (``DemandLeaseWatch.forget``), and
sweeps the Leases of deployments that went without it (``loop/lease_sweep.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from modelfleet import GROUP, VERSION
from modelfleet.background import TaskSet, cancel_and_wait
from modelfleet.clusters import ClusterError, ClusterForbidden, ClusterNotFound, ResourceKind
from modelfleet.clusters.informer import Informer, InformerSettings, ListWatchClient
from modelfleet.clusters.objects import JsonObject
from modelfleet.labels import (
    DEMAND_FOR_DEPLOYMENT,
    DEMAND_FOR_NAMESPACE,
    DEMAND_LEASE,
    DEMAND_SEEN_AT,
    demand_lease_name,
    zoned_time,
)
from modelfleet.reconciler.activator import FRESH_SECONDS, SKEW_SECONDS

log = logging.getLogger(__name__)

LEASE: Final = ResourceKind("coordination.k8s.io/v1", "Lease", "leases", namespaced=True)
MODEL_DEPLOYMENT: Final = ResourceKind(
    f"{GROUP}/{VERSION}", "ModelDeployment", "modeldeployments", namespaced=True
)
SELECTOR: Final = {DEMAND_LEASE: "true"}

# What Kubernetes accepts as a namespace (DNS-1123 label) and as a ModelDeployment's name
# (DNS-1123 subdomain). A Lease is anyone's text: its annotation goes into the patch's URL
# path, where ``a/../../..`` would name another resource the operator may patch.
_NAMESPACE: Final = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


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


def lease_deployment(lease: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the ModelDeployment a demand Lease names: its
    ``namespace/name`` annotation, else its two labels. None when it names none, or no
    possible ModelDeployment (a namespace that is not a DNS label, a name that is not a DNS
    subdomain of at most 253 characters)."""
    meta = lease.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    key = str(annotations.get(DEMAND_FOR_DEPLOYMENT) or "")
    namespace, _, name = key.partition("/")
    if not (namespace and name):
        namespace = str(labels.get(DEMAND_FOR_NAMESPACE) or "")
        name = str(labels.get(DEMAND_FOR_DEPLOYMENT) or "")
    if not (namespace and name):
        return None
    if not (_NAMESPACE.fullmatch(namespace) and _NAME.fullmatch(name) and len(name) <= 253):
        return None
    return namespace, name


def lease_demand(lease: Mapping[str, Any]) -> tuple[str, str, datetime] | None:
    """(namespace, name, renew time) of the ModelDeployment a demand Lease speaks for; None
    when the Lease does not say (``lease_deployment`` is None, no ``spec.renewTime`` with a
    zone): such a Lease is ignored, never an error."""
    target = lease_deployment(lease)
    renewed = zoned_time((lease.get("spec") or {}).get("renewTime"))
    if target is None or renewed is None:
        return None
    namespace, name = target
    return namespace, name, renewed


class ObjectDeleter(Protocol):
    """What ``DemandLeaseWatch.forget`` needs of the hub's client (``KubernetesClusterClient``)."""

    async def delete(self, kind: ResourceKind, name: str, *, namespace: str | None = None) -> bool:
        """Delete one object; False when it was gone already."""
        ...


class PeriodicSweep(Protocol):
    """What ``DemandLeaseWatch`` runs beside its watch: ``loop.lease_sweep.DemandLeaseSweep``,
    which builds on this module's Lease kinds and ``lease_deployment`` (so the watch knows it
    only by this shape, and the import runs one way)."""

    @property
    def release(self) -> str | None:
        """The release whose Leases it sweeps (None: an operator run by hand)."""
        ...

    async def run(self) -> None:
        """Sweep now and then periodically until cancelled; raises nothing else."""
        ...


class DemandRelay:
    """Copies fresh demand Leases onto the wake-up annotation (see the module docstring).

    ``patcher`` writes to the hub; ``clock`` is the operator's clock (freshness);
    ``interval`` the least time (seconds, of renew times) between two patches of one
    deployment; ``at_zero(namespace, name)``, when given, says whether the deployment's
    last pass here wanted no replica (the operator passes False for a deployment it has not
    reconciled: one it does not serve, or, just after a restart, one whose first pass has
    not run yet: the gateway's next renewal, 15 s later, is relayed). Use on one event
    loop.
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
        self._patches = TaskSet()
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
        self._patches.spawn(self._patch(namespace, name, renewed))

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
        return self._patches.in_flight

    async def close(self) -> None:
        """Cancel patches still in flight."""
        await self._patches.close()


class _ForbiddenSaid:
    """The watch client, saying once at warning level what to grant when the hub refuses
    the Lease LIST or WATCH (the informer itself logs each failure at info level, worded
    for member-cluster reads that fall back to a LIST; this watch has no fallback: no
    wake-up comes through the Leases until the grant is there)."""

    def __init__(self, client: ListWatchClient, namespace: str) -> None:
        self._client = client
        self._namespace = namespace
        self._said = False

    def _refused(self, exc: ClusterForbidden) -> None:
        if not self._said:
            self._said = True
            log.warning(
                "the operator may not read the gateway's demand Leases (%s): no scale-from-zero "
                "wake-up comes through them until it gets get, list and watch on leases in %s "
                "(the chart's Role <release>-modelfleet-demand-reader)",
                exc,
                self._namespace,
            )

    async def list_versioned(
        self, kind: ResourceKind, selector: Mapping[str, str], *, namespace: str | None = None
    ) -> tuple[list[JsonObject], str]:
        try:
            return await self._client.list_versioned(kind, selector, namespace=namespace)
        except ClusterForbidden as exc:
            self._refused(exc)
            raise

    async def watch(
        self,
        kind: ResourceKind,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
        resource_version: str,
        timeout_seconds: int,
    ) -> AsyncIterator[JsonObject]:
        try:
            return await self._client.watch(
                kind,
                selector,
                namespace=namespace,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
            )
        except ClusterForbidden as exc:
            self._refused(exc)
            raise


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
        deleter: ObjectDeleter | None = None,
        sweep: PeriodicSweep | None = None,
    ) -> None:
        self.namespace = namespace
        self.relay = DemandRelay(patcher, clock=clock, at_zero=at_zero)
        self._deleter = deleter
        self.sweep = sweep
        """Deletes stale Leases naming no deployment (``loop/lease_sweep.py``); None: none."""
        self._sweeping: asyncio.Task[None] | None = None

        said = _ForbiddenSaid(watch_client, namespace)

        async def client() -> ListWatchClient:
            return said

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
        """Start listing and watching, and the sweep if there is one (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.informer.run(), name="demand leases"
            )
        if self.sweep is not None and self._sweeping is None:
            self._sweeping = asyncio.get_running_loop().create_task(
                self.sweep.run(), name="demand lease sweep"
            )

    async def forget(self, namespace: str, name: str) -> None:
        """ModelDeployment ``namespace/name`` is going: delete its demand Lease (no owner
        reference can tie a Lease in the gateway's namespace to it, so nothing else would).
        Never raises: a Lease already gone is the goal, and a refused or failed delete is
        logged and leaves one small object behind (a gateway still holding requests for the
        deployment may also write it again, until its catalog drops the deployment)."""
        if self._deleter is None:
            return
        lease = demand_lease_name(namespace, name)
        try:
            await self._deleter.delete(LEASE, lease, namespace=self.namespace)
        except ClusterError as exc:
            log.warning("could not delete demand Lease %s/%s: %s", self.namespace, lease, exc)

    async def close(self) -> None:
        """Stop the watch, the sweep and the patches in flight."""
        await cancel_and_wait(self._task, self._sweeping)
        self._task = self._sweeping = None
        await self.relay.close()
