"""Serving the traffic, second by second: routing, batching, queueing, failures.

Routing assumption (the product's planned global router): each request goes to the
least-loaded healthy replica anywhere in the fleet. In the fluid limit that spreads load
so every replica runs at the same fraction of its saturation throughput, so the fleet of a
deployment acts as one pool of capacity ``M = sum(N_g * mu_g)`` over GPU classes ``g``.
Per second:

- arrivals plus the backlog are served up to ``M``; the rest waits (the fluid queue), and
  what would wait longer than the request timeout fails;
- each class's replicas run at ``served * mu_g / M`` requests/s, giving their step time and
  batch (``serving.ReplicaModel``);
- the queue wait is the backlog's drain time plus the stochastic wait of a queue with
  ``sum(N_g * C_g)`` slots at the slots' utilisation (``serving.waiting_time``);
- with no ready replica at all, requests fail (the router has nowhere to send them);
- for ``routing.detectSeconds`` after replicas vanish abruptly (an outage; a spot
  reclaim without ``spot.drainOnNotice``), the share of requests the router still sends to
  them fails.

The per-second state is kept in arrays: the Prometheus model reads it, and the report
samples every request's TTFT from it afterwards.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from modelfleet.sim.serving import ReplicaModel, Workload, replica_model
from modelfleet.sim.traffic import Traffic
from modelfleet.sim.world import World

FloatArray = npt.NDArray[np.float64]


@dataclass
class DeploymentLoad:
    """One deployment's serving state over the simulated seconds."""

    key: str
    traffic: Traffic
    classes: tuple[str, ...]
    """GPU classes this deployment may run on, in a fixed order."""
    models: tuple[ReplicaModel, ...]
    seconds: int
    clusters: tuple[str, ...]
    wait: FloatArray = field(init=False)
    served: FloatArray = field(init=False)
    failed: FloatArray = field(init=False)
    waiting: FloatArray = field(init=False)
    capacity: FloatArray = field(init=False)
    tau: FloatArray = field(init=False)
    """Step time per second per class (seconds), shape (seconds, classes)."""
    batch: FloatArray = field(init=False)
    """Running sequences of one replica per second per class, shape (seconds, classes)."""
    ready: npt.NDArray[np.int32] = field(init=False)
    """Ready replicas per second per (cluster, class), shape (seconds, clusters, classes)."""
    backlog: float = 0.0

    def __post_init__(self) -> None:
        n, g, c = self.seconds, len(self.classes), len(self.clusters)
        self.wait = np.zeros(n)
        self.served = np.zeros(n)
        self.failed = np.zeros(n)
        self.waiting = np.zeros(n)
        self.capacity = np.zeros(n)
        self.tau = np.zeros((n, g))
        self.batch = np.zeros((n, g))
        self.ready = np.zeros((n, c, g), dtype=np.int32)

    @property
    def mu(self) -> tuple[float, ...]:
        return tuple(m.mu_max for m in self.models)

    @functools.cached_property
    def steps(self) -> tuple[tuple[float, float, float, float, float], ...]:
        """Per GPU class, what ``ReplicaModel.step_time`` and the batch read, computed as
        they compute them: (mu_max, a, prompt_mean / prefill_rate + c * output_mean,
        float(concurrency), output_mean). The models are fixed for the run."""
        return tuple(
            (
                m.mu_max,
                m.a,
                m.prompt_mean / m.prefill_rate + m.c * m.output_mean,
                float(m.concurrency),
                m.output_mean,
            )
            for m in self.models
        )


