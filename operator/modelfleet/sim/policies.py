"""The policy under test: the real modelfleet operator loop, on virtual time.

``ModelfleetPolicy`` is what ``modelfleet run`` does, minus kopf and the hub API server: the
same ``OperatorLoop`` decides, on the virtual clock, when each FleetCluster is probed (with
pool upkeep, orphan GC and offering discovery when due) and when each ModelDeployment is
reconciled by the real ``Reconciler`` (its interval, a requeue, an error backoff); the
engine only ticks it, as the kopf timers tick the operator's. The adapters are the
simulated ones (in-memory member clusters, the simulated node-pool provider of each
cluster, metrics computed from the simulated traffic); after each pass the returned status
is stored on the object, as the API server would store the status patch. The in-memory
member APIs feed the reconciler's readiness wakes as the operator's informers do (every
Deployment write, served while the cluster's API is up). Nothing of the decision path or
of the scheduling is reimplemented here.

Every policy (this one and the baselines) exposes the same small interface to the engine:
``tick(now)`` and ``desired(key)``, plus the capacity errors it met.
"""

from __future__ import annotations

from typing import Literal, Protocol, get_args

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.clusters import ClusterClient
from modelfleet.core.from_api import deployment_key
from modelfleet.loop import LoopSettings, OperatorLoop
from modelfleet.metrics.source import MetricsSource
from modelfleet.providers import NodePoolProvider
from modelfleet.reconciler import (
    FleetSettings,
    ProviderRegistry,
    Reconciler,
    ReconcilerSettings,
    StockoutMemory,
)
from modelfleet.reconciler.wakes import ReadinessWakes
from modelfleet.sim.activator import wake_at_zero
from modelfleet.sim.fleet import FleetWorld, VirtualClock
from modelfleet.sim.load import LoadModel

PolicyName = Literal[
    "modelfleet",
    "static-peak",
    "hpa-failover",
    "oracle",
    "modelfleet-on-demand",
    "modelfleet-no-standby",
]
POLICIES: tuple[PolicyName, ...] = get_args(PolicyName)
"""Every policy the simulator knows, in ``PolicyName``'s order (its one list); the last two are modelfleet with the deployments'
spot policy set to Never (the all-on-demand reference of spot hedging) and with no warm
standby."""


class Policy(Protocol):
    """A way of running the fleet, driven by the engine once per tick."""

    name: str

    async def tick(self, now: float) -> None:
        """Act at ``now`` (simulation seconds): decide, size pools, set workloads."""
        ...

    def desired(self, key: str) -> int:
        """Replicas the policy currently wants serving deployment ``key`` (standby
        excluded): the "needed" capacity of failover and stockout recovery times."""
        ...

    def capacity_errors(self) -> list[tuple[float, str]]:
        """(time, deployment key) of every refused capacity request so far."""
        ...


class _WorldProviders(ProviderRegistry):
    """The registry the reconciler asks for providers, answering with the world's
    simulated providers (one per cluster, holding its simulated cloud)."""

    def __init__(self, world: FleetWorld, clock: VirtualClock) -> None:
        async def no_client(cluster: FleetCluster) -> ClusterClient:
            return world.clusters[cluster.metadata.name].client

        super().__init__(clusters=no_client, secrets=None, clock=clock)
        self._world = world

    async def provider_for(self, cluster: FleetCluster) -> NodePoolProvider:
        return self._world.clusters[cluster.metadata.name].provider


def policy_deployments(
    deployments: tuple[ModelDeployment, ...], name: PolicyName
) -> list[ModelDeployment]:
    """The ModelDeployments as the policy variant runs them: uid and namespace set as the
    API server would, spot disabled for ``modelfleet-on-demand``, standby dropped for
    ``modelfleet-no-standby``."""
    out = []
    for i, md in enumerate(deployments):
        spec = md.spec
        if name == "modelfleet-on-demand":
            capacity = spec.placement.capacity.model_copy(update={"spot": "Never"})
            spec = spec.model_copy(
                update={"placement": spec.placement.model_copy(update={"capacity": capacity})}
            )
        elif name == "modelfleet-no-standby":
            spec = spec.model_copy(
                update={"failover": spec.failover.model_copy(update={"warm_standby_replicas": 0})}
            )
        meta = md.metadata.model_copy(
            update={
                "uid": md.metadata.uid or f"sim-{i:04d}",
                "namespace": md.metadata.namespace or "default",
                "generation": md.metadata.generation or 1,
            }
        )
        out.append(md.model_copy(update={"metadata": meta, "spec": spec}))
    return out


