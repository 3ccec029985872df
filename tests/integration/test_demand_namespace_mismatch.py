"""A gateway and an operator that disagree on the demand Leases' namespace (a hand-run
gateway with another ``--activator-namespace``, an operator without
``$MODELFLEET_POD_NAMESPACE`` or in another release's namespace) used to fail silently: the
gateway's Lease writes succeed, nothing reads them, and a deployment at zero starts only
from the Prometheus signal, a scrape and a reconcile later, if ``spec.metrics.demand`` is
set at all. Both real parts run here over real HTTP against KMock's API emulator: the
gateway's ``DemandWaker`` writes in its namespace and reads the deployment back
``answer_seconds`` later; the operator's ``DemandLeaseWatch`` (its hub client) relays
the Leases of its own namespace. Same namespace: answered, nothing said. Another: a warning
naming the gateway's namespace, and the counter behind
``modelfleet_gateway_demand_unanswered_total``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration
from tests.integration import rbac_check
from tests.integration.kube_emulator import KubeEmulator, kube_emulator

from modelfleet.clusters import KubernetesClusterClient
from modelfleet.clusters.informer import InformerSettings
from modelfleet.gateway.activator import DemandWaker
from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.labels import DEMAND_SEEN_AT
from modelfleet.loop.demand_leases import DemandLeaseWatch
from modelfleet.metrics.operator_metrics import OperatorMetrics
from modelfleet.metrics.source import StaticMetricsSource
from modelfleet.runtime import RunSettings, build_context, describe_demand_watch

pytestmark = pytest.mark.integration

GATEWAY_NS = rbac_check.CHART_NAMESPACE
MDS = "modelfleet.io/v1alpha1/modeldeployments"


def _md(name: str, desired: int) -> dict[str, Any]:
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "team", "resourceVersion": "1"},
        "spec": {},
        "status": {"replicas": {"desired": desired}},
    }


@pytest.fixture
async def hub() -> AsyncIterator[tuple[KubeEmulator, ApiClient, KubernetesClusterClient]]:
    async with kube_emulator() as kube:
        gateway_api = ApiClient(Configuration(host=kube.url))
        operator_api = await KubernetesClusterClient.from_kubeconfig(kube.kubeconfig(), name="hub")
        try:
            yield kube, gateway_api, operator_api
        finally:
            await operator_api.close()
            await gateway_api.close()


async def _until(check: Any, seconds: float = 60.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if check():
            return True
        await asyncio.sleep(0.05)
    return bool(check())


@pytest.mark.parametrize("operator_ns", [GATEWAY_NS, "elsewhere"])
async def test_a_lease_no_operator_reads_is_said(
    hub: tuple[KubeEmulator, ApiClient, KubernetesClusterClient],
    operator_ns: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube, gateway_api, operator_api = hub
    kube.put(MDS, _md("cold", desired=0))  # at zero: only a relayed Lease wakes it
    kube.put(MDS, _md("busy", desired=2))  # starting anyway: nothing to answer
    watch = DemandLeaseWatch(
        namespace=operator_ns,
        watch_client=operator_api,
        patcher=operator_api,
        clock=lambda: datetime.now(UTC),
        settings=InformerSettings(watch_timeout_seconds=5, backoff_initial_seconds=0.1),
        at_zero=lambda namespace, name: True,
    )
    watch.start()
    counted: list[DeploymentKey] = []
    # Where the operator reads the Lease it must answer within the wait: 15 s, as a busy
    # machine's watch and patch can take more than 2 s (the check always waits it out);
    # where it does not, the 2 s wait running out is what is tested.
    answer_seconds = 15.0 if operator_ns == GATEWAY_NS else 2.0
    waker = DemandWaker(
        gateway_api,
        namespace=GATEWAY_NS,
        answer_seconds=answer_seconds,
        on_unanswered=counted.append,
    )
    caplog.set_level(logging.WARNING, logger="modelfleet.gateway.activator")
    try:
        await asyncio.sleep(0.3)  # the operator's first LIST
        waker.held(DeploymentKey("team", "cold"))
        waker.held(DeploymentKey("team", "busy"))
        assert await _until(lambda: waker.writes == 2)
        # Both checks end ``answer_seconds`` after their write.
        assert await _until(lambda: waker.checks_in_flight == 0)
    finally:
        await waker.close()
        await watch.close()
    # The gateway's requests (its Lease writes, its read-backs) are what the chart grants it.
    gateway_requests = [
        (method, path)
        for method, path in kube.requests()
        if (method in ("PATCH", "POST") and "/leases" in path)
        or (method == "GET" and "/modeldeployments/" in path)
    ]
    assert ("GET", "/apis/modelfleet.io/v1alpha1/namespaces/team/modeldeployments/cold") in (
        gateway_requests
    )
    assert rbac_check.gateway_grants(()).denied(gateway_requests) == []
    cold = kube.get(MDS, "cold", namespace="team")
    assert cold is not None
    woken = (cold["metadata"].get("annotations") or {}).get(DEMAND_SEEN_AT)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if operator_ns == GATEWAY_NS:
        assert woken is not None  # the operator relayed it
        assert counted == [] and waker.unanswered == 0
        assert warnings == []
    else:
        assert woken is None
        assert counted == [DeploymentKey("team", "cold")] and waker.unanswered == 1
        assert len(warnings) == 1
        assert f"demand Leases in namespace {GATEWAY_NS}" in warnings[0]
        assert f"{GATEWAY_NS}/team.cold" in warnings[0]


async def test_the_operator_says_where_it_reads_demand_leases_at_its_start(
    hub: tuple[KubeEmulator, ApiClient, KubernetesClusterClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The line ``modelfleet run`` logs at its start (``describe_demand_watch``): the Lease
    namespace and release next to the namespaces served, or, with no namespace for the
    Leases (an operator run by hand without ``$MODELFLEET_POD_NAMESPACE``), that it reads
    none, which used to be silent."""
    _, _, operator_api = hub
    monkeypatch.delenv("MODELFLEET_POD_NAMESPACE", raising=False)
    monkeypatch.setenv("MODELFLEET_RELEASE", "mf")
    watching = await build_context(
        hub=operator_api,
        settings=RunSettings(activator_namespace=GATEWAY_NS),
        metrics_source=StaticMetricsSource(),
        operator_metrics=OperatorMetrics(process_metrics=False),
    )
    blind = await build_context(
        hub=operator_api,
        metrics_source=StaticMetricsSource(),
        operator_metrics=OperatorMetrics(process_metrics=False),
    )
    try:
        said = describe_demand_watch(watching, ("default", "team"))
        assert said.startswith(
            f"demand Leases: watching namespace {GATEWAY_NS} (release mf) for "
            "ModelDeployments in default, team;"
        )
        assert blind.demand_leases is None
        assert describe_demand_watch(blind, ()).startswith(
            "demand Leases: not watched ($MODELFLEET_POD_NAMESPACE is not set)"
        )
    finally:
        await watching.close()
        await blind.close()
