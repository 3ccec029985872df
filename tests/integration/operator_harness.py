"""A fleet for operator tests: a hub and member clusters (KMock emulators over HTTP), the
real operator running against them, and a tiny kubectl over HTTP.

The operator is started exactly as ``modelfleet run`` starts it (``run_operator``: kopf
with our handlers; kopf logs in through a test login handler, see below); only
its context is built here so the test can set short intervals, use the in-memory metrics
fake and reach the simulated providers to inject stockouts.

Every fleet checks, when its block ends without an error, that each request the operator
sent was allowed by RBAC: on the hub by the Helm chart's ClusterRole and Roles (as
``helm template`` renders them), in member clusters by the ClusterRole documented in
docs/member-clusters.md (see ``rbac_check``). A code path needing a permission the chart
or the docs do not grant fails the test that exercises it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
import yaml
from tests.integration import rbac_check
from tests.integration.kube_emulator import KubeEmulator, kube_emulator

from modelfleet.metrics.source import MetricsSource, StaticMetricsSource
from modelfleet.reconciler import FleetSettings, ReconcilerSettings
from modelfleet.run import RunOptions, run_operator
from modelfleet.runtime import OperatorContext, RunSettings, build_context

# kopf logs in through kubernetes_asyncio when it is installed, and kubernetes_asyncio reads
# $KUBECONFIG once, at import: fine for one operator per process, wrong for a test session
# that starts hubs on new ports. So tests log kopf in explicitly (as BRIEF.md suggests); our
# own hub client still resolves $KUBECONFIG at call time like in production.
_CURRENT_HUB: dict[str, str] = {}


@kopf.on.login()
def _login_to_test_hub(**_: Any) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server=_CURRENT_HUB["url"], token="emulator-token")


MD_PATH = "/apis/modelfleet.io/v1alpha1/namespaces/{ns}/modeldeployments"
FC_PATH = "/apis/modelfleet.io/v1alpha1/fleetclusters"
SYSTEM_NS = "modelfleet-system"

FAST = RunSettings(
    interval_seconds=1.0,
    probe_interval_seconds=0.5,
    discovery_interval_seconds=3600.0,
    pools_interval_seconds=0.5,
    # A probe fails on an error answer (the tests break a member with 503s), never on a
    # busy machine's slow one: with failure declared after 1 s and recovery after 600 s, a
    # probe timing out twice in a row left a cluster Recovering for the rest of the test
    # (test_restart_converges_without_duplicates waited 60 s for Healthy at load ~6). No
    # test here relies on a probe or member request timing out, so both bounds are ones
    # only a hang reaches.
    fleet=FleetSettings(
        fail_after_seconds=1.0,
        recover_after_seconds=600.0,
        probe_timeout_seconds=30.0,
        orphan_settle_seconds=5.0,
        orphan_grace_seconds=6.0,
    ),
    # Timings scaled down ~10x from production (requeue 5 s -> 0.5 s). The shared
    # observation cache is off here: with failure declared after 1 s, even a 0.2 s-old list
    # can make a pass see a cluster as reachable that the test just broke (the cache is
    # tested with a virtual clock in tests/unit/reconciler/test_member_traffic.py). Member
    # watches are off for the same reason and because the tests play the Deployment
    # controller with ``kube.patch``, which KMock does not publish to its watch streams
    # (the watches are tested in tests/integration/test_member_watch.py).
    reconciler=ReconcilerSettings(
        cluster_timeout_seconds=30.0,
        progressing_requeue_seconds=0.5,
        observe_cache_seconds=0.0,
        watch_member_clusters=False,
    ),
)


class Kubectl:
    """kubectl's create/patch/delete/get over plain HTTP against one API server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self._session.close()

    async def create(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        async with self._session.post(self.url + path, json=obj) as resp:
            resp.raise_for_status()
            result: dict[str, Any] = await resp.json()
            return result

    async def patch(self, path: str, changes: Mapping[str, Any]) -> None:
        headers = {"Content-Type": "application/merge-patch+json"}
        async with self._session.patch(self.url + path, json=changes, headers=headers) as resp:
            resp.raise_for_status()

    async def delete(self, path: str) -> None:
        async with self._session.delete(self.url + path) as resp:
            resp.raise_for_status()

    async def get(self, path: str) -> dict[str, Any] | None:
        async with self._session.get(self.url + path) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            result: dict[str, Any] = await resp.json()
            return result


def fleet_cluster(
    name: str,
    *,
    region: str,
    cloud: str,
    price: float,
    spot: float | None = None,
    on_hub: bool = False,
) -> dict[str, Any]:
    """A simulated FleetCluster whose member API is reached through a kubeconfig Secret,
    or (``on_hub``) without one: the hub itself is the member cluster."""
    body: dict[str, Any] = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "FleetCluster",
        "metadata": {"name": name, "labels": {"tier": "prod"}},
        "spec": {
            "provider": "simulated",
            "cloud": cloud,
            "region": region,
            "kubeconfigSecretRef": {"namespace": SYSTEM_NS, "name": name, "key": "kubeconfig"},
            "simulated": {"provisioningSeconds": 0},
            "gpuOfferings": [
                {
                    "gpu": "H100",
                    "gpuMemoryGiB": 80,
                    "gpusPerNode": 1,
                    "instanceType": f"{cloud}-h100-1g",
                    "onDemandPerHour": price,
                    **({"spotPerHour": spot} if spot is not None else {}),
                    "maxNodes": 8,
                }
            ],
        },
    }
    if on_hub:
        del body["spec"]["kubeconfigSecretRef"]
    return body


