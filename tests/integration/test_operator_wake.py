"""Scale from zero through the activator, with the real operator (kopf + handlers) against
KMock emulators: a ``replicas.min: 0`` deployment whose demand query has no series stays
at zero, and

- the gateway's demand Lease (written here as the gateway writes it, a create in its own
  namespace, ``gateway.activator.demand_lease``) starts it at once: the operator watches
  the Leases of that namespace and copies a fresh one onto the deployment's wake-up
  annotation, whose change kopf's update handler reconciles, long before the next timed
  pass (10 minutes here); the same Lease in another namespace wakes nothing;
- the wake-up annotation itself (``activator.modelfleet.io/demand-seen-at``, as a user or
  another front door allowed to patch the ModelDeployment writes it) still does.

Every request the operator sent is checked against the chart's RBAC (the harness)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest
from tests.integration.operator_harness import (
    FAST,
    MD_PATH,
    SYSTEM_NS,
    Fleet,
    eventually,
    fleet_cluster,
    fleet_fixture,
    model_deployment,
    operator,
)

from modelfleet.api import ModelDeployment
from modelfleet.gateway.activator import demand_lease
from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.gateway.metrics import DEMAND_QUERY
from modelfleet.labels import DEMAND_SEEN_AT
from modelfleet.loop.lease_sweep import SweepSettings
from modelfleet.reconciler.activator import demand_seen_at

pytestmark = pytest.mark.integration

CLUSTERS = {"east": fleet_cluster("east", region="us-east-1", cloud="aws", price=10.0, spot=4.0)}
SLOW_TIMER = dataclasses.replace(FAST, interval_seconds=600.0, activator_namespace=SYSTEM_NS)
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
DEMAND = DEMAND_QUERY  # what docs/gateway.md gives as spec.metrics.demand


fleet = fleet_fixture(CLUSTERS)


async def test_the_wake_up_annotation_starts_a_deployment_at_zero(fleet: Fleet) -> None:
    async with operator(fleet, settings=SLOW_TIMER):
        await eventually(lambda: _healthy(fleet, "east"), what="east Healthy")
        md = model_deployment("coder", replicas={"min": 0, "max": 2}, metrics={"demand": DEMAND})
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)

        await eventually(lambda: _first_pass_done(fleet, "coder"), what="the first pass's status")
        assert fleet.replicas("east") == 0  # no series for the demand query: nothing seen

        stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        await fleet.kubectl.patch(
            MD_PATH.format(ns="default") + "/coder",
            {"metadata": {"annotations": {DEMAND_SEEN_AT: stamp}}},
        )
        await eventually(lambda: fleet.replicas("east") == 1, what="one replica after the wake")

        async def placed() -> bool:
            body = await fleet.md("coder")
            replicas = ((body or {}).get("status") or {}).get("replicas") or {}
            return replicas.get("desired") == 1 and replicas.get("unplaced") == 0

        await eventually(placed, what="status: one replica desired and placed")


async def test_the_gateways_demand_lease_starts_a_deployment_at_zero(fleet: Fleet) -> None:
    async with operator(fleet, settings=SLOW_TIMER):
        await eventually(lambda: _healthy(fleet, "east"), what="east Healthy")
        md = model_deployment("coder", replicas={"min": 0, "max": 2}, metrics={"demand": DEMAND})
        await fleet.kubectl.create(MD_PATH.format(ns="default"), md)

        await eventually(lambda: _first_pass_done(fleet, "coder"), what="the first pass's status")
        assert fleet.replicas("east") == 0

        # A Lease of the right shape outside the gateway's namespace is nobody's demand.
        key = DeploymentKey("default", "coder")
        now = datetime.now(UTC)
        await fleet.kubectl.create(
            LEASES.format(ns="default"), demand_lease(key, "default", now, "intruder")
        )
        await asyncio.sleep(3.0)
        assert fleet.replicas("east") == 0
        assert DEMAND_SEEN_AT not in ((await fleet.md("coder")) or {})["metadata"].get(
            "annotations", {}
        )

        # The gateway's, in its namespace: the deployment starts.
        now = datetime.now(UTC)
        await fleet.kubectl.create(
            LEASES.format(ns=SYSTEM_NS), demand_lease(key, SYSTEM_NS, now, "gw")
        )
        await eventually(lambda: fleet.replicas("east") == 1, what="one replica after the Lease")
        body = await fleet.md("coder")
        woken = demand_seen_at(ModelDeployment.model_validate(body))
        assert woken is not None and abs((woken - now).total_seconds()) < 0.01


async def test_a_deleted_deployments_demand_lease_is_deleted_too(fleet: Fleet) -> None:
    """Demand Leases live in the gateway's namespace, so no owner reference can tie them to
    their ModelDeployment: without the operator deleting it, each deployment ever held at
    zero would leave its Lease behind for good. Another deployment's Lease stays."""
    async with operator(fleet, settings=SLOW_TIMER):
        await eventually(lambda: _healthy(fleet, "east"), what="east Healthy")
        for name in ("coder", "other"):
            md = model_deployment(name, replicas={"min": 0, "max": 2})
            await fleet.kubectl.create(MD_PATH.format(ns="default"), md)
            lease = demand_lease(DeploymentKey("default", name), SYSTEM_NS, datetime.now(UTC), "gw")
            await fleet.kubectl.create(LEASES.format(ns=SYSTEM_NS), lease)

        def leases() -> set[str]:
            found = fleet.hub.objects("coordination.k8s.io/v1/leases", namespace=SYSTEM_NS)
            return {o["metadata"]["name"] for o in found}

        assert leases() == {"default.coder", "default.other"}

        await eventually(lambda: _first_pass_done(fleet, "coder"), what="coder's first pass")
        await fleet.kubectl.delete(MD_PATH.format(ns="default") + "/coder")
        await eventually(lambda: leases() == {"default.other"}, what="coder's Lease deleted")
        await eventually(
            lambda: _missing(fleet, "coder"), what="the ModelDeployment removed from the hub"
        )
        assert leases() == {"default.other"}


