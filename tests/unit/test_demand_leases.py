"""The operator's relay of the gateway's demand Leases (loop/demand_leases.py): which
Lease renewals become a wake-up annotation and which are ignored. The patches go to a
recording ``MergePatcher`` (the relay's own port; the HTTP path is exercised against KMock
with the real operator in tests/integration/test_operator_wake.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelfleet.clusters import ClusterNotFound, ResourceKind
from modelfleet.clusters.objects import JsonObject
from modelfleet.gateway.activator import demand_lease
from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.labels import DEMAND_FOR_DEPLOYMENT, DEMAND_SEEN_AT
from modelfleet.loop.demand_leases import DemandRelay, lease_demand

NOW = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
KEY = DeploymentKey("team", "coder")


class Recorder:
    def __init__(self, missing: set[str] | None = None) -> None:
        self.patches: list[tuple[str, str | None, str, Mapping[str, Any]]] = []
        self.missing = missing or set()

    async def merge_patch(
        self,
        kind: ResourceKind,
        name: str,
        body: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> JsonObject:
        self.patches.append((kind.plural, namespace, name, body))
        if name in self.missing:
            raise ClusterNotFound("not found", status=404)
        return {}


def lease(seconds: float, key: DeploymentKey = KEY) -> dict[str, Any]:
    return demand_lease(key, "modelfleet-system", NOW + timedelta(seconds=seconds), "gw")


async def _settle(relay: DemandRelay) -> None:
    for _ in range(50):
        await asyncio.sleep(0)
        if not relay.in_flight:
            return


async def test_a_fresh_renewal_becomes_the_annotation_once_per_interval() -> None:
    patcher = Recorder()
    relay = DemandRelay(patcher, clock=lambda: NOW, interval=15.0)
    relay.seen(lease(-2.5))
    relay.seen(lease(-2.5))  # the same renewal listed again, or a second event for it
    relay.seen(lease(5.0))  # another replica renewed 7.5 s later: within the interval
    await _settle(relay)
    assert patcher.patches == [
        (
            "modeldeployments",
            "team",
            "coder",
            {"metadata": {"annotations": {DEMAND_SEEN_AT: "2026-12-01T08:59:57.500Z"}}},
        )
    ]
    relay.seen(lease(9.0))  # 11.5 s after the relayed one, and ahead of the clock (<= 10 s)
    relay.seen(lease(-2.5 + 15.0 - 20.0))  # older than the relayed one
    await _settle(relay)
    assert len(patcher.patches) == 1
    later = [NOW + timedelta(seconds=20)]
    relay2 = DemandRelay(patcher, clock=lambda: later[0], interval=15.0)
    relay2.seen(lease(-2.5))
    relay2.seen(lease(13.0))  # 15.5 s after: relayed
    await _settle(relay2)
    assert len(patcher.patches) == 3
    assert relay.patches == 1 and relay2.patches == 2


@pytest.mark.parametrize(
    ("offset", "why"),
    [(-121.0, "older than FRESH_SECONDS"), (10.5, "more than SKEW_SECONDS ahead")],
)
async def test_a_stale_or_future_renewal_is_ignored(offset: float, why: str) -> None:
    patcher = Recorder()
    relay = DemandRelay(patcher, clock=lambda: NOW)
    relay.seen(lease(offset))
    await _settle(relay)
    assert patcher.patches == [], why


def test_what_a_lease_says_and_what_is_ignored() -> None:
    assert lease_demand(lease(0.0)) == ("team", "coder", NOW)
    by_labels = lease(0.0)
    del by_labels["metadata"]["annotations"]
    assert lease_demand(by_labels) == ("team", "coder", NOW)
    long_name = DeploymentKey("team", "x" * 80)  # too long for a label: the annotation says
    body = lease(0.0, long_name)
    assert DEMAND_FOR_DEPLOYMENT not in body["metadata"]["labels"]
    assert lease_demand(body) == ("team", "x" * 80, NOW)
    for spec in ({}, {"renewTime": "yesterday"}, {"renewTime": "2026-12-01T09:00:00"}):
        broken = {**lease(0.0), "spec": spec}
        assert lease_demand(broken) is None, spec
    nameless = lease(0.0)
    nameless["metadata"]["annotations"] = {}
    nameless["metadata"]["labels"] = {}
    assert lease_demand(nameless) is None


async def test_a_lease_for_a_deployment_that_does_not_exist_is_dropped() -> None:
    patcher = Recorder(missing={"coder"})
    relay = DemandRelay(patcher, clock=lambda: NOW)
    relay.seen(lease(0.0))
    await _settle(relay)
    assert len(patcher.patches) == 1 and relay.patches == 0
    await relay.close()


async def test_a_deployment_whose_last_pass_wanted_replicas_is_not_patched() -> None:
    """The gateway holds requests while a min > 0 deployment starts or fails over too; the
    annotation wakes nothing there (the reconciler reads it only at zero)."""
    patcher = Recorder()
    wanting = {("team", "coder")}
    relay = DemandRelay(
        patcher, clock=lambda: NOW, at_zero=lambda ns, name: (ns, name) not in wanting
    )
    relay.seen(lease(0.0))
    await _settle(relay)
    assert patcher.patches == []
    wanting.clear()  # scaled to zero since
    relay.seen(lease(1.0))
    await _settle(relay)
    assert len(patcher.patches) == 1
