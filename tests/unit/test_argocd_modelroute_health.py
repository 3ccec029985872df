"""Argo CD health check for ModelRoute (``charts/modelfleet/files/argocd/modelroute.lua``),
run in the same Lua 5.1 sandbox as the other checks: the gateway's ``Accepted`` and
``ResolvedRefs`` conditions become Healthy or Degraded with their message; no verdict on
the current generation yet is Progressing. Every branch has a row."""

from __future__ import annotations

from typing import Any

import pytest
from test_argocd_health import SCRIPTS, condition, run_health_check

CLASH = (
    "model name 'assistant' is served by ModelRoute team-a/assistant (it comes first in "
    "namespace/name order, and the first ModelRoute to claim a name keeps it). This route "
    "gets no requests for 'assistant'; it serves no model name. Rename spec.model or "
    "spec.aliases, or delete one of the routes."
)
ACCEPTED = condition("Accepted", "True", "Accepted", "serves model name(s) 'assistant'")
RESOLVED = condition("ResolvedRefs", "True", "ResolvedRefs", "every deployment exists")


def modelroute(
    *, generation: int | None = 3, observed: int | None = 3, conditions: Any = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": "assistant", "namespace": "team-b"},
        "spec": {"model": "assistant", "rules": [{"backends": [{"deployment": "qwen"}]}]},
    }
    if generation is not None:
        obj["metadata"]["generation"] = generation
    if conditions is not None or observed is not None:
        obj["status"] = {"observedGeneration": observed, "conditions": conditions or []}
    return obj


CASES = [
    pytest.param(
        modelroute(conditions=[ACCEPTED, RESOLVED]),
        "Healthy",
        "Route serves model name(s) 'assistant'",
        id="accepted-and-resolved",
    ),
    pytest.param(
        modelroute(conditions=[condition("Accepted", "False", "ModelNameClash", CLASH), RESOLVED]),
        "Degraded",
        f"ModelNameClash: {CLASH}",
        id="name-clash-names-the-winner",
    ),
    pytest.param(
        modelroute(
            conditions=[
                ACCEPTED,
                condition("ResolvedRefs", "False", "DeploymentNotFound", "team-b/qwen missing"),
            ]
        ),
        "Degraded",
        "DeploymentNotFound: team-b/qwen missing",
        id="missing-backend",
    ),
    pytest.param(
        modelroute(conditions=[condition("Accepted", "False", "InvalidSpec", "ignored: x")]),
        "Degraded",
        "InvalidSpec: ignored: x",
        id="ignored-as-invalid-without-resolved-refs",
    ),
    pytest.param(
        modelroute(observed=None, conditions=None),
        "Progressing",
        "Waiting for the gateway to observe generation 3",
        id="no-status",
    ),
    pytest.param(
        modelroute(observed=2, conditions=[ACCEPTED, RESOLVED]),
        "Progressing",
        "Waiting for the gateway to observe generation 3",
        id="older-generation",
    ),
    pytest.param(
        modelroute(conditions=[ACCEPTED]),
        "Progressing",
        "Waiting for the gateway's Accepted and ResolvedRefs conditions",
        id="a-condition-missing",
    ),
    pytest.param(
        modelroute(conditions=[condition("Accepted", "Unknown"), RESOLVED]),
        "Unknown",
        "Accepted is Unknown",
        id="unknown-condition-status",
    ),
]


@pytest.mark.parametrize(("obj", "expected_status", "expected_message"), CASES)
def test_modelroute_health(
    obj: dict[str, Any], expected_status: str, expected_message: str
) -> None:
    script = (SCRIPTS / "modelroute.lua").read_text(encoding="utf-8")
    assert run_health_check(script, obj) == (expected_status, expected_message)
