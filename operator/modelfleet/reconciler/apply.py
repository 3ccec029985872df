"""Apply stage: create or update the workloads of every placement, cluster by cluster.

A failure in one cluster never stops the others. Clusters whose health is Failed or
Suspect are left alone (the plan places nothing new there, and resizing what still runs
there would be destructive).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping

from modelfleet import labels
from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.clusters import ClusterClient, ClusterConflict, ClusterError
from modelfleet.clusters.workloads import RenderSettings, WorkloadPlacement, render_workloads
from modelfleet.core import Plan
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
) -> None:
    """Server-side render and apply ``per_cluster``'s workloads (idempotent)."""

    async def apply(name: str, placements: list[WorkloadPlacement]) -> None:
        try:
            async with asyncio.timeout(timeout):
                client = await client_for(by_name[name])
                await ensure_namespace(client, md.metadata.namespace or "default")
                await client.apply(render_workloads(md, placements, settings=render))
        except ClusterError as exc:
            log.warn("ApplyFailed", f"cannot apply workloads in {name}: {exc}")
        except TimeoutError:
            log.warn("ApplyFailed", f"cannot apply workloads in {name}: timed out")

    await asyncio.gather(
        *(
            apply(n, ps)
            for n, ps in sorted(per_cluster.items())
            if n in by_name and health_of(by_name[n]) not in NO_CHANGES_HEALTH
        )
    )


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