def model_deployment(name: str, **spec: Any) -> dict[str, Any]:
    """A ModelDeployment for one-GPU H100 replicas; ``spec`` keys override."""
    body: dict[str, Any] = {
        "model": {"name": "llama-3.1-8b-instruct"},
        "runtime": {"engine": "vllm"},
        "resources": {"gpu": {"count": 1, "memoryGiB": 40, "types": ["H100"]}},
        "replicas": {"min": 2, "max": 4},
        "slo": {"ttftP95Ms": 200},
    }
    body.update(spec)
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": body,
    }


@dataclass
class Fleet:
    """The running hub and members, a kubectl for the hub, and the operator (when started)."""

    hub: KubeEmulator
    members: dict[str, KubeEmulator]
    kubectl: Kubectl
    stack: contextlib.AsyncExitStack
    context: OperatorContext | None = None

    def deployments(self, member: str) -> list[dict[str, Any]]:
        return self.members[member].objects("apps/v1/deployments", namespace="default")

    def replicas(self, member: str) -> int:
        return sum(int(d["spec"]["replicas"]) for d in self.deployments(member))

    def break_member(self, member: str) -> None:
        """Make a member cluster's API server fail every request with 503 (a control-plane
        outage as clients see it; KMock's resolver stack forbids stopping one emulator of
        several out of order)."""
        handler = self.members[member].handler
        for verb in ("get", "post", "patch", "put", "delete"):
            handler[verb] << 503

    async def md(self, name: str) -> dict[str, Any] | None:
        return await self.kubectl.get(MD_PATH.format(ns="default") + f"/{name}")

    async def fc(self, name: str) -> dict[str, Any] | None:
        return await self.kubectl.get(f"{FC_PATH}/{name}")

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [e for e in self.hub.objects("v1/events") if e.get("reason") == reason]

    def mark_ready(self, member: str) -> None:
        """Play kubelet + deployment controller: every Deployment's pods in ``member``'s
        ``default`` namespace become ready."""
        for d in self.deployments(member):
            mark_ready(self.members[member], d)

    async def until_healthy(self, *names: str, timeout: float = 60.0) -> None:
        """Wait until every named FleetCluster is Healthy as the operator itself sees it.

        ``status.health`` can read Healthy before the operator's own cache of the cluster
        does: kopf holds a cluster's events back while its create handler runs (offering
        discovery), and a plan made meanwhile skips the cluster as unprobed. A probe that
        *kept* Healthy (``lastProbeTime`` after ``healthSince``) was written by a probe that
        read Healthy back from that cache, so the cache is current.
        """

        async def check() -> bool:
            for name in names:
                status = ((await self.fc(name)) or {}).get("status") or {}
                if status.get("health") != "Healthy":
                    return False
                probed, since = status.get("lastProbeTime"), status.get("healthSince")
                if not probed or not since:
                    return False
                if datetime.fromisoformat(probed) <= datetime.fromisoformat(since):
                    return False
            return True

        await eventually(check, timeout=timeout, what=f"{', '.join(names)} Healthy")


