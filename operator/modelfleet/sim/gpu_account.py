"""Where each billed GPU goes, tick by tick: the record behind ``hack/gpu_hours_breakdown.py``.

The report gives one GPU-hour figure per policy; to cut it one must know which part of it
served load and which part waited: a node provisioning for a pod, a model loading, a Ready
node with no pod (the scale-in delay, a warm node, a region down with its nodes still
billed). This module only observes the world after each tick's kubelet model (it changes
no decision) and keeps, per deployment and per tick, the GPUs billed in each state, plus
the true capacity (``sim.profiles.true_capacity``, the oracle's yardstick) of the
replicas that were ready, so that the need at the world's true capacity can be set beside
what was held.

States (GPUs; a pool's billed GPUs = its nodes x GPUs per node, as ``FleetWorld._bill``):

- ``serving``: pods Ready and in the routing;
- ``loading``: pods bound to a node and not Ready yet (model start), or draining on a spot
  notice (on the GPU, out of the routing);
- ``provisioning``: the billed GPUs of the pool not holding a bound pod, up to the GPUs of
  pods waiting for a node there (nodes on their way for those pods);
- ``idle``: the rest of the pool's billed GPUs (no pod: Ready nodes kept for the scale-in
  delay, nodes coming up for nobody, a down region's nodes), counted to the deployment that
  last had a pod in that pool (``""`` before any did).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from modelfleet.api import ModelDeployment
from modelfleet.core.from_api import deployment_key
from modelfleet.sim.fleet import FleetWorld, PoolKey
from modelfleet.sim.load import LoadModel
from modelfleet.sim.profiles import true_capacity

STATES = ("serving", "loading", "provisioning", "idle")
"""The states of a billed GPU, in the order of ``GpuAccount.gpus``' last axis."""


