"""Issue 9, fault 4 (case ``capacity-error-after-accepted-resize``), through the real
operator, moto's EKS and the GKE/ARM stubs: the cloud accepts the node-group resize, then
cannot launch the instances (EKS reports it later as a node group health issue,
AsgInstanceLaunchFailures / InsufficientInstanceCapacity) and the pods stay Pending. The
operator reads the node group back, records a stockout mark (published on the
FleetCluster), posts an Event, reports CapacityAvailable=False and re-places the replicas
on the next candidate (GKE).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("moto.server")

from tests.integration import test_e2e_clouds as e2e
from tests.integration.cloud_fixtures import edit
from tests.integration.operator_harness import MD_PATH, Fleet, eventually, operator_prepared
from tests.integration.test_e2e_clouds import (
    AWS,
    GCP,
    ICE_MESSAGE,
    _h100_deployment,
    _ready,
    install_providers,
)

pytestmark = pytest.mark.integration
MD = MD_PATH.format(ns="default")

# The e2e test's fleet (moto's EKS, the GKE/ARM stub, three FleetClusters): its fixtures.
moto_url, stub, clouds, fleet = e2e.moto_url, e2e.stub, e2e.clouds, e2e.fleet


def degraded(answer: dict[str, Any]) -> None:
    """What EKS reports after an accepted resize when EC2 has no capacity: the node group
    DEGRADED with an instance-launch failure."""
    answer["nodegroup"]["status"] = "DEGRADED"
    answer["nodegroup"]["health"] = {
        "issues": [
            {
                "code": "AsgInstanceLaunchFailures",
                "message": "Could not launch On-Demand Instances. "
                "InsufficientInstanceCapacity - " + ICE_MESSAGE,
                "resourceIds": ["eks-asg-1"],
            }
        ]
    }


async def test_async_capacity_error_falls_through(fleet: Fleet, clouds: e2e.Clouds) -> None:
    running, session = fleet, clouds.aws
    session.sticky["describe_nodegroup"] = edit(degraded)  # every answer, as moto gives it
    async with operator_prepared(running, install_providers(running, session.factory)):
        await _ready(running)
        await running.kubectl.create(MD, _h100_deployment("llama"))
        await eventually(lambda: running.replicas(AWS) == 2, what="two replicas in aws")
        # The pods never become ready on AWS: no node can launch. The operator reads the
        # node group back, sees the launch failure, and falls through.
        await eventually(lambda: running.replicas(GCP) == 2, what="fell through")

        async def published() -> list[Any]:
            fc = await running.fc(AWS)
            return list((fc.get("status") or {}).get("stockouts") or [])

        [mark] = await eventually(published, what="the stockout on aws's FleetCluster status")
        assert (mark["gpu"], mark["capacityType"]) == ("H100", "OnDemand")
        assert "InsufficientInstanceCapacity" in mark["message"]
        assert session.called("describe_nodegroup")

        def late_stockouts() -> list[dict[str, Any]]:
            return [
                e
                for e in running.events("Stockout")
                if "after an accepted resize" in e["message"] and AWS in e["message"]
            ]

        await eventually(late_stockouts, what="a Stockout Event for the late capacity error")
        body = await running.md("llama")
        conditions = {c["type"]: c for c in body["status"]["conditions"]}
        assert (
            conditions["CapacityAvailable"]["status"],
            conditions["CapacityAvailable"]["reason"],
        ) == ("False", "Stockout")
        assert {p["cluster"] for p in body["status"]["placements"]} == {GCP}
