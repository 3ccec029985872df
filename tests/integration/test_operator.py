"""The real operator against a hub and member clusters speaking the Kubernetes API over HTTP.

Each test starts KMock emulators (a hub and two members), registers the members as
simulated FleetClusters with kubeconfig Secrets, runs the operator exactly as
``modelfleet run`` does, and acts like a user with kubectl.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.integration.operator_harness import (
    EAST_WEST_SPOT,
    MD_PATH,
    Fleet,
    eventually,
    fleet_fixture,
    model_deployment,
    operator,
)

from modelfleet.api import FleetCluster
from modelfleet.providers.simulated import SimulatedNodePoolProvider

pytestmark = pytest.mark.integration


fleet = fleet_fixture(EAST_WEST_SPOT)


async def test_apply_places_workloads_across_regions(fleet: Fleet) -> None:
    async with operator(fleet):
        await fleet.until_healthy("east", "west")
        md = model_deployment("llama", placement={"spread": {"minRegions": 2}})
        started = time.monotonic()
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)
        await eventually(
            lambda: fleet.replicas("east") == 1 and fleet.replicas("west") == 1,
            what="one replica per region",
        )
        print(f"\napply -> workloads in both member clusters: {time.monotonic() - started:.2f}s")
        for member in ("east", "west"):
            [deployment] = fleet.deployments(member)
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
            assert deployment["metadata"]["labels"]["modelfleet.io/deployment"] == "llama"
            emulator = fleet.members[member]
            await eventually(
                lambda e=emulator: (
                    e.objects("v1/services", namespace="default")
                    and e.objects("policy/v1/poddisruptionbudgets", namespace="default")
                ),
                what=f"Service and PDB in {member}",
            )

        async def placed() -> dict[str, Any] | None:
            body = await fleet.md("llama")
            status = (body or {}).get("status") or {}
            return status if len(status.get("placements") or []) == 2 else None

        status = await eventually(placed, what="status with two placements")
        assert status["observedGeneration"] == 1
        assert status["replicas"]["desired"] == 2
        assert {p["cluster"] for p in status["placements"]} == {"east", "west"}
        assert status["costPerHour"] == pytest.approx(22.0)
        ready = {c["type"]: c for c in status["conditions"]}["Ready"]
        assert (ready["status"], ready["reason"]) == ("False", "ReplicasNotReady")

        fleet.mark_ready("east")
        fleet.mark_ready("west")

        async def all_ready() -> bool:
            body = await fleet.md("llama")
            conditions = {c["type"]: c for c in body["status"]["conditions"]}
            return (
                body["status"]["replicas"]["ready"] == 2 and conditions["Ready"]["status"] == "True"
            )

        await eventually(all_ready, what="Ready=True")
        await eventually(lambda: fleet.events("Placed"), what="a Placed Event")


async def test_spec_change_is_followed(fleet: Fleet) -> None:
    async with operator(fleet):
        await fleet.until_healthy("east", "west")
        await fleet.kubectl.create(MD_PATH.format(ns="default"), model_deployment("llama"))
        # No spread asked: the cheapest cluster (east) holds both replicas.
        await eventually(lambda: fleet.replicas("east") == 2, what="2 replicas in east")
        await fleet.kubectl.patch(
            MD_PATH.format(ns="default") + "/llama", {"spec": {"replicas": {"min": 3, "max": 5}}}
        )
        await eventually(lambda: fleet.replicas("east") == 3, what="3 replicas after the change")
        assert fleet.replicas("west") == 0


async def test_unreachable_cluster_fails_over(fleet: Fleet) -> None:
    async with operator(fleet):
        await fleet.until_healthy("east", "west")
        md = model_deployment("llama", failover={"failAfterSeconds": 1})
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)
        await eventually(lambda: fleet.replicas("east") == 2, what="2 replicas in east")
        fleet.mark_ready("east")

        started = time.monotonic()
        fleet.break_member("east")

        async def east_failed() -> bool:
            fc = await fleet.fc("east")
            return bool(fc) and fc["status"]["health"] == "Failed"

        await eventually(east_failed, what="east Failed")
        await eventually(lambda: fleet.replicas("west") == 2, what="replicas replaced in west")
        print(
            f"\nmember API down -> replacements created in west: {time.monotonic() - started:.2f}s"
        )

        async def placed_in_west_only() -> dict[str, Any] | None:
            # The status patch follows the workloads' creation (a separate request): wait
            # for it rather than race it (it failed once on a loaded machine).
            body = await fleet.md("llama")
            placements = ((body or {}).get("status") or {}).get("placements") or []
            return body if {p["cluster"] for p in placements} == {"west"} else None

        body = await eventually(placed_in_west_only, what="status placements only in west")
        conditions = {c["type"]: c for c in body["status"]["conditions"]}
        assert conditions["Degraded"]["status"] == "True"
        await eventually(lambda: fleet.events("ClusterFailed"), what="a ClusterFailed Event")


async def test_stockout_falls_through_to_next_cluster(fleet: Fleet) -> None:
    async with operator(fleet) as context:
        await fleet.until_healthy("east", "west")
        east = await fleet.fc("east")
        assert east is not None
        provider = await context.providers.provider_for(FleetCluster.model_validate(east))
        assert isinstance(provider, SimulatedNodePoolProvider)
        provider.inject_stockout(
            "aws-h100-1g", "OnDemand", until=datetime.now(UTC) + timedelta(hours=1)
        )
        await fleet.kubectl.create(MD_PATH.format(ns="default"), model_deployment("llama"))
        await eventually(lambda: fleet.replicas("west") == 2, what="placement fell through to west")
        assert fleet.replicas("east") == 0
        await eventually(lambda: fleet.events("Stockout"), what="a Stockout Event")

        async def stockout_published() -> bool:
            fc = await fleet.fc("east")
            return bool(fc and (fc["status"].get("stockouts") or []))

        await eventually(stockout_published, what="stockout in east's status")
        [mark] = (await fleet.fc("east") or {})["status"]["stockouts"]
        assert (mark["gpu"], mark["capacityType"]) == ("H100", "OnDemand")


async def test_delete_cleans_every_cluster(fleet: Fleet) -> None:
    async with operator(fleet):
        await fleet.until_healthy("east", "west")
        md = model_deployment("llama", placement={"spread": {"minRegions": 2}})
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)
        await eventually(lambda: fleet.replicas("east") == 1 and fleet.replicas("west") == 1)
        body = await fleet.md("llama")
        assert body is not None and "modelfleet.io/cleanup" in body["metadata"]["finalizers"]

        await fleet.kubectl.delete(MD_PATH.format(ns="default") + "/llama")

        def clean() -> bool:
            for member in fleet.members.values():
                for resource in (
                    "apps/v1/deployments",
                    "v1/services",
                    "policy/v1/poddisruptionbudgets",
                ):
                    if member.objects(resource, namespace="default"):
                        return False
            return True

        await eventually(clean, what="no workloads left in any member")
        await eventually(lambda: _gone(fleet), what="ModelDeployment removed from the hub")


async def test_orphan_pools_are_reported_then_collected(fleet: Fleet) -> None:
    async with operator(fleet) as context:
        await fleet.until_healthy("east", "west")
        await fleet.kubectl.create(MD_PATH.format(ns="default"), model_deployment("llama"))
        await eventually(lambda: fleet.replicas("east") == 2, what="2 replicas in east")

        async def pools_reported() -> list[dict[str, Any]] | None:
            fc = await fleet.fc("east")
            pools = ((fc or {}).get("status") or {}).get("nodePools")
            return pools if pools and pools[0]["desiredNodes"] == 2 else None

        [pool] = await eventually(pools_reported, what="east's pool in its status")
        assert (pool["instanceType"], pool["capacityType"]) == ("aws-h100-1g", "OnDemand")

        # While the deployment needs the pool, it survives several GC rounds.
        provider = context.providers.cached("east")
        assert provider is not None
        reported_at = datetime.now(UTC)
        await eventually(lambda: _reconciled_since(fleet, reported_at), what="a later reconcile")
        assert [p.desired_nodes for p in await provider.list_pools()] == [2]

        await fleet.kubectl.delete(MD_PATH.format(ns="default") + "/llama")
        await eventually(lambda: _gone(fleet), what="ModelDeployment removed")

        async def collected() -> bool:
            return not await provider.list_pools()

        await eventually(collected, timeout=60, what="orphan pool deleted after the grace period")
        await eventually(lambda: fleet.events("PoolDeleted"), what="a PoolDeleted Event")


async def _gone(fleet: Fleet) -> bool:
    return await fleet.md("llama") is None


async def test_restart_converges_without_duplicates(fleet: Fleet) -> None:
    md = model_deployment("llama", placement={"spread": {"minRegions": 2}})
    async with operator(fleet):
        await fleet.until_healthy("east", "west")
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)
        # Stop as soon as the first workload exists: mid-reconcile.
        await eventually(lambda: fleet.deployments("east") or fleet.deployments("west"))
    async with operator(fleet):
        await eventually(
            lambda: fleet.replicas("east") == 1 and fleet.replicas("west") == 1,
            what="converged after restart",
        )
        # Reconcile again after convergence: nothing new appears. (It used to require a
        # lastReconcileTime under 0.5 s old, which a loaded machine missed for 20 s.)
        converged_at = datetime.now(UTC)
        await eventually(lambda: _reconciled_since(fleet, converged_at), what="a later reconcile")
        for member in ("east", "west"):
            assert len(fleet.deployments(member)) == 1
            assert len(fleet.members[member].objects("v1/services", namespace="default")) == 1
            assert (
                len(
                    fleet.members[member].objects(
                        "policy/v1/poddisruptionbudgets", namespace="default"
                    )
                )
                == 1
            )


async def _reconciled_since(fleet: Fleet, since: datetime) -> bool:
    """Whether the status records a reconcile that started after ``since``."""
    body = await fleet.md("llama")
    last = ((body or {}).get("status") or {}).get("lastReconcileTime")
    if not last:
        return False
    return datetime.fromisoformat(last) > since


async def test_unsatisfiable_spec_reports_what_to_change(fleet: Fleet) -> None:
    async with operator(fleet):
        await fleet.until_healthy("east", "west")
        md = model_deployment(
            "big", resources={"gpu": {"count": 1, "types": ["B200"]}}, replicas={"min": 1, "max": 2}
        )
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)

        async def rejected() -> dict[str, Any] | None:
            body = await fleet.md("big")
            conditions = {
                c["type"]: c for c in ((body or {}).get("status") or {}).get("conditions") or []
            }
            ready = conditions.get("Ready")
            return ready if ready and ready["status"] == "False" else None

        ready = await eventually(rejected, what="Ready=False")
        assert ready["reason"] == "NoCandidates"
        assert "B200" in ready["message"] or "GPU" in ready["message"]
        await eventually(lambda: fleet.events("NoCandidates"), what="a NoCandidates Event")
        assert fleet.replicas("east") == 0 and fleet.replicas("west") == 0
