"""The per-cluster health state machine: Healthy -> Suspect -> Failed -> Recovering -> Healthy.

The operator's FleetCluster probe loop calls ``next_health`` after every probe and writes
the result to ``status.health``/``healthSince``/``lastSuccessTime``; the planner reads that
status through ``ClusterView``. Keeping the transitions here (pure, clock passed in) makes
failover timing testable without waiting: a cluster is Failed only after probes have failed
for ``fail_after_seconds`` since the last success, and is Healthy again only after
``recover_after_seconds`` of unbroken success (hysteresis: one failure while Recovering sends
it straight back to Failed).

```
 Unknown --ok--> Healthy --fail--> Suspect --fail for fail_after--> Failed
                    ^                 |ok                              |ok
                    |                 v                                v
                    +---ok for recover_after------------------- Recovering --fail--> Failed
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelfleet.core.types import ClusterView, FailoverPolicy, HealthState


@dataclass(frozen=True, slots=True)
class HealthRecord:
    """A cluster's health: the state, when it was entered, the last successful probe, and
    when the cluster last came back from Failed (its first good probe after it; None once it
    fails again or when it never failed)."""

    state: HealthState = "Unknown"
    since: datetime | None = None
    last_success: datetime | None = None
    recovered_since: datetime | None = None


def next_health(
    current: HealthRecord,
    probe_ok: bool,
    now: datetime,
    *,
    fail_after_seconds: float = 45.0,
    recover_after_seconds: float = 300.0,
) -> HealthRecord:
    """The health after one probe at ``now``. Pure and total: every state handles both results.

    - Unknown: ok -> Healthy; fail -> Suspect.
    - Healthy: ok stays; fail -> Suspect.
    - Suspect: ok -> Healthy; fail -> Failed once ``now - last_success >= fail_after_seconds``
      (measured from when it turned Suspect when it never succeeded).
    - Failed: ok -> Recovering; fail stays.
    - Recovering: fail -> Failed; ok -> Healthy once ``now - since >= recover_after_seconds``.

    ``since`` changes only on a transition; ``last_success`` is ``now`` after an ok probe;
    ``recovered_since`` is set on Failed -> Recovering, kept while the cluster answers
    (through Healthy, where failback hysteresis still reads it) and cleared on Failed.
    """
    last_success = now if probe_ok else current.last_success
    state = current.state
    since = current.since or now
    recovered = current.recovered_since

    def go(target: HealthState) -> HealthRecord:
        back = now if target == "Recovering" else None if target == "Failed" else recovered
        return HealthRecord(target, now, last_success, back)

    if state == "Unknown":
        return go("Healthy" if probe_ok else "Suspect")
    if state == "Healthy":
        if probe_ok:
            return HealthRecord("Healthy", since, last_success, recovered)
        return go("Suspect")
    if state == "Suspect":
        if probe_ok:
            return go("Healthy")
        failing_from = current.last_success or since
        if (now - failing_from).total_seconds() >= fail_after_seconds:
            return go("Failed")
        return HealthRecord("Suspect", since, last_success, recovered)
    if state == "Failed":
        return go("Recovering") if probe_ok else HealthRecord("Failed", since, last_success)
    # Recovering
    if not probe_ok:
        return go("Failed")
    if (now - since).total_seconds() >= recover_after_seconds:
        return go("Healthy")
    return HealthRecord("Recovering", since, last_success, recovered)


def is_lost(cluster: ClusterView, failover: FailoverPolicy, now: datetime) -> bool:
    """True when the deployment must treat replicas on ``cluster`` as lost.

    A Failed cluster is lost. A Suspect one is lost for this deployment once it has not
    answered for the deployment's own ``fail_after_seconds`` (a deployment may be stricter
    than the fleet-wide probe loop).
    """
    if cluster.health == "Failed":
        return True
    if cluster.health == "Suspect":
        failing_from = cluster.last_success or cluster.health_since
        if failing_from is not None:
            return (now - failing_from).total_seconds() >= failover.fail_after_seconds
    return False


def accepts_new_replicas(
    cluster: ClusterView, failover: FailoverPolicy, now: datetime
) -> str | None:
    """None when new replicas may go to ``cluster``; otherwise a short human reason.

    Only Healthy and Recovering clusters accept new replicas, and a cluster that came back
    from Failed only once it has answered for the deployment's ``failback_after_seconds``
    (failback hysteresis, ``failing_back``), whether it is still Recovering or already
    Healthy (the fleet's ``recoverAfterSeconds`` may be shorter than a deployment's window).
    """
    if cluster.health not in ("Healthy", "Recovering"):
        return f"health is {cluster.health}"
    return failing_back(cluster, failover, now)


def failing_back(cluster: ClusterView, failover: FailoverPolicy, now: datetime) -> str | None:
    """A short reason while ``cluster`` is inside the deployment's failback window (it came
    back from Failed less than ``failback_after_seconds`` ago), else None. Replicas, new or
    still there from before the outage, move back only after the window."""
    if cluster.health not in ("Healthy", "Recovering"):
        return None
    back = cluster.recovered_since
    if back is None:
        if cluster.health != "Recovering":
            return None
        back = cluster.health_since
        if back is None:
            return "recovering (since unknown)"
    waited = (now - back).total_seconds()
    if waited >= failover.failback_after_seconds:
        return None
    # The start, not the seconds elapsed: the text (status.retiring, Events) stays the same
    # from one pass to the next.
    return f"back since {back.isoformat()}, failback after {failover.failback_after_seconds}s"