async def test_a_lease_left_by_a_deployment_deleted_before_its_first_pass_is_swept(
    fleet: Fleet,
) -> None:
    """A deployment deleted before the operator's first pass carries no finalizer, so no
    delete handler deletes its Lease (here it is created and deleted while no operator
    runs). The operator's sweep (loop/lease_sweep.py) deletes it once it is older than the
    grace period (1 s here), and keeps this release's Lease of a deployment that exists and
    another release's Lease (young and renewed Leases: test_demand_lease_sweep.py)."""
    swept = dataclasses.replace(
        SLOW_TIMER,
        release="mf",
        lease_sweep=SweepSettings(grace_seconds=1.0, interval_seconds=0.5),
    )
    await fleet.kubectl.create(
        MD_PATH.format(ns="default"), model_deployment("kept", replicas={"min": 0, "max": 2})
    )
    await fleet.kubectl.create(
        MD_PATH.format(ns="default"), model_deployment("gone", replicas={"min": 0, "max": 2})
    )
    await fleet.kubectl.delete(MD_PATH.format(ns="default") + "/gone")
    assert await _missing(fleet, "gone")
    now = datetime.now(UTC)
    for name, release in (("gone", "mf"), ("kept", "mf"), ("ghost", "other-release")):
        lease = demand_lease(DeploymentKey("default", name), SYSTEM_NS, now, "gw", release=release)
        await fleet.kubectl.create(LEASES.format(ns=SYSTEM_NS), lease)

    def leases() -> set[str]:
        found = fleet.hub.objects("coordination.k8s.io/v1/leases", namespace=SYSTEM_NS)
        return {o["metadata"]["name"] for o in found}

    assert leases() == {"default.gone", "default.kept", "default.ghost"}
    async with operator(fleet, settings=swept):
        await eventually(lambda: leases() == {"default.kept", "default.ghost"}, what="swept")
        await asyncio.sleep(1.5)  # three more sweeps
        assert leases() == {"default.kept", "default.ghost"}


async def _first_pass_done(fleet: Fleet, name: str) -> bool:
    """The operator's first pass wrote its status (and kopf's finalizer is on: deleted
    before that, a deployment goes without the delete handler)."""
    body = await fleet.md(name)
    return ((body or {}).get("status") or {}).get("observedGeneration") == 1


async def _healthy(fleet: Fleet, cluster: str) -> bool:
    fc = await fleet.fc(cluster)
    return ((fc or {}).get("status") or {}).get("health") == "Healthy"


async def _missing(fleet: Fleet, name: str) -> bool:
    return await fleet.md(name) is None


async def test_a_lease_for_a_deployment_the_operator_does_not_serve_wakes_nothing(
    fleet: Fleet,
) -> None:
    """An operator serving only ``default`` (``--namespace default``): a demand Lease naming
    a ModelDeployment in another namespace (another release's, or a forged one) must not
    make it write there; only a deployment whose last pass here wanted no replica is
    relayed."""
    async with operator(fleet, settings=SLOW_TIMER, namespaces=("default",)):
        await eventually(lambda: _healthy(fleet, "east"), what="east Healthy")
        for namespace in ("default", "team-b"):
            md = model_deployment(
                "coder", replicas={"min": 0, "max": 2}, metrics={"demand": DEMAND}
            )
            md["metadata"]["namespace"] = namespace
            await fleet.kubectl.create(MD_PATH.format(ns=namespace), md)

        await eventually(
            lambda: _first_pass_done(fleet, "coder"), what="the first pass's status in default"
        )
        now = datetime.now(UTC)
        await fleet.kubectl.create(
            LEASES.format(ns=SYSTEM_NS),
            demand_lease(DeploymentKey("team-b", "coder"), SYSTEM_NS, now, "gw"),
        )
        await asyncio.sleep(3.0)
        other = await fleet.kubectl.get(MD_PATH.format(ns="team-b") + "/coder")
        assert other is not None
        assert DEMAND_SEEN_AT not in (other["metadata"].get("annotations") or {})
        # The served one still wakes.
        await fleet.kubectl.create(
            LEASES.format(ns=SYSTEM_NS),
            demand_lease(DeploymentKey("default", "coder"), SYSTEM_NS, now, "gw"),
        )
        await eventually(lambda: fleet.replicas("east") == 1, what="one replica after the Lease")
