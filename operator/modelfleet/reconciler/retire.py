"""Retire stage: remove the workloads a plan no longer wants, make-before-break.

``decide_retire`` is pure (table-tested): given what the plan places, how many replicas it
needs serving, what each member cluster really holds and each cluster's health, it says
which workloads may go now. The rules, in both directions of a failover:

- Nothing is removed from a cluster whose health is Failed or Suspect, even if its API
  answers (its workloads may be the only ones serving), nor from one that cannot be read.
- A workload the plan does not place is removed only once the replicas the plan does place
  are Ready in at least the desired number (its replacement is up), or when it has no Ready
  replica itself (removing it takes nothing away). Workloads that survived an outage are
  existing replicas like any other: they go only under the same rule.
- The same holds inside one key: while the plan's replicas are not Ready in the desired
  number, a workload the plan scales in (e.g. on-demand replicas moving back to spot)
  keeps the replicas that serve now (``floors``, applied by the apply stage). Their nodes
  stay booked: the plan sizes every pool for the replicas Ready there when the pass
  observed them (``core.nodepools``), so a pool is never resized under them.
- Workloads the plan holds for failback (``held``: on a Recovering cluster inside the
  deployment's ``failbackAfterSeconds``) stay: once the window has passed the planner takes
  them back like any replica, and the surplus is scaled in then, make-before-break.

``retire`` executes a decision against the member clusters (idempotent: it deletes by
ownership labels, keeping every name the plan or the decision still wants).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.clusters import ClusterError
from modelfleet.clusters.objects import WORKLOAD_KINDS
from modelfleet.clusters.workloads import (
    WorkloadPlacement,
    owner_selector,
    workload_names,
    workload_namespace,
)
from modelfleet.reconciler.ledger import PoolKey
from modelfleet.reconciler.limits import gather, within
from modelfleet.reconciler.memory import ClientFor
from modelfleet.reconciler.observe import ClusterObservation, Observation
from modelfleet.reconciler.outcome import PassLog
from modelfleet.reconciler.pools import NO_CHANGES_HEALTH


@dataclass(frozen=True)
class RetireDecision:
    """Per cluster: the observed workload names to remove now, and why others are held."""

    remove: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    held: Mapping[str, str] = field(default_factory=dict)
    """Cluster -> reason nothing (more) is removed there this pass."""
    floors: Mapping[PoolKey, int] = field(default_factory=dict)
    """Planned keys whose plan count is below the replicas serving there now, while the
    replacements are not Ready: apply keeps this many (a scale-in is a removal too)."""


def decide_retire(
    *,
    planned: Collection[PoolKey],
    desired: int,
    observed: Mapping[str, ClusterObservation],
    health: Mapping[str, str],
    held: Collection[PoolKey] = (),
    planned_replicas: Mapping[PoolKey, int] | None = None,
) -> RetireDecision:
    """Which observed workloads to remove (see the module docstring for the rules).

    ``planned``: the (cluster, instance type, capacity type) keys the plan places replicas
    on; ``desired``: replicas that must serve (standby excluded); ``observed``: the member
    clusters' workloads by cluster; ``health``: FleetCluster health by cluster (missing:
    Unknown); ``held``: keys held for failback, never removed; ``planned_replicas``: the
    plan's replicas per key, when known: Ready replicas count toward the plan only up to
    them (replicas a key is being scaled in from are not its replacements), and keys
    scaled in get ``floors``. Pure and total.
    """
    ready_by_key: dict[PoolKey, int] = {}
    for name, obs in observed.items():
        for w in obs.workloads:
            key = (name, w.instance_type, w.capacity_type)
            if key in planned:
                ready_by_key[key] = ready_by_key.get(key, 0) + w.ready
    caps = planned_replicas or {}
    ready_planned = sum(min(n, caps.get(k, n)) for k, n in ready_by_key.items())
    replaced = ready_planned >= desired
    floors: dict[PoolKey, int] = {}
    if not replaced:
        for name, obs in observed.items():
            if not obs.reachable or health.get(name, "Unknown") in NO_CHANGES_HEALTH:
                continue
            for w in obs.workloads:
                key = (name, w.instance_type, w.capacity_type)
                want = caps.get(key)
                serving = min(w.replicas, w.ready)
                if want is not None and serving > want:
                    floors[key] = serving
    remove: dict[str, tuple[str, ...]] = {}
    kept: dict[str, str] = {}
    for name, obs in sorted(observed.items()):
        if not obs.reachable:
            kept[name] = "cluster unreachable"
            continue
        unwanted = [
            w for w in obs.workloads if (name, w.instance_type, w.capacity_type) not in planned
        ]
        if not unwanted:
            continue
        state = health.get(name, "Unknown")
        if state in NO_CHANGES_HEALTH:
            kept[name] = f"cluster is {state}: nothing destructive there"
            continue
        gone = tuple(
            sorted(
                w.name
                for w in unwanted
                if (name, w.instance_type, w.capacity_type) not in held
                and (replaced or w.ready == 0)
            )
        )
        if gone:
            remove[name] = gone
        if len(gone) < len(unwanted):
            kept[name] = (
                "held for failback"
                if replaced
                else f"replacements not ready ({ready_planned} of {desired} ready): "
                "kept until they are (make-before-break)"
            )
    return RetireDecision(remove, kept, floors)


async def retire(
    md: ModelDeployment,
    decision: RetireDecision,
    *,
    planned_here: Mapping[str, list[WorkloadPlacement]],
    observation: Observation,
    by_name: Mapping[str, FleetCluster],
    client_for: ClientFor,
    log: PassLog,
    timeout: float | None,
) -> None:
    """Apply ``decision``: delete the workloads it removes, keep everything else."""
    namespace = workload_namespace(md)
    selector = owner_selector(name=md.metadata.name, namespace=namespace)

    async def one(name: str, gone: tuple[str, ...]) -> None:
        obs = observation.clusters[name]
        keep = {w.name for w in obs.workloads if w.name not in gone}
        keep |= workload_names(md.metadata.name, planned_here.get(name, []))
        removed: list[str] = []
        try:
            async with within(timeout):
                client = await client_for(by_name[name])
                for kind in WORKLOAD_KINDS:
                    if kind.kind == "Service":
                        if not keep:
                            removed += await client.delete_owned(
                                kind, selector, namespace=namespace
                            )
                    else:
                        removed += await client.delete_owned(
                            kind, selector, namespace=namespace, keep=keep
                        )
        except (ClusterError, TimeoutError) as exc:
            log.warn("RetireFailed", f"cannot remove retired workloads in {name}: {exc}")
            return
        if removed:
            log.note("Normal", "Retired", f"removed {', '.join(sorted(set(removed)))} from {name}")

    await gather(*(one(n, gone) for n, gone in sorted(decision.remove.items()) if n in by_name))
