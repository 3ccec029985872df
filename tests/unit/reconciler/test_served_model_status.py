"""``status.servedModel`` (the operator's record of the served model name and since when):
the gateway dates a ModelDeployment's claim on its model name by it, so an old deployment
edited to another tenant's name does not take that name (br13 F1; ``gateway.catalog``).

Before: no such field; the gateway dated the claim by ``metadata.creationTimestamp``.
At the reconciler level on the in-package fakes (``reconciler_world``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler_world import T0, World, east_west, model_deployment

from modelfleet.api.modeldeployment import ServedModelStatus

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def _created(world: World, name: str) -> None:
    md = world.deployments[name]
    meta = md.metadata.model_copy(update={"creation_timestamp": CREATED})
    world.deployments[name] = md.model_copy(update={"metadata": meta})


async def test_the_name_created_with_dates_from_the_creation_and_an_edit_from_the_edit() -> None:
    world = east_west()
    await world.start()
    world.add(model_deployment("llama"))
    _created(world, "llama")
    first = await world.reconcile("llama")
    # Absent: the name the deployment was created with (or had before the field) is
    # grandfathered at its creation.
    assert first.status.served_model == ServedModelStatus(
        name="llama-3.1-8b-instruct", since=CREATED
    )
    world.clock.advance(600)
    again = await world.reconcile("llama")
    assert again.status.served_model == first.status.served_model  # never re-dated

    md = world.deployments["llama"]
    edited = md.spec.model.model_copy(update={"name": "team-a/their-model"})
    world.set_spec("llama", model=edited)
    world.clock.advance(60)
    after = await world.reconcile("llama")
    assert after.status.served_model == ServedModelStatus(
        name="team-a/their-model", since=world.clock.now
    )
    world.clock.advance(600)
    later = await world.reconcile("llama")
    assert later.status.served_model == after.status.served_model
    # What the operator writes (a merge patch of the status): the JSON the gateway reads.
    dumped = later.status.model_dump(mode="json", by_alias=True)
    assert dumped["servedModel"] == {"name": "team-a/their-model", "since": "2026-01-05T12:11:00Z"}


async def test_without_a_creation_time_the_first_pass_dates_the_name() -> None:
    world = east_west()
    await world.start()
    world.add(model_deployment("llama"))
    outcome = await world.reconcile("llama")
    assert outcome.status.served_model == ServedModelStatus(name="llama-3.1-8b-instruct", since=T0)
