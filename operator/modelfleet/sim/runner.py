"""Run several policies over one scenario, in parallel processes when asked.

``simulate --compare`` runs four policies over the same traffic; each run is independent
(its own world, clock and seeded random streams, built from the scenario and the seed
alone), so they can run in separate processes and give exactly the reports they give one
after the other. A worker runs its policy, evaluates it, and sends back the report with the
run detached from its live world (``PolicyRun.detached``: the simulated clusters hold
closures and cannot be pickled; the report reads only the world's event log and losses).

The wall time is bounded by the longest policy (modelfleet, which runs the real reconciler);
the others share the remaining cores. Policies are submitted longest first.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from typing import Any

from modelfleet.sim.engine import PolicyRun, run_policy
from modelfleet.sim.host import without_hugepage_advice
from modelfleet.sim.policies import PolicyName
from modelfleet.sim.report import DrawsMemo, PolicyReport, evaluate, prepare
from modelfleet.sim.scenario import Scenario
from modelfleet.sim.traffic import Traffic


def default_jobs() -> int:
    """The CPU cores this process may run on (at least 1): ``--jobs``' default."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has affinity
        return max(1, os.cpu_count() or 1)


_DRAWS = DrawsMemo(size=6)
"""A worker's requests' draws (``report.prepare``): the baselines a worker evaluates one
after the other share one traffic (each gets its own copy of it), so the draws, ~10^7
requests' worth for a day of the default scenario, are made once per worker."""


def _report(name: PolicyName, scenario: Scenario, traffic: dict[str, Traffic]) -> PolicyReport:
    """One policy's report, its run detached (the worker process' job; a worker started
    by a fork server inherits no numpy setting, hence the advice again)."""
    with without_hugepage_advice():
        run = run_policy(name, scenario, traffic)
        report = evaluate(run, prepare(scenario, traffic, name, memo=_DRAWS))
    report.run = report.run.detached()
    return report


def _detached_run(name: PolicyName, scenario: Scenario, traffic: dict[str, Traffic]) -> PolicyRun:
    """One policy's run, detached and not evaluated (the parent evaluates it)."""
    with without_hugepage_advice():
        return run_policy(name, scenario, traffic).detached()


def _context() -> multiprocessing.context.BaseContext:
    """Fork when this process has one thread (the CLI: workers start at once, modules
    loaded); else a fork server (forking a process whose other threads may hold a lock,
    e.g. under a test runner, can deadlock the child)."""
    methods = multiprocessing.get_all_start_methods()
    if threading.active_count() == 1 and "fork" in methods:
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["modelfleet.sim.runner"])
    return context


def _cost_rank(name: PolicyName) -> int:
    """Longest first: the modelfleet variants run the reconciler, the oracle plans ahead."""
    return 0 if name.startswith("modelfleet") else 1 if name == "oracle" else 2


def run_reports(
    scenario: Scenario,
    names: Sequence[PolicyName],
    traffic: dict[str, Traffic],
    *,
    jobs: int = 1,
    while_waiting: Callable[[], object] | None = None,
    with_done: Callable[[list[PolicyReport]], object] | None = None,
) -> list[PolicyReport]:
    """Every policy of ``names`` evaluated over ``traffic``, in the order of ``names``.

    ``jobs`` > 1 runs up to that many policies at once in worker processes (never more
    processes than policies); the reports are the same as with ``jobs`` = 1, except that
    their runs are detached from the live world. ``while_waiting`` (with workers) is
    called in this process once every policy but the longest has finished, while a core
    is free (e.g. to load what the outputs need); ``with_done`` (with workers) right
    after it, with the reports finished by then (e.g. to make their share of the
    outputs while the longest run goes on). The modelfleet runs are evaluated in
    this process (``report.prepare`` made while they run). Raises what a run raises.
    """
    workers = min(max(1, jobs), len(names))
    if workers <= 1:
        return [evaluate(run_policy(name, scenario, traffic)) for name in names]
    order = sorted(names, key=_cost_rank)
    # The longest runs (modelfleet) come back unevaluated: the part of their evaluation
    # that only the traffic decides is made here meanwhile, on the core the others leave
    # free, and only the rest is left for after the run (the same figures).
    here = [name for name in order if _cost_rank(name) == 0]
    with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
        runs = {n: pool.submit(_detached_run, n, scenario, traffic) for n in here}
        futures = {n: pool.submit(_report, n, scenario, traffic) for n in order if n not in here}
        others: list[Future[Any]] = [runs.get(n) or futures[n] for n in order[1:]]
        wait(others)
        if while_waiting is not None:
            while_waiting()
        if with_done is not None:
            with_done([futures[n].result() for n in order if n in futures])
        prepared = {n: prepare(scenario, traffic, n) for n in here}
        reports = {n: evaluate(runs[n].result(), prepared.pop(n)) for n in here}
        reports |= {n: f.result() for n, f in futures.items()}
        return [reports[n] for n in names]
