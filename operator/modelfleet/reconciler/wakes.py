"""Readiness wakes: a member cluster's Deployment changing readiness brings its
ModelDeployment's next pass forward, so a pass waiting only for replicas to turn Ready
need not poll for them.

``ReadinessWakes`` is the capability the ``Reconciler`` is told about (one object, no
global flag): where changes come from, and whether they come from a given (member
cluster, namespace) right now.

- **changes**: whoever sees the member clusters' Deployments change calls ``changed``
  with the object before and after (the operator: the member-cluster informers'
  ``on_update``, ``clusters.informer``; the simulator: the in-memory API's writes).
  ``clusters.workloads.readiness_wake`` says which ModelDeployment it concerns, if any
  (readiness changed, or the Deployment went), and the function given to ``connect`` is
  called with its uid (the operator loop connects ``Schedule.wake``: due at once) only
  when the object is one modelfleet writes for that ModelDeployment: in its member
  namespace, named as its placements are (``clusters.workloads.is_workload_of``). The
  ``modelfleet.io/uid`` label alone proves nothing: a tenant who may create Deployments
  in their own namespace may put any ModelDeployment's uid on one. The uid -> (namespace,
  name) of each ModelDeployment is told by the reconciler at each pass (``track``) and
  forgotten once it is finalized (``forget``); a uid no pass has told (none ran yet in
  this process, so it is due anyway) wakes nothing;
- **served**: ``serves(cluster, namespace)`` is True only while something is connected
  and the source of changes for that (cluster, namespace) is current (the operator: its
  informer is synced and its watch healthy, ``InformerSet.serving``; the simulator: the
  cluster's API server is up): what a pass would have to check before relying on a wake
  instead of polling. No requeue relies on it today: dropping the 5 s poll of "placed
  replicas not yet Ready" where wakes are served was measured and not kept
  (docs/decisions.md "How soon the next pass comes"), so wakes only bring passes forward.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from modelfleet import labels
from modelfleet.api import ModelDeployment
from modelfleet.clusters.objects import JsonObject
from modelfleet.clusters.workloads import is_workload_of, readiness_wake, workload_namespace

log = logging.getLogger(__name__)

Serving = Callable[[str, str], bool]
"""(FleetCluster name, namespace) -> whether changes there reach ``changed`` now."""


class ReadinessWakes:
    """See the module docstring."""

    def __init__(self, serving: Serving) -> None:
        self._serving = serving
        self._wake: Callable[[str], None] | None = None
        self._owners: dict[str, tuple[str, str]] = {}
        self.wakes = 0
        """Wakes sent (changes that concerned a ModelDeployment while connected)."""
        self.refused = 0
        """Changes carrying a uid whose object is not that ModelDeployment's (another
        namespace, another name) or whose uid no pass has told: nothing woken."""

    def track(self, md: ModelDeployment) -> None:
        """``md`` exists: a change of one of its workloads (``is_workload_of``) may wake it.
        Idempotent; a uid names one (namespace, name) for its whole life. A
        ModelDeployment without a uid (a manifest read from a file) is not tracked: its
        workloads carry no uid label, so nothing could wake it."""
        uid = md.metadata.uid
        if uid:
            self._owners[uid] = (workload_namespace(md), md.metadata.name)

    def forget(self, uid: str) -> None:
        """The ModelDeployment ``uid`` is gone (finalized): its uid wakes nothing any more."""
        self._owners.pop(uid, None)

    def connect(self, wake: Callable[[str], None]) -> None:
        """From now on, call ``wake(uid)`` for every readiness change of a ModelDeployment's
        workloads (the last function connected; one owner of the schedule)."""
        self._wake = wake

    @property
    def connected(self) -> bool:
        return self._wake is not None

    def changed(self, before: JsonObject | None, after: JsonObject | None) -> None:
        """A member-cluster Deployment changed from ``before`` to ``after`` (None: absent).
        Never raises: a failing wake is logged (the regular interval still comes)."""
        wake = self._wake
        if wake is None:
            return
        try:
            uid = readiness_wake(before, after)
            ours = uid is not None and self._owns(uid, before, after)
        except (AttributeError, TypeError, ValueError):
            # An object of a shape no API server sends (a status or labels not an object):
            # nothing to say, and the informer's watch loop, which catches only API and
            # JSON errors, must not end on it.
            log.debug("readiness wake: unreadable Deployment ignored", exc_info=True)
            return
        if uid is None:
            return
        if not ours:
            # Not where modelfleet writes that ModelDeployment's workloads (a forged uid
            # label in another tenant's namespace), or no pass told of that uid yet.
            self.refused += 1
            log.debug("readiness wake of %s refused: not its workload", uid)
            return
        self.wakes += 1
        try:
            wake(uid)
        except Exception:  # the caller is a watch stream or a write: never break it
            log.exception("readiness wake of %s failed", uid)

    def _owns(self, uid: str, before: JsonObject | None, after: JsonObject | None) -> bool:
        """Whether the object that names ``uid`` (after the change, or before it) is one
        of that ModelDeployment's workloads, where and as modelfleet names them."""
        owner = self._owners.get(uid)
        return owner is not None and any(
            obj is not None
            and ((obj.get("metadata") or {}).get("labels") or {}).get(labels.UID) == uid
            and is_workload_of(owner[0], owner[1], obj)
            for obj in (after, before)
        )

    def serves(self, cluster: str, namespace: str) -> bool:
        """Whether a readiness change of a workload in ``namespace`` of FleetCluster
        ``cluster`` wakes its ModelDeployment now."""
        return self._wake is not None and self._serving(cluster, namespace)
