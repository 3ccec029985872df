"""Readiness wakes over a real watch stream: KMock's Kubernetes emulator on loopback, the
operator's own ``KubernetesClusterClient``, the ``Reconciler`` built as ``runtime`` builds
it (member watches on) and the real ``OperatorLoop`` schedule.

The deployment's next pass is booked 15 s away on a clock that does not move, so it can
only become due by a wake. The deployment controller's status write (``readyReplicas``,
a PATCH to the emulator from outside the operator) makes it due at once; a spec write
(what a pass writes), a write of the same readiness and another deployment's Deployment
do not; a deletion does. The reconciler is told the wakes are served only while the
informer of that (cluster, namespace) serves. A Deployment carrying the deployment's uid
label in another tenant's namespace (which the operator watches for that tenant's own
deployment) wakes nothing, whatever it is named. Every wait is bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from kube_emulator import KubeEmulator, kube_emulator
from test_member_watch import REQUEST_TIMEOUT_S, deployment, fleet_cluster, kubeconfig, until

from modelfleet import labels
from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.clusters import ClusterClient, KubernetesClusterClient
from modelfleet.clusters.informer import InformerSettings, ListWatchClient
from modelfleet.clusters.objects import DEPLOYMENT
from modelfleet.clusters.workloads import WorkloadPlacement, workload_name
from modelfleet.loop import OperatorLoop
from modelfleet.metrics.source import StaticMetricsSource
from modelfleet.reconciler import ProviderRegistry, Reconciler, ReconcilerSettings, StockoutMemory

pytestmark = pytest.mark.integration

NS = "team-a"
OTHER_NS = "team-b"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
UID = "md-uid-llama"
LLAMA = ModelDeployment.model_validate(
    {
        "metadata": {"name": "llama", "namespace": NS, "uid": UID},
        "spec": {
            "model": {"name": "llama-3.1-8b-instruct"},
            "resources": {"gpu": {"count": 1}},
            "replicas": {"min": 1, "max": 4},
        },
    }
)
OTHER = LLAMA.model_copy(
    update={"metadata": LLAMA.metadata.model_copy(update={"name": "other", "uid": "o"})}
)
LLAMA_OD = workload_name("llama", WorkloadPlacement("m1", "h100-1g", "OnDemand", 2))
LLAMA_SPOT = workload_name("llama", WorkloadPlacement("m1", "h100-1g", "Spot", 2))
OTHER_OD = workload_name("other", WorkloadPlacement("m1", "h100-1g", "OnDemand", 2))
FAST = InformerSettings(
    watch_timeout_seconds=30, backoff_initial_seconds=0.05, backoff_max_seconds=0.2
)
PATH = "/apis/apps/v1/namespaces/{ns}/deployments/{name}"


def workload(
    name: str, *, owner: str = "llama", uid: str = UID, namespace: str = NS
) -> dict[str, Any]:
    """A Deployment as ``clusters.workloads`` renders it (the owner labels, uid included)."""
    obj = deployment(name, replicas=2, namespace=namespace, owner=owner)
    obj["metadata"]["labels"][labels.UID] = uid
    return obj


class Controller:
    """The member cluster's Deployment controller, writing status over plain HTTP."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self._url = url
        self._session = session

    async def patch(self, name: str, changes: Mapping[str, Any], *, namespace: str = NS) -> None:
        headers = {"Content-Type": "application/merge-patch+json"}
        url = self._url + PATH.format(ns=namespace, name=name)
        async with self._session.patch(url, json=changes, headers=headers) as resp:
            resp.raise_for_status()

    async def ready(self, name: str, n: int, *, namespace: str = NS) -> None:
        await self.patch(
            name,
            {
                "status": {
                    "observedGeneration": 1,
                    "replicas": 2,
                    "readyReplicas": n,
                    "availableReplicas": n,
                    "updatedReplicas": 2,
                }
            },
            namespace=namespace,
        )


class Operator:
    """The reconciler and loop as ``runtime.build_context`` wires them for one member."""

    def __init__(self, member: KubernetesClusterClient) -> None:
        async def client_for(cluster: FleetCluster) -> ClusterClient:
            return member

        async def watch_client_for(cluster: FleetCluster) -> ListWatchClient | None:
            return member

        self.reconciler = Reconciler(
            clusters=client_for,
            providers=ProviderRegistry(clusters=client_for, secrets=None, clock=lambda: T0),
            metrics=StaticMetricsSource(),
            stockouts=StockoutMemory(),
            clock=lambda: T0,
            settings=ReconcilerSettings(informers=FAST),
            watch_clients=watch_client_for,
        )
        self.loop = OperatorLoop(
            reconciler=self.reconciler,
            providers=self.reconciler._providers,
            probe_clients=client_for,
            clock=lambda: T0,
        )
        self.cluster = fleet_cluster("m1")
        wakes = self.reconciler.readiness_wakes
        assert wakes is not None
        for md in (LLAMA, OTHER):
            wakes.track(md)  # as every pass of it does (``Reconciler.reconcile``)

    def due(self) -> bool:
        return self.loop.deployment_due(UID, T0)

    def book_next_pass(self) -> None:
        """As the end of a pass with nothing under way: the next pass at the interval."""
        self.loop.deployments.done(UID, T0)
        assert not self.due()

    def store(self, namespace: str = NS) -> dict[str, tuple[int, int]]:
        """name -> (spec.replicas, status.readyReplicas) of the informer's store (the first
        read starts the informer of ``namespace``, as a pass of a deployment there does)."""
        informers = self.reconciler.observations.informers
        assert informers is not None
        items = informers.read(self.cluster, namespace) or []
        return {
            o["metadata"]["name"]: (
                int(o["spec"]["replicas"] or 0),
                int((o.get("status") or {}).get("readyReplicas") or 0),
            )
            for o in items
        }


