"""Sweep the gateway's demand Leases that name no existing ModelDeployment.

A demand Lease lives in the gateway's namespace (``gateway/activator.py``), so no owner
reference ties it to its ModelDeployment; the operator deletes it when the deployment goes
(``DemandLeaseWatch.forget``, from kopf's delete handler). That handler runs only for a
deployment that carries kopf's finalizer, which the operator's first pass puts on: a
ModelDeployment deleted before that pass (or whose finalizer was removed by hand), and a
route backend that never existed, leave their Lease behind for good.

``DemandLeaseSweep`` collects those, at the operator's start and then every
``interval_seconds``: it lists the demand Leases of the gateway's namespace and deletes one
only when all of these hold:

- it carries this release's label (``labels.DEMAND_RELEASE`` equal to the operator's
  ``$MODELFLEET_RELEASE``; both absent for an operator and a gateway run by hand), or no
  release label at all and exactly the name a gateway gives the Lease of the deployment
  it names (``labels.demand_lease_name``): a Lease written before the label existed (or
  by a gateway run by hand). A Lease labelled with another release is never touched. An
  unlabelled one may have been written by any release's gateway sharing the namespace,
  but the conditions below make it nobody's: the deployment it names does not exist on
  the hub (there is one ModelDeployment of a name on an API server, whatever the release),
  and no gateway has renewed it for the grace period (one holding requests renews every
  15 s). A same-named Lease written by hand, or by something else, under another name is
  left alone;
- it was neither renewed nor created within ``grace_seconds`` (600 s, five times the
  operator's 120 s freshness window): a gateway that is still holding requests renews it
  every 15 s, and one it has just created for a deployment the operator's cache has not
  seen yet is young;
- the hub answers 404 to a GET of the ModelDeployment it names (the API server, not the
  operator's cache: a deployment in a namespace this operator does not watch exists just
  as well). Any other answer (403, a timeout) keeps the Lease. A Lease that names no
  possible deployment at all is garbage once it is past the grace period;
- it was not renewed between the LIST and the DELETE (the DELETE carries the listed
  ``resourceVersion`` as a precondition: a renewal meanwhile makes the API server answer
  409, and the Lease stays).

Errors are logged and never stop the operator; the next sweep tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from modelfleet.clusters import ClusterConflict, ClusterError, ClusterNotFound, ResourceKind
from modelfleet.clusters.objects import JsonObject
from modelfleet.labels import DEMAND_LEASE, DEMAND_RELEASE, demand_lease_name, zoned_time
from modelfleet.loop.demand_leases import LEASE, MODEL_DEPLOYMENT, lease_deployment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepSettings:
    """When the sweep runs and what it spares."""

    grace_seconds: float = 600.0
    """A Lease renewed or created less than this long ago is kept, whatever it names."""
    interval_seconds: float = 600.0
    """Time between two sweeps (the first runs at the operator's start)."""


class SweepClient(Protocol):
    """What the sweep needs of the hub's client (``KubernetesClusterClient``)."""

    async def list_versioned(
        self, kind: ResourceKind, selector: Mapping[str, str], *, namespace: str | None = None
    ) -> tuple[list[JsonObject], str]:
        """Objects of ``kind`` in ``namespace`` whose labels include ``selector``."""
        ...

    async def get(
        self, kind: ResourceKind, name: str, *, namespace: str | None = None
    ) -> JsonObject:
        """One object; raises ``ClusterNotFound`` when it does not exist."""
        ...

    async def delete(
        self,
        kind: ResourceKind,
        name: str,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
    ) -> bool:
        """Delete one object (only at ``resource_version``: else ``ClusterConflict``);
        False when it was gone already."""
        ...


def last_written(lease: Mapping[str, Any]) -> datetime | None:
    """The later of a Lease's ``spec.renewTime`` and ``metadata.creationTimestamp`` (None
    when it has neither as an RFC 3339 time with a zone)."""
    meta = lease.get("metadata") or {}
    times = [
        t
        for t in (
            zoned_time((lease.get("spec") or {}).get("renewTime")),
            zoned_time(meta.get("creationTimestamp")),
        )
        if t is not None
    ]
    return max(times) if times else None


class DemandLeaseSweep:
    """Deletes this release's stale demand Leases naming no ModelDeployment, and unlabelled
    ones of the gateway's naming (see the module docstring). ``namespace`` is the gateway's (where the Leases live), ``release`` the
    operator's ``$MODELFLEET_RELEASE`` (None: run by hand), ``clock`` the operator's."""

    def __init__(
        self,
        *,
        namespace: str,
        client: SweepClient,
        clock: Callable[[], datetime],
        release: str | None = None,
        settings: SweepSettings | None = None,
    ) -> None:
        self.namespace = namespace
        self.release = release or None
        self.settings = settings or SweepSettings()
        self._client = client
        self._clock = clock
        self.deleted = 0
        """Leases deleted since the start."""

    async def sweep(self) -> list[str]:
        """One sweep; returns the names of the Leases deleted. Raises the client's typed
        errors of the LIST only (each Lease's own GET and DELETE errors keep that Lease)."""
        # Every demand Lease of the namespace: this release's and the unlabelled ones
        # (a label selector cannot ask for "equal to r or absent" in one LIST).
        selector = {DEMAND_LEASE: "true"}
        leases, _ = await self._client.list_versioned(LEASE, selector, namespace=self.namespace)
        cutoff = self._clock() - timedelta(seconds=self.settings.grace_seconds)
        deleted: list[str] = []
        for lease in leases:
            meta = lease.get("metadata") or {}
            name = str(meta.get("name") or "")
            if not name or meta.get("deletionTimestamp"):
                continue
            if not self._ours(lease):
                continue  # another release's, or an unlabelled one under a name not ours
            written = last_written(lease)
            if written is None or written > cutoff:
                continue  # young, renewed, or of unknown age
            if await self._names_a_deployment(lease):
                continue
            version = meta.get("resourceVersion")
            try:
                gone = await self._client.delete(
                    LEASE,
                    name,
                    namespace=self.namespace,
                    resource_version=str(version) if version else None,
                )
            except ClusterConflict:
                continue  # renewed since the LIST: someone wants it
            except ClusterError as exc:
                log.warning(
                    "could not delete stale demand Lease %s/%s: %s", self.namespace, name, exc
                )
                continue
            if gone:
                self.deleted += 1
                deleted.append(name)
                log.info(
                    "deleted demand Lease %s/%s: it names no existing ModelDeployment and was "
                    "last written %s",
                    self.namespace,
                    name,
                    written.isoformat(),
                )
        return deleted

    def _ours(self, lease: Mapping[str, Any]) -> bool:
        """Whether the sweep may consider ``lease``: labelled with this release, or with no
        release label and named as a gateway names the Lease of the deployment it names
        (written before the label existed, or by a gateway run by hand)."""
        meta = lease.get("metadata") or {}
        labels = meta.get("labels") or {}
        if DEMAND_RELEASE in labels:
            return bool(labels[DEMAND_RELEASE] == self.release)
        if self.release is None:
            return True  # run by hand: the unlabelled Leases are its own
        target = lease_deployment(lease)
        return target is not None and meta.get("name") == demand_lease_name(*target)

    async def _names_a_deployment(self, lease: Mapping[str, Any]) -> bool:
        """Whether the ModelDeployment the Lease names exists, or might (any answer of the
        hub but a 404). False for a Lease naming no possible deployment."""
        target = lease_deployment(lease)
        if target is None:
            return False
        namespace, name = target
        try:
            await self._client.get(MODEL_DEPLOYMENT, name, namespace=namespace)
        except ClusterNotFound:
            return False
        except ClusterError as exc:
            log.debug("demand Lease for %s/%s kept: %s", namespace, name, exc)
            return True
        return True

    async def run(self) -> None:
        """Sweep now and then every ``interval_seconds``, until cancelled; a failed sweep is
        logged and the next one tried on time."""
        while True:
            try:
                await self.sweep()
            except ClusterError as exc:
                log.warning("demand Lease sweep in %s failed: %s", self.namespace, exc)
            except Exception:  # a bug here must not end the sweeps, nor the operator's close
                log.exception("demand Lease sweep in %s failed", self.namespace)
            await asyncio.sleep(self.settings.interval_seconds)
