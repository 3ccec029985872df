"""Argo CD health checks for ModelDeployment and FleetCluster, run in a real Lua VM.

Argo CD evaluates health scripts with gopher-lua (Lua 5.1) in a sandbox that opens only
the base, table, package and a reduced os library (the string library only with
``useOpenLibs``). These tests run the chart's scripts on Lua 5.1 through ``lupa`` in the
same kind of sandbox, with the live object as the global ``obj`` and its JSON numbers as
floats, as Argo CD passes them. Every branch of each script has a row below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest

from modelfleet.api.conditions import TERMINAL_REASONS

SCRIPTS = Path(__file__).resolve().parents[2] / "charts" / "modelfleet" / "files" / "argocd"


def _as_json_numbers(value: Any) -> Any:
    """Turn ints into floats, as Argo CD's JSON -> Lua conversion does."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {key: _as_json_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json_numbers(item) for item in value]
    return value


def _sandboxed_runtime() -> Any:
    """A Lua 5.1 runtime with roughly Argo CD's default library set."""
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    runtime.execute(
        """
        debug.setmetatable("", nil)  -- no ("x"):upper() without the string library
        string, io, math, debug, coroutine = nil, nil, nil, nil, nil
        dofile, loadfile, load, loadstring = nil, nil, nil, nil
        """
    )
    return runtime


def run_health_check(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    """Evaluate an Argo CD health script against ``obj``; return (status, message)."""
    runtime = _sandboxed_runtime()
    runtime.globals().obj = runtime.table_from(_as_json_numbers(obj), recursive=True)
    hs = runtime.execute(script)
    assert hs is not None, "the script must return the hs table"
    return hs["status"], hs["message"]


@pytest.fixture(scope="module")
def modeldeployment_script() -> str:
    return (SCRIPTS / "modeldeployment.lua").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def fleetcluster_script() -> str:
    return (SCRIPTS / "fleetcluster.lua").read_text(encoding="utf-8")


def condition(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "observedGeneration": 3,
    }


def modeldeployment(
    *, generation: int | None = 3, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "llama", "namespace": "team-a"}
    if generation is not None:
        metadata["generation"] = generation
    obj: dict[str, Any] = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": metadata,
        "spec": {"model": {"name": "llama-3.1-8b-instruct"}},
    }
    if status is not None:
        obj["status"] = status
    return obj


def md_status(*conditions: dict[str, Any], observed: int | None = 3) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions), "costPerHour": 61.4}
    if observed is not None:
        status["observedGeneration"] = observed
    return status


READY = condition("Ready", "True", "AllReplicasReady", "4/4 replicas ready in 2 regions")
NOT_READY = condition("Ready", "False", "WaitingForReplicas", "2/4 replicas ready")
PROGRESSING = condition("Progressing", "True", "ScalingUp", "Scaling from 2 to 4 replicas")
DEGRADED = condition("Degraded", "True", "RegionFailed", "us-east-1 failed; 2 replicas moving")
WAITING = "Waiting for the operator to observe generation 3"

MODELDEPLOYMENT_CASES = [
    pytest.param(modeldeployment(), "Progressing", WAITING, id="no-status"),
    pytest.param(
        modeldeployment(status=md_status(READY, observed=None)),
        "Progressing",
        WAITING,
        id="no-observed-generation",
    ),
    pytest.param(
        modeldeployment(status=md_status(READY, observed=2)),
        "Progressing",
        WAITING,
        id="stale-generation-ignores-ready",
    ),
    pytest.param(
        modeldeployment(status=md_status(DEGRADED, observed=2)),
        "Progressing",
        WAITING,
        id="stale-generation-ignores-degraded",
    ),
    pytest.param(
        modeldeployment(status=md_status(READY)),
        "Healthy",
        "4/4 replicas ready in 2 regions",
        id="ready",
    ),
    pytest.param(
        modeldeployment(status=md_status(condition("Ready", "True", "AllReplicasReady"))),
        "Healthy",
        "AllReplicasReady",
        id="ready-without-message-uses-reason",
    ),
    pytest.param(
        modeldeployment(status=md_status(condition("Degraded", "True", "RegionFailed"), READY)),
        "Healthy",
        "4/4 replicas ready in 2 regions",
        id="ready-wins-over-degraded",
    ),
    pytest.param(
        modeldeployment(status=md_status(NOT_READY, DEGRADED, PROGRESSING)),
        "Degraded",
        "us-east-1 failed; 2 replicas moving",
        id="degraded",
    ),
    *[
        pytest.param(
            modeldeployment(
                status=md_status(
                    condition("Ready", "False", reason, f"cannot place: {reason}"), PROGRESSING
                )
            ),
            "Degraded",
            f"cannot place: {reason}",
            id=f"terminal-{reason}",
        )
        # The operator's own list, so a reason added there must be taught to the script.
        for reason in sorted(TERMINAL_REASONS)
    ],
    pytest.param(
        modeldeployment(status=md_status(NOT_READY, PROGRESSING)),
        "Progressing",
        "Scaling from 2 to 4 replicas",
        id="progressing",
    ),
    pytest.param(
        modeldeployment(
            status=md_status(
                condition("Ready", "False", "WaitingForReplicas", "2/4 replicas ready"),
                condition("Progressing", "False", "Stable"),
                condition("Degraded", "False", "AsExpected"),
            )
        ),
        "Progressing",
        "2/4 replicas ready",
        id="not-ready-non-terminal-reports-ready-message",
    ),
    pytest.param(
        modeldeployment(status=md_status(condition("Ready", "Unknown", "Reconciling"))),
        "Progressing",
        "Reconciling",
        id="ready-unknown",
    ),
    pytest.param(
        modeldeployment(status=md_status()),
        "Progressing",
        "Waiting for the operator to report readiness",
        id="no-conditions",
    ),
    pytest.param(
        modeldeployment(status={"observedGeneration": 3}),
        "Progressing",
        "Waiting for the operator to report readiness",
        id="conditions-field-absent",
    ),
    pytest.param(
        modeldeployment(generation=None, status=md_status(READY, observed=1)),
        "Healthy",
        "4/4 replicas ready in 2 regions",
        id="object-without-generation-is-not-stuck",
    ),
]