class ModelfleetPolicy:
    """The operator's loop over the real Reconciler (see the module docstring)."""

    def __init__(
        self,
        name: PolicyName,
        world: FleetWorld,
        deployments: tuple[ModelDeployment, ...],
        *,
        metrics: MetricsSource,
        clock: VirtualClock,
        load: LoadModel | None = None,
    ) -> None:
        self.name: str = name
        self._load = load
        """The requests as the gateway sees them (the activator); None: no activator."""
        self._world = world
        self._clock = clock
        control = world.world.control
        self.fleet: list[FleetCluster] = world.fleet_specs()
        self.deployments = policy_deployments(deployments, name)
        self.stockouts = StockoutMemory()
        self.providers = _WorldProviders(world, clock)

        async def client_for(cluster: FleetCluster) -> ClusterClient:
            return world.clusters[cluster.metadata.name].client

        # Readiness wakes, as the operator's member-cluster informers give them: every
        # write to a simulated member cluster's Deployments reaches them as a watch event
        # would (the kubelet model's readiness, the reconciler's own applies and deletes),
        # and they are served while that cluster's API server is up (a watch of a cluster
        # in an outage is broken: the pass polls, as the operator's does).
        self.readiness = ReadinessWakes(
            serving=lambda cluster, _namespace: not world.clusters[cluster].client.unreachable
        )
        for twin in world.twins():
            twin.client.on_deployment_change = self.readiness.changed

        # No time limit on member-cluster and node-pool calls: the simulated ones answer
        # from memory within the same step of the event loop, so a limit (on the loop's
        # real clock) could never fire on a healthy machine, and each one costs a timer
        # per call (~3% of a run). Every decision is the same.
        self.reconciler = Reconciler(
            clusters=client_for,
            providers=self.providers,
            metrics=metrics,
            stockouts=self.stockouts,
            clock=clock,
            settings=ReconcilerSettings(
                cluster_timeout_seconds=None, provider_timeout_seconds=None
            ),
            readiness_wakes=self.readiness,
        )
        self.loop = OperatorLoop(
            reconciler=self.reconciler,
            providers=self.providers,
            probe_clients=client_for,
            settings=LoopSettings(
                interval_seconds=control.reconcile_interval_seconds,
                probe_interval_seconds=control.probe_interval_seconds,
                fleet=FleetSettings(probe_timeout_seconds=None, provider_timeout_seconds=None),
            ),
            clock=clock,
        )
        self._desired: dict[str, int] = {}
        self._errors: list[tuple[float, str]] = []
        self.events: list[tuple[float, str, str, str]] = []
        """(time, deployment key, reason, message) of every Event the reconciler posted."""

    @property
    def reconciles(self) -> int:
        return self.loop.reconciles

    @property
    def probes(self) -> int:
        return self.loop.probe_count

    async def tick(self, now: float) -> None:
        fleet = []
        for cluster in self.fleet:
            if self.loop.probe_due(cluster.metadata.name):
                probed = await self.loop.probe(cluster, deployments=self.deployments)
                cluster = cluster.model_copy(update={"status": probed.status})
            fleet.append(cluster)
        self.fleet = fleet
        for i, md in enumerate(self.deployments):
            uid = md.metadata.uid or deployment_key(md)
            if self.loop.deployment_due(uid):
                await self._reconcile(i, md, now)

    async def _reconcile(self, i: int, md: ModelDeployment, now: float) -> None:
        """One pass of the loop for ``self.deployments[i]`` (due now), its outcome kept."""
        uid = md.metadata.uid or deployment_key(md)
        outcome = await self.loop.reconcile(uid, md, fleet=self.fleet, others=self.deployments)
        if outcome is None:
            return
        self.deployments[i] = md.model_copy(update={"status": outcome.status})
        key = deployment_key(md)
        self._desired[key] = outcome.plan.desired_replicas
        for event in outcome.events:
            if event.reason == "Stockout":
                self._errors.append((now, key))
            if event.reason in ("Stockout", "ClusterFailed", "SpotReclaimed", "SpotReturn"):
                self.events.append((now, key, event.reason, event.message))

    async def react(self, begin: float, end: float) -> None:
        """The events of the seconds ``[begin, end)`` that kopf would handle at once, each
        at the second it happens (the clock is moved there; the engine moves it on at the
        next tick): the gateway's wake-up of a deployment at zero (``sim/activator.py``).
        The deployment is reconciled at the arrival of the request the gateway holds, as
        the update event makes kopf do, not at the next tick."""
        if self._load is None:
            return
        ready: dict[str, int] | None = None
        woken: list[tuple[int, int, ModelDeployment]] = []
        for i, md in enumerate(self.deployments):
            key = deployment_key(md)
            if self._desired.get(key, 0) > 0:
                continue  # placed replicas: the gateway forwards or they are on their way
            if ready is None:
                ready = {}
                for (k, _, _), n in self._world.ready_pods(begin).items():
                    ready[k] = ready.get(k, 0) + n
            wake = wake_at_zero(
                md,
                self._load,
                ready=ready.get(key, 0),
                begin=int(begin),
                end=int(end),
                at=self._clock.at,
            )
            if wake is not None:
                woken.append((wake[0], i, wake[1]))
        for second, i, md in sorted(woken, key=lambda w: (w[0], w[1])):
            self._clock.set(float(second))
            uid = md.metadata.uid or deployment_key(md)
            self.deployments[i] = md
            self.loop.deployments.wake(uid, self._clock())
            if self.loop.deployment_due(uid):
                await self._reconcile(i, md, float(second))

    def desired(self, key: str) -> int:
        return self._desired.get(key, 0)

    def capacity_errors(self) -> list[tuple[float, str]]:
        return self._errors
