"""Issue 9 fault 4 on GKE and AKS: a capacity problem the cloud reports after it accepted
the resize becomes a stockout mark, an Event, ``CapacityAvailable=False`` and a fall-
through to the next candidate. The real ``Reconciler`` (through the operator loop) drives
the real GCP and Azure providers over HTTP against the REST stubs; the member clusters and
the fallback cluster are the in-package fakes (``reconciler_world``).

The AWS variant of this case runs the whole operator on KMock + moto
(``test_capacity_error_after_accepted_resize.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto.server")

from tests.integration.cloud_stubs import CloudStub
from tests.integration.test_e2e_clouds import AZURE, GCP
from tests.integration.test_provider_contract import Case, _azure, _gcp, stub  # noqa: F401
from tests.unit.reconciler.reconciler_world import World, fleet_cluster, model_deployment

pytestmark = pytest.mark.integration

FALLBACK = "sim-west"


def _gke_stockout(cloud: CloudStub) -> None:
    """GKE: the node pool goes to ERROR with a GCE_STOCKOUT condition."""
    [pools] = cloud.gke_pools.values()
    [pool] = pools.values()
    pool["status"] = "ERROR"
    pool["conditions"] = [
        {
            "code": "GCE_STOCKOUT",
            "message": "Zone us-central1-a does not have enough resources for a3-highgpu-8g",
            "canonicalCode": "RESOURCE_EXHAUSTED",
        }
    ]


def _aks_allocation_failure(cloud: CloudStub) -> None:
    """AKS: the agent pool's provisioning fails for capacity after the PUT was accepted."""
    [pools] = cloud.aks_pools.values()
    [pool] = pools.values()
    pool["properties"]["provisioningState"] = "Failed"
    pool["properties"]["status"] = {
        "provisioningError": {
            "code": "ZonalAllocationFailed",
            "message": "Allocation failed. We do not have sufficient capacity for the "
            "requested VM size in this zone.",
        }
    }


CLOUDS: dict[str, tuple[str, Callable[..., Case], Callable[[CloudStub], None], str]] = {
    "gcp": (GCP, _gcp, _gke_stockout, "GCE_STOCKOUT"),
    "azure": (AZURE, _azure, _aks_allocation_failure, "ZonalAllocationFailed"),
}


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
async def test_capacity_error_after_an_accepted_resize_falls_through(
    cloud: str,
    stub: CloudStub,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    name, factory, fail, code = CLOUDS[cloud]
    if cloud == "azure":
        monkeypatch.setenv("MODELFLEET_AZURE_LIVE_PRICES", "false")
    kwargs: dict[str, Any] = {"stub": stub, "monkeypatch": monkeypatch, "tmp_path": tmp_path}
    case = factory(**kwargs)
    fallback = fleet_cluster(FALLBACK, region="us-west-2", price=100.0)
    world = World([case.cluster, fallback])
    world.clouds[name] = case.provider  # type: ignore[assignment]
    await world.start()
    world.add(model_deployment("llama"))

    first = await world.reconcile("llama")
    assert {p.cluster for p in first.plan.placements} == {name}, first.plan.placements
    assert not world.stockouts.marks(name)

    fail(stub)  # the cloud accepted the resize, then reports it cannot launch the nodes
    world.clock.advance(30)
    outcome = await world.reconcile("llama")

    marks = world.stockouts.marks(name)
    assert [(m.gpu, m.capacity_type) for m in marks] == [("H100", "OnDemand")], marks
    assert code in (marks[0].message or "")
    events = [e for e in outcome.events if e.reason == "Stockout"]
    assert events and "after an accepted resize" in events[0].message
    status = outcome.status
    capacity = next(c for c in status.conditions or [] if c.type == "CapacityAvailable")
    assert (capacity.status, capacity.reason) == ("False", "Stockout")
    assert {p.cluster for p in outcome.plan.placements} == {FALLBACK}
    assert world.replicas(FALLBACK) == 2
    await world.probe()
    published = world.fleet[name].status
    assert published is not None and published.stockouts, "mark not published"