class LoadModel:
    """Every deployment's serving over the run (see the module docstring)."""

    def __init__(
        self,
        world: World,
        traffic: dict[str, Traffic],
        classes: dict[str, tuple[str, ...]],
        gpus_per_replica: dict[str, int],
        clusters: tuple[str, ...],
        *,
        seconds: int,
    ) -> None:
        self.world = world
        self.seconds = seconds
        self.clusters = clusters
        self.cluster_index = {name: i for i, name in enumerate(clusters)}
        self.deployments: dict[str, DeploymentLoad] = {}
        for key, t in traffic.items():
            workload = Workload(t.prompt_mean, t.output_mean)
            models = tuple(
                replica_model(world, gpu, workload, gpus_per_replica=gpus_per_replica[key])
                for gpu in classes[key]
            )
            self.deployments[key] = DeploymentLoad(key, t, classes[key], models, seconds, clusters)
        self._detect: dict[str, list[tuple[float, float]]] = {k: [] for k in traffic}

    def arrivals_rate(self, key: str, end: int) -> float:
        """Requests/s arriving for ``key`` over the monitoring window ending at second
        ``end``, served or not: what a gateway in front of the deployment counts (the
        demand signal of scale from zero)."""
        window = int(self.world.monitoring.window_seconds)
        arrivals = self.deployments[key].traffic.arrivals
        stop = max(0, min(end, len(arrivals)))
        begin = max(0, stop - window)
        return float(arrivals[begin:stop].sum()) / (stop - begin) if stop > begin else 0.0

    def vanished(self, key: str, at: float, fraction: float) -> None:
        """``fraction`` of ``key``'s ready capacity vanished at ``at``: the router keeps
        sending that share of requests there for ``routing.detectSeconds``."""
        if key in self._detect and fraction > 0:
            self._detect[key].append((at + self.world.routing.detect_seconds, min(1.0, fraction)))

    def advance(self, begin: int, end: int, ready: dict[tuple[str, str, str], int]) -> None:
        """Serve seconds ``[begin, end)`` with ``ready`` replicas per (md, cluster, gpu)."""
        timeout = self.world.engine.request_timeout_seconds
        for key, d in self.deployments.items():
            per_class = [0] * len(d.classes)
            grid = np.zeros((len(self.clusters), len(d.classes)), dtype=np.int32)
            for (md, cluster, gpu), n in ready.items():
                if md != key or gpu not in d.classes:
                    continue
                g = d.classes.index(gpu)
                per_class[g] += n
                grid[self.cluster_index[cluster], g] += n
            mus = d.mu
            capacity = sum(n * mu for n, mu in zip(per_class, mus, strict=True))
            slots = sum(n * m.concurrency for n, m in zip(per_class, d.models, strict=True))
            detect = self._detect[key]
            d.ready[begin:end] = grid
            stop = min(end, self.seconds)
            if stop <= begin:
                continue
            # The tick's seconds are computed on Python floats and written back as slices
            # (the same float64 values; numpy scalar access per second costs more).
            arrivals = d.traffic.arrivals[begin:stop].tolist()
            expected = d.traffic.rate[begin:stop].tolist()
            out_capacity = [capacity] * (stop - begin)
            out_served = d.served[begin:stop].tolist()
            out_failed = d.failed[begin:stop].tolist()
            out_wait = d.wait[begin:stop].tolist()
            out_waiting = d.waiting[begin:stop].tolist()
            out_tau = d.tau[begin:stop].tolist()
            out_batch = d.batch[begin:stop].tolist()
            # Per class: its replicas and its step constants, fixed for the tick. Below,
            # ``y if y > x else x`` is ``max(x, y)`` and ``y if y < x else x`` is
            # ``min(x, y)``, however the comparison is spelt (the builtins return their
            # first argument unless the second compares greater, resp. less: the same
            # float, NaN and -0.0 included), without a builtin call per second and class.
            per_step = [(n, *step) for n, step in zip(per_class, d.steps, strict=True)]
            # waiting_time(rho, slots, service) inlined; its exponent depends on the
            # slots alone (the same expression, so the same float).
            exponent = math.sqrt(2.0 * (slots + 1.0)) - 1.0 if slots > 0 else 0.0
            backlog = d.backlog
            for i in range(stop - begin):
                n_in = float(arrivals[i])
                share_lost = 0.0
                if detect:
                    s = begin + i
                    detect[:] = [(until, f) for until, f in detect if until > s]
                    if detect:
                        share_lost = min(1.0, sum(f for _, f in detect))
                lost = n_in * share_lost
                n_in -= lost
                if capacity <= 0.0:
                    out_failed[i] = lost + n_in
                    backlog = 0.0
                    continue
                # The queue follows the expected rate (overload that lasts); the Poisson
                # randomness of arrivals is the stochastic wait's business below.
                rate = float(expected[i]) * (1.0 - share_lost)
                backlog = backlog + rate - capacity
                if not backlog > 0.0:  # max(0.0, backlog)
                    backlog = 0.0
                dropped = backlog - capacity * timeout
                if not dropped > 0.0:  # max(0.0, dropped)
                    dropped = 0.0
                backlog -= dropped
                overloaded = backlog > 0.0
                if overloaded:
                    served = capacity if capacity < n_in else n_in  # min(n_in, capacity)
                    load = capacity
                else:
                    served = n_in
                    load = capacity if capacity < rate else rate  # min(rate, capacity)
                out_served[i] = served
                out_failed[i] = lost + (n_in * dropped / rate if rate > 0 else 0.0)
                per_replica = load / capacity
                busy = 0.0
                taus, batches = out_tau[i], out_batch[i]
                for g, (n, mu, a, k, concurrency, output_mean) in enumerate(per_step):
                    lam = per_replica * mu
                    # ReplicaModel.step_time(lam) and .batch, inlined (the same operations):
                    # denom = 1.0 - min(max(lam, 0.0), mu) * k; tau = a / max(denom, 1e-9).
                    clipped = 0.0 if lam < 0.0 else lam
                    if mu < clipped:
                        clipped = mu
                    denom = 1.0 - clipped * k
                    tau = a / (1e-9 if denom < 1e-9 else denom)
                    b = lam * output_mean * tau
                    b = b if b < concurrency else concurrency  # min(concurrency, b)
                    taus[g] = tau
                    batches[g] = b
                    busy += n * b
                service = busy / load if load > 0 else 0.0
                stochastic = 0.0
                if not overloaded and slots:
                    rho = busy / slots
                    if not rho <= 0.0:  # waiting_time: 0 for an idle queue
                        rho = 0.999999 if rho > 0.999999 else rho  # min(rho, 0.999999)
                        stochastic = float(service * rho**exponent / (slots * (1.0 - rho)))
                wait = backlog / capacity + stochastic
                out_wait[i] = wait if wait < timeout else timeout  # min(timeout, wait)
                out_waiting[i] = backlog + load * stochastic
            d.backlog = backlog
            d.capacity[begin:stop] = out_capacity
            d.served[begin:stop] = out_served
            d.failed[begin:stop] = out_failed
            d.wait[begin:stop] = out_wait
            d.waiting[begin:stop] = out_waiting
            d.tau[begin:stop] = out_tau
            d.batch[begin:stop] = out_batch