@pytest.mark.parametrize(("obj", "expected_status", "expected_message"), MODELDEPLOYMENT_CASES)
def test_modeldeployment_health(
    modeldeployment_script: str,
    obj: dict[str, Any],
    expected_status: str,
    expected_message: str,
) -> None:
    assert run_health_check(modeldeployment_script, obj) == (expected_status, expected_message)


def fleetcluster(*, generation: int = 2, status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "FleetCluster",
        "metadata": {"name": "aws-use1", "generation": generation},
        "spec": {"provider": "aws", "region": "us-east-1"},
    }
    if status is not None:
        obj["status"] = status
    return obj


def fc_status(health: str | None, *conditions: dict[str, Any], observed: int = 2) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": observed, "stockouts": []}
    if health is not None:
        status["health"] = health
    if conditions:
        status["conditions"] = list(conditions)
    return status


FLEETCLUSTER_CASES = [
    pytest.param(
        fleetcluster(),
        "Progressing",
        "Waiting for the operator to observe generation 2",
        id="no-status",
    ),
    pytest.param(
        fleetcluster(status={"health": "Healthy"}),
        "Progressing",
        "Waiting for the operator to observe generation 2",
        id="no-observed-generation",
    ),
    pytest.param(
        fleetcluster(status=fc_status("Healthy", observed=1)),
        "Progressing",
        "Waiting for the operator to observe generation 2",
        id="stale-generation",
    ),
    pytest.param(
        fleetcluster(status=fc_status("Healthy")),
        "Healthy",
        "Cluster health is Healthy",
        id="healthy",
    ),
    pytest.param(
        fleetcluster(
            status=fc_status(
                "Healthy", condition("Ready", "True", "NodesReady", "3/3 GPU nodes ready")
            )
        ),
        "Healthy",
        "Cluster health is Healthy: 3/3 GPU nodes ready",
        id="healthy-with-ready-message",
    ),
    pytest.param(
        fleetcluster(
            status=fc_status(
                "Failed",
                condition("Reachable", "False", "Unreachable", "API server timed out"),
                condition("Ready", "False", "Unreachable", "Not probed"),
            )
        ),
        "Degraded",
        "Cluster health is Failed: API server timed out",
        id="failed-unreachable-explains-why",
    ),
    pytest.param(
        fleetcluster(
            status=fc_status(
                "Suspect",
                condition("Reachable", "True", "Reachable", "API server answered in 40ms"),
                condition("Ready", "False", "PodsNotReady", "2 inference pods not ready"),
            )
        ),
        "Progressing",
        "Cluster health is Suspect: 2 inference pods not ready",
        id="suspect-reachable-but-not-ready",
    ),
    pytest.param(
        fleetcluster(status=fc_status("Failed", condition("Reachable", "False", "Unreachable"))),
        "Degraded",
        "Cluster health is Failed",
        id="failed-condition-without-message",
    ),
    pytest.param(
        fleetcluster(status=fc_status("Failed")),
        "Degraded",
        "Cluster health is Failed",
        id="failed",
    ),
    *[
        pytest.param(
            fleetcluster(status=fc_status(health)),
            "Progressing",
            f"Cluster health is {health}",
            id=f"in-between-{health}",
        )
        for health in ("Suspect", "Recovering", "Unknown")
    ],
    pytest.param(
        fleetcluster(status=fc_status(None)),
        "Progressing",
        "Waiting for the operator to assess cluster health",
        id="health-not-reported",
    ),
    pytest.param(
        fleetcluster(status=fc_status("Exploded")),
        "Unknown",
        "Unrecognised cluster health Exploded",
        id="unrecognised-health",
    ),
]


@pytest.mark.parametrize(("obj", "expected_status", "expected_message"), FLEETCLUSTER_CASES)
def test_fleetcluster_health(
    fleetcluster_script: str,
    obj: dict[str, Any],
    expected_status: str,
    expected_message: str,
) -> None:
    assert run_health_check(fleetcluster_script, obj) == (expected_status, expected_message)


@pytest.mark.parametrize(
    "snippet", ['return string.format("%d", 1)', 'return ("x"):upper()', "return math.floor(1)"]
)
def test_sandbox_lacks_libraries_argocd_does_not_open(snippet: str) -> None:
    """The harness must reject what Argo CD would reject, or the tests above prove less."""
    with pytest.raises(lua51.LuaError):
        _sandboxed_runtime().execute(snippet)
