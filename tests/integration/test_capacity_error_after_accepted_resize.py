"""Issue 9, fault 4 (case ``capacity-error-after-accepted-resize``), through the real
operator, moto's EKS and the GKE/ARM stubs: the cloud accepts the node-group resize, then
cannot launch the instances (EKS reports it later as a node group health issue,
AsgInstanceLaunchFailures / InsufficientInstanceCapacity) and the pods stay Pending. The
operator reads the node group back, records a stockout mark (published on the
FleetCluster), posts an Event, reports CapacityAvailable=False and re-places the replicas
on the next candidate (GKE).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto.server")

from tests.integration.cloud_fixtures import (
    EksCluster,
    StaticToken,
    create_eks_cluster,
    moto_server,
    no_google_access_boundary_lookup,
    seed_gcp,
    service_account_key,
    use_moto,
    warm_up_moto,
)
from tests.integration.cloud_stubs import CloudStub
from tests.integration.operator_harness import (
    MD_PATH,
    SYSTEM_NS,
    Fleet,
    eventually,
    fleet_of,
    operator_prepared,
)
from tests.integration.test_e2e_clouds import (  # reuse the e2e test's fleet definition
    AWS,
    AWS_REGION,
    AZURE,
    GCP,
    GCP_H100,
    GCP_PROJECT,
    GCP_REGION,
    GCP_ZONE,
    ICE_MESSAGE,
    _clusters,
    _h100_deployment,
    _ready,
)

from modelfleet.api import FleetCluster
from modelfleet.providers.aws import AwsNodePoolProvider
from modelfleet.providers.azure import AzureNodePoolProvider

pytestmark = pytest.mark.integration
MD = MD_PATH.format(ns="default")


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


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        warm_up_moto(url, region=AWS_REGION)
        yield url


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStub]:
    server = CloudStub(tmp_path_factory.mktemp("cloud-stub"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fleet(
    moto_url: str, stub: CloudStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Fleet, EksCluster]]:
    use_moto(monkeypatch, moto_url, tmp_path, AWS_REGION)
    eks = create_eks_cluster(moto_url, region=AWS_REGION, name="prod-use1")
    seed_gcp(
        stub,
        project=GCP_PROJECT,
        region=GCP_REGION,
        zone=GCP_ZONE,
        machine_types={GCP_H100: ("nvidia-h100-80gb", 8)},
    )
    monkeypatch.setenv("MODELFLEET_GCP_CONTAINER_ENDPOINT", stub.http_url)
    monkeypatch.setenv("MODELFLEET_GCP_COMPUTE_ENDPOINT", stub.http_url)
    no_google_access_boundary_lookup(monkeypatch)
    monkeypatch.setenv("MODELFLEET_AZURE_BASE_URL", stub.https_url)
    monkeypatch.setenv("MODELFLEET_AZURE_LIVE_PRICES", "false")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stub.ca_file))
    import base64

    async with fleet_of(tmp_path, monkeypatch, _clusters(eks)) as running:
        key = service_account_key(project=GCP_PROJECT, token_uri=f"{stub.http_url}/oauth2/token")
        running.hub.put(
            "v1/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "gcp-credentials",
                    "namespace": SYSTEM_NS,
                    "resourceVersion": "1",
                },
                "data": {"service_account.json": base64.b64encode(key.encode()).decode()},
            },
        )
        yield running, eks


async def test_async_capacity_error_falls_through(fleet: tuple[Fleet, EksCluster]) -> None:
    running, _ = fleet
    session = DegradingSession()

    async def install(context: Any) -> None:
        aws = FleetCluster.model_validate(await running.fc(AWS))
        await context.providers.install(
            aws, AwsNodePoolProvider(aws, session_factory=session.factory)
        )
        azure = FleetCluster.model_validate(await running.fc(AZURE))
        await context.providers.install(
            azure, AzureNodePoolProvider(azure, sdk_credential=StaticToken())
        )

    async with operator_prepared(running, install):
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
