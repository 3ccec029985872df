"""Apply stage: create or update the workloads of every placement, cluster by cluster.

A failure in one cluster never stops the others. Clusters whose health is Failed or
Suspect are left alone (the plan places nothing new there, and resizing what still runs
there would be destructive). Applying costs a GET per object even when nothing changed, so
a cluster whose rendered workloads are the same as last applied, and whose observed
Deployments match them, is re-applied only every ``reapply_after`` seconds (to repair
drift of what observation does not see, e.g. an edited Service).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from modelfleet import labels
from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.clusters import ClusterClient, ClusterConflict, ClusterError
from modelfleet.clusters.workloads import (
    RenderSettings,
    WorkloadPlacement,
    render_workloads,
    workload_name,
)
from modelfleet.core import Plan
from modelfleet.core.from_api import deployment_key
from modelfleet.reconciler.observe import Observation
from modelfleet.reconciler.outcome import PassLog
from modelfleet.reconciler.pools import NO_CHANGES_HEALTH, health_of

ClientFor = Callable[[FleetCluster], Awaitable[ClusterClient]]


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
    timeout: float,
    applied: dict[tuple[str, str], tuple[str, datetime]] | None = None,
    observation: Observation | None = None,
    now: datetime | None = None,
    reapply_after: float = 0.0,
) -> None:
    """Render and apply ``per_cluster``'s workloads (idempotent). ``applied`` remembers
    (digest, when) per (cluster, deployment) across passes."""
    key = deployment_key(md)

    async def apply(name: str, placements: list[WorkloadPlacement]) -> None:
        objects = render_workloads(md, placements, settings=render)
        digest = hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()
        last = applied.get((name, key)) if applied is not None else None
        if (
            last is not None
            and now is not None
            and last[0] == digest
            and (now - last[1]).total_seconds() < reapply_after
            and _observed_as_applied(observation, name, placements, md.metadata.name)
        ):
            return
        try:
            async with asyncio.timeout(timeout):
                client = await client_for(by_name[name])
                await ensure_namespace(client, md.metadata.namespace or "default")
                await client.apply(objects)
        except ClusterError as exc:
            log.warn("ApplyFailed", f"cannot apply workloads in {name}: {exc}")
            return
        except TimeoutError:
            log.warn("ApplyFailed", f"cannot apply workloads in {name}: timed out")
            return
        if applied is not None and now is not None:
            applied[(name, key)] = (digest, now)

    await asyncio.gather(
        *(
            apply(n, ps)
            for n, ps in sorted(per_cluster.items())
            if n in by_name and health_of(by_name[n]) not in NO_CHANGES_HEALTH
        )
    )


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