@pytest.fixture
async def member() -> AsyncIterator[tuple[KubeEmulator, KubernetesClusterClient, Controller]]:
    async with kube_emulator() as kube:
        client = await KubernetesClusterClient.from_kubeconfig(
            kubeconfig(kube.url), name="m1", request_timeout=REQUEST_TIMEOUT_S
        )
        async with aiohttp.ClientSession() as session:
            try:
                yield kube, client, Controller(kube.url, session)
            finally:
                await client.close()


async def test_a_readiness_change_on_the_watch_makes_the_deployment_due_at_once(
    member: tuple[KubeEmulator, KubernetesClusterClient, Controller],
) -> None:
    kube, client, controller = member
    await client.apply([workload(LLAMA_OD), workload(OTHER_OD, owner="other", uid="o")])
    operator = Operator(client)
    wakes = operator.reconciler.readiness_wakes
    assert wakes is not None and wakes.connected, "the loop connected its schedule"
    assert not wakes.serves("m1", NS), "no informer yet: the pass would poll"
    try:
        operator.store()  # the first read starts the informer
        await until(lambda: wakes.serves("m1", NS), "the informer never served")
        operator.book_next_pass()

        # A pass's own spec write: seen by the watch, no wake.
        spec = workload(LLAMA_OD)
        spec["spec"]["replicas"] = 3
        await client.apply([spec])
        await until(lambda: operator.store().get(LLAMA_OD, (0, 0))[0] == 3, "spec unseen")
        # Another deployment's replica turns Ready: not ours.
        await controller.ready(OTHER_OD, 1)
        await until(lambda: operator.store().get(OTHER_OD, (0, 0))[1] == 1, "other unseen")
        assert not operator.due(), "neither write changed llama's readiness"

        # The controller reports a Ready replica: due at once.
        await controller.ready(LLAMA_OD, 1)
        await until(operator.due, "the readiness change did not wake the deployment")
        assert operator.loop.deployments.next_due(UID) == T0

        # The same readiness written again (the controller's resync): no wake.
        operator.book_next_pass()
        await controller.ready(LLAMA_OD, 1)
        await controller.patch(LLAMA_OD, {"metadata": {"annotations": {"x": "y"}}})
        assert _annotated(kube)
        # A later event on the same stream: once the store has it, the informer has
        # handled the two before it (one stream, in order).
        await controller.ready(OTHER_OD, 2)
        await until(lambda: operator.store().get(OTHER_OD, (0, 0))[1] == 2, "other unseen")
        assert not operator.due()

        # Deleted (by hand, or by a retirement): due at once.
        await client.delete_owned(DEPLOYMENT, {labels.DEPLOYMENT: "llama"}, namespace=NS)
        await until(operator.due, "the deletion did not wake the deployment")
        assert wakes.wakes == 4, "other's two readiness changes, llama's, the deletion"
    finally:
        await operator.reconciler.observations.close()
    assert not wakes.serves("m1", NS), "stopped: not served any more"


def _annotated(kube: KubeEmulator) -> bool:
    found = kube.get("apps/v1/deployments", LLAMA_OD, namespace=NS)
    return bool(found and (found["metadata"].get("annotations") or {}).get("x") == "y")


async def test_a_uid_label_in_another_tenant_s_namespace_wakes_nothing(
    member: tuple[KubeEmulator, KubernetesClusterClient, Controller],
) -> None:
    _, client, controller = member
    # Whoever may create Deployments in team-b (where the operator watches for team-b's
    # own deployments) writes one with llama's uid and owner labels and llama's very name.
    forged = workload(LLAMA_OD, namespace=OTHER_NS)
    forged["metadata"]["labels"][labels.NAMESPACE] = NS
    await client.apply([workload(LLAMA_SPOT), forged])
    operator = Operator(client)
    wakes = operator.reconciler.readiness_wakes
    assert wakes is not None
    try:
        operator.store()
        operator.store(OTHER_NS)
        await until(
            lambda: wakes.serves("m1", NS) and wakes.serves("m1", OTHER_NS),
            "the informers never served",
        )
        operator.book_next_pass()

        await controller.ready(LLAMA_OD, 2, namespace=OTHER_NS)
        await until(lambda: operator.store(OTHER_NS).get(LLAMA_OD, (0, 0))[1] == 2, "forged unseen")
        await client.delete_owned(DEPLOYMENT, {labels.UID: UID}, namespace=OTHER_NS)
        await until(lambda: LLAMA_OD not in operator.store(OTHER_NS), "deletion unseen")
        assert not operator.due(), "a forged readiness change and deletion woke llama"
        assert wakes.wakes == 0 and wakes.refused == 2

        # llama's own workload, in its namespace: the same write wakes it.
        await controller.ready(LLAMA_SPOT, 1)
        await until(operator.due, "llama's own readiness change did not wake it")
    finally:
        await operator.reconciler.observations.close()
