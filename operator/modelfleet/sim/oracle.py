"""The ``oracle`` policy: the least GPU-hours that can meet the SLO, as a yardstick.

Clairvoyant, and allowed to be: it knows every arrival of the run in advance (the
traffic's per-minute arrival counts), each GPU's true capacity within the SLO
(``sim.profiles.true_capacity`` on the world model), and the draws of the world: the time
the next nodes of each pool and the next model starts of each (cluster, deployment) will
take (``FleetWorld.next_provisioning`` / ``next_starts``, a look at the streams of
``sim.streams`` that moves none of them). Per deployment and per minute ``m`` the need is
``ceil(rate(m) / capacity)`` replicas (at least ``replicas.min``) on the on-demand
offerings cheapest per unit of capacity, filled in that order within ``maxNodes``. The
replicas of a deployment form one sequence in that fill order, and it starts each exactly
its own lead time before a minute needs it (``OraclePolicy._plan``): a new replica's lead
is its node's drawn provisioning time (the pool's next draws, in the order it asks for
nodes) plus the longest model start its pod can draw (pods bind in the order their nodes
come, so a pod may take any of the next start draws of its deployment there up to the
pods pending and asked for with it, and ``_LATER`` more); a replica it has is let go when
no minute within the time it would take to come back needs it. No spot (GPU-hours, not
dollars, is what it bounds), no standby, and it knows the scenario's events too: a pool
whose cluster will be in a region outage, or whose GPU will be stocked out (on-demand), at
any time from now to one replacement's lead time ahead is not used, so its replicas are
already elsewhere when the event strikes; while a deployment has fewer ready replicas than
it needs, the replicas it had in other pools stay until the moved ones serve
(make-before-break). It is a bound on GPU-hours, not a way to run a fleet. The report gives
every policy's GPU-hours as a ratio to it.
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

_SPARE = 3
"""Draws beyond its own a replica's lead allows for where others may take some first: a
replica let go and asked for again, or moved off a pool an event will hit."""
_LATER = 1
"""Pods of a deployment asked for after a new one (at a later tick) whose nodes may come
first and take its start draw: its lead allows for this many more of the next draws."""
_REACH_MINUTES = 90
"""How far ahead the plan looks for the rate a replica may be needed for (minutes): beyond
any drawn lead (a node or model start takes minutes)."""


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
        self._plans: list[tuple[str, list[tuple[Choice, float]], np.ndarray, int]] = []
        params = world.world
        self._tick = params.control.tick_seconds
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
            self._plans.append(
                (
                    key,
                    [(c, cap) for _, c, cap in ranked],
                    per_minute,
                    md.spec.replicas.min,
                )
            )

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
        fresh: dict[tuple[str, str], int] = {}
        """New nodes asked for in a pool by the deployments planned before, this tick."""
        for key, choices, per_minute, floor in self._plans:
            for per_pool in held.values():
                per_pool.pop(key, None)
            if not choices:
                continue
            horizon = self._event_horizon(key, choices, now)
            usable = [
                (c, cap)
                for c, cap in choices
                if not any(
                    b <= now + horizon and e >= now and blocked(c.cluster, c.offering.gpu)
                    for b, e, blocked in self._blocked
                )
            ]
            total = 0
            for choice, n in self._plan(key, usable, per_minute, floor, now, nodes, held, fresh):
                pool = (choice.cluster, choice.offering.instance_type)
                wants.append((key, choice, n))
                before = math.ceil(self._had(key, choice) / choice.replicas_per_node)
                after = math.ceil(n / choice.replicas_per_node)
                nodes[pool] = nodes.get(pool, 0) + after
                fresh[pool] = fresh.get(pool, 0) + max(0, after - before)
                total += n
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
        for key, choices, _, _ in self._plans:
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
        for key, choices, _, _ in self._plans:
            for choice, _ in choices:
                pool = (choice.cluster, choice.offering.instance_type)
                if pool in sized:
                    continue
                sized.add(pool)
                if not await _ensure(self._world, choice, nodes.get(pool, 0), now, key):
                    self._errors.append((now, key))

    def _had(self, key: str, choice: Choice) -> int:
        """Replicas ``key`` held in ``choice``'s pool after the last tick."""
        prev = self._prev.get((key, choice.cluster, choice.offering.instance_type))
        return prev[1] if prev is not None else 0

    def _again_lead(self, key: str, choice: Choice) -> float:
        """Seconds a replica of ``key`` let go from ``choice``'s pool now would take to be
        Ready again, asked for later: the longest of the pool's next ``_SPARE`` drawn
        provisioning times plus the longest start its pod could draw (the draws a later
        request takes are those still to come then; other deployments sharing the pool
        may take a few first)."""
        pending = self._world.pending_pods(choice.cluster, key)
        prov = max(
            self._world.next_provisioning(
                choice.cluster, choice.offering.instance_type, ON_DEMAND, _SPARE
            )
        )
        return prov + max(self._world.next_starts(choice.cluster, key, pending + _SPARE))

    def _event_horizon(self, key: str, choices: list[tuple[Choice, float]], now: float) -> float:
        """How far ahead (seconds) an outage or stockout must be seen for ``key``'s
        replicas in a pool it hits to be Ready elsewhere when it strikes: one tick plus
        the longest lead of a replacement in any of its pools (the next few draws there),
        0 while no event begins within the hour."""
        if not any(now <= b <= now + 3600.0 or b <= now <= e for b, e, _ in self._blocked):
            return 0.0
        moved = sum(self._had(key, c) for c, _ in choices)
        worst = 0.0
        for choice, _ in choices:
            pending = self._world.pending_pods(choice.cluster, key)
            prov = max(
                self._world.next_provisioning(
                    choice.cluster, choice.offering.instance_type, ON_DEMAND, moved + _SPARE
                )
            )
            start = max(self._world.next_starts(choice.cluster, key, pending + moved + _SPARE))
            worst = max(worst, prov + start)
        return self._tick + worst

    def _plan(
        self,
        key: str,
        usable: list[tuple[Choice, float]],
        per_minute: np.ndarray,
        floor: int,
        now: float,
        nodes: dict[tuple[str, str], int],
        held: dict[tuple[str, str], dict[str, int]],
        fresh: dict[tuple[str, str], int],
    ) -> list[tuple[Choice, int]]:
        """Replicas of ``key`` per usable pool at ``now``.

        The pools are filled in order (the cheapest per unit of capacity first, each to
        its room within ``maxNodes``); a deployment's replicas form one sequence, the k-th
        covering the rate from the capacity of the k-1 before it. The k-th is held now
        when some minute from now to one tick plus its lead ahead needs that rate (had it
        waited a tick, it would be late), and so are all before it. Its lead: for a
        replica the deployment has, the time it would take to be Ready again if let go
        (``_again_lead``); for a new one, its own node's drawn provisioning time (the
        pool's next draws, taken in the order this plan asks for nodes) plus the longest
        start its pod can draw: pods bind in the order their nodes come, so a new pod may
        take any of the next start draws of its (cluster, deployment) up to the number of
        its pods pending and asked for with it (the new ones up to it, or up to the last
        held if that is further). The first ``replicas.min`` of the first pool are always
        held."""
        first = int(now // 60)
        # A replica the current minute (or the next tick's) needs is held whatever its lead.
        now_window = per_minute[first : math.ceil((now + self._tick) / 60)]
        sure = float(now_window.max()) if now_window.size else 0.0
        reach = per_minute[first : first + _REACH_MINUTES]
        peak = float(reach.max()) if reach.size else 0.0
        seen: list[int] = [0] * len(usable)
        covered = 0.0
        held_upto = 0  # replicas in the sequence held (a prefix)
        # New replicas that need a lead: (place in the sequence, cluster, provisioning
        # seconds, capacity of the sequence before it).
        new: list[tuple[int, str, float, float]] = []
        new_in: dict[str, list[int]] = {}  # places of the new replicas, per cluster
        pending: dict[str, int] = {}
        done = False
        for i, (choice, cap) in enumerate(usable):
            pool = (choice.cluster, choice.offering.instance_type)
            quota = choice.offering.max_nodes
            reserved = sum(held.get(pool, {}).values())
            room = (
                None
                if quota is None
                else max(0, (quota - nodes.get(pool, 0) - reserved) * choice.replicas_per_node)
            )
            had = self._had(key, choice)
            rpn = choice.replicas_per_node
            if choice.cluster not in pending:
                pending[choice.cluster] = self._world.pending_pods(choice.cluster, key)
            n = 0
            while room is None or n < room:
                if covered >= peak - 1e-9 and not (i == 0 and n < floor):
                    done = True
                    break
                place = sum(seen)
                needed = covered < sure - 1e-9 or (i == 0 and n < floor)
                if n < had:
                    if not needed:
                        lead = self._again_lead(key, choice)
                        needed = self._needs(per_minute, first, now, lead, covered)
                else:
                    node = math.ceil((n + 1) / rpn) - math.ceil(had / rpn) - 1
                    prov = (
                        self._world.next_provisioning(
                            choice.cluster,
                            choice.offering.instance_type,
                            ON_DEMAND,
                            node + fresh.get(pool, 0) + 1,
                        )[-1]
                        if node >= 0
                        else 0.0
                    )
                    new.append((place, choice.cluster, prov, covered))
                    new_in.setdefault(choice.cluster, []).append(place)
                n += 1
                seen[i] = n
                covered += cap
                if needed:
                    held_upto = place + 1
            if done:
                break
        # The new replicas' leads grow with the batch asked for together (the start draws
        # its pods can take): repeat until the held prefix stops growing.
        while True:
            grown = held_upto
            for place, cluster, prov, before in new:
                if place < grown:
                    continue  # held already, and with it all before it
                last = max(place, held_upto - 1)
                batch = pending[cluster] + sum(1 for p in new_in[cluster] if p <= last)
                lead = prov + max(self._world.next_starts(cluster, key, batch + _LATER))
                if self._needs(per_minute, first, now, lead, before):
                    grown = place + 1
            if grown == held_upto:
                break
            held_upto = grown
        counts: list[int] = []
        left = held_upto
        for n in seen:
            counts.append(min(n, left))
            left -= counts[-1]
        return [(usable[i][0], n) for i, n in enumerate(counts) if n > 0]

    def _needs(
        self, per_minute: np.ndarray, first: int, now: float, lead: float, covered: float
    ) -> bool:
        """Whether a minute from ``first`` to the last that begins before one tick plus
        ``lead`` from ``now`` needs more than ``covered`` requests/s."""
        window = per_minute[first : math.ceil((now + self._tick + lead) / 60)]
        return bool(window.size) and float(window.max()) > covered + 1e-9

    def desired(self, key: str) -> int:
        return self._desired.get(key, 0)

    def capacity_errors(self) -> list[tuple[float, str]]:
        return self._errors
