"""Readiness wakes across a 410 relist (br10, QA of wake9): a Deployment deleted while the
informer's watch was down, its history compacted, wakes its owner when the relist finds
it gone (``Informer._list`` compares the new store with the old). On
``hack/fake_apiserver.py`` (versioned, can drop, refuse and compact), with the operator's
own client and the wake source the reconciler uses."""

from __future__ import annotations

import asyncio
import contextlib

from test_member_watch import (
    DEPLOYMENT,
    FAST,
    NS,
    SELECTOR,
    FakeApi,
    deployment,
    fake_api,
    member,
    until,
)

from modelfleet import labels
from modelfleet.clusters import KubernetesClusterClient
from modelfleet.clusters.informer import Informer
from modelfleet.reconciler.wakes import ReadinessWakes

__all__ = ["fake_api"]  # re-exported fixture


async def test_a_deletion_missed_during_a_410_wakes_its_owner_after_the_relist(
    fake_api: FakeApi,
) -> None:
    woken: list[str] = []
    wakes = ReadinessWakes(serving=lambda _c, _n: True)
    wakes.connect(woken.append)
    async with member(fake_api.url) as client:
        owned = deployment("a")
        owned["metadata"]["labels"][labels.UID] = "uid-a"
        await client.apply([owned])

        async def client_for() -> KubernetesClusterClient:
            return client

        informer = Informer(
            cluster="m1",
            namespace=NS,
            kind=DEPLOYMENT,
            selector=SELECTOR,
            client_for=client_for,
            settings=FAST,
            on_update=wakes.changed,
        )
        task = asyncio.create_task(informer.run())
        try:
            await until(lambda: informer.state.serving, "the informer never synced")
            assert woken == [], "created without ready replicas: no wake"
            await fake_api.control("refuse_watches", code="503")
            await fake_api.control("drop")
            await until(lambda: not informer.state.healthy, "the drop went unnoticed")
            await client.delete_owned(DEPLOYMENT, {labels.DEPLOYMENT: "llama"}, namespace=NS)
            await fake_api.control("compact")
            await fake_api.control("refuse_watches", code="0")
            await until(lambda: informer.state.lists == 2, "no relist after 410")
            await until(lambda: woken == ["uid-a"], f"no wake for the deletion: {woken}")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
