"""The simulated machines: member clusters, GPU nodes, inference pods, and events.

Each FleetCluster gets a simulated twin: the real ``SimulatedNodePoolProvider`` (nodes
appear after a provisioning delay drawn from the cloud's distribution; stockouts, outages
and spot reclaims are injected into it) and the real ``InMemoryClusterClient`` (the member
cluster's API, holding the Deployments the reconciler writes). What Kubernetes itself would
do is modelled here, every tick:

- **Deployment controller + scheduler**: each workload gets as many pods as it asks for;
  pending pods bind FIFO to free GPUs on Ready nodes of their pool (nodeSelector on
  instance type and capacity type); scale-in removes pending pods first, then the newest.
- **Kubelet**: a bound pod is Ready after the model start time (image pull, weights load),
  drawn per pod from its (cluster, deployment)'s own stream (``sim.streams``: common random
  numbers, so one deployment's decisions never move another's draws; node provisioning
  times likewise come from one stream per pool); a pod waiting for a node is bound at the
  second that node became Ready (between two ticks), not at the next tick, as the
  scheduler binds it at once; the Deployment's ``readyReplicas`` is written back to the
  in-memory API as the controller would (``set_deployment_status``), so the reconciler
  observes it.
- **Node loss**: when a pool has fewer Ready GPUs than its bound pods use (spot reclaim,
  scale-in), the newest pods are evicted and go back to pending — abruptly, so the
  requests the router still sends them fail until it notices.
- **Outage**: the API server and the cloud API of the matched clusters stop answering and
  every pod there vanishes; when it ends, the nodes are back and pods start over.

Workloads come from the in-memory Deployments (the modelfleet policy) or are set directly
(the baselines, which have no reconciler): ``set_workload``.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from modelfleet import labels
from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api.common import CapacityType
from modelfleet.api.fleetcluster import SimulatedSettings
from modelfleet.clusters.fake import InMemoryClusterClient
from modelfleet.clusters.objects import DEPLOYMENT, NODE
from modelfleet.core.from_api import declared_offerings, deployment_key
from modelfleet.core.types import Offering
from modelfleet.labels import label_value
from modelfleet.providers.simulated import SimulatedNodePoolProvider
from modelfleet.sim.scenario import RegionOutage, Scenario, SpotReclaim, Stockout
from modelfleet.sim.streams import KeyedSampler, provisioning_draws
from modelfleet.sim.world import World

PoolKey = tuple[str, CapacityType]
"""(instance type, capacity type): one node pool of a cluster."""


class VirtualClock:
    """The simulation's clock: seconds since the simulation began, as a datetime for the
    adapters (``clock()``). Only the engine advances it."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.seconds = 0.0
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def set(self, seconds: float) -> None:
        """Move to ``seconds`` since the start (never backwards)."""
        self.seconds = seconds
        self._now = self.start + timedelta(seconds=seconds)

    def at(self, seconds: float) -> datetime:
        """The datetime of ``seconds`` since the start."""
        return self.start + timedelta(seconds=seconds)


def simulated_twin(cluster: FleetCluster, world: World) -> FleetCluster:
    """``cluster`` as a FleetCluster of the simulated provider: same name, labels, cloud,
    region, zones and offerings; provisioning from the world model (its median, for
    ``modelfleet plan``-style readers; the provider draws per node)."""
    cloud = cluster.spec.cloud_name
    spec = cluster.spec.model_copy(
        update={
            "provider": "simulated",
            "cloud": cloud,
            "aws": None,
            "gcp": None,
            "azure": None,
            "kubeconfig_secret_ref": None,
            "credentials_secret_ref": None,
            "simulated": SimulatedSettings(
                provisioning_seconds=world.provisioning.for_cloud(cloud).median
            ),
        }
    )
    return FleetCluster.model_validate(
        {
            "metadata": cluster.metadata.model_dump(by_alias=True, exclude_none=True),
            "spec": spec.model_dump(by_alias=True, exclude_none=True),
        }
    )


