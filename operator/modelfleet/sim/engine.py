"""The simulation loop: one policy over one scenario, on a virtual clock.

Per tick (``control.tickSeconds``, 5 s like the operator's timer): due events fire (outage,
stockout, reclaim), the policy acts (for modelfleet: probes and reconciles when due), the
kubelet model advances pods and bills nodes, and the load model serves the tick's seconds
with the replicas that are ready. Events that kopf handles at once (the gateway's
wake-up of a deployment at zero) are handled at the second they happen within the tick,
not at the next tick. The run begins ``control.warmupMinutes`` before the
scenario's start so every policy has its capacity up when measurement begins; everything is
seeded, so a (scenario, seed, policy) triple always gives the same run.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import selectors
import types
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from modelfleet.core.from_api import deployment_key
from modelfleet.sim.baselines import HpaFailoverPolicy, StaticPeakPolicy
from modelfleet.sim.fleet import FleetWorld, Loss, VirtualClock
from modelfleet.sim.gpu_account import GpuAccount
from modelfleet.sim.load import LoadModel
from modelfleet.sim.oracle import OraclePolicy
from modelfleet.sim.policies import ModelfleetPolicy, Policy, PolicyName
from modelfleet.sim.profiles import measured_profiles
from modelfleet.sim.prometheus import SimulatedMetricsSource
from modelfleet.sim.scenario import Scenario
from modelfleet.sim.traffic import Traffic, generate

SCENARIO_EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
"""Day 0 of every scenario (a Monday); ``startHour`` is added to it."""


class WorldLog(Protocol):
    """What the report reads of the world after a run (``FleetWorld`` is one)."""

    @property
    def event_log(self) -> list[dict[str, object]]:
        """Every scenario event that fired, as report.json lists it."""
        ...

    @property
    def losses(self) -> list[Loss]:
        """Every abrupt loss of ready replicas, in time order."""
        ...


@dataclass(frozen=True)
class WorldRecord:
    """The ``WorldLog`` of a finished run without the live world (its simulated clusters
    hold closures and event loops' leftovers): what a run sends back from a worker process."""

    event_log: list[dict[str, object]]
    losses: list[Loss]


@dataclass
class PolicyRun:
    """Everything one policy's run recorded (the report is computed from it)."""

    policy: str
    scenario: Scenario
    offset: int
    """Warm-up seconds before the scenario start."""
    tick: float
    load: LoadModel
    world: WorldLog
    """The simulated world (``FleetWorld``), or only its record (``detached``)."""
    ready: dict[str, npt.NDArray[np.int32]]
    """Ready replicas per deployment per tick."""
    desired: dict[str, npt.NDArray[np.int32]]
    """Replicas the policy wanted serving per deployment per tick (standby excluded)."""
    cost: npt.NDArray[np.float64]
    """USD spent during each tick."""
    gpus: npt.NDArray[np.float64]
    """GPU-hours spent during each tick."""
    on_demand_cost: npt.NDArray[np.float64]
    """What the same nodes would have cost at on-demand prices, per tick."""
    region_ready: dict[str, npt.NDArray[np.int32]] = field(default_factory=dict)
    """Ready replicas (all deployments) per region per tick."""
    capacity_errors: list[tuple[float, str]] = field(default_factory=list)
    decisions: int = 0
    """Reconcile passes (modelfleet) run."""
    gpu_account: GpuAccount | None = None
    """Where the billed GPUs went per tick (``sim.gpu_account``); observes, decides nothing."""

    @property
    def start(self) -> datetime:
        return SCENARIO_EPOCH + timedelta(hours=self.scenario.spec.start_hour)

    def detached(self) -> PolicyRun:
        """This run with the world reduced to its record: everything the report, the
        timeline and the plot read, and picklable (sent back from a worker process)."""
        record = WorldRecord(list(self.world.event_log), list(self.world.losses))
        return replace(self, world=record)


def traffic_for(scenario: Scenario, *, seconds: int, offset: int) -> dict[str, Traffic]:
    """Every deployment's traffic (the same for every policy of a run)."""
    return {
        deployment_key(md): generate(
            scenario.traffic_of(md),
            seconds=seconds,
            seed=scenario.spec.seed,
            name=deployment_key(md),
            start_hour=scenario.spec.start_hour,
            offset=offset,
        )
        for md in scenario.deployments
    }


def gpu_classes(scenario: Scenario) -> dict[str, tuple[str, ...]]:
    """The GPU models each deployment may run on (its types among the fleet's offerings)."""
    offered = sorted({o.gpu for c in scenario.fleet for o in c.spec.gpu_offerings or []})
    out = {}
    for md in scenario.deployments:
        types = md.spec.resources.gpu.types
        out[deployment_key(md)] = tuple(g for g in offered if not types or g in types)
    return out


def make_policy(
    name: PolicyName, scenario: Scenario, world: FleetWorld, load: LoadModel, clock: VirtualClock
) -> Policy:
    """The policy called ``name`` on this world."""
    if name == "static-peak":
        return StaticPeakPolicy(world, scenario.deployments, load)
    if name == "hpa-failover":
        return HpaFailoverPolicy(world, scenario.deployments, load)
    if name == "oracle":
        return OraclePolicy(world, scenario.deployments, load, scenario)
    metrics = SimulatedMetricsSource(load, clock)
    error = scenario.spec.world.control.profile_error
    deployments = tuple(
        measured_profiles(
            md,
            load.deployments[deployment_key(md)].models,
            load.deployments[deployment_key(md)].traffic,
            seed=scenario.spec.seed,
            error=error,
        )
        for md in scenario.deployments
    )
    return ModelfleetPolicy(name, world, deployments, metrics=metrics, clock=clock, load=load)


async def _run(name: PolicyName, scenario: Scenario, traffic: dict[str, Traffic]) -> PolicyRun:
    spec = scenario.spec
    world_params = spec.world
    control = world_params.control
    offset = int(control.warmup_minutes * 60)
    seconds = offset + int(spec.duration_hours * 3600)
    tick = control.tick_seconds
    start = SCENARIO_EPOCH + timedelta(hours=spec.start_hour) - timedelta(seconds=offset)
    clock = VirtualClock(start)
    world = FleetWorld(
        scenario,
        world=world_params,
        clock=clock,
        seed=spec.seed,
        offset=offset,
        workloads_from_clients=name.startswith("modelfleet"),
    )
    keys = [deployment_key(md) for md in scenario.deployments]
    gpus_per_replica = {
        deployment_key(md): md.spec.resources.gpu.count for md in scenario.deployments
    }
    load = LoadModel(
        world_params,
        traffic,
        gpu_classes(scenario),
        gpus_per_replica,
        tuple(world.clusters),
        seconds=seconds,
    )
    policy = make_policy(name, scenario, world, load, clock)
    ticks = int(seconds // tick)
    ready = {k: np.zeros(ticks, dtype=np.int32) for k in keys}
    desired = {k: np.zeros(ticks, dtype=np.int32) for k in keys}
    regions = sorted({c.region for c in world.twins()})
    region_ready = {r: np.zeros(ticks, dtype=np.int32) for r in regions}
    region_of = {c.name: c.region for c in world.twins()}
    cost = np.zeros(ticks)
    gpus = np.zeros(ticks)
    on_demand = np.zeros(ticks)
    seen_losses = 0
    account = GpuAccount.for_run(
        scenario.deployments, load, ticks, standby=name in ("modelfleet", "modelfleet-on-demand")
    )
    for k in range(ticks):
        now = k * tick
        clock.set(now)
        world.fire_events(now)
        await policy.tick(now)
        spent, hours, listed = world.cost_usd, world.gpu_hours, world.on_demand_cost_usd
        world.sync(now, tick)
        cost[k] = world.cost_usd - spent
        gpus[k] = world.gpu_hours - hours
        on_demand[k] = world.on_demand_cost_usd - listed
        # The sync's node counts: nothing between it and the booking resizes a pool.
        account.record(world, k, now, world.synced_counts)
        for loss in world.losses[seen_losses:]:
            if loss.before and not loss.drained:
                load.vanished(loss.md, now, loss.lost / loss.before)
        seen_losses = len(world.losses)
        pods = world.ready_pods(now)
        for (md, cluster, _), n in pods.items():
            ready[md][k] += n
            region_ready[region_of[cluster]][k] += n
        for key in keys:
            desired[key][k] = policy.desired(key)
        load.advance(int(now), int(now + tick), pods)
        if isinstance(policy, ModelfleetPolicy):
            # Events inside the tick, at their own second (a wake-up at zero).
            await policy.react(now, now + tick)
        if k % 720 == 0:
            world.trim_call_logs()
    return PolicyRun(
        policy=name,
        scenario=scenario,
        offset=offset,
        tick=tick,
        load=load,
        world=world,
        ready=ready,
        desired=desired,
        cost=cost,
        gpus=gpus,
        on_demand_cost=on_demand,
        region_ready=region_ready,
        capacity_errors=list(policy.capacity_errors()),
        decisions=getattr(policy, "reconciles", 0),
        gpu_account=account,
    )


def run_policy(
    name: PolicyName, scenario: Scenario, traffic: dict[str, Traffic] | None = None
) -> PolicyRun:
    """Simulate ``scenario`` under policy ``name`` (synchronously; its own event loop)."""
    control = scenario.spec.world.control
    offset = int(control.warmup_minutes * 60)
    seconds = offset + int(scenario.spec.duration_hours * 3600)
    traffic = traffic or traffic_for(scenario, seconds=seconds, offset=offset)
    gc.freeze()  # the long-lived manifests and models stay out of every collection
    thresholds = gc.get_threshold()
    # Nearly every object of a pass dies by reference counting: at the default threshold
    # (700) the young generation was collected 360 times in a 4 h run, ~2% of its CPU,
    # where 20,000 gives 2 collections. Cycles are still collected, less often.
    gc.set_threshold(_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        with asyncio.Runner(loop_factory=_simulation_loop) as runner:
            return runner.run(_run(name, scenario, traffic))
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


_YOUNG_THRESHOLD = 20_000
"""Allocations between two collections of the young generation during a run."""


class _NoPollSelector(selectors.DefaultSelector):
    """The event loop's selector, minus the system call of a poll that may not wait.

    The simulation does no I/O: its clusters, clouds and metrics are in memory, so every
    step of the loop has callbacks ready and polls its file descriptors with timeout 0,
    which finds nothing (its only descriptor is the loop's wake-up pipe, written by other
    threads, of which a run has none). Such a poll returns "nothing" without asking the
    kernel; a poll that may wait (timeout None or > 0) asks it as usual.
    """

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return []
        events: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
        return events


def _simulation_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.SelectorEventLoop(_NoPollSelector())
    loop.set_task_factory(_eager_task)
    return loop


def _eager_task(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any] | Generator[Any, Any, Any],
    *,
    context: contextvars.Context | None = None,
) -> asyncio.Future[Any]:
    """The simulation loop's task factory: a task created inside the run (the reconciler's
    ``gather`` over member clusters, providers, metrics) runs its first step at once, and
    one that finishes there (every call the simulated fleet answers from memory) is a done
    Future, never a scheduled Task; one that suspends goes on as a Task from where it
    stopped. Python 3.12's eager tasks, without their Task object (in Python it costs
    more than the scheduling it saves).

    The order of every side effect is the one the loop gave: a pass is the loop's only
    work, so the tasks of a ``gather`` ran one after the other, each to the end of its
    first step, in the order they were made; that is what this does, without the loop's
    round trip per task. The first step runs in a copy of the context, as a Task's would.
    It runs as the current task's code: ``asyncio.timeout`` around it would arm the
    current task (the simulator sets every such limit to None, ``sim/policies.py``).
    The run's own main task is a plain Task.
    """
    if asyncio.current_task(loop) is None:
        return asyncio.Task(coro, loop=loop, context=context)
    context = context or contextvars.copy_context()
    future: asyncio.Future[Any] = loop.create_future()
    try:
        yielded = context.run(coro.send, None)
    except StopIteration as done:
        future.set_result(done.value)
        return future
    except asyncio.CancelledError:
        future.cancel()
        return future
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        future.set_exception(exc)
        return future
    return asyncio.Task(_resumed(coro, yielded), loop=loop, context=context)


@types.coroutine
def _resumed(
    coro: Coroutine[Any, Any, Any] | Generator[Any, Any, Any], yielded: Any
) -> Generator[Any, Any, Any]:
    """``coro`` after an eager first step that yielded ``yielded``: hands that to the
    Task driving this generator, then passes each value or exception the Task sends on."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as done:
                return done.value
