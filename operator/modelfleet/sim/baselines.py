"""The comparison policies: what teams run without modelfleet. Not modelfleet code.

Both decide replicas and nodes themselves and act on the same simulated world (the same
provider with the same provisioning delays, the same kubelet model, traffic and serving
model), so differences in the report come from the decisions alone. Their exact rules
(docs/simulation.md repeats them):

``static-peak``
    For each deployment, at the start: among the on-demand offerings its GPU constraints
    allow, take the (cluster, offering) that serves the scenario's peak per-minute request
    rate at ``baselines.targetUtilisation`` of a replica's saturation throughput for the
    least cost per hour, within the offering's ``maxNodes`` (pools already taken by other
    deployments count). Provision it once; never scale, never fail over. Spot is not used.

``hpa-failover``
    One primary cluster per deployment (chosen as above), one backup in another region (the
    next cheapest). Every ``hpaSyncSeconds`` the HPA scales on the pods' request rate of the
    last minute as scraped (Prometheus adapter) against a per-pod target of
    ``mu_max x targetUtilisation``: ``ceil(current x average / target)``, pods without
    metrics counted at 0 for a scale-up and at the target for a scale-down (the HPA's
    algorithm; served requests are what pods report, so an overloaded fleet reads as at
    most its capacity), keeps the count within ``hpaTolerance``,
    scales up at most by max(100%, 4 pods) per sync, down only to the highest
    recommendation of the last ``hpaScaleDownStabilizationSeconds``, within
    ``replicas.min..max``. Nodes follow reactively (cluster autoscaler): grown when pods
    would be pending, shrunk after ``clusterAutoscalerScaleDownSeconds`` unneeded. A refused
    node request is retried every sync (no fallback to other pools). When the active
    cluster's API has been unreachable for ``failureDetectionSeconds`` +
    ``failoverTolerationSeconds`` (Karmada's default toleration), all replicas move to the
    backup (created there only then: nothing is pre-warmed), and they stay there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from modelfleet.api import ModelDeployment
from modelfleet.api.common import CapacityType
from modelfleet.core.from_api import deployment_key
from modelfleet.core.types import Offering
from modelfleet.providers import PoolSpec, ProviderError, is_capacity_error
from modelfleet.sim.fleet import ClusterTwin, FleetWorld
from modelfleet.sim.load import LoadModel
from modelfleet.sim.serving import Workload, replica_model

ON_DEMAND: CapacityType = "OnDemand"


@dataclass(frozen=True)
class Choice:
    """A pool a baseline runs a deployment on."""

    cluster: str
    region: str
    offering: Offering
    replicas_per_node: int
    mu: float
    """Saturation throughput of one replica there, requests/s."""


def _eligible(md: ModelDeployment, twin: ClusterTwin, offering: Offering) -> bool:
    gpu = md.spec.resources.gpu
    placement = md.spec.placement
    if offering.on_demand_per_hour is None:  # no on-demand price: not on-demand capacity
        return False
    if gpu.types and offering.gpu not in gpu.types:
        return False
    if gpu.memory_gi_b is not None and offering.gpu_memory_gib < gpu.memory_gi_b:
        return False
    if gpu.count > offering.gpus_per_node:
        return False
    if placement.clouds and twin.cloud not in placement.clouds:
        return False
    return not (placement.regions and twin.region not in placement.regions)


def candidates(world: FleetWorld, md: ModelDeployment, workload: Workload) -> list[Choice]:
    """Every on-demand (cluster, offering) ``md``'s hard GPU/cloud/region constraints
    allow, with its replica throughput."""
    out = []
    count = md.spec.resources.gpu.count
    for twin in world.twins():
        for offering in twin.offerings.values():
            if not _eligible(md, twin, offering):
                continue
            model = replica_model(world.world, offering.gpu, workload, gpus_per_replica=count)
            out.append(
                Choice(
                    twin.name, twin.region, offering, offering.gpus_per_node // count, model.mu_max
                )
            )
    return out


def cheapest_for(
    choices: list[Choice], replicas_for: dict[Choice, int], used: dict[tuple[str, str], int]
) -> Choice | None:
    """The choice serving the needed replicas at least cost within its quota."""
    best: tuple[float, int, Choice] | None = None
    for i, c in enumerate(choices):
        nodes = math.ceil(replicas_for[c] / c.replicas_per_node)
        quota = c.offering.max_nodes
        if quota is not None and used.get((c.cluster, c.offering.instance_type), 0) + nodes > quota:
            continue
        cost = nodes * (c.offering.on_demand_per_hour or 0.0)  # priced: see _eligible
        if best is None or (cost, i) < best[:2]:
            best = (cost, i, c)
    return best[2] if best else None


async def _ensure(world: FleetWorld, choice: Choice, nodes: int, now: float, key: str) -> bool:
    """Size the choice's on-demand pool; False (and a recorded error) when refused."""
    twin = world.clusters[choice.cluster]
    spec = PoolSpec(
        cluster=choice.cluster,
        offering=choice.offering,
        capacity_type=ON_DEMAND,
        nodes=nodes,
        zones=tuple(twin.spec.spec.zones or ()),
    )
    if twin.provider.reassert(spec):
        return True  # already that size: the call would change nothing and succeed
    try:
        await twin.provider.ensure_pool(spec)
    except ProviderError as exc:
        return not is_capacity_error(exc)
    return True


