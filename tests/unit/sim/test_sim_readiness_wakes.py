"""The simulated member clusters feed the reconciler's readiness wakes as the operator's
informers do (docs/simulation.md "Running"; ``reconciler.wakes``): every Deployment write
of the in-memory member APIs reaches one ``ReadinessWakes`` connected to the operator
loop's schedule, so the kubelet model's readiness wakes the deployments in a real run, and
the baselines (no reconciler) have none."""

from __future__ import annotations

from pathlib import Path

from modelfleet.reconciler.wakes import ReadinessWakes
from modelfleet.sim.engine import run_policy
from modelfleet.sim.fleet import FleetWorld
from modelfleet.sim.scenario import load_scenario

EXAMPLES = Path(__file__).parents[3] / "examples" / "scenarios"


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "wakes.toml"
    path.write_text(
        f"""
name = "wakes"
seed = 3
durationHours = 0.25
startHour = 14
fleet = ["{(EXAMPLES / "fleet").as_posix()}"]

[[deployments]]
manifest = "{(EXAMPLES / "deployments" / "code.yaml").as_posix()}"
[deployments.traffic]
peakRps = 30
troughRps = 30
"""
    )
    return path


def _wakes(world: object) -> set[ReadinessWakes]:
    assert isinstance(world, FleetWorld)
    found = set()
    for twin in world.twins():
        hook = twin.client.on_deployment_change
        if hook is not None:
            owner = getattr(hook, "__self__", None)
            assert isinstance(owner, ReadinessWakes)
            found.add(owner)
    return found


def test_the_kubelet_model_s_readiness_wakes_the_deployment(tmp_path: Path) -> None:
    run = run_policy("modelfleet", load_scenario(_scenario(tmp_path)))
    wakes = _wakes(run.world)
    assert len(wakes) == 1, "one wake source for every member cluster"
    (source,) = wakes
    assert source.connected, "the operator loop's schedule is connected"
    assert source.wakes >= 1, "replicas turned Ready during warm-up: at least one wake"
    assert run.ready["assistants/code-qwen-7b"].max() >= 1


def test_the_baselines_have_no_wakes(tmp_path: Path) -> None:
    run = run_policy("static-peak", load_scenario(_scenario(tmp_path)))
    assert _wakes(run.world) == set()
