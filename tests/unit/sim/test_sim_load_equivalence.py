"""``LoadModel.advance`` reads each GPU class's step-time constants once per run
(``DeploymentLoad.steps``) and computes the step time and batch inline: the very floats of
``ReplicaModel.step_time`` per second and class, the code it replaced (kept here as the
reference), compared bit for bit over bursts, outages, vanished capacity and three GPU
classes."""

from __future__ import annotations

import numpy as np
import pytest

from modelfleet.sim.load import LoadModel
from modelfleet.sim.serving import waiting_time
from modelfleet.sim.traffic import Traffic
from modelfleet.sim.world import World

GPUS = ("L4", "L40S", "H100")
CLUSTERS = ("a", "b")
SECONDS = 1800


def _advance_as_it_was(
    self: LoadModel, begin: int, end: int, ready: dict[tuple[str, str, str], int]
) -> None:
    """``LoadModel.advance`` as it was: ``ReplicaModel.step_time`` called per second and class."""
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
        for i, s in enumerate(range(begin, stop)):
            n_in = float(arrivals[i])
            share_lost = 0.0
            if detect:
                detect[:] = [(until, f) for until, f in detect if until > s]
                if detect:
                    share_lost = min(1.0, sum(f for _, f in detect))
            lost = n_in * share_lost
            n_in -= lost
            if capacity <= 0.0:
                out_failed[i] = lost + n_in
                d.backlog = 0.0
                continue
            # The queue follows the expected rate (overload that lasts); the Poisson
            # randomness of arrivals is the stochastic wait's business below.
            rate = float(expected[i]) * (1.0 - share_lost)
            backlog = max(0.0, d.backlog + rate - capacity)
            dropped = max(0.0, backlog - capacity * timeout)
            backlog -= dropped
            d.backlog = backlog
            overloaded = backlog > 0.0
            served = min(n_in, capacity) if overloaded else n_in
            out_served[i] = served
            out_failed[i] = lost + (n_in * dropped / rate if rate > 0 else 0.0)
            load = capacity if overloaded else min(rate, capacity)
            per_replica = load / capacity
            busy = 0.0
            for g, model in enumerate(d.models):
                lam = per_replica * mus[g]
                tau = model.step_time(lam)
                b = min(float(model.concurrency), lam * model.output_mean * tau)
                out_tau[i][g] = tau
                out_batch[i][g] = b
                busy += per_class[g] * b
            service = busy / load if load > 0 else 0.0
            stochastic = 0.0
            if not overloaded and slots:
                stochastic = waiting_time(busy / slots, slots, service)
            out_wait[i] = min(timeout, backlog / capacity + stochastic)
            out_waiting[i] = backlog + load * stochastic
        d.capacity[begin:stop] = out_capacity
        d.served[begin:stop] = out_served
        d.failed[begin:stop] = out_failed
        d.wait[begin:stop] = out_wait
        d.waiting[begin:stop] = out_waiting
        d.tau[begin:stop] = out_tau
        d.batch[begin:stop] = out_batch


def _model(seed: int) -> LoadModel:
    rng = np.random.default_rng(seed)
    rate = 12.0 + 9.0 * np.sin(np.arange(SECONDS) / 120.0) + rng.uniform(0, 6, SECONDS)
    rate[500:600] *= 6.0  # a burst past capacity: backlog, drops
    rate[1200:1300] = 0.0
    arrivals = rng.poisson(rate).astype(np.int64)
    traffic = Traffic(
        rate=rate,
        arrivals=arrivals,
        prompt_median=800,
        prompt_sigma=0.9,
        output_median=220,
        output_sigma=0.7,
        seed=seed,
    )
    keys = {"ns/chat": GPUS, "ns/code": GPUS[1:]}
    return LoadModel(
        World(),
        {k: traffic for k in keys},
        keys,
        {"ns/chat": 1, "ns/code": 2},
        CLUSTERS,
        seconds=SECONDS,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_inline_step_times_equal_replica_model_step_time_bit_for_bit(seed: int) -> None:
    new, old = _model(seed), _model(seed)
    rng = np.random.default_rng(100 + seed)
    for begin in range(0, SECONDS + 10, 5):  # past the end too: nothing served there
        ready: dict[tuple[str, str, str], int] = {}
        if not 900 <= begin < 930:  # else no replica anywhere: every request fails
            for key, gpus in (("ns/chat", GPUS), ("ns/code", GPUS[1:])):
                for cluster in CLUSTERS:
                    for gpu in gpus:
                        if rng.random() < 0.5:
                            ready[(key, cluster, gpu)] = int(rng.integers(1, 4))
        if rng.random() < 0.02:  # capacity vanished abruptly: the router's detect time
            for m in (new, old):
                m.vanished("ns/chat", float(begin), 0.4)
        new.advance(begin, begin + 5, ready)
        _advance_as_it_was(old, begin, begin + 5, ready)
    for key in ("ns/chat", "ns/code"):
        a, b = new.deployments[key], old.deployments[key]
        for name in ("wait", "served", "failed", "waiting", "capacity", "tau", "batch", "ready"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), f"{key} {name}"
            assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), f"{key} {name}"
        assert a.backlog == b.backlog
        # The run had what the comparison must cover: overload, failures, idle seconds.
        assert a.failed.sum() > 0 and (a.wait > 1.0).any() and (a.served == 0).any()
        assert (a.batch >= 1.0).any()
