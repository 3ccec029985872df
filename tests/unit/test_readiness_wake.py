"""Which member-cluster Deployment changes wake which ModelDeployment
(``clusters.workloads.readiness_wake``), and the wake source the reconciler is told about
(``reconciler.wakes.ReadinessWakes``) fed by the in-memory member API's writes (the
simulator's path): a wake counts only for an object where and as modelfleet names that
ModelDeployment's workloads, never for a uid label alone."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelfleet import labels
from modelfleet.api import ModelDeployment
from modelfleet.clusters.fake import InMemoryClusterClient
from modelfleet.clusters.objects import DEPLOYMENT
from modelfleet.clusters.workloads import readiness_wake
from modelfleet.reconciler.wakes import ReadinessWakes

LLAMA = ModelDeployment.model_validate(
    {
        "metadata": {"name": "llama", "namespace": "team-a", "uid": "md-uid"},
        "spec": {
            "model": {"name": "llama-3.1-8b-instruct"},
            "resources": {"gpu": {"count": 1}},
            "replicas": {"min": 1, "max": 4},
        },
    }
)
"""The ModelDeployment whose uid ``rendered`` objects carry (a pass told the wakes of it)."""


def tracking(serving: Any = lambda _c, _n: True) -> ReadinessWakes:
    """A wake source a pass of ``LLAMA`` has told of it (``Reconciler.reconcile``)."""
    wakes = ReadinessWakes(serving=serving)
    wakes.track(LLAMA)
    return wakes


def rendered(
    *, ready: int | None = None, available: int | None = None, uid: str | None = "md-uid"
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "llama-od-0123456789ab",
            "namespace": "team-a",
            "resourceVersion": "10",
            "generation": 1,
            "labels": {
                labels.MANAGED: "true",
                labels.DEPLOYMENT: "llama",
                labels.NAMESPACE: "team-a",
            },
        },
        "spec": {"replicas": 2},
    }
    if uid is not None:
        obj["metadata"]["labels"][labels.UID] = uid
    if ready is not None or available is not None:
        obj["status"] = {
            "observedGeneration": 1,
            "replicas": 2,
            "readyReplicas": ready,
            "availableReplicas": available if available is not None else ready,
        }
    return obj


def changed(obj: dict[str, Any], **edits: Any) -> dict[str, Any]:
    new = copy.deepcopy(obj)
    for path, value in edits.items():
        *parents, leaf = path.split("__")
        node = new
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return new


@pytest.mark.parametrize(
    ("before", "after", "woken"),
    [
        (rendered(ready=0), rendered(ready=1), "md-uid"),  # a replica turned Ready
        (rendered(ready=2), rendered(ready=1), "md-uid"),  # one went
        (rendered(ready=2, available=1), rendered(ready=2, available=2), "md-uid"),
        (rendered(), rendered(ready=1), "md-uid"),  # the first status says Ready
        (rendered(ready=1), None, "md-uid"),  # deleted
        (rendered(ready=0), None, "md-uid"),  # deleted, nothing Ready: gone all the same
        (None, rendered(ready=2), "md-uid"),  # seen first with Ready replicas (a relist)
        (None, rendered(), None),  # created by a pass: nothing Ready, nothing to say
        (None, rendered(ready=0), None),
        (rendered(ready=1), rendered(ready=1), None),  # nothing changed
        (rendered(), rendered(ready=0), None),  # no status and a zero status: the same
        (None, None, None),
        (rendered(ready=0, uid=None), rendered(ready=1, uid=None), None),  # not ours to wake
    ],
)
def test_readiness_changes_and_deletions_wake_the_owner(
    before: dict[str, Any] | None, after: dict[str, Any] | None, woken: str | None
) -> None:
    assert readiness_wake(before, after) == woken


@pytest.mark.parametrize(
    "edit",
    [
        {"metadata__resourceVersion": "11"},  # resourceVersion only (a resync, a bookmark)
        {"spec__replicas": 3, "metadata__generation": 2},  # a pass scaled it
        {"status__observedGeneration": 2, "status__replicas": 3},  # the controller caught up
        {"status__updatedReplicas": 1},
        {"metadata__annotations": {"x": "y"}},
    ],
)
def test_writes_that_change_no_readiness_wake_nothing(edit: dict[str, Any]) -> None:
    before = rendered(ready=1)
    assert readiness_wake(before, changed(before, **edit)) is None


def test_the_uid_of_a_deleted_object_is_read_from_what_it_was() -> None:
    assert readiness_wake(rendered(ready=1, uid="old"), None) == "old"


def _deployment(name: str = "llama-od-0123456789ab") -> dict[str, Any]:
    obj = rendered(uid="md-uid")
    obj["metadata"] = {
        key: value for key, value in obj["metadata"].items() if key in ("name", "labels")
    }
    obj["metadata"]["name"] = name
    obj["metadata"]["namespace"] = "team-a"
    return obj


async def test_the_in_memory_api_reports_every_deployment_write_to_the_wakes() -> None:
    client = InMemoryClusterClient("east")
    woken: list[str] = []
    served = {"east": True}
    wakes = tracking(lambda cluster, _ns: served[cluster])
    client.on_deployment_change = wakes.changed
    await client.apply([_deployment()])
    assert not woken and wakes.wakes == 0, "not connected: nothing to wake, nothing counted"

    wakes.connect(woken.append)
    assert wakes.serves("east", "team-a")
    served["east"] = False
    assert not wakes.serves("east", "team-a"), "the source says it is not current"
    served["east"] = True

    client.set_deployment_status("team-a", "llama-od-0123456789ab", ready=0)
    assert woken == [], "a status with nothing Ready"
    spec = _deployment()
    spec["spec"]["replicas"] = 4
    await client.apply([spec])
    assert woken == [], "a spec write"
    client.set_deployment_status("team-a", "llama-od-0123456789ab", ready=1)
    assert woken == ["md-uid"]
    client.set_deployment_status("team-a", "llama-od-0123456789ab", ready=1)
    assert woken == ["md-uid"], "the same readiness written again"
    await client.delete_owned(DEPLOYMENT, {labels.DEPLOYMENT: "llama"}, namespace="team-a")
    assert woken == ["md-uid", "md-uid"], "deleted"
    assert wakes.wakes == 2


def test_a_failing_wake_does_not_break_the_writer() -> None:
    client = InMemoryClusterClient("east")
    client.put(_deployment())

    def broken(uid: str) -> None:
        raise RuntimeError(uid)

    wakes = tracking()
    wakes.connect(broken)
    client.on_deployment_change = wakes.changed
    client.set_deployment_status("team-a", "llama-od-0123456789ab", ready=2)  # no raise
    assert wakes.wakes == 1


def test_nothing_connected_serves_nothing() -> None:
    assert not ReadinessWakes(serving=lambda _c, _n: True).serves("east", "team-a")


def test_an_unreadable_status_wakes_nothing_and_does_not_raise() -> None:
    woken: list[str] = []
    wakes = tracking()
    wakes.connect(woken.append)
    bad = rendered(ready=1)
    bad["status"]["readyReplicas"] = "many"
    wakes.changed(rendered(ready=0), bad)  # an informer's callback must not raise
    assert woken == []


@pytest.mark.parametrize(
    "bad",
    [
        {"metadata": {"labels": {labels.UID: "md-uid"}}, "status": "Ready"},
        {"metadata": {"labels": ["md-uid"]}, "status": {"readyReplicas": 1}},
        {"metadata": "llama", "status": {"readyReplicas": 1}},
    ],
    ids=["status-not-an-object", "labels-a-list", "metadata-a-string"],
)
def test_an_object_of_the_wrong_shape_wakes_nothing_and_does_not_raise(
    bad: dict[str, Any],
) -> None:
    # br10: the informer calls ``changed`` inside its watch loop, which catches only API
    # and JSON errors; an AttributeError escaping it ended the informer's task (the
    # member's reads fell back to LIST) despite "never raises".
    woken: list[str] = []
    wakes = tracking()
    wakes.connect(woken.append)
    wakes.changed(None, bad)  # no raise
    assert woken == []
    wakes.changed(bad, None)  # no raise (a deletion may still name the owner)


# -- a uid label proves nothing: where and how the object is named does ------------------


def _forged(namespace: str, name: str) -> dict[str, Any]:
    """A Deployment carrying ``LLAMA``'s uid (and owner labels), written by someone who may
    create Deployments in ``namespace`` only."""
    obj = _deployment(name)
    obj["metadata"]["namespace"] = namespace
    return obj


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("team-b", "llama-od-0123456789ab"),  # another tenant's namespace, llama's name
        ("team-a", "llama"),  # llama's namespace, not a name its placements get
        ("team-a", "llama-od-0123456789ab-x"),
        ("team-a", "llama-gpu-0123456789ab"),
        ("team-a", "llama-od-0123456789AB"),  # pool ids are lower-case hex
        ("team-a", "other-od-0123456789ab"),  # another ModelDeployment's placement
    ],
)
async def test_a_uid_label_on_an_object_modelfleet_would_not_name_so_wakes_nothing(
    namespace: str, name: str
) -> None:
    client = InMemoryClusterClient("east")
    woken: list[str] = []
    wakes = tracking()
    wakes.connect(woken.append)
    client.on_deployment_change = wakes.changed
    await client.apply([_forged(namespace, name)])
    client.set_deployment_status(namespace, name, ready=1)  # a replica turns Ready
    await client.delete_owned(DEPLOYMENT, {labels.UID: "md-uid"}, namespace=namespace)
    assert woken == [] and wakes.wakes == 0
    assert wakes.refused == 2, "the readiness change and the deletion, both refused"

    # The same writes on llama's own workload (its namespace, a placement's name) wake it.
    await client.apply([_forged("team-a", "llama-spot-0123456789ab")])
    client.set_deployment_status("team-a", "llama-spot-0123456789ab", ready=1)
    assert woken == ["md-uid"]


def test_a_uid_no_pass_told_of_or_finalized_wakes_nothing() -> None:
    woken: list[str] = []
    wakes = ReadinessWakes(serving=lambda _c, _n: True)
    wakes.connect(woken.append)
    wakes.changed(rendered(ready=0), rendered(ready=1))
    assert woken == [] and wakes.refused == 1, "no pass of md-uid in this process yet"
    wakes.track(LLAMA)
    wakes.changed(rendered(ready=0), rendered(ready=1))
    assert woken == ["md-uid"]
    wakes.forget("md-uid")  # finalized: its uid may turn up on anything now
    wakes.changed(rendered(ready=1), None)
    assert woken == ["md-uid"] and wakes.refused == 2


def test_a_relabelled_object_wakes_only_for_the_uid_it_carries_where_it_is_ours() -> None:
    # The uid is read from the object after the change; the check is on that same object
    # (or the one before, for a deletion), never on a mix of the two.
    woken: list[str] = []
    wakes = tracking()
    wakes.connect(woken.append)
    theirs = changed(rendered(ready=0), metadata__namespace="team-b")
    wakes.changed(rendered(ready=0, uid="other-uid"), changed(theirs, status={"readyReplicas": 1}))
    assert woken == []