@dataclass
class GpuAccount:
    """Per-tick GPUs per deployment and state, and the true capacity ready (see module)."""

    gpus: dict[str, npt.NDArray[np.float64]]
    """Deployment key (``""``: idle nodes nobody held yet) -> GPUs, shape (ticks, 4)."""
    capacity: dict[str, npt.NDArray[np.float64]]
    """Deployment key -> requests/s its ready replicas sustain within the SLO at the
    world's true capacity, shape (ticks,)."""
    best_capacity: dict[str, float]
    """Deployment key -> the highest true capacity of one replica over its GPU classes
    (the need at zero ready replicas is counted at it)."""
    gpus_per_replica: dict[str, int]
    standby: dict[str, int]
    """Deployment key -> warm standby replicas the policy keeps (0 for the baselines)."""
    _true: dict[tuple[str, str], float] = field(default_factory=dict)
    _holder: dict[tuple[str, str, str], str] = field(default_factory=dict)

    @classmethod
    def for_run(
        cls,
        deployments: tuple[ModelDeployment, ...],
        load: LoadModel,
        ticks: int,
        *,
        standby: bool,
    ) -> GpuAccount:
        """An empty account for a run of ``ticks`` ticks; ``standby``: the policy keeps
        each deployment's ``failover.warmStandbyReplicas``."""
        true: dict[tuple[str, str], float] = {}
        best: dict[str, float] = {}
        for md in deployments:
            key = deployment_key(md)
            d = load.deployments[key]
            for gpu, model in zip(d.classes, d.models, strict=True):
                true[(key, gpu)] = true_capacity(
                    model,
                    ttft_ms=md.spec.slo.ttft_p95_ms,
                    tpot_ms=md.spec.slo.tpot_p95_ms,
                    prompt_p95=d.traffic.prompt_p95,
                )
            best[key] = max((true[(key, g)] for g in d.classes), default=0.0)
        keys = [deployment_key(md) for md in deployments]
        return cls(
            gpus={k: np.zeros((ticks, len(STATES))) for k in [*keys, ""]},
            capacity={k: np.zeros(ticks) for k in keys},
            best_capacity=best,
            gpus_per_replica={
                deployment_key(md): md.spec.resources.gpu.count for md in deployments
            },
            standby={
                deployment_key(md): md.spec.failover.warm_standby_replicas if standby else 0
                for md in deployments
            },
            _true=true,
        )

    def record(
        self,
        world: FleetWorld,
        k: int,
        now: float,
        counts: Mapping[str, dict[PoolKey, tuple[int, int]]] | None = None,
    ) -> None:
        """Book tick ``k`` (at ``now``, after the world's sync) from the world's pools.
        ``counts``: each cluster's ``node_counts()`` as of now, when the caller has them
        (the sync's, ``FleetWorld.synced_counts``, with nothing resized since; else asked).

        The tick's sums are kept in Python floats and written once per deployment (one
        row each): each cell gets the same additions in the same order as when added to
        the array one by one, so the same float64 values, without a numpy scalar update
        per pod."""
        gpus = self.gpus
        rows: dict[str, list[float]] = {}
        capacity: dict[str, float] = {}
        for twin in world.twins():
            known = counts.get(twin.name) if counts is not None else None
            pools = known if known is not None else twin.provider.node_counts()
            for pool, (_, nodes) in pools.items():
                offering = twin.offerings.get(pool[0])
                if offering is None or nodes == 0:
                    continue
                billed = float(nodes * offering.gpus_per_node)
                pods = [] if twin.down else twin.pods.get(pool, [])
                waiting: dict[str, float] = defaultdict(float)
                bound = 0.0
                where = (twin.name, *pool)
                for pod in pods:
                    md = pod.md
                    if md not in gpus:
                        continue
                    self._holder[where] = md
                    if pod.scheduled is None:
                        waiting[md] += pod.gpus
                        continue
                    bound += pod.gpus
                    row = rows.get(md)
                    if row is None:
                        row = rows[md] = [0.0, 0.0, 0.0, 0.0]
                    if pod.ready(now):
                        row[0] += pod.gpus
                        capacity[md] = capacity.get(md, 0.0) + self._true.get(
                            (md, offering.gpu), 0.0
                        )
                    else:
                        row[1] += pod.gpus
                free = max(0.0, billed - bound)
                for md, n in sorted(waiting.items()):
                    booked = min(n, free)
                    row = rows.get(md)
                    if row is None:
                        row = rows[md] = [0.0, 0.0, 0.0, 0.0]
                    row[2] += booked
                    free -= booked
                if free > 0:
                    holder = self._holder.get(where, "")
                    row = rows.get(holder)
                    if row is None:
                        row = rows[holder] = [0.0, 0.0, 0.0, 0.0]
                    row[3] += free
        for md, row in rows.items():
            gpus[md][k] += row
        for md, cap in capacity.items():
            self.capacity[md][k] += cap

    def minute_columns(
        self,
        load: LoadModel,
        key: str,
        name: str,
        seconds: slice,
        ticks: slice,
        ready: npt.NDArray[np.int32],
    ) -> dict[str, float]:
        """The timeline's columns of deployment ``key`` (short ``name``) for one minute
        (``seconds`` of the load, ``ticks`` of the run; ``ready``: ready replicas per tick):
        mean GPUs per state, mean ready replicas, the warm standby, ``need``: the
        replicas the minute's rate needed at the true capacity of the replicas that were
        ready (of the best GPU class while none was), and ``need_best``: at the best GPU
        class's. The rate is the oracle's: the minute's mean arrivals or, if higher, its
        highest expected rate."""
        traffic = load.deployments[key].traffic
        arrivals = traffic.arrivals[seconds]
        rate = max(
            float(arrivals.sum()) / 60.0,
            float(traffic.rate[seconds].max(initial=0.0)),
        )
        n = ready[ticks].astype(np.float64)
        cap = self.capacity[key][ticks]
        per_replica = np.where(n > 0, cap / np.maximum(n, 1.0), self.best_capacity[key])
        need = np.where(per_replica > 0, rate / np.maximum(per_replica, 1e-9), 0.0)
        gpus = self.gpus[key][ticks]
        out = {
            f"gpu_{state}:{name}": round(float(gpus[:, i].mean()), 3)
            for i, state in enumerate(STATES)
        }
        out[f"serving:{name}"] = round(float(n.mean()), 3) if len(n) else 0.0
        out[f"need:{name}"] = round(float(need.mean()), 3) if len(need) else 0.0
        best = self.best_capacity[key]
        out[f"need_best:{name}"] = round(rate / best, 3) if best > 0 else 0.0
        out[f"standby:{name}"] = self.standby[key]
        out[f"gpus_per_replica:{name}"] = self.gpus_per_replica[key]
        return out

    def unheld_idle(self, ticks: slice) -> float:
        """Mean idle GPUs over ``ticks`` in pools no deployment had a pod in yet."""
        return round(float(self.gpus[""][ticks, 3].mean()), 3)
