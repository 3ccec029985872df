"""The operator's relay of the gateway's demand Leases (loop/demand_leases.py): which
Lease renewals become a wake-up annotation and which are ignored. The patches go to a
recording ``MergePatcher`` (the relay's own port; the HTTP path is exercised against KMock
with the real operator in tests/integration/test_operator_wake.py)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelfleet.clusters import ClusterForbidden, ClusterNotFound, ResourceKind
from modelfleet.clusters.informer import InformerSettings
from modelfleet.clusters.objects import JsonObject
from modelfleet.gateway.activator import demand_lease
from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.labels import DEMAND_FOR_DEPLOYMENT, DEMAND_SEEN_AT, demand_lease_name
from modelfleet.loop.demand_leases import DemandLeaseWatch, DemandRelay, lease_demand

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


@pytest.mark.parametrize(
    "claimed",
    [
        "team/../../../../api/v1/namespaces/modelfleet-system/services/modelfleet",
        "team/coder/status",
        "team/coder?dryRun=All",
        "team/Coder",
        "Team/coder",
        "team/" + "x" * 254,
        "a" * 64 + "/coder",
    ],
)
async def test_a_lease_naming_no_possible_deployment_is_ignored(claimed: str) -> None:
    """Whoever can write Leases in the gateway's namespace (the gateway) must not steer the
    operator's patch to another resource: the name goes into the request's URL path, and the
    operator may patch Deployments, Services and FleetClusters cluster-wide."""
    forged = lease(0.0)
    forged["metadata"]["annotations"] = {DEMAND_FOR_DEPLOYMENT: claimed}
    assert lease_demand(forged) is None
    patcher = Recorder()
    relay = DemandRelay(patcher, clock=lambda: NOW)
    relay.seen(forged)
    await _settle(relay)
    assert patcher.patches == []


def test_the_longest_possible_names_are_still_relayed() -> None:
    key = DeploymentKey("n" * 63, "a." + "b" * 60 + "." + "c" * 190)
    assert len(key.name) == 253
    assert lease_demand(lease(0.0, key)) == (key.namespace, key.name, NOW)


def test_demand_lease_names_fit_and_never_collide() -> None:
    """``<namespace>.<name>`` while it fits the 253 characters of an object name; a longer
    name is digested into a form no real pair can take (no dot), so a deployment named like
    another's digest does not share its Lease (and its wake-ups)."""
    assert demand_lease_name("team", "coder") == "team.coder"
    for namespace in ("team", "n" * 63):
        long_name = "x" * 253
        hashed = demand_lease_name(namespace, long_name)
        # A deployment named like the digest part (a valid name) gets a Lease of its own.
        assert demand_lease_name(namespace, hashed.partition(".")[2]) != hashed
        assert demand_lease_name(namespace, hashed.rpartition("-")[2]) != hashed
        assert demand_lease_name(namespace, "y" * 253) != hashed
        assert len(hashed) <= 253 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", hashed)
        assert hashed.startswith(f"{namespace}-")


class Refusing:
    """A hub that answers 403 to the Lease LIST (the operator's Role missing)."""

    def __init__(self) -> None:
        self.lists = 0

    async def list_versioned(
        self, kind: ResourceKind, selector: Mapping[str, str], *, namespace: str | None = None
    ) -> tuple[list[JsonObject], str]:
        self.lists += 1
        raise ClusterForbidden(
            'leases is forbidden: User "system:serviceaccount:x:y" cannot list resource "leases"',
            verb="list",
            resource="leases",
            cluster="hub",
            status=403,
        )

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[JsonObject]:
        raise AssertionError("no watch without a list")


async def test_a_forbidden_lease_watch_is_one_warning_naming_the_grant(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An upgrade with rbac.create=false and the RBAC of the annotation design: the
    operator may not read the Leases, so no wake-up ever comes through them. That must be
    a warning saying what to grant, once, not an info line every minute about a fallback
    this watch does not have."""
    hub = Refusing()
    watch = DemandLeaseWatch(
        namespace="modelfleet-system",
        watch_client=hub,
        patcher=Recorder(),
        clock=lambda: NOW,
        settings=InformerSettings(backoff_initial_seconds=0.01, backoff_max_seconds=0.02),
    )
    with caplog.at_level(logging.INFO):
        watch.start()
        for _ in range(6000):  # a hang bound (>= 60 s)
            await asyncio.sleep(0.01)
            if hub.lists >= 3:
                break
        await watch.close()
    assert hub.lists >= 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "get, list and watch on leases in modelfleet-system" in warnings[0], warnings
