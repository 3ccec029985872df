"""A tenant flipping its ModelDeployment's spec valid <-> invalid cannot make the operator
post Events at will: with the real operator (kopf + handlers) against KMock emulators, each
edit is reconciled (the status follows every one) but the Events on the deployment stop at
its budget (``event_budget``; here 3 at once, set on the context before kopf starts, instead
of client-go's 25, to keep the test short), the rest counted in the operator's metrics.
Each invalid edit makes a different mistake, so each brings a different InvalidSpec message:
an identical Event within 10 minutes is not posted at all (``event_budget.EventRepeats``,
tests/integration/test_operator_event_repeats.py), and the budget is what bounds the rest."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.integration.operator_harness import (
    EAST,
    MD_PATH,
    Fleet,
    condition,
    eventually,
    fleet_fixture,
    measured_h100,
    model_deployment,
    operator_prepared,
)

from modelfleet.event_budget import EventBudget
from modelfleet.runtime import OperatorContext

pytestmark = pytest.mark.integration

BURST = 3
FLIPS = 8
"""Edits: 4 to an invalid spec (an InvalidSpec Event each, before the budget) and 4 back."""


fleet = fleet_fixture(EAST)


def _profiles(*, valid: bool, mistake: int = 0) -> list[dict[str, Any]]:
    # A curve whose rates go down is refused by the models (InvalidSpec), not by the schema.
    # ``mistake`` says where: the message names that point, so each mistake has its own.
    curve: list[dict[str, Any]] = [
        {"requestsPerSecond": 4.0 * (j + 1), "ttftP95Ms": 120 + 20 * j}
        for j in range(2 if valid else 2 + mistake)
    ]
    if not valid:
        curve.append({"requestsPerSecond": 1.0, "ttftP95Ms": 300})
    return measured_h100(curve)


async def test_a_flapping_deployment_gets_at_most_its_budget_of_events(fleet: Fleet) -> None:
    async def small_budget(context: OperatorContext) -> None:
        context.event_budget = EventBudget(burst=BURST)

    async with operator_prepared(fleet, small_budget) as context:
        await fleet.until_healthy("east")
        path = MD_PATH.format(ns="default") + "/llama"
        md = model_deployment("llama", capacityProfiles=_profiles(valid=True))
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)
        await eventually(lambda: fleet.replicas("east") == 2, what="llama placed")
        for i in range(FLIPS):
            valid = i % 2 == 1
            profiles = _profiles(valid=valid, mistake=i // 2)  # valid: always the same
            await fleet.kubectl.patch(path, {"spec": {"capacityProfiles": profiles}})
            generation = ((await fleet.md("llama")) or {})["metadata"]["generation"]

            async def handled(generation: int = generation, valid: bool = valid) -> bool:
                # The status follows every edit: it is not budgeted.
                stored = (await fleet.md("llama")) or {}
                if stored.get("status", {}).get("observedGeneration") != generation:
                    return False
                return (condition(stored).get("reason") == "InvalidSpec") != valid

            await eventually(handled, what=f"edit {i} (valid={valid}) reconciled")

        def on_llama() -> list[dict[str, Any]]:
            return [
                e
                for e in fleet.hub.objects("v1/events")
                if (e.get("involvedObject") or {}).get("name") == "llama"
            ]

        # kopf posts Events in the background: wait for the budget's worth, then a while.
        await eventually(lambda: len(on_llama()) >= BURST, what="the first Events")
        await asyncio.sleep(2.0)
        events = on_llama()
        assert len(events) == BURST, [(e["reason"], e["message"][:60]) for e in events]
        dropped = context.metrics.registry.get_sample_value(
            "modelfleet_operator_events_dropped_total", {"kind": "ModelDeployment"}
        )
        assert dropped is not None and dropped >= FLIPS // 2 - BURST
