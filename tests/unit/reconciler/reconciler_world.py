"""A fleet on the in-package fakes, on a virtual clock, for reconciler-level tests.

Every member cluster is an ``InMemoryClusterClient`` (the member API) with a
``SimulatedNodePoolProvider`` (its cloud); metrics come from ``StaticMetricsSource``. The
real ``OperatorLoop`` probes the FleetClusters (health through the real state machine) and
runs the real ``Reconciler``; statuses are stored back on the objects as the API server
would store the status patches. Time moves only when a test says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api.modeldeployment import ReplicaRange
from modelfleet.clusters import ClusterClient
from modelfleet.clusters.fake import InMemoryClusterClient
from modelfleet.clusters.objects import DEPLOYMENT
from modelfleet.loop import LoopSettings, OperatorLoop
from modelfleet.metrics.source import StaticMetricsSource
from modelfleet.providers.simulated import SimulatedNodePoolProvider
from modelfleet.reconciler import (
    FleetSettings,
    ProviderRegistry,
    ReconcileOutcome,
    Reconciler,
    ReconcilerSettings,
    StockoutMemory,
)
from modelfleet.reconciler.wakes import ReadinessWakes

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class Clock:
    """A virtual clock: ``clock()`` is now; ``advance`` moves it."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def fleet_cluster(
    name: str,
    *,
    region: str,
    price: float | None,
    spot: float | None = None,
    max_nodes: int | None = 8,
    provisioning_seconds: float = 0.0,
    instance_type: str | None = None,
) -> FleetCluster:
    """A simulated FleetCluster with one 1-GPU H100 offering (``price`` None: no
    on-demand price)."""
    offering: dict[str, Any] = {
        "gpu": "H100",
        "gpuMemoryGiB": 80,
        "gpusPerNode": 1,
        "instanceType": instance_type or f"{name}-h100",
    }
    if price is not None:
        offering["onDemandPerHour"] = price
    if spot is not None:
        offering["spotPerHour"] = spot
    if max_nodes is not None:
        offering["maxNodes"] = max_nodes
    return FleetCluster.model_validate(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "FleetCluster",
            "metadata": {"name": name, "uid": f"uid-{name}", "generation": 1},
            "spec": {
                "provider": "simulated",
                "region": region,
                "simulated": {"provisioningSeconds": provisioning_seconds},
                "gpuOfferings": [offering],
            },
        }
    )


def model_deployment(name: str, **spec: Any) -> ModelDeployment:
    """A ModelDeployment of one-GPU H100 replicas; ``spec`` keys override."""
    body: dict[str, Any] = {
        "model": {"name": "llama-3.1-8b-instruct"},
        "runtime": {"engine": "vllm"},
        "resources": {"gpu": {"count": 1, "memoryGiB": 40, "types": ["H100"]}},
        "replicas": {"min": 2, "max": 2},
        "slo": {"ttftP95Ms": 200},
    }
    body.update(spec)
    return ModelDeployment.model_validate(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": f"uid-{name}",
                "generation": 1,
            },
            "spec": body,
        }
    )


def east_west(**world: Any) -> World:
    """The usual two-region world: ``east`` (us-east-1, 10/h per node) and ``west``
    (us-west-2, 12/h); ``world`` goes to ``World`` (``fleet=``, ``settings=``, ...)."""
    return World(
        [
            fleet_cluster("east", region="us-east-1", price=10.0),
            fleet_cluster("west", region="us-west-2", price=12.0),
        ],
        **world,
    )


