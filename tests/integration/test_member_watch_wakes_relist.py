"""Readiness wakes across a 410 relist (br10, QA of wake9): a Deployment deleted while the
informer's watch was down, its history compacted, wakes its owner when the relist finds
it gone (``Informer._list`` compares the new store with the old). On
``hack/fake_apiserver.py`` (versioned, can drop, refuse and compact), with the operator's
own client and the wake source the reconciler uses (told of the owner as its passes tell
it: ``ReadinessWakes.track``)."""

from __future__ import annotations

from test_member_watch import (
    DEPLOYMENT,
    NS,
    FakeApi,
    _md,
    deployment,
    fake_api,
    member,
    running,
    until,
)

from modelfleet import labels
from modelfleet.clusters.workloads import WorkloadPlacement, workload_name
from modelfleet.reconciler.wakes import ReadinessWakes

__all__ = ["fake_api"]  # re-exported fixture


async def test_a_deletion_missed_during_a_410_wakes_its_owner_after_the_relist(
    fake_api: FakeApi,
) -> None:
    woken: list[str] = []
    wakes = ReadinessWakes(serving=lambda _c, _n: True)
    wakes.connect(woken.append)
    llama = _md("llama")
    wakes.track(
        llama.model_copy(update={"metadata": llama.metadata.model_copy(update={"uid": "uid-a"})})
    )
    async with member(fake_api.url) as client:
        owned = deployment(
            workload_name("llama", WorkloadPlacement("m1", "h100-1g", "OnDemand", 1))
        )
        owned["metadata"]["labels"][labels.UID] = "uid-a"
        await client.apply([owned])

        async with running(client, on_update=wakes.changed) as informer:
            assert woken == [], "created without ready replicas: no wake"
            await fake_api.control("refuse_watches", code="503")
            await fake_api.control("drop")
            await until(lambda: not informer.state.healthy, "the drop went unnoticed")
            await client.delete_owned(DEPLOYMENT, {labels.DEPLOYMENT: "llama"}, namespace=NS)
            await fake_api.control("compact")
            await fake_api.control("refuse_watches", code="0")
            await until(lambda: informer.state.lists == 2, "no relist after 410")
            await until(lambda: woken == ["uid-a"], f"no wake for the deletion: {woken}")