def measured_h100(curve: Sequence[Mapping[str, float]]) -> list[dict[str, Any]]:
    """``spec.capacityProfiles`` with one measured H100 profile (12.9 req/s at the default
    mix) whose latency curve is ``curve`` (the models refuse a curve whose rates go down)."""
    return [
        {
            "gpu": "H100",
            "source": "Measured",
            "prefillTokensPerSecond": 40000,
            "decodeTokensPerSecond": 4000,
            "measurement": {"requestsPerSecond": 12.9, "curve": list(curve)},
        }
    ]


def condition(md: Mapping[str, Any] | None, type_: str = "Ready") -> dict[str, Any]:
    """The ``type_`` condition of a stored ModelDeployment's status ({} when it has none)."""
    conditions = ((md or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), {})


def mark_ready(cluster: KubeEmulator, deployment: Mapping[str, Any]) -> None:
    """Write the status the deployment controller writes once every pod of ``deployment``
    (an object as the emulator holds it) is Ready."""
    replicas = deployment["spec"]["replicas"]
    meta = deployment["metadata"]
    cluster.patch(
        "apps/v1/deployments",
        meta["name"],
        {
            "status": {
                "observedGeneration": 1,
                "replicas": replicas,
                "readyReplicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": replicas,
            }
        },
        namespace=meta.get("namespace") or "default",
    )


async def start_hub(
    stack: contextlib.AsyncExitStack, clusters: Mapping[str, dict[str, Any]]
) -> tuple[KubeEmulator, Kubectl, dict[str, KubeEmulator]]:
    """On ``stack``: a hub emulator with the ``modelfleet-system`` and ``default``
    namespaces, a kubectl for it, and per entry of ``clusters`` (name -> FleetCluster body)
    a member emulator whose kubeconfig Secret and FleetCluster are created on the hub (a
    body without ``kubeconfigSecretRef`` is the hub itself: no emulator, no Secret).
    Returns (hub, kubectl, members by name)."""
    hub = await stack.enter_async_context(kube_emulator())
    kubectl = Kubectl(hub.url)
    stack.push_async_callback(kubectl.close)
    for ns in (SYSTEM_NS, "default"):
        hub.put(
            "v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
    members: dict[str, KubeEmulator] = {}
    for name, body in clusters.items():
        if "kubeconfigSecretRef" not in body["spec"]:  # the hub itself (no Secret)
            await kubectl.create(FC_PATH, body)
            continue
        members[name] = await stack.enter_async_context(kube_emulator(crds=False))
        content = yaml.safe_dump(members[name].kubeconfig(context=name)).encode()
        hub.put(
            "v1/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": SYSTEM_NS, "resourceVersion": "1"},
                "data": {"kubeconfig": base64.b64encode(content).decode()},
            },
        )
        await kubectl.create(FC_PATH, body)
    return hub, kubectl, members


@contextlib.asynccontextmanager
async def fleet_of(
    tmp_path: Path, monkeypatch: Any, clusters: Mapping[str, dict[str, Any]]
) -> AsyncIterator[Fleet]:
    """A hub plus one member emulator per entry of ``clusters`` (name -> FleetCluster), with
    KUBECONFIG pointing at the hub for the operator."""
    async with contextlib.AsyncExitStack() as stack:
        hub, kubectl, members = await start_hub(stack, clusters)
        _CURRENT_HUB["url"] = hub.url
        kubeconfig = tmp_path / "hub.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(hub.kubeconfig()))
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield Fleet(hub, members, kubectl, stack)
        assert_rbac_allows(hub, members)


def fleet_fixture(clusters: Mapping[str, dict[str, Any]]) -> Callable[..., object]:
    """The pytest fixture ``fleet``: a ``fleet_of(tmp_path, monkeypatch, clusters)`` per
    test (name -> FleetCluster body, e.g. ``EAST``), torn down, RBAC checked, after it. A
    test module says ``fleet = fleet_fixture(CLUSTERS)``."""

    @pytest.fixture(name="fleet")
    async def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fleet]:
        async with fleet_of(tmp_path, monkeypatch, clusters) as running:
            yield running

    return fleet


