"""The policy under test: the real modelfleet operator loop, on virtual time.

``ModelfleetPolicy`` is what ``modelfleet run`` does, minus kopf and the hub API server:
FleetClusters are probed every ``probeInterval`` through ``probe_fleet_cluster`` and every
ModelDeployment is reconciled by the real ``Reconciler`` every ``interval`` seconds, or
sooner when the previous pass asked to be requeued — on the 5-second timer tick the kopf
handlers use; every ``pools_interval_seconds`` (60 s) the probe also does the pool upkeep
the FleetCluster handler does: node pools no deployment places replicas on are scaled to
zero and deleted after the grace period (without it, pools a deployment moved away from
kept their nodes for the rest of the run). The adapters are the simulated ones (in-memory member clusters, the simulated
node-pool provider of each cluster, metrics computed from the simulated traffic); after each
pass the returned status is stored on the object, as the API server would store the status
patch. Nothing of the decision path is reimplemented here.

Every policy (this one and the baselines) exposes the same small interface to the engine:
``tick(now)`` and ``desired(key)``, plus the capacity errors it met.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.clusters import ClusterClient
from modelfleet.core.from_api import deployment_key
from modelfleet.metrics.source import MetricsSource
from modelfleet.providers import NodePoolProvider
from modelfleet.reconciler import (
    FleetSettings,
    PoolUpkeep,
    ProviderRegistry,
    Reconciler,
    StockoutMemory,
    probe_fleet_cluster,
)
from modelfleet.sim.fleet import FleetWorld, VirtualClock

PolicyName = Literal[
    "modelfleet",
    "static-peak",
    "hpa-failover",
    "oracle",
    "modelfleet-on-demand",
    "modelfleet-no-standby",
]
POLICIES: tuple[PolicyName, ...] = (
    "modelfleet",
    "static-peak",
    "hpa-failover",
    "oracle",
    "modelfleet-on-demand",
    "modelfleet-no-standby",
)
"""Every policy the simulator knows; the last two are modelfleet with the deployments'
spot policy set to Never (the all-on-demand reference of spot hedging) and with no warm
standby."""


POOLS_INTERVAL_SECONDS = 60.0
"""``modelfleet run``'s default pool upkeep period (``RunSettings.pools_interval_seconds``;
not imported: the runtime pulls in the Kubernetes and HTTP clients the simulator does not
need)."""


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
    ) -> None:
        self.name: str = name
        self._world = world
        self._clock = clock
        control = world.world.control
        self._interval = control.reconcile_interval_seconds
        self._probe_interval = control.probe_interval_seconds
        self.fleet: list[FleetCluster] = world.fleet_specs()
        self.deployments = policy_deployments(deployments, name)
        self.stockouts = StockoutMemory()
        self.providers = _WorldProviders(world, clock)

        async def client_for(cluster: FleetCluster) -> ClusterClient:
            return world.clusters[cluster.metadata.name].client

        self._client_for = client_for
        self.reconciler = Reconciler(
            clusters=client_for,
            providers=self.providers,
            metrics=metrics,
            stockouts=self.stockouts,
            clock=clock,
        )
        self._due = [0.0] * len(self.deployments)
        self._next_probe = 0.0
        self._next_pools = 0.0
        self._pools_interval = POOLS_INTERVAL_SECONDS
        self._orphan_since: dict[str, dict[str, datetime]] = {}
        self._desired: dict[str, int] = {}
        self._errors: list[tuple[float, str]] = []
        self.events: list[tuple[float, str, str, str]] = []
        """(time, deployment key, reason, message) of every Event the reconciler posted."""
        self.reconciles = 0
        self.probes = 0

    async def tick(self, now: float) -> None:
        if now >= self._next_probe:
            self._next_probe = now + self._probe_interval
            fleet = []
            pools_due = now >= self._next_pools
            if pools_due:
                self._next_pools = now + self._pools_interval
            for cluster in self.fleet:
                name = cluster.metadata.name
                upkeep = None
                if pools_due:
                    # As the kopf handler does (handlers.py): the pools some deployment
                    # places replicas on are needed; the others are orphans, scaled to zero
                    # and deleted after the grace period.
                    needed: set[tuple[str, str]] = {
                        (p.instance_type, str(p.capacity_type))
                        for md in self.deployments
                        for p in (md.status.placements if md.status else None) or []
                        if p.cluster == name and p.replicas > 0
                    }
                    upkeep = PoolUpkeep(
                        needed=needed, orphan_since=self._orphan_since.setdefault(name, {})
                    )
                probed = await probe_fleet_cluster(
                    cluster,
                    clusters=self._client_for,
                    providers=self.providers,
                    stockouts=self.stockouts,
                    now=self._clock(),
                    pools=upkeep,
                    settings=FleetSettings(),
                )
                self.probes += 1
                fleet.append(cluster.model_copy(update={"status": probed.status}))
            self.fleet = fleet
        for i, md in enumerate(self.deployments):
            if now < self._due[i]:
                continue
            outcome = await self.reconciler.reconcile(md, fleet=self.fleet, others=self.deployments)
            self.reconciles += 1
            self.deployments[i] = md.model_copy(update={"status": outcome.status})
            key = deployment_key(md)
            self._desired[key] = outcome.plan.desired_replicas
            for event in outcome.events:
                if event.reason == "Stockout":
                    self._errors.append((now, key))
                if event.reason in ("Stockout", "ClusterFailed", "SpotReclaimed", "SpotReturn"):
                    self.events.append((now, key, event.reason, event.message))
            wait = self._interval if outcome.requeue_after is None else outcome.requeue_after
            self._due[i] = now + wait

    def desired(self, key: str) -> int:
        return self._desired.get(key, 0)

    def capacity_errors(self) -> list[tuple[float, str]]:
        return self._errors
