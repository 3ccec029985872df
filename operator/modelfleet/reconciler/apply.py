"""Apply stage: create or update the workloads of every placement, cluster by cluster.

A failure in one cluster never stops the others. Clusters whose health is Failed or
Suspect are left alone (the plan places nothing new there, and resizing what still runs
there would be destructive). Applying costs a GET per object even when nothing changed, so
a cluster whose rendered workloads are the same as last applied, and whose observed
Deployments match them, is re-applied only every ``reapply_after`` seconds (to repair
drift of what observation does not see, e.g. an edited Service).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modelfleet import labels
from modelfleet.api import FleetCluster, ModelDeployment, ObjectMeta
from modelfleet.api.modeldeployment import ModelDeploymentSpec
from modelfleet.clusters import ClusterClient, ClusterConflict, ClusterError
from modelfleet.clusters.objects import JsonObject
from modelfleet.clusters.workloads import (
    RenderSettings,
    WorkloadPlacement,
    render_workloads,
    workload_name,
    workload_namespace,
)
from modelfleet.core import Plan
from modelfleet.core.from_api import deployment_key
from modelfleet.reconciler.limits import gather, within
from modelfleet.reconciler.memory import ClientFor
from modelfleet.reconciler.observe import Observation
from modelfleet.reconciler.outcome import PassLog
from modelfleet.reconciler.pools import NO_CHANGES_HEALTH, health_of


def placements_by_cluster(plan: Plan) -> dict[str, list[WorkloadPlacement]]:
    """The plan's placements as workload placements, per cluster."""
    out: dict[str, list[WorkloadPlacement]] = defaultdict(list)
    for p in plan.placements:
        out[p.cluster].append(
            WorkloadPlacement(
                cluster=p.cluster,
                instance_type=p.instance_type,
                capacity_type=p.capacity_type,
                replicas=p.replicas,
            )
        )
    return dict(out)


async def apply_workloads(
    md: ModelDeployment,
    per_cluster: Mapping[str, list[WorkloadPlacement]],
    *,
    by_name: Mapping[str, FleetCluster],
    client_for: ClientFor,
    render: RenderSettings,
    log: PassLog,
    timeout: float | None,
    applied: dict[tuple[str, str], tuple[str, datetime]] | None = None,
    observation: Observation | None = None,
    now: datetime | None = None,
    reapply_after: float = 0.0,
    renders: RenderMemo | None = None,
) -> None:
    """Render and apply ``per_cluster``'s workloads (idempotent). ``applied`` remembers
    (digest, when) per (cluster, deployment) across passes; ``renders`` the last render's
    inputs and digest, so an unchanged deployment is not rendered again just to learn that
    nothing changed."""
    key = deployment_key(md)

    async def apply(name: str, placements: list[WorkloadPlacement]) -> None:
        inputs = _RenderInputs(md.spec, md.metadata, tuple(placements), render)
        memo = renders.get((name, key)) if renders is not None else None
        objects: list[JsonObject] | None = None
        if memo is not None and memo[0].same_as(inputs):
            digest = memo[1]
        else:
            objects = render_workloads(md, placements, settings=render)
            digest = hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()
            if renders is not None:
                renders[(name, key)] = (inputs, digest)
        last = applied.get((name, key)) if applied is not None else None
        if (
            last is not None
            and now is not None
            and last[0] == digest
            and (now - last[1]).total_seconds() < reapply_after
            and _observed_as_applied(observation, name, placements, md.metadata.name)
        ):
            return
        if objects is None:
            objects = render_workloads(md, placements, settings=render)
        try:
            async with within(timeout):
                client = await client_for(by_name[name])
                await ensure_namespace(client, workload_namespace(md))
                await client.apply(objects)
        except ClusterError as exc:
            log.warn("ApplyFailed", f"cannot apply workloads in {name}: {exc}")
            return
        except TimeoutError:
            log.warn("ApplyFailed", f"cannot apply workloads in {name}: timed out")
            return
        if applied is not None and now is not None:
            applied[(name, key)] = (digest, now)

    await gather(
        *(
            apply(n, ps)
            for n, ps in sorted(per_cluster.items())
            if n in by_name and health_of(by_name[n]) not in NO_CHANGES_HEALTH
        )
    )


@dataclass(frozen=True)
class _RenderInputs:
    """Everything ``render_workloads`` reads (the ModelDeployment's spec and metadata, the
    placements, the settings): equal inputs render equal objects."""

    spec: ModelDeploymentSpec
    metadata: ObjectMeta
    placements: tuple[WorkloadPlacement, ...]
    settings: RenderSettings

    def same_as(self, other: _RenderInputs) -> bool:
        # Identity first: a pass that only stored a new status keeps spec and metadata.
        return (
            self.placements == other.placements
            and (self.spec is other.spec or self.spec == other.spec)
            and (self.metadata is other.metadata or self.metadata == other.metadata)
            and self.settings == other.settings
        )


RenderMemo = dict[tuple[str, str], tuple[_RenderInputs, str]]
"""The last render's inputs and its digest per (cluster, deployment key)."""


def _observed_as_applied(
    observation: Observation | None,
    cluster: str,
    placements: list[WorkloadPlacement],
    md_name: str,
) -> bool:
    """Whether the cluster's observed Deployments are exactly the ones ``placements``
    render, with their replica counts."""
    if observation is None:
        return False
    obs = observation.clusters.get(cluster)
    if obs is None or not obs.reachable:
        return False
    seen = {(w.name, w.replicas) for w in obs.workloads}
    wanted = {(workload_name(md_name, p), p.replicas) for p in placements}
    return seen == wanted


async def ensure_namespace(client: ClusterClient, namespace: str) -> None:
    """Create the workloads' namespace in a member cluster when it is missing."""
    # A conflict means it exists and is not ours: fine, we only need it to exist.
    with contextlib.suppress(ClusterConflict):
        await client.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace, "labels": {labels.MANAGED: "true"}},
                }
            ]
        )