@dataclass
class Pod:
    """One inference pod (one replica)."""

    md: str
    workload: str
    gpus: int
    created: float = 0.0
    """When the Deployment controller created it (sim seconds)."""
    scheduled: float | None = None
    ready_at: float | None = None
    draining: bool = False
    """Terminating on a spot interruption notice: out of the routing, still on its GPU
    until the node goes."""
    seen_ready: bool = False
    """Its Ready time is in ``FleetWorld.became_ready`` already."""

    def ready(self, now: float) -> bool:
        return self.ready_at is not None and self.ready_at <= now and not self.draining


@dataclass
class ClusterTwin:
    """A member cluster in the simulation."""

    spec: FleetCluster
    client: InMemoryClusterClient
    provider: SimulatedNodePoolProvider
    offerings: dict[str, Offering]
    down: bool = False
    seen_revision: int = -1
    desired: dict[tuple[str, str, str, CapacityType], int] = field(default_factory=dict)
    """(md key, workload name, instance type, capacity type) -> replicas."""
    pods: dict[PoolKey, list[Pod]] = field(default_factory=lambda: defaultdict(list))
    pushed: dict[str, int] = field(default_factory=dict)
    """Workload name -> readyReplicas last written to the in-memory API."""
    noticed: list[str] = field(default_factory=list)
    """Node objects of nodes under a spot interruption notice (removed at the reclaim)."""

    @property
    def name(self) -> str:
        return self.spec.metadata.name

    @property
    def cloud(self) -> str:
        return self.spec.spec.cloud_name

    @property
    def region(self) -> str:
        return self.spec.spec.region


@dataclass(frozen=True)
class Loss:
    """Ready replicas of a deployment that vanished at ``at`` (sim seconds): abruptly, or
    ``drained`` on a spot interruption notice (no request is routed to them after)."""

    at: float
    md: str
    lost: int
    before: int
    drained: bool = False


@dataclass
class _Pending:
    at: float
    action: Callable[[], None]
    order: int


