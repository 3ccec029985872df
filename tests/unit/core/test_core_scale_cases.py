"""The autoscaler faults of ../shared/cases as tests, with the right values, and the kind of
fault each one stands for.

- ``scale-up-while-replicas-start``: 2 ready replicas at 1.55x the TTFT objective and
  replicas on their way. HPA semantics: the ratio multiplies the *ready* replicas it was
  measured on, and replicas placed but not ready count toward the need. Right: 4, then
  hold (was 2 -> 4 -> 7 -> 11 -> 16 in 15 s).
- ``scale-from-zero`` (core half; the operator and simulator halves are in
  ``tests/unit/sim/test_sim_scale_from_zero.py`` and ``tests/integration``): a demand
  signal at zero replicas brings a ``min: 0`` deployment to at least one replica.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelfleet.api.validation import load_objects
from modelfleet.core import DecisionState, MetricsSnapshot, plan
from modelfleet.core.from_api import deployment_from_api, fleet_from_api
from modelfleet.core.types import ClusterSignals, ExistingPlacement, FleetSnapshot

CASES = Path(__file__).parents[2] / "fixtures" / "cases"
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _replay(ttft_ms: float, ready: int, *, passes: int = 13, every: float = 5.0) -> list[int]:
    """What the operator does while new replicas start: reconcile every ``every`` s with
    ``ready`` replicas reporting ``ttft_ms`` at a steady rate, carrying the decision state
    and the placements from one pass to the next (status.decision / status.placements)."""
    here = CASES / "scale-up-while-replicas-start"
    mds, _ = load_objects([here / "md.yaml"])
    _, fcs = load_objects([here / "fleet.yaml"])
    spec = deployment_from_api(mds[0])
    base = fleet_from_api(fcs, [], default_health="Healthy")
    state = DecisionState(last_desired=ready)
    placements = (
        ExistingPlacement("default/llama", "west", "gcp-h100-1g", "OnDemand", ready, ready),
    )
    out = []
    for i in range(passes):
        now = T0 + timedelta(seconds=every * i)
        sig = ClusterSignals(
            ready_replicas=ready, ttft_p95_ms=ttft_ms, request_rate=14.2, observed_at=now
        )
        metrics = MetricsSnapshot({"default/llama": {"west": sig}}, observed_at=now)
        p = plan(
            spec, FleetSnapshot(base.clusters, placements), metrics=metrics, state=state, now=now
        )
        out.append(p.desired_replicas)
        state = p.state
        placements = tuple(
            ExistingPlacement(
                "default/llama", d.cluster, d.instance_type, d.capacity_type, d.replicas, ready
            )
            for d in p.placements
        )
    return out


def test_the_case_scales_to_four_then_holds_while_replicas_start() -> None:
    assert _replay(310.0, 2) == [4] * 13


@pytest.mark.parametrize(
    ("ttft_ms", "ready", "want"),
    [(310.0, 2, 4), (250.0, 3, 4), (390.0, 1, 2), (500.0, 4, 10), (230.0, 5, 6)],
)
def test_any_ratio_sizes_once_from_the_ready_replicas_and_holds(
    ttft_ms: float, ready: int, want: int
) -> None:
    """The whole kind: ceil(ready x ratio) once, then the count stays while the same ratio
    is measured on the same ready replicas (panic ratios included: 500/200 = 2.5x)."""
    assert set(_replay(ttft_ms, ready, passes=8)) == {want}


def test_more_load_on_the_same_ready_replicas_still_scales_up() -> None:
    """Holding is not freezing: a worse ratio on the ready replicas raises the count."""
    here = CASES / "scale-up-while-replicas-start"
    mds, _ = load_objects([here / "md.yaml"])
    _, fcs = load_objects([here / "fleet.yaml"])
    spec = deployment_from_api(mds[0])
    base = fleet_from_api(fcs, [], default_health="Healthy")
    placements = (ExistingPlacement("default/llama", "west", "gcp-h100-1g", "OnDemand", 4, 2),)
    sig = ClusterSignals(ready_replicas=2, ttft_p95_ms=600.0, request_rate=30.0, observed_at=T0)
    p = plan(
        spec,
        FleetSnapshot(base.clusters, placements),
        metrics=MetricsSnapshot({"default/llama": {"west": sig}}, observed_at=T0),
        state=DecisionState(last_desired=4),
        now=T0,
    )
    assert p.desired_replicas == 6  # ceil(2 x 3.0)


def test_a_demand_signal_at_zero_starts_a_min_zero_deployment() -> None:
    here = CASES / "scale-from-zero"
    mds, _ = load_objects([here / "deployments" / "batch.yaml"])
    _, fcs = load_objects([here / "fleet"])
    spec = deployment_from_api(mds[0])
    fleet = fleet_from_api(fcs, [], default_health="Healthy")
    state = DecisionState(last_desired=0)
    quiet = MetricsSnapshot({}, observed_at=T0)
    assert plan(spec, fleet, metrics=quiet, state=state, now=T0).desired_replicas == 0
    demand = MetricsSnapshot(
        {"batch/nightly": {"gcp-usc1": ClusterSignals(request_rate=3.0, observed_at=T0)}},
        observed_at=T0,
    )
    p = plan(spec, fleet, metrics=demand, state=state, now=T0)
    assert p.desired_replicas == 1
    assert [c.code for c in p.changes][:1] == ["ScaleFromZero"]


def test_the_cases_plan_command_holds_at_four() -> None:
    """The case's single pass as a user runs it: ``modelfleet plan --fleet fleet.yaml
    md-with-status.yaml --metrics metrics.yaml --now 2025-06-01T12:00:05Z -o json``, 4
    replicas placed of which 2 ready at 1.55x the objective (it gave 7)."""
    import json

    from typer.testing import CliRunner

    from modelfleet.cli import app

    here = CASES / "scale-up-while-replicas-start"
    result = CliRunner().invoke(
        app,
        [
            "plan", "--fleet", str(here / "fleet.yaml"), str(here / "md-with-status.yaml"),
            "--metrics", str(here / "metrics.yaml"), "--now", "2025-06-01T12:00:05Z",
            "-o", "json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["desiredReplicas"] == 4