class StaticPeakPolicy:
    """Fixed replicas sized for the peak, cheapest single region, on-demand, no failover."""

    name = "static-peak"

    def __init__(
        self, world: FleetWorld, deployments: tuple[ModelDeployment, ...], load: LoadModel
    ) -> None:
        self._world = world
        self._plan: list[tuple[str, Choice, int]] = []
        target = world.world.baselines.target_utilisation
        used: dict[tuple[str, str], int] = {}
        for md in deployments:
            key = deployment_key(md)
            traffic = load.deployments[key].traffic
            workload = Workload(traffic.prompt_mean, traffic.output_mean)
            peak = traffic.peak_rate()
            choices = candidates(world, md, workload)
            need = {
                c: max(md.spec.replicas.min, math.ceil(peak / (c.mu * target))) for c in choices
            }
            choice = cheapest_for(choices, need, used)
            if choice is None:
                continue
            nodes = math.ceil(need[choice] / choice.replicas_per_node)
            pool = (choice.cluster, choice.offering.instance_type)
            used[pool] = used.get(pool, 0) + nodes
            self._plan.append((key, choice, need[choice]))
        self._started = False
        self._errors: list[tuple[float, str]] = []

    async def tick(self, now: float) -> None:
        if self._started:
            return
        self._started = True
        nodes: dict[tuple[str, str], int] = {}
        for key, choice, replicas in self._plan:
            pool = (choice.cluster, choice.offering.instance_type)
            nodes[pool] = nodes.get(pool, 0) + math.ceil(replicas / choice.replicas_per_node)
            self._world.set_workload(
                choice.cluster, key, choice.offering.instance_type, ON_DEMAND, replicas
            )
        for key, choice, _ in self._plan:
            pool = (choice.cluster, choice.offering.instance_type)
            if not await _ensure(self._world, choice, nodes[pool], now, key):
                self._errors.append((now, key))

    def desired(self, key: str) -> int:
        return next((n for k, _, n in self._plan if k == key), 0)

    def capacity_errors(self) -> list[tuple[float, str]]:
        return self._errors

    def placements(self) -> dict[str, tuple[str, str, int]]:
        """deployment -> (cluster, instance type, replicas), for the report."""
        return {k: (c.cluster, c.offering.instance_type, n) for k, c, n in self._plan}


@dataclass
class _Hpa:
    md: ModelDeployment
    key: str
    primary: Choice
    backup: Choice | None
    active: Choice
    replicas: int
    history: list[tuple[float, int]] = field(default_factory=list)
    down_since: float | None = None
    failed_over: bool = False


