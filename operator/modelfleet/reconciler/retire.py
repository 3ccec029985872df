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
- A workload the plan keeps but lowers (a move between pools) loses Ready replicas only
  as far as the others still cover the desired count (``hold_scale_in``).
- Workloads the plan holds for failback (``held``: on a Recovering cluster inside the
  deployment's ``failbackAfterSeconds``) stay: once the window has passed the planner takes
  them back like any replica, and the surplus is scaled in then, make-before-break.

``retire`` executes a decision against the member clusters (idempotent: it deletes by
ownership labels, keeping every name the plan or the decision still wants).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, replace

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.clusters import ClusterClient, ClusterError
from modelfleet.clusters.objects import WORKLOAD_KINDS
from modelfleet.clusters.workloads import WorkloadPlacement, owner_selector, workload_names
from modelfleet.reconciler.ledger import PoolKey
from modelfleet.reconciler.observe import ClusterObservation, Observation
from modelfleet.reconciler.outcome import PassLog
from modelfleet.reconciler.pools import NO_CHANGES_HEALTH

ClientFor = Callable[[FleetCluster], Awaitable[ClusterClient]]


@dataclass(frozen=True)
class RetireDecision:
    """Per cluster: the observed workload names to remove now, and why others are held."""

    remove: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    held: Mapping[str, str] = field(default_factory=dict)
    """Cluster -> reason nothing (more) is removed there this pass."""


def decide_retire(
    *,
    planned: Collection[PoolKey],
    desired: int,
    observed: Mapping[str, ClusterObservation],
    health: Mapping[str, str],
    held: Collection[PoolKey] = (),
) -> RetireDecision:
    """Which observed workloads to remove (see the module docstring for the rules).

    ``planned``: the (cluster, instance type, capacity type) keys the plan places replicas
    on; ``desired``: replicas that must serve (standby excluded); ``observed``: the member
    clusters' workloads by cluster; ``health``: FleetCluster health by cluster (missing:
    Unknown); ``held``: keys held for failback, never removed. Pure and total.
    """
    ready_planned = sum(
        w.ready
        for name, obs in observed.items()
        for w in obs.workloads
        if (name, w.instance_type, w.capacity_type) in planned
    )
    replaced = ready_planned >= desired
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
    return RetireDecision(remove, kept)


def hold_scale_in(
    per_cluster: Mapping[str, list[WorkloadPlacement]],
    *,
    desired: int,
    observed: Mapping[str, ClusterObservation],
    health: Mapping[str, str],
) -> dict[str, list[WorkloadPlacement]]:
    """The placements to apply now: ``per_cluster`` with scale-ins held, make-before-break.

    A plan that moves replicas lowers one pool's count while raising another's (the exact
    placement moves replicas to spread them, or when a constraint needs it). Applied at
    once, the lowered workload loses Ready replicas before their replacements serve. Here
    a workload is lowered by its Ready replicas only as far as the deployment's other Ready
    replicas still cover ``desired`` (standby excluded): ``spare`` = Ready replicas on
    clusters that are reachable and neither Failed nor Suspect, minus ``desired``; each
    scale-in (clusters and pools in name order) removes at most ``spare`` Ready replicas
    and uses that much of it. Replicas that are not Ready go at once (Kubernetes removes
    those first). A plain scale-in (load fell) has spare to spend and is not held. Pure.
    """
    ready_total = sum(
        w.ready
        for name, obs in observed.items()
        if obs.reachable and health.get(name, "Unknown") not in NO_CHANGES_HEALTH
        for w in obs.workloads
    )
    spare = max(0, ready_total - desired)
    out: dict[str, list[WorkloadPlacement]] = {}
    for name in sorted(per_cluster):
        obs = observed.get(name)
        seen = {}
        if obs is not None and obs.reachable:
            seen = {(w.instance_type, w.capacity_type): w for w in obs.workloads}
        kept: list[WorkloadPlacement] = []
        for p in sorted(per_cluster[name], key=lambda p: (p.instance_type, p.capacity_type)):
            w = seen.get((p.instance_type, p.capacity_type))
            if w is not None and w.replicas > p.replicas:
                lost_ready = max(0, w.ready - p.replicas)
                allowed = min(lost_ready, spare)
                spare -= allowed
                if allowed < lost_ready:
                    p = replace(p, replicas=p.replicas + lost_ready - allowed)
            kept.append(p)
        out[name] = kept
    return out


async def retire(
    md: ModelDeployment,
    decision: RetireDecision,
    *,
    planned_here: Mapping[str, list[WorkloadPlacement]],
    observation: Observation,
    by_name: Mapping[str, FleetCluster],
    client_for: ClientFor,
    log: PassLog,
    timeout: float,
) -> None:
    """Apply ``decision``: delete the workloads it removes, keep everything else."""
    namespace = md.metadata.namespace or "default"
    selector = owner_selector(name=md.metadata.name, namespace=namespace)

    async def one(name: str, gone: tuple[str, ...]) -> None:
        obs = observation.clusters[name]
        keep = {w.name for w in obs.workloads if w.name not in gone}
        keep |= workload_names(md.metadata.name, planned_here.get(name, []))
        removed: list[str] = []
        try:
            async with asyncio.timeout(timeout):
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

    await asyncio.gather(
        *(one(n, gone) for n, gone in sorted(decision.remove.items()) if n in by_name)
    )