EAST = {"east": fleet_cluster("east", region="us-east-1", cloud="aws", price=10.0)}
"""One on-demand cluster: east (aws us-east-1, $10/h per H100 node)."""
EAST_WEST = {
    "east": fleet_cluster("east", region="us-east-1", cloud="aws", price=10.0),
    "west": fleet_cluster("west", region="us-west-2", cloud="gcp", price=12.0),
}
"""Two on-demand clusters: east (aws us-east-1, $10/h) and west (gcp us-west-2, $12/h)."""
EAST_WEST_SPOT = {
    "east": fleet_cluster("east", region="us-east-1", cloud="aws", price=10.0, spot=4.0),
    "west": fleet_cluster("west", region="us-west-2", cloud="gcp", price=12.0, spot=5.0),
}
"""``EAST_WEST`` with spot offered too: $4/h in east, $5/h in west."""


def assert_rbac_allows(hub: KubeEmulator, members: Mapping[str, KubeEmulator]) -> None:
    """Fail when the operator sent a request its RBAC would not allow: the chart's on the
    hub, docs/member-clusters.md's in a member cluster (see ``rbac_check``)."""
    denied = [
        f"hub (charts/modelfleet): {line}"
        for line in rbac_check.hub_grants().denied(hub.authenticated_requests())
    ]
    for name, member in members.items():
        denied += [
            f"member {name} (docs/member-clusters.md): {line}"
            for line in rbac_check.member_grants().denied(member.authenticated_requests())
        ]
    assert not denied, "the operator sent requests its RBAC does not allow:\n" + "\n".join(denied)


def operator(
    fleet: Fleet,
    *,
    settings: RunSettings = FAST,
    namespaces: Sequence[str] = (),
    metrics_source: MetricsSource | None = None,
) -> contextlib.AbstractAsyncContextManager[OperatorContext]:
    """The real operator (kopf + handlers) against ``fleet.hub`` until the block ends;
    ``namespaces``: the ones it serves (``--namespace``), empty for all; ``metrics_source``:
    the in-memory fake unless given (e.g. a ``PrometheusMetricsSource`` on a real
    Prometheus)."""
    return operator_prepared(
        fleet, _nothing, settings=settings, namespaces=namespaces, metrics_source=metrics_source
    )


async def _nothing(context: OperatorContext) -> None:
    return None


@contextlib.asynccontextmanager
async def operator_prepared(
    fleet: Fleet,
    prepare: Callable[[OperatorContext], Awaitable[None]],
    *,
    settings: RunSettings = FAST,
    namespaces: Sequence[str] = (),
    metrics_source: MetricsSource | None = None,
) -> AsyncIterator[OperatorContext]:
    """The real operator, with ``prepare`` run on the built context before kopf starts: the
    test can install providers made with its own seams (``context.providers.install``) so
    the operator never builds, and never calls out with, a provider of its own."""
    context = await build_context(
        settings=settings, metrics_source=metrics_source or StaticMetricsSource()
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    try:
        await prepare(context)
    except BaseException:
        await context.close()
        raise
    task = asyncio.create_task(
        run_operator(
            RunOptions(
                namespaces=tuple(namespaces),
                liveness_port=None,
                metrics_port=None,
                settings=settings,
            ),
            context=context,
            stop_flag=stop,
            ready_flag=ready,
        )
    )
    fleet.context = context
    try:
        await asyncio.wait_for(ready.wait(), timeout=60)  # a hang bound
        yield context
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, timeout=20)
        if not task.done():
            task.cancel()
        await context.close()
        fleet.context = None


async def eventually(
    check: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll ``check`` (sync or async) until it returns a truthy value; fail after ``timeout``.

    The default bound is generous on purpose: it only catches a hang. On a loaded shared
    machine a real operator pass over the KMock emulators took more than 20 s to place
    replicas that converge in about a second on a quiet one; how fast it converges is
    measured by hack/bench_operator.py, not asserted here.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")