class World:
    """Member clusters, providers, the loop, and the objects' stored statuses."""

    def __init__(
        self,
        clusters: Sequence[FleetCluster],
        *,
        settings: ReconcilerSettings | None = None,
        fleet: FleetSettings | None = None,
        stockouts: StockoutMemory | None = None,
        readiness_wakes: bool = False,
    ) -> None:
        """``readiness_wakes``: the member clusters' Deployment writes wake passes
        (``reconciler.wakes``, as the simulator wires them), served while a member's API
        answers and ``serving`` does not say otherwise."""
        self.clock = Clock()
        self.fleet = {c.metadata.name: c for c in clusters}
        self.members = {name: InMemoryClusterClient(name) for name in self.fleet}
        self.not_watched: set[str] = set()
        """Members whose readiness wakes are not served (a broken watch)."""
        self.wakes: ReadinessWakes | None = None
        if readiness_wakes:
            self.wakes = ReadinessWakes(
                serving=lambda cluster, _ns: (
                    cluster not in self.not_watched and not self.members[cluster].unreachable
                )
            )
            for member in self.members.values():
                member.on_deployment_change = self.wakes.changed
        self.clouds = {
            name: SimulatedNodePoolProvider(c, clock=self.clock) for name, c in self.fleet.items()
        }

        async def client_for(cluster: FleetCluster) -> ClusterClient:
            return self.members[cluster.metadata.name]

        self.providers = ProviderRegistry(clusters=client_for, secrets=None, clock=self.clock)
        self.metrics = StaticMetricsSource()
        self.reconciler = Reconciler(
            clusters=client_for,
            providers=self.providers,
            metrics=self.metrics,
            stockouts=stockouts or StockoutMemory(),
            clock=self.clock,
            # Observation caching off unless a test asks: passes at one virtual instant
            # would otherwise share a list taken before the test changed the cluster.
            settings=settings or ReconcilerSettings(observe_cache_seconds=0),
            readiness_wakes=self.wakes,
        )
        self.loop = OperatorLoop(
            reconciler=self.reconciler,
            providers=self.providers,
            probe_clients=client_for,
            settings=LoopSettings(fleet=fleet or FleetSettings()),
            clock=self.clock,
        )
        self.deployments: dict[str, ModelDeployment] = {}

    async def start(self) -> None:
        """Install the providers and probe every cluster once (all Healthy)."""
        for name, cluster in self.fleet.items():
            await self.providers.install(cluster, self.clouds[name])
        await self.probe()

    @property
    def stockouts(self) -> StockoutMemory:
        return self.reconciler.stockouts

    def add(self, md: ModelDeployment) -> None:
        self.deployments[md.metadata.name] = md

    async def outage(self, cluster: str, *, seconds: float) -> None:
        """``cluster``'s API stops answering for ``seconds`` of virtual time, probed every
        10 s; its pods keep running throughout (only the control plane is down)."""
        self.members[cluster].set_unreachable(True)
        for _ in range(int(seconds // 10)):
            self.clock.advance(10)
            await self.probe()
        self.members[cluster].set_unreachable(False)

    async def probe(self) -> None:
        """Probe every FleetCluster once and store the new statuses."""
        for name, cluster in list(self.fleet.items()):
            outcome = await self.loop.probe(cluster, deployments=list(self.deployments.values()))
            self.fleet[name] = cluster.model_copy(update={"status": outcome.status})

    async def reconcile(self, name: str) -> ReconcileOutcome:
        """One pass of deployment ``name``; its status is stored back."""
        md = self.deployments[name]
        outcome = await self.loop.reconcile(
            md.metadata.uid or name,
            md,
            fleet=list(self.fleet.values()),
            others=list(self.deployments.values()),
        )
        assert outcome is not None, "the pass raised (see the log)"
        self.deployments[name] = md.model_copy(update={"status": outcome.status})
        return outcome

    def set_replicas(self, name: str, replicas: int) -> None:
        """Deployment ``name`` asks for exactly ``replicas`` (min = max), a new generation."""
        self.set_spec(
            name, replicas=ReplicaRange.model_validate({"min": replicas, "max": replicas})
        )

    def set_spec(self, name: str, **changes: Any) -> None:
        md = self.deployments[name]
        spec = md.spec.model_copy(update=changes)
        generation = (md.metadata.generation or 1) + 1
        meta = md.metadata.model_copy(update={"generation": generation})
        self.deployments[name] = md.model_copy(update={"spec": spec, "metadata": meta})

    def replicas(self, cluster: str, deployment: str | None = None) -> int:
        """Replicas the Deployments in ``cluster`` ask for (of ``deployment`` if given)."""
        return sum(
            int(d["spec"]["replicas"])
            for d in self.members[cluster].objects(DEPLOYMENT)
            if deployment is None or d["metadata"]["name"].startswith(deployment)
        )

    def workloads(self, cluster: str) -> list[str]:
        return sorted(d["metadata"]["name"] for d in self.members[cluster].objects(DEPLOYMENT))

    def mark_ready(self, cluster: str) -> None:
        """Every Deployment in ``cluster`` rolled out and Ready."""
        self.members[cluster].complete_rollouts()

    def pool_sizes(self, cluster: str) -> dict[tuple[str, str], tuple[int, int]]:
        """(ready, desired) nodes per (instance type, capacity type)."""
        return self.clouds[cluster].node_counts()

    def grow_calls(self, cluster: str, capacity_type: str, above: int) -> list[str]:
        """``ensure_pool`` calls of ``cluster``'s provider asking for more than ``above``
        nodes of ``capacity_type``."""
        return [
            c.detail
            for c in self.clouds[cluster].calls
            if c.method == "ensure_pool"
            and f"/{capacity_type}=" in c.detail
            and int(c.detail.rsplit("=", 1)[1]) > above
        ]


async def scaled_in(*, held: int = 5, booked: int = 3) -> World:
    """The one-cluster world of the scale-in delay tests (``east``: us-east-1, 10/h per node,
    8 nodes at most), started; deployment ``a`` booked ``held`` nodes and now books
    ``booked``: the pool keeps ``held`` while the delay runs (no time has passed since)."""
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=8)])
    await world.start()
    world.add(model_deployment("a", replicas={"min": held, "max": held}))
    await world.reconcile("a")
    world.set_replicas("a", booked)
    await world.reconcile("a")
    return world
