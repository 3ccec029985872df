"""The in-memory member cluster and the client registry, as the simulator and reconciler use
them: apply/list/delete semantics like an API server's, fault injection, and a client per
FleetCluster rebuilt when its kubeconfig Secret changes."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.clusters import (
    ClusterClient,
    ClusterConfigError,
    ClusterConflict,
    ClusterNotFound,
    ClusterRegistry,
    ClusterUnreachable,
)
from modelfleet.clusters.fake import InMemoryClusterClient
from modelfleet.clusters.objects import DEPLOYMENT, NAMESPACE, SERVICE
from modelfleet.clusters.workloads import WorkloadPlacement, owner_selector, render_workloads
from modelfleet.providers import ProviderUnavailable
from modelfleet.providers.factory import provider_for

MD = ModelDeployment.model_validate(
    {
        "metadata": {"name": "llama", "namespace": "team-a", "uid": "u1"},
        "spec": {"model": {"name": "llama"}, "replicas": {"min": 1, "max": 4}},
    }
)
PLACEMENT = WorkloadPlacement("sim-1", "p5.48xlarge", "OnDemand", 2)


async def test_apply_is_idempotent_and_bumps_generation_only_on_spec_changes() -> None:
    fake = InMemoryClusterClient()
    await fake.apply(render_workloads(MD, [PLACEMENT]))
    (deployment,) = fake.objects(DEPLOYMENT)
    name = deployment["metadata"]["name"]

    await fake.apply(render_workloads(MD, [PLACEMENT]))
    unchanged = fake.get(DEPLOYMENT, name, "team-a")
    scaled = WorkloadPlacement("sim-1", "p5.48xlarge", "OnDemand", 4)
    await fake.apply(render_workloads(MD, [scaled]))
    changed = fake.get(DEPLOYMENT, name, "team-a")

    assert fake.get(NAMESPACE, "team-a") is not None
    assert unchanged == deployment
    assert changed is not None
    assert changed["metadata"]["generation"] == 2
    assert changed["spec"]["replicas"] == 4
    assert len(fake.objects(DEPLOYMENT)) == 1


async def test_readiness_follows_the_simulated_controller() -> None:
    fake = InMemoryClusterClient()
    await fake.apply(render_workloads(MD, [PLACEMENT]))
    name = fake.objects(DEPLOYMENT)[0]["metadata"]["name"]

    before = await fake.deployment_readiness("team-a", name)
    fake.complete_rollouts()
    after = await fake.deployment_readiness("team-a", name)

    assert (before.ready, before.complete) == (0, False)
    assert (after.ready, after.complete) == (2, True)
    with pytest.raises(ClusterNotFound):
        await fake.deployment_readiness("team-a", "missing")


async def test_unmanaged_objects_are_neither_overwritten_nor_deleted() -> None:
    fake = InMemoryClusterClient()
    service = render_workloads(MD, [])[0]
    foreign = {**service, "metadata": {**service["metadata"], "labels": {"team": "x"}}}
    fake.put(foreign)

    with pytest.raises(ClusterConflict):
        await fake.apply([service])
    assert await fake.delete_owned(SERVICE, {}) == []
    assert fake.get(SERVICE, "llama", "team-a") is not None


async def test_delete_owned_keeps_what_is_asked() -> None:
    fake = InMemoryClusterClient()
    other = WorkloadPlacement("sim-1", "p5.48xlarge", "Spot", 1)
    await fake.apply(render_workloads(MD, [PLACEMENT, other]))
    keep = render_workloads(MD, [PLACEMENT])[1]["metadata"]["name"]

    deleted = await fake.delete_owned(
        DEPLOYMENT, owner_selector(name="llama", namespace="team-a"), keep={keep}
    )

    assert len(deleted) == 1 and keep not in deleted
    assert [d["metadata"]["name"] for d in fake.objects(DEPLOYMENT)] == [keep]


async def test_outage_and_injected_errors() -> None:
    fake = InMemoryClusterClient("member")
    fake.add_node("n1", instance_type="p5.48xlarge")
    fake.set_unreachable()

    with pytest.raises(ClusterUnreachable):
        await fake.probe()
    fake.set_unreachable(False)
    probe = await fake.probe()
    fake.fail_next(ClusterNotFound("gone"))
    with pytest.raises(ClusterNotFound):
        await fake.list_nodes()

    assert (probe.gpu_nodes, probe.ready_gpu_nodes) == (1, 1)
    assert [c.method for c in fake.calls] == ["probe", "probe", "list_nodes"]


# -- registry --------------------------------------------------------------------------


class Factory:
    """Builds fakes and remembers the kubeconfigs it was given."""

    def __init__(self) -> None:
        self.built: list[tuple[str, Mapping[str, Any]]] = []

    async def __call__(self, kubeconfig: Mapping[str, Any], *, name: str) -> ClusterClient:
        self.built.append((name, kubeconfig))
        return InMemoryClusterClient(name)


def member(key: str = "kubeconfig") -> FleetCluster:
    return FleetCluster.model_validate(
        {
            "metadata": {"name": "m1"},
            "spec": {
                "provider": "static",
                "region": "r-1",
                "kubeconfigSecretRef": {"namespace": "mf", "name": "m1", "key": key},
            },
        }
    )


def kubeconfig(server: str) -> str:
    return yaml.safe_dump({"clusters": [{"name": "c", "cluster": {"server": server}}]})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_registry_caches_and_rebuilds_when_the_secret_changes() -> None:
    hub = InMemoryClusterClient("hub")
    hub.add_secret("mf", "m1", {"kubeconfig": kubeconfig("https://a")})
    factory, clock = Factory(), Clock()
    registry = ClusterRegistry(
        hub=hub, secrets=hub, factory=factory, recheck_seconds=30, monotonic=clock
    )

    first = await registry.client_for(member())
    clock.now = 10
    cached = await registry.client_for(member())
    hub.add_secret("mf", "m1", {"kubeconfig": kubeconfig("https://b")})
    clock.now = 20
    still_cached = await registry.client_for(member())  # within recheck_seconds
    clock.now = 40
    rebuilt = await registry.client_for(member())
    clock.now = 80
    unchanged = await registry.client_for(member())

    assert first is cached is still_cached
    assert rebuilt is not first and unchanged is rebuilt
    assert isinstance(first, InMemoryClusterClient) and first.closed
    assert [k["clusters"][0]["cluster"]["server"] for _, k in factory.built] == [
        "https://a",
        "https://b",
    ]
    await registry.close()
    assert isinstance(rebuilt, InMemoryClusterClient) and rebuilt.closed


async def test_registry_errors_name_the_secret_and_never_its_content() -> None:
    hub = InMemoryClusterClient("hub")
    hub.add_secret("mf", "m1", {"kubeconfig": "token: s3cr3t\n  bad: [indent"})
    registry = ClusterRegistry(hub=hub, secrets=hub, factory=Factory())

    with pytest.raises(ClusterConfigError) as not_yaml:
        await registry.client_for(member())
    with pytest.raises(ClusterConfigError, match="no key 'other'"):
        await registry.client_for(member(key="other"))

    assert "mf/m1" in str(not_yaml.value)
    assert "s3cr3t" not in str(not_yaml.value)


async def test_registry_serves_the_hub_for_clusters_without_a_secret() -> None:
    hub = InMemoryClusterClient("hub")
    registry = ClusterRegistry(hub=hub, secrets=hub, factory=Factory())
    local = FleetCluster.model_validate(
        {"metadata": {"name": "hub"}, "spec": {"provider": "static", "region": "r-1"}}
    )

    assert await registry.client_for(local) is hub
    await registry.close()
    assert not hub.closed


# -- provider factory for the cloud providers (imported lazily) -------------------------


def aws_cluster() -> FleetCluster:
    return FleetCluster.model_validate(
        {
            "metadata": {"name": "aws-use1"},
            "spec": {"provider": "aws", "region": "us-east-1", "aws": {"clusterName": "prod"}},
        }
    )


def test_missing_cloud_extra_is_provider_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modelfleet.providers.aws", None)  # import fails

    with pytest.raises(ProviderUnavailable, match=re.escape('"modelfleet[aws]"')):
        provider_for(aws_cluster(), nodes=InMemoryClusterClient(), clock=lambda: None)  # type: ignore[arg-type,return-value]


def test_cloud_provider_gets_the_cluster_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    class AwsNodePoolProvider:
        def __init__(self, cluster: FleetCluster, *, credentials: Mapping[str, str] | None = None):
            self.cluster, self.credentials = cluster, credentials

    module = types.ModuleType("modelfleet.providers.aws")
    module.AwsNodePoolProvider = AwsNodePoolProvider  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "modelfleet.providers.aws", module)

    built = provider_for(
        aws_cluster(),
        nodes=InMemoryClusterClient(),
        clock=lambda: None,  # type: ignore[arg-type,return-value]
        credentials={"AWS_ACCESS_KEY_ID": "x"},
    )

    assert isinstance(built, AwsNodePoolProvider)
    assert built.cluster.metadata.name == "aws-use1"
    assert built.credentials == {"AWS_ACCESS_KEY_ID": "x"}