class FleetWorld:
    """Every simulated cluster, its nodes and pods, the events, and the bill."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        world: World,
        clock: VirtualClock,
        seed: int,
        offset: float,
        workloads_from_clients: bool,
    ) -> None:
        self.world = world
        self.clock = clock
        self.offset = offset
        self._from_clients = workloads_from_clients
        # Common random numbers (sim.streams): one stream per pool for node provisioning,
        # one per (cluster, deployment) for model starts.
        self._starts = KeyedSampler(seed, "start", world.model_start)
        self._provisioning: dict[str, KeyedSampler] = {}
        self.clusters: dict[str, ClusterTwin] = {}
        for fc in scenario.fleet:
            twin = simulated_twin(fc, world)
            dist = world.provisioning.for_cloud(twin.spec.cloud_name)
            keyed = self._provisioning[twin.metadata.name] = KeyedSampler(
                seed, "provisioning", dist
            )
            provider = SimulatedNodePoolProvider(
                twin,
                clock=clock,
                provisioning=provisioning_draws(keyed, twin.metadata.name),
            )
            offerings = {o.instance_type: o for o in declared_offerings(twin)}
            self.clusters[twin.metadata.name] = ClusterTwin(
                twin,
                InMemoryClusterClient(twin.metadata.name, share_reads=True),
                provider,
                offerings,
            )
        self.md_keys = {
            (label_value(md.metadata.name), md.metadata.namespace or "default"): deployment_key(md)
            for md in scenario.deployments
        }
        self.gpus_per_replica = {
            deployment_key(md): md.spec.resources.gpu.count for md in scenario.deployments
        }
        self.losses: list[Loss] = []
        self.synced_counts: dict[str, dict[PoolKey, tuple[int, int]]] = {}
        """Per cluster name: its provider's ``node_counts()`` as the last ``sync`` read
        them (what the GPU account books right after the sync)."""
        self.became_ready: list[tuple[float, str]] = []
        """(Ready time in sim seconds, deployment key) of every pod that became Ready (again
        after an eviction), in the order the kubelet model saw them; kept for the policies
        whose workloads come from the in-memory clients (modelfleet), whose readiness is
        written back to them anyway."""
        self.event_log: list[dict[str, object]] = []
        self.capacity_errors: list[tuple[float, str, str, CapacityType]] = []
        """(sim seconds, cluster, gpu, capacity type) of every refused node request."""
        self._pending: list[_Pending] = []
        self._order = 0
        self._schedule_events(scenario)
        self.cost_usd = 0.0
        self.gpu_hours = 0.0
        self.on_demand_cost_usd = 0.0

    # -- time ---------------------------------------------------------------------------

    def twins(self) -> Iterable[ClusterTwin]:
        return self.clusters.values()

    def fleet_specs(self) -> list[FleetCluster]:
        """The simulated FleetClusters (no status)."""
        return [c.spec for c in self.clusters.values()]

    def _later(self, at: float, action: Callable[[], None]) -> None:
        self._order += 1
        self._pending.append(_Pending(at, action, self._order))
        self._pending.sort(key=lambda p: (p.at, p.order))

    def fire_events(self, now: float) -> None:
        """Run every event action due at or before ``now`` (sim seconds)."""
        while self._pending and self._pending[0].at <= now:
            self._pending.pop(0).action()

    def _schedule_events(self, scenario: Scenario) -> None:
        for index, event in enumerate(scenario.spec.events):
            if isinstance(event, RegionOutage):
                self._outage(index, event)
            elif isinstance(event, Stockout):
                self._stockout(index, event)
            elif isinstance(event, SpotReclaim):
                self._reclaim(index, event)

    def _log(self, index: int, kind: str, at: float, **details: object) -> None:
        self.event_log.append(
            {"event": f"{kind}#{index}", "type": kind, "atSeconds": at - self.offset, **details}
        )

    def _outage(self, index: int, event: RegionOutage) -> None:
        begin = self.offset + event.at_seconds
        end = begin + event.duration_minutes * 60
        hit = [c for c in self.twins() if event.matches(c.spec)]

        def start() -> None:
            for c in hit:
                c.client.set_unreachable(True)
                c.provider.inject_outage(until=self.clock.at(end))
                c.down = True
            self._log(
                index,
                "regionOutage",
                begin,
                clusters=[c.name for c in hit],
                endSeconds=end - self.offset,
            )

        def stop() -> None:
            for c in hit:
                c.client.set_unreachable(False)
                c.provider.clear_outage()
                c.down = False

        self._later(begin, start)
        self._later(end, stop)

    def _stockout(self, index: int, event: Stockout) -> None:
        begin = self.offset + event.at_seconds
        end = begin + event.duration_minutes * 60
        types: tuple[CapacityType, ...] = (
            ("OnDemand", "Spot") if event.capacity_type == "Any" else (event.capacity_type,)
        )
        hit = [c for c in self.twins() if event.matches(c.spec)]

        def start() -> None:
            pools = []
            for c in hit:
                for o in c.offerings.values():
                    if o.gpu != event.gpu:
                        continue
                    for cap in types:
                        c.provider.inject_stockout(o.instance_type, cap, until=self.clock.at(end))
                        pools.append(f"{c.name}/{o.instance_type}/{cap}")
            self._log(
                index, "stockout", begin, gpu=event.gpu, pools=pools, endSeconds=end - self.offset
            )

        self._later(begin, start)

    def _reclaim(self, index: int, event: SpotReclaim) -> None:
        notice_at = self.offset + event.at_seconds
        hit = [c for c in self.twins() if event.matches(c.spec)]
        self._later(
            notice_at,
            lambda: self._log(index, "spotReclaim", notice_at, clusters=[c.name for c in hit]),
        )
        for c in hit:
            gone_at = notice_at + self.world.spot.notice(c.cloud)
            if self.world.spot.drain_on_notice:
                self._later(notice_at, functools.partial(self._drain, c, event, notice_at))

            def reclaim(c: ClusterTwin = c, gone_at: float = gone_at) -> None:
                for name in c.noticed:  # the nodes under notice go: their Node objects too
                    c.client.remove(NODE, name)
                c.noticed.clear()
                counts = c.provider.node_counts()
                for pods in c.pods.values():
                    for pod in pods:
                        if pod.draining:  # terminated on the notice: back to pending
                            pod.draining, pod.scheduled, pod.ready_at = False, None, None
                            pod.seen_ready = False
                for o in c.offerings.values():
                    if o.spot_per_hour is None or (event.gpu is not None and o.gpu != event.gpu):
                        continue
                    ready = counts.get((o.instance_type, "Spot"), (0, 0))[0]
                    nodes = math.ceil(event.fraction * ready - 1e-9)
                    if event.stockout_minutes > 0:
                        until = self.clock.at(gone_at + event.stockout_minutes * 60)
                        c.provider.inject_stockout(o.instance_type, "Spot", until=until)
                    if nodes > 0:
                        c.provider.reclaim_spot(o.instance_type, nodes=nodes)

            self._later(gone_at, reclaim)

    def _drain(self, c: ClusterTwin, event: SpotReclaim, now: float) -> None:
        """Graceful node shutdown on the notice: in each spot pool the reclaim will hit, the
        pods on the GPUs of the nodes to go (the newest bound, as the eviction at the
        node's loss takes them) terminate now: out of the routing, recorded as a drained
        loss."""
        before = self.ready_by_md(now)
        lost: dict[str, int] = defaultdict(int)
        counts = c.provider.node_counts()
        for o in c.offerings.values():
            if o.spot_per_hour is None or (event.gpu is not None and o.gpu != event.gpu):
                continue
            ready = counts.get((o.instance_type, "Spot"), (0, 0))[0]
            nodes = math.ceil(event.fraction * ready - 1e-9)
            gpus = nodes * o.gpus_per_node
            self._mark_noticed(c, o, nodes, now=now)
            bound = sorted(
                (p for p in c.pods.get((o.instance_type, "Spot"), []) if p.scheduled is not None),
                key=lambda p: p.scheduled or 0.0,
            )
            while gpus > 0 and bound:
                pod = bound.pop()
                gpus -= pod.gpus
                if pod.ready(now):
                    lost[pod.md] += 1
                pod.draining = True
        for md, n in lost.items():
            self.losses.append(Loss(now, md, n, before.get(md, 0), drained=True))
        self._push_readiness(c, now)

    def _mark_noticed(self, c: ClusterTwin, o: Offering, nodes: int, *, now: float) -> None:
        """The handler that drains on the notice also marks the nodes in the member
        cluster's API, which is all the operator sees of a notice (its probe reads Nodes:
        ``clusters.objects.leaving_by_pool``): a GKE Spot VM gets GKE's
        ``impending-node-termination`` taint, an EKS node the AWS Node Termination
        Handler's ``spot-itn`` taint (and a cordon), any other is cordoned. Only those
        nodes are Node objects here; the reclaim removes them."""
        taint = {
            "gcp": "cloud.google.com/impending-node-termination",
            "aws": "aws-node-termination-handler/spot-itn",
        }.get(c.cloud)
        for i in range(nodes):
            name = f"notice-{o.instance_type}-{now:.0f}-{i}"
            node = c.client.add_node(
                name,
                instance_type=o.instance_type,
                capacity_type="Spot",
                gpus=o.gpus_per_node,
                taints=[{"key": taint, "effect": "NoSchedule"}] if taint else (),
            )
            if taint is None:
                c.client.put({**node, "spec": {"unschedulable": True}})
            c.noticed.append(name)

    # -- workloads ------------------------------------------------------------------------

    def set_workload(
        self, cluster: str, md: str, instance_type: str, capacity_type: CapacityType, replicas: int
    ) -> None:
        """Ask for ``replicas`` pods of ``md`` on a pool of ``cluster`` (the baselines)."""
        name = f"{md}@{instance_type}/{capacity_type}"
        key = (md, name, instance_type, capacity_type)
        twin = self.clusters[cluster]
        if replicas > 0:
            twin.desired[key] = replicas
        else:
            twin.desired.pop(key, None)

    def _desired_from_client(self, twin: ClusterTwin) -> None:
        desired: dict[tuple[str, str, str, CapacityType], int] = {}
        for obj in twin.client.objects(DEPLOYMENT):
            meta = obj.get("metadata") or {}
            owner = meta.get("labels") or {}
            md = self.md_keys.get(
                (owner.get(labels.DEPLOYMENT, ""), owner.get(labels.NAMESPACE, ""))
            )
            spec = obj.get("spec") or {}
            selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
            instance_type = selector.get(labels.NODE_INSTANCE_TYPE)
            capacity = selector.get(labels.NODE_CAPACITY_TYPE)
            if md is None or not instance_type or capacity not in ("spot", "on-demand"):
                continue
            cap: CapacityType = "Spot" if capacity == "spot" else "OnDemand"
            desired[(md, str(meta["name"]), str(instance_type), cap)] = int(
                spec.get("replicas") or 0
            )
        twin.desired = desired

    # -- the kubelet model ------------------------------------------------------------------

    def sync(self, now: float, dt: float) -> None:
        """Advance pods to ``now``: bind, start, evict, vanish; write readiness back; bill
        the nodes for the ``dt`` seconds since the last sync."""
        before = self.ready_by_md(now)
        lost: dict[str, int] = defaultdict(int)
        synced: dict[str, dict[PoolKey, tuple[int, int]]] = {}
        for twin in self.twins():
            if self._from_clients and twin.client.revision != twin.seen_revision:
                self._desired_from_client(twin)
            counts = synced[twin.name] = twin.provider.node_counts()
            self._bill(twin, counts, dt)
            if twin.down:
                for pods in twin.pods.values():
                    for pod in pods:
                        if pod.ready(now):
                            lost[pod.md] += 1
                twin.pods.clear()
                continue
            self._sync_pools(twin, counts, now, dt, lost)
            self._push_readiness(twin, now)
        for md, n in lost.items():
            self.losses.append(Loss(now, md, n, before.get(md, 0)))
        self.synced_counts = synced

    def _bill(self, twin: ClusterTwin, counts: dict[PoolKey, tuple[int, int]], dt: float) -> None:
        hours = dt / 3600.0
        for (instance_type, cap), (_, desired) in counts.items():
            offering = twin.offerings.get(instance_type)
            if offering is None or desired == 0:
                continue
            price = offering.spot_per_hour if cap == "Spot" else offering.on_demand_per_hour
            price = price or 0.0
            self.cost_usd += desired * price * hours
            # At on-demand prices; a spot-only offering (no on-demand price) at its own.
            listed = offering.on_demand_per_hour
            self.on_demand_cost_usd += desired * (price if listed is None else listed) * hours
            self.gpu_hours += desired * offering.gpus_per_node * hours

    def _sync_pools(
        self,
        twin: ClusterTwin,
        counts: dict[PoolKey, tuple[int, int]],
        now: float,
        dt: float,
        lost: dict[str, int],
    ) -> None:
        wanted: dict[PoolKey, dict[tuple[str, str], int]] = defaultdict(dict)
        for (md, name, instance_type, cap), n in twin.desired.items():
            wanted[(instance_type, cap)][(md, name)] = n
        # Sorted: set order varies with string hashing between processes, and the order
        # pods are created in decides which start time each draws (determinism).
        for pool in sorted(set(wanted) | set(twin.pods)):
            pods = twin.pods[pool]
            want = wanted.get(pool, {})
            offering = twin.offerings.get(pool[0])
            capacity = counts.get(pool, (0, 0))[0] * (offering.gpus_per_node if offering else 0)
            if _settled(pods, want, capacity):
                continue  # what follows would keep every pod as it is, in its order
            # Deployment controller: match each workload's pod count.
            have: dict[tuple[str, str], list[Pod]] = defaultdict(list)
            for pod in pods:
                have[(pod.md, pod.workload)].append(pod)
            kept: list[Pod] = []
            for key in sorted(set(have) | set(want)):
                mine = have.get(key, [])
                n = want.get(key, 0)
                if len(mine) > n:
                    # Scale in: pending first, then not ready, then the newest.
                    mine.sort(
                        key=lambda p: (p.scheduled is not None, p.ready(now), -(p.scheduled or 0.0))
                    )
                    mine = mine[len(mine) - n :]
                elif len(mine) < n:
                    md, workload = key
                    gpus = self.gpus_per_replica.get(md, 1)
                    mine = mine + [Pod(md, workload, gpus, now) for _ in range(n - len(mine))]
                kept.extend(mine)
            bound = sorted(
                (p for p in kept if p.scheduled is not None), key=lambda p: p.scheduled or 0.0
            )
            used = sum(p.gpus for p in bound)
            while used > capacity and bound:
                # Nodes went away: the newest pods lose their place (abruptly).
                pod = bound.pop()
                used -= pod.gpus
                if pod.ready(now):
                    lost[pod.md] += 1
                pod.scheduled = None
                pod.ready_at = None
                pod.seen_ready = False
            node_times: list[float] | None = None
            for pod in kept:
                if pod.scheduled is None and used + pod.gpus <= capacity:
                    bound_at = now
                    if pod.created < now and offering is not None:
                        # Waiting since an earlier tick: bound when the node it needed got
                        # Ready, if that was since the last tick (else the room was made
                        # at this one, by a pod leaving).
                        if node_times is None:
                            node_times = [
                                (t - self.clock.start).total_seconds()
                                for t in twin.provider.ready_node_times(*pool)
                            ]
                        nodes = -(-(used + pod.gpus) // offering.gpus_per_node)
                        if 0 < nodes <= len(node_times) and node_times[nodes - 1] > now - dt:
                            bound_at = max(pod.created, node_times[nodes - 1])
                    pod.scheduled = bound_at
                    pod.ready_at = bound_at + self._starts.draw(twin.name, pod.md)
                    used += pod.gpus
            twin.pods[pool] = kept
        for pool in [p for p, pods in twin.pods.items() if not pods]:
            del twin.pods[pool]

    def _push_readiness(self, twin: ClusterTwin, now: float) -> None:
        if not self._from_clients:
            return
        ready: dict[str, int] = defaultdict(int)
        for pods in twin.pods.values():
            for pod in pods:
                if pod.ready_at is not None and pod.ready_at <= now:
                    if not pod.draining:
                        ready[pod.workload] += 1
                    if not pod.seen_ready:
                        pod.seen_ready = True
                        self.became_ready.append((pod.ready_at, pod.md))
        namespaces = {name: md.split("/", 1)[0] for (md, name, _, _) in twin.desired}
        for name, namespace in namespaces.items():
            n = ready.get(name, 0)
            if twin.pushed.get(name) != n or twin.client.revision != twin.seen_revision:
                try:
                    twin.client.set_deployment_status(namespace, name, ready=n)
                except KeyError:
                    continue
                twin.pushed[name] = n
        twin.seen_revision = twin.client.revision

    # -- the draws to come (for the clairvoyant oracle) ---------------------------------------

    def next_provisioning(
        self, cluster: str, instance_type: str, capacity_type: CapacityType, n: int
    ) -> list[float]:
        """The provisioning times (seconds) the next ``n`` nodes asked for in the pool
        (``cluster``, instance type, capacity type) will take, in the order they are asked
        for: a look at the pool's stream (``sim.streams.Stream.peek``) that takes nothing,
        so the world's draws are the same whether or not anyone looks. Raises ``KeyError``
        for an unknown cluster."""
        return self._provisioning[cluster].peek(n, cluster, instance_type, capacity_type)

    def next_starts(self, cluster: str, md: str, n: int) -> list[float]:
        """The model start times (seconds) the next ``n`` pods of deployment ``md`` bound in
        ``cluster`` will take, in binding order (a look, as ``next_provisioning``)."""
        return self._starts.peek(n, cluster, md)

    def pending_pods(self, cluster: str, md: str) -> int:
        """Pods of ``md`` in ``cluster`` not bound to a GPU yet (they take the next start
        draws of their stream as their nodes come)."""
        return sum(
            1
            for pods in self.clusters[cluster].pods.values()
            for pod in pods
            if pod.md == md and pod.scheduled is None
        )

    # -- what is ready ------------------------------------------------------------------------

    def ready_by_md(self, now: float) -> dict[str, int]:
        """Ready replicas per deployment key, fleet-wide."""
        out: dict[str, int] = defaultdict(int)
        for twin in self.twins():
            if twin.down:
                continue
            for pods in twin.pods.values():
                for pod in pods:
                    if pod.ready(now):
                        out[pod.md] += 1
        return out

    def ready_pods(self, now: float) -> dict[tuple[str, str, str], int]:
        """Ready replicas per (md key, cluster, gpu)."""
        out: dict[tuple[str, str, str], int] = defaultdict(int)
        for twin in self.twins():
            if twin.down:
                continue
            for (instance_type, _), pods in twin.pods.items():
                offering = twin.offerings.get(instance_type)
                gpu = offering.gpu if offering else "?"
                for pod in pods:
                    if pod.ready(now):
                        out[(pod.md, twin.name, gpu)] += 1
        return out

    def nodes_by_region(self) -> dict[str, int]:
        """Desired GPU nodes per region (for the timeline)."""
        out: dict[str, int] = defaultdict(int)
        for twin in self.twins():
            for _, desired in twin.provider.node_counts().values():
                out[twin.region] += desired
        return out

    def trim_call_logs(self) -> None:
        """Forget the fakes' call records (they grow with every call; the simulator has no
        use for them)."""
        for twin in self.twins():
            twin.client.calls.clear()
            twin.provider.calls.clear()


def _settled(pods: list[Pod], want: dict[tuple[str, str], int], capacity: int) -> bool:
    """Whether ``FleetWorld._sync_pools`` would leave a pool's ``pods`` as they are: each
    workload (md, name) with the pods it wants (none for one it does not name), the pods
    already in the order the sync writes them (grouped by workload in sorted order, each
    group in its own order), the bound pods' GPUs within ``capacity`` and no room for any
    pending pod. Then nothing is scaled, evicted or bound, no start time is drawn, and the
    list the sync builds equals ``pods``: the steady state of most pools at most ticks."""
    have: dict[tuple[str, str], int] = {}
    used = 0
    pending: int | None = None  # the fewest GPUs a pending pod needs
    last: tuple[str, str] | None = None
    for pod in pods:
        key = (pod.md, pod.workload)
        if last is not None and key < last:
            return False
        last = key
        have[key] = have.get(key, 0) + 1
        if pod.scheduled is None:
            pending = pod.gpus if pending is None else min(pending, pod.gpus)
        else:
            used += pod.gpus
    if used > capacity or (pending is not None and used + pending <= capacity):
        return False
    if any(want.get(key, 0) != n for key, n in have.items()):
        return False
    return all(have.get(key, 0) == n for key, n in want.items())


def md_key(md: ModelDeployment) -> str:
    """The deployment key the core and the world use (namespace/name)."""
    return deployment_key(md)
