"""The ``oracle`` policy: the least GPU-hours that can meet the SLO, as a yardstick.

Clairvoyant, and allowed to be: it knows every arrival of the run in advance (the
traffic's per-minute arrival counts) and each GPU's true capacity within the SLO
(``sim.profiles.true_capacity`` on the world model), and starts each replica exactly its
lead time before it is needed. Per deployment and per minute ``m`` the need is
``ceil(arrivals(m) / 60 / capacity)`` replicas (at least ``replicas.min``) on the
on-demand offerings cheapest per unit of capacity, filled in that order within
``maxNodes``; at time ``t`` it holds ``max(need(m))`` over the minutes from ``t`` to ``t +
lead`` (lead = the cloud's 90th-percentile node provisioning + the 90th-percentile model
start, so a replica is ready when its minute comes), and releases what no minute of the
coming lead time needs. No spot (GPU-hours, not dollars, is what it bounds), no standby,
and it knows the scenario's events too: a pool whose cluster will be in a region outage,
or whose GPU will be stocked out (on-demand), at any time from now to one lead time ahead
is not used, so its replicas are already elsewhere when the event strikes; while a
deployment has fewer ready replicas than it needs, the replicas it had in other pools stay
until the moved ones serve (make-before-break). It is a bound
on GPU-hours, not a way to run a fleet. The report gives every policy's GPU-hours as a
ratio to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from modelfleet.api import ModelDeployment
from modelfleet.core.from_api import deployment_key
from modelfleet.sim.baselines import ON_DEMAND, Choice, _ensure, candidates
from modelfleet.sim.fleet import FleetWorld
from modelfleet.sim.load import LoadModel
from modelfleet.sim.profiles import true_capacity
from modelfleet.sim.scenario import RegionOutage, Scenario, Stockout
from modelfleet.sim.serving import Workload, replica_model


def _in(clusters: set[str], gpu: str | None) -> Callable[[str, str], bool]:
    def blocked(cluster: str, offered: str) -> bool:
        return cluster in clusters and (gpu is None or gpu == offered)

    return blocked


class OraclePolicy:
    """See the module docstring."""

    name = "oracle"

    def __init__(
        self,
        world: FleetWorld,
        deployments: tuple[ModelDeployment, ...],
        load: LoadModel,
        scenario: Scenario | None = None,
    ) -> None:
        self._world = world
        self._blocked: list[tuple[float, float, Callable[[str, str], bool]]] = []
        """(begin, end, (cluster, gpu) -> blocked) in run seconds, from the scenario."""
        if scenario is not None:
            twins = {c.metadata.name: c for c in scenario.fleet}
            for event in scenario.spec.events:
                begin = world.offset + event.at_seconds
                if isinstance(event, RegionOutage):
                    hit = {n for n, c in twins.items() if event.matches(c)}
                    self._blocked.append(
                        (begin, begin + event.duration_minutes * 60, _in(hit, None))
                    )
                elif isinstance(event, Stockout) and event.capacity_type != "Spot":
                    hit = {n for n, c in twins.items() if event.matches(c)}
                    self._blocked.append(
                        (begin, begin + event.duration_minutes * 60, _in(hit, event.gpu))
                    )
        self._errors: list[tuple[float, str]] = []
        self._desired: dict[str, int] = {}
        self._prev: dict[tuple[str, str, str], tuple[Choice, int]] = {}
        self._plans: list[tuple[str, list[tuple[Choice, float]], np.ndarray, int, float]] = []
        params = world.world
        for md in deployments:
            key = deployment_key(md)
            traffic = load.deployments[key].traffic
            workload = Workload(traffic.prompt_mean, traffic.output_mean)
            prompt_p95 = traffic.prompt_p95
            ranked: list[tuple[float, Choice, float]] = []
            for c in candidates(world, md, workload):
                model = replica_model(
                    params, c.offering.gpu, workload, gpus_per_replica=md.spec.resources.gpu.count
                )
                cap = true_capacity(
                    model,
                    ttft_ms=md.spec.slo.ttft_p95_ms,
                    tpot_ms=md.spec.slo.tpot_p95_ms,
                    prompt_p95=prompt_p95,
                )
                if cap > 0:
                    # candidates() keeps offerings with an on-demand price only.
                    price = (c.offering.on_demand_per_hour or 0.0) / c.replicas_per_node
                    ranked.append((price / cap, c, cap))
            ranked.sort(key=lambda x: (x[0], x[1].cluster, x[1].offering.instance_type))
            seconds = len(traffic.arrivals) // 60 * 60
            # A minute's need is its arrivals' mean rate or, if higher, the highest expected
            # rate within it: the serving model's queue follows the expected rate second by
            # second, and a bursty trace's minute of 20 req/s on average can hold 40 req/s
            # for half of it (a queue builds at once if sized for the mean).
            per_minute = np.maximum(
                traffic.arrivals[:seconds].reshape(-1, 60).sum(axis=1) / 60.0,
                traffic.rate[:seconds].reshape(-1, 60).max(axis=1),
            )
            lead = (
                max(
                    params.provisioning.for_cloud(world.clusters[c.cluster].cloud).p90
                    for _, c, _ in ranked[:1]
                )
                if ranked
                else 0.0
            )
            lead += params.model_start.p90
            self._plans.append(
                (
                    key,
                    [(c, cap) for _, c, cap in ranked],
                    per_minute,
                    md.spec.replicas.min,
                    lead,
                )
            )

    def _need(self, choices: list[tuple[Choice, float]], rate: float, floor: int) -> int:
        """Replicas of the first choice's capacity for ``rate`` (the fill below spreads
        them over pools by capacity)."""
        if not choices:
            return 0
        return max(floor, math.ceil(rate / choices[0][1] - 1e-9))

    async def tick(self, now: float) -> None:
        nodes: dict[tuple[str, str], int] = {}
        wants: list[tuple[str, Choice, int]] = []
        # Incumbents first: the nodes each deployment holds in a pool stay reserved for it
        # while the deployments filled before it grow, so a shared pool's quota never
        # evicts a serving replica of one deployment for another's growth (the growth
        # goes to the next pool; an evicted replica would be replaced only a lead time
        # later). Deployments are filled in order; ``held`` is what the later ones hold.
        held: dict[tuple[str, str], dict[str, int]] = {}
        for (k, cluster, it), (c, n) in self._prev.items():
            per_pool = held.setdefault((cluster, it), {})
            per_pool[k] = per_pool.get(k, 0) + math.ceil(n / c.replicas_per_node)
        for key, choices, per_minute, floor, lead in self._plans:
            for per_pool in held.values():
                per_pool.pop(key, None)
            if not choices:
                continue
            first = int(now // 60)
            last = int((now + lead) // 60)
            window = per_minute[first : last + 1]
            rate = float(window.max()) if window.size else 0.0
            left = rate
            total = 0
            usable = [
                (c, cap)
                for c, cap in choices
                if not any(
                    b <= now + lead and e >= now and blocked(c.cluster, c.offering.gpu)
                    for b, e, blocked in self._blocked
                )
            ]
            for i, (choice, cap) in enumerate(usable):
                pool = (choice.cluster, choice.offering.instance_type)
                quota = choice.offering.max_nodes
                reserved = sum(held.get(pool, {}).values())
                room = (
                    None
                    if quota is None
                    else (quota - nodes.get(pool, 0) - reserved) * (choice.replicas_per_node)
                )
                n = math.ceil(left / cap - 1e-9) if left > 0 else 0
                if i == 0:
                    n = max(n, floor)
                if room is not None:
                    n = min(n, max(0, room))
                if n <= 0 and left > 0:
                    continue
                wants.append((key, choice, n))
                nodes[pool] = nodes.get(pool, 0) + math.ceil(n / choice.replicas_per_node)
                total += n
                left = max(0.0, left - n * cap)
                if left <= 0:
                    break
            self._desired[key] = total
        # Make-before-break: while a deployment has fewer ready replicas than it needs, the
        # replicas it had elsewhere stay until the new ones serve (a move is not free).
        targets = {(k, c.cluster, c.offering.gpu) for k, c, _ in wants}
        ready: dict[str, int] = {}
        for (md, cluster, gpu), n in self._world.ready_pods(now).items():
            if (md, cluster, gpu) in targets:
                ready[md] = ready.get(md, 0) + n
        planned = {(k, c.cluster, c.offering.instance_type): n for k, c, n in wants}
        for (key, cluster, it), (choice, n_prev) in self._prev.items():
            if ready.get(key, 0) >= self._desired.get(key, 0) or n_prev <= 0:
                continue
            if self._world.clusters[cluster].down:
                continue
            n_new = planned.get((key, cluster, it), 0)
            if n_prev > n_new:
                pool = (cluster, it)
                extra = math.ceil(n_prev / choice.replicas_per_node) - math.ceil(
                    n_new / choice.replicas_per_node
                )
                nodes[pool] = nodes.get(pool, 0) + extra
                planned[(key, cluster, it)] = n_prev
                wants = [
                    w
                    for w in wants
                    if (w[0], w[1].cluster, w[1].offering.instance_type) != (key, cluster, it)
                ]
                wants.append((key, choice, n_prev))
        self._prev = {
            (k, c.cluster, c.offering.instance_type): (c, n) for k, c, n in wants if n > 0
        }
        placed = {(k, c.cluster, c.offering.instance_type) for k, c, _ in wants}
        for key, choices, _, _, _ in self._plans:
            for choice, _ in choices:
                if (key, choice.cluster, choice.offering.instance_type) not in placed:
                    self._world.set_workload(
                        choice.cluster, key, choice.offering.instance_type, ON_DEMAND, 0
                    )
        for key, choice, n in wants:
            self._world.set_workload(
                choice.cluster, key, choice.offering.instance_type, ON_DEMAND, n
            )
        sized: set[tuple[str, str]] = set()
        for key, choices, _, _, _ in self._plans:
            for choice, _ in choices:
                pool = (choice.cluster, choice.offering.instance_type)
                if pool in sized:
                    continue
                sized.add(pool)
                if not await _ensure(self._world, choice, nodes.get(pool, 0), now, key):
                    self._errors.append((now, key))

    def desired(self, key: str) -> int:
        return self._desired.get(key, 0)

    def capacity_errors(self) -> list[tuple[float, str]]:
        return self._errors
