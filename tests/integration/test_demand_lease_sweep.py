"""The sweep of demand Leases that name no ModelDeployment (loop/lease_sweep.py), over real
HTTP against KMock's API emulator with the operator's own hub client: which Leases go and
which stay (young ones, another release's, one whose deployment exists on the hub even if
the operator never saw it), and the precondition that keeps a Lease renewed after the
LIST. The whole operator deleting such a Lease at its start is in test_operator_wake.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.integration.kube_emulator import KubeEmulator, kube_emulator

from modelfleet.clusters import ClusterConflict, KubernetesClusterClient
from modelfleet.gateway.activator import demand_lease
from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.labels import DEMAND_LEASE
from modelfleet.loop.demand_leases import LEASE
from modelfleet.loop.lease_sweep import DemandLeaseSweep, SweepSettings, last_written

pytestmark = pytest.mark.integration

SYSTEM_NS = "modelfleet-system"
LEASES = "coordination.k8s.io/v1/leases"
MDS = "modelfleet.io/v1alpha1/modeldeployments"
# The operator's clock. Objects are stored as the API server holds them (``kube.put``),
# with the creationTimestamp it would have stamped where a test needs one.
LATER = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def hub() -> AsyncIterator[tuple[KubeEmulator, KubernetesClusterClient]]:
    async with kube_emulator() as kube:
        client = await KubernetesClusterClient.from_kubeconfig(kube.kubeconfig(), name="hub")
        try:
            yield kube, client
        finally:
            await client.close()


def _lease(
    name: str, *, release: str | None, renewed: datetime, ns: str = "team"
) -> dict[str, Any]:
    lease = demand_lease(DeploymentKey(ns, name), SYSTEM_NS, renewed, "gw", release=release)
    lease["metadata"]["resourceVersion"] = "1"
    return lease


def _names(kube: KubeEmulator) -> set[str]:
    return {o["metadata"]["name"] for o in kube.objects(LEASES, namespace=SYSTEM_NS)}


async def test_only_this_releases_stale_leases_naming_no_deployment_go(
    hub: tuple[KubeEmulator, KubernetesClusterClient],
) -> None:
    kube, client = hub
    old = LATER - timedelta(hours=1)
    kube.put(
        MDS,
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "unseen", "namespace": "team"},
            "spec": {},
        },
    )
    leases = {
        "gone": _lease("gone", release="mf", renewed=old),  # deleted before its first pass
        "unseen": _lease("unseen", release="mf", renewed=old),  # exists on the hub
        "young": _lease("young", release="mf", renewed=LATER - timedelta(seconds=30)),
        "theirs": _lease("theirs", release="other", renewed=old),
        "unlabelled": _lease("unlabelled", release=None, renewed=old),
    }
    for lease in leases.values():
        kube.put(LEASES, lease)
    # A Lease of another kind in the namespace (no demand label) is never listed.
    kube.put(
        LEASES,
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "someone-elses", "namespace": SYSTEM_NS},
            "spec": {"renewTime": old.isoformat()},
        },
    )
    sweep = DemandLeaseSweep(namespace=SYSTEM_NS, client=client, clock=lambda: LATER, release="mf")

    # The unlabelled one (written before the release label) goes too: named as the gateway
    # names it, stale, and its deployment does not exist (test_pre_label_leases_...).
    assert await sweep.sweep() == ["team.gone", "team.unlabelled"]
    assert _names(kube) == {"team.unseen", "team.young", "team.theirs", "someone-elses"}
    assert sweep.deleted == 2

    # Later on: the young one has aged and still names nothing; the rest stays.
    aged = DemandLeaseSweep(
        namespace=SYSTEM_NS,
        client=client,
        clock=lambda: LATER + timedelta(minutes=11),
        release="mf",
    )
    assert await aged.sweep() == ["team.young"]
    # An operator run by hand (no release) sweeps only the unlabelled Leases.
    kube.put(LEASES, _lease("unlabelled", release=None, renewed=old))
    by_hand = DemandLeaseSweep(namespace=SYSTEM_NS, client=client, clock=lambda: LATER)
    assert await by_hand.sweep() == ["team.unlabelled"]
    assert _names(kube) == {"team.unseen", "team.theirs", "someone-elses"}
    deletes = [p for m, p in kube.requests() if m == "DELETE"]
    assert len(deletes) == 4


async def test_the_grace_period_counts_from_the_later_of_renewal_and_creation(
    hub: tuple[KubeEmulator, KubernetesClusterClient],
) -> None:
    """A Lease the gateway has just created carries an old renewTime only if its clock is
    off; its creationTimestamp (the API server's clock) still protects it."""
    kube, client = hub
    lease = _lease("gone", release="mf", renewed=LATER - timedelta(days=1))
    created = LATER - timedelta(minutes=1)
    lease["metadata"]["creationTimestamp"] = created.isoformat().replace("+00:00", "Z")
    kube.put(LEASES, lease)
    stored = kube.get(LEASES, "team.gone", namespace=SYSTEM_NS)
    assert stored is not None and last_written(stored) == created
    just_created = DemandLeaseSweep(
        namespace=SYSTEM_NS,
        client=client,
        clock=lambda: LATER,
        release="mf",
        settings=SweepSettings(grace_seconds=600.0),
    )
    assert await just_created.sweep() == []
    assert _names(kube) == {"team.gone"}
    ten_minutes_on = DemandLeaseSweep(
        namespace=SYSTEM_NS,
        client=client,
        clock=lambda: created + timedelta(seconds=601),
        release="mf",
    )
    assert await ten_minutes_on.sweep() == ["team.gone"]


async def test_a_delete_at_an_older_version_is_refused_by_the_precondition(
    hub: tuple[KubeEmulator, KubernetesClusterClient],
) -> None:
    """The sweep's DELETE carries the listed resourceVersion: what the API server answers
    when the Lease was renewed in between (409) is raised as a conflict, which the sweep
    takes as "keep it". KMock does not enforce preconditions, so the 409 is the server's
    answer replayed here."""
    kube, client = hub
    kube.put(LEASES, _lease("gone", release="mf", renewed=LATER - timedelta(hours=1)))
    kube.refuse(
        "DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{SYSTEM_NS}/leases/team.gone", 409
    )
    with pytest.raises(ClusterConflict):
        await client.delete(LEASE, "team.gone", namespace=SYSTEM_NS, resource_version="1")
    sweep = DemandLeaseSweep(namespace=SYSTEM_NS, client=client, clock=lambda: LATER, release="mf")
    assert await sweep.sweep() == []
    assert _names(kube) == {"team.gone"}
    listed, _ = await client.list_versioned(LEASE, {DEMAND_LEASE: "true"}, namespace=SYSTEM_NS)
    assert [o["metadata"]["name"] for o in listed] == ["team.gone"]


async def test_pre_label_leases_go_only_when_named_by_the_gateway_and_nobodys(
    hub: tuple[KubeEmulator, KubernetesClusterClient],
) -> None:
    """Leases written before ``activator.modelfleet.io/release`` existed carry no release
    label. The operator of a release sweeps one only when it could be nobody's: named
    exactly as a gateway names the Lease of the deployment it names, not renewed within the
    grace period, that deployment absent from the hub (a 404; a 403 keeps it), and at the
    listed resourceVersion. Another release's labelled Lease stays whatever it names."""
    kube, client = hub
    old = LATER - timedelta(hours=1)
    kube.put(
        MDS,
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "alive", "namespace": "team"},
            "spec": {},
        },
    )
    renamed = _lease("renamed", release=None, renewed=old)
    renamed["metadata"]["name"] = "legacy-lease"  # names team/renamed, but not our naming
    refused = _lease("refused", release=None, renewed=old)
    for lease in (
        _lease("legacy", release=None, renewed=old),  # goes
        _lease("alive", release=None, renewed=old),  # its deployment exists
        _lease("fresh", release=None, renewed=LATER - timedelta(seconds=20)),  # renewed
        _lease("forbidden", release=None, renewed=old, ns="secret"),  # the hub says 403
        _lease("other", release="other", renewed=old),  # another release's
        renamed,
        refused,
    ):
        kube.put(LEASES, lease)
    kube.refuse(
        "GET", "/apis/modelfleet.io/v1alpha1/namespaces/secret/modeldeployments/forbidden", 403
    )
    # Renewed between the LIST and the DELETE: the server's 409 keeps it.
    kube.refuse(
        "DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{SYSTEM_NS}/leases/team.refused", 409
    )
    sweep = DemandLeaseSweep(namespace=SYSTEM_NS, client=client, clock=lambda: LATER, release="mf")
    assert await sweep.sweep() == ["team.legacy"]
    assert _names(kube) == {
        "team.alive",
        "team.fresh",
        "secret.forbidden",
        "team.other",
        "legacy-lease",
        "team.refused",
    }
    deletes = [p for m, p in kube.requests() if m == "DELETE"]
    assert [p.rsplit("/", 1)[-1].split("?")[0] for p in deletes] == ["team.legacy", "team.refused"]
