"""Issue 9, fault 4 (case ``capacity-error-after-accepted-resize``), through the real
operator, moto's EKS and the GKE/ARM stubs: the cloud accepts the node-group resize, then
cannot launch the instances (EKS reports it later as a node group health issue,
AsgInstanceLaunchFailures / InsufficientInstanceCapacity) and the pods stay Pending. The
operator reads the node group back, records a stockout mark (published on the
FleetCluster), posts an Event, reports CapacityAvailable=False and re-places the replicas
on the next candidate (GKE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("moto.server")

from tests.integration import test_e2e_clouds as e2e
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


@dataclass
class DegradingSession:
    """boto3 session over moto whose describe_nodegroup answers are edited: every node group
    is DEGRADED with an instance-launch failure (what EKS reports after an accepted resize
    when EC2 has no capacity)."""

    calls: list[str] = field(default_factory=list)

    def factory(self, region: str, credentials: Any) -> DegradingSession:
        from modelfleet.providers.aws.sdk import default_session_factory

        self._real = default_session_factory(region, credentials)
        return self

    def client(self, service_name: str, *, config: Any = None) -> Any:
        return _Client(self._real.client(service_name, config=config), self)


class _Client:
    def __init__(self, real: Any, session: DegradingSession) -> None:
        self._real, self._session = real, session

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._real, name)
        if not callable(real) or name.startswith("_"):
            return real

        def call(**params: Any) -> Any:
            self._session.calls.append(name)
            result = real(**params)
            if name == "describe_nodegroup":
                group = result["nodegroup"]
                group["status"] = "DEGRADED"
                group["health"] = {
                    "issues": [
                        {
                            "code": "AsgInstanceLaunchFailures",
                            "message": "Could not launch On-Demand Instances. "
                            "InsufficientInstanceCapacity - " + ICE_MESSAGE,
                            "resourceIds": ["eks-asg-1"],
                        }
                    ]
                }
            return result

        return call


async def test_async_capacity_error_falls_through(fleet: Fleet) -> None:
    running = fleet
    session = DegradingSession()
    async with operator_prepared(running, install_providers(running, session.factory)):
        await _ready(running)
        await running.kubectl.create(MD, _h100_deployment("llama"))
        await eventually(lambda: running.replicas(AWS) == 2, what="two replicas in aws")
        # The pods never become ready on AWS: no node can launch. The operator reads the
        # node group back, sees the launch failure, and falls through.
        await eventually(lambda: running.replicas(GCP) == 2, timeout=30, what="fell through")

        async def published() -> list[Any]:
            fc = await running.fc(AWS)
            return list((fc.get("status") or {}).get("stockouts") or [])

        [mark] = await eventually(published, what="the stockout on aws's FleetCluster status")
        assert (mark["gpu"], mark["capacityType"]) == ("H100", "OnDemand")
        assert "InsufficientInstanceCapacity" in mark["message"]
        assert session.calls.count("describe_nodegroup") >= 1

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