class HpaFailoverPolicy:
    """HPA on request rate in one primary region, reactive nodes, Karmada-style failover."""

    name = "hpa-failover"

    def __init__(
        self, world: FleetWorld, deployments: tuple[ModelDeployment, ...], load: LoadModel
    ) -> None:
        self._world = world
        self._load = load
        self._settings = world.world.baselines
        self._next_sync = 0.0
        self._errors: list[tuple[float, str]] = []
        self._state: list[_Hpa] = []
        self._nodes: dict[tuple[str, str], int] = {}
        self._unneeded: dict[tuple[str, str], float] = {}
        used: dict[tuple[str, str], int] = {}
        for md in deployments:
            key = deployment_key(md)
            traffic = load.deployments[key].traffic
            workload = Workload(traffic.prompt_mean, traffic.output_mean)
            choices = candidates(world, md, workload)
            # Size by unit cost: the replicas the peak would need on each choice.
            peak = traffic.peak_rate()
            need = {
                c: max(
                    md.spec.replicas.min,
                    math.ceil(peak / (c.mu * self._settings.target_utilisation)),
                )
                for c in choices
            }
            primary = cheapest_for(choices, need, used)
            if primary is None:
                continue
            used[(primary.cluster, primary.offering.instance_type)] = used.get(
                (primary.cluster, primary.offering.instance_type), 0
            ) + math.ceil(need[primary] / primary.replicas_per_node)
            others = [c for c in choices if c.region != primary.region]
            backup = cheapest_for(others, need, used) if others else None
            self._state.append(_Hpa(md, key, primary, backup, primary, md.spec.replicas.min))

    async def tick(self, now: float) -> None:
        if now < self._next_sync:
            return
        self._next_sync = now + self._settings.hpa_sync_seconds
        needed: dict[tuple[str, str], int] = {}
        by_pool: dict[tuple[str, str], Choice] = {}
        for h in self._state:
            self._failover(h, now)
            self._scale(h, now)
            pool = (h.active.cluster, h.active.offering.instance_type)
            needed[pool] = needed.get(pool, 0) + math.ceil(h.replicas / h.active.replicas_per_node)
            by_pool[pool] = h.active
            self._world.set_workload(
                h.active.cluster, h.key, h.active.offering.instance_type, ON_DEMAND, h.replicas
            )
        for pool, nodes in needed.items():
            keys = [
                h.key
                for h in self._state
                if (h.active.cluster, h.active.offering.instance_type) == pool
            ]
            await self._autoscale_nodes(pool, by_pool[pool], nodes, now, keys)

    def _failover(self, h: _Hpa, now: float) -> None:
        twin = self._world.clusters[h.active.cluster]
        if not twin.client.unreachable:
            h.down_since = None
            return
        h.down_since = now if h.down_since is None else h.down_since
        wait = self._settings.failure_detection_seconds + self._settings.failover_toleration_seconds
        if h.failed_over or h.backup is None or now - h.down_since < wait:
            return
        # Karmada evicts from the failed cluster and schedules on the backup.
        self._world.set_workload(
            h.active.cluster, h.key, h.active.offering.instance_type, ON_DEMAND, 0
        )
        h.active = h.backup
        h.failed_over = True

    def _scale(self, h: _Hpa, now: float) -> None:
        load = self._load.deployments[h.key]
        window = int(self._world.world.monitoring.window_seconds)
        interval = self._world.world.monitoring.scrape_interval_seconds
        scrape = int(math.floor(now / interval) * interval)
        begin = max(0, scrape - window)
        if scrape <= begin:
            return
        rate = float(load.served[begin:scrape].sum()) / (scrape - begin)
        target = h.active.mu * self._settings.target_utilisation
        spec = h.md.spec.replicas
        ready = int(load.ready[scrape - 1].sum()) if scrape > 0 else 0
        if ready == 0:
            return  # no pod reports metrics: the HPA holds
        current = max(1, h.replicas)
        usage = rate / ready / target  # per-pod average over the pods with metrics
        # The HPA's rule for pods without metrics (not ready): 0 when scaling up, the
        # target when scaling down.
        missing = max(0, current - ready)
        if usage > 1.0:
            ratio = rate / (current * target)
        else:
            ratio = (rate + missing * target) / (current * target)
        raw = (
            current
            if abs(ratio - 1.0) <= self._settings.hpa_tolerance
            else math.ceil(current * ratio)
        )
        raw = min(max(raw, spec.min, 1), spec.max)
        h.history = [
            (t, n)
            for t, n in h.history
            if now - t <= self._settings.hpa_scale_down_stabilization_seconds
        ]
        h.history.append((now, raw))
        if raw > h.replicas:
            h.replicas = min(raw, max(2 * h.replicas, h.replicas + 4))
        elif raw < h.replicas:
            h.replicas = max(n for _, n in h.history)

    async def _autoscale_nodes(
        self, pool: tuple[str, str], choice: Choice, needed: int, now: float, keys: list[str]
    ) -> None:
        """The cluster autoscaler on one pool: grow at once, shrink after the unneeded time."""
        have = self._nodes.get(pool, 0)
        if needed > have:
            self._unneeded.pop(pool, None)
            if await _ensure(self._world, choice, needed, now, keys[0]):
                self._nodes[pool] = needed
            else:
                self._errors.extend((now, key) for key in keys)
        elif needed < have:
            since = self._unneeded.setdefault(pool, now)
            if now - since >= self._settings.cluster_autoscaler_scale_down_seconds:
                if await _ensure(self._world, choice, needed, now, keys[0]):
                    self._nodes[pool] = needed
                self._unneeded.pop(pool, None)
        else:
            self._unneeded.pop(pool, None)

    def desired(self, key: str) -> int:
        return next((h.replicas for h in self._state if h.key == key), 0)

    def capacity_errors(self) -> list[tuple[float, str]]:
        return self._errors
