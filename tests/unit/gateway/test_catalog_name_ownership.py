"""Who serves a model name claimed twice (``catalog.build_catalog``): first come across
namespaces, then, within the namespace that claimed it first, a ModelRoute before a
ModelDeployment, then the oldest, then the name.

Before (br11): "a ModelRoute wins over a ModelDeployment; between two ModelDeployments the
first in (namespace, name) order". A ModelRoute in team-b whose ``model`` was team-a's
served model name took team-a's requests (and prompts), and a ModelDeployment created later
in namespace ``aaa`` with the same served name beat team-a's older one.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet.api.modelroute import ModelRoute
from modelfleet.gateway.catalog import (
    Catalog,
    DeploymentInfo,
    DeploymentKey,
    DeploymentTarget,
    ObjectRef,
    RouteTarget,
    build_catalog,
    deployment_from_object,
)
from modelfleet.gateway.route_verdicts import route_conditions

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
OLD = "2026-11-01T00:00:00Z"
NEW = "2026-12-02T04:00:00Z"


def md(namespace: str, name: str, model: str = LLAMA, created: str | None = OLD) -> DeploymentInfo:
    """A ModelDeployment as the hub watch sees it (through ``deployment_from_object``)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if created is not None:
        metadata["creationTimestamp"] = created
    info = deployment_from_object(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": metadata,
            "spec": {"model": {"name": model}, "replicas": {"min": 0, "max": 1}},
        }
    )
    assert info is not None
    return info


def mr(namespace: str, name: str, model: str = LLAMA, created: str | None = NEW,
       backend: str = "mine") -> ModelRoute:  # fmt: skip
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if created is not None:
        metadata["creationTimestamp"] = created
    spec = {"model": model, "rules": [{"backends": [{"deployment": backend}]}]}
    return ModelRoute.model_validate({"metadata": metadata, "spec": spec})


def served_by(catalog: Catalog, model: str = LLAMA) -> tuple[str, str, str]:
    target = catalog.resolve(model)
    if isinstance(target, RouteTarget):
        return ("ModelRoute", target.namespace, target.name)
    assert isinstance(target, DeploymentTarget)
    return ("ModelDeployment", target.key.namespace, target.key.name)


def clash(catalog: Catalog) -> tuple[str, tuple[ObjectRef, ...], str]:
    [problem] = [p for p in catalog.problems if p.model is not None]
    assert problem.why is not None and f"({problem.why})" in problem.message
    return problem.kind, problem.objects, problem.message


def test_deployment_from_object_keeps_the_creation_time() -> None:
    assert md("team-a", "llama").created is not None
    assert md("team-a", "llama", created=None).created is None


def test_a_route_in_another_namespace_cannot_take_a_served_model_name() -> None:
    # The br11 repro (/tmp/br11/x/hijack.yaml): team-b's route named team-a's model.
    catalog = build_catalog(
        [md("team-a", "llama"), md("team-b", "mine", model="llama-b", created=NEW)],
        [mr("team-b", "grab")],
    )
    assert served_by(catalog) == ("ModelDeployment", "team-a", "llama")
    kind, objects, message = clash(catalog)
    assert kind == "route-name-clash"  # serious: validate fails, the route is not Accepted
    assert objects == (ObjectRef("ModelRoute", "team-b", "grab"),
                       ObjectRef("ModelDeployment", "team-a", "llama"))  # fmt: skip
    assert message == (
        f"model {LLAMA!r}: ModelRoute team-b/grab ignored, ModelDeployment team-a/llama serves "
        "it (the name belongs to namespace 'team-a', the first to claim it: ModelDeployment "
        "team-a/llama is older (created 2026-11-01T00:00:00Z, ModelRoute team-b/grab "
        "2026-12-02T04:00:00Z))"
    )
    # The route's owner is told on the route itself.
    accepted = route_conditions(catalog, mr("team-b", "grab"))[0]
    assert (accepted.status, accepted.reason) == ("False", "ModelNameClash")
    assert f"model name {LLAMA!r} is served by ModelDeployment team-a/llama" in accepted.message
    assert "is older" in accepted.message


def test_a_later_deployment_in_a_namespace_that_sorts_first_cannot_take_the_name() -> None:
    catalog = build_catalog([md("team-a", "llama"), md("aaa", "llama", created=NEW)], [])
    assert served_by(catalog) == ("ModelDeployment", "team-a", "llama")
    kind, objects, message = clash(catalog)
    assert kind == "name-taken"
    assert objects[0] == ObjectRef("ModelDeployment", "aaa", "llama")
    assert "ModelDeployment aaa/llama ignored, ModelDeployment team-a/llama serves it" in message
    assert "namespace 'team-a', the first to claim it" in message
    # Nor with a route in front of it: the namespace came second.
    catalog = build_catalog(
        [md("team-a", "llama"), md("aaa", "mine", created=NEW)], [mr("aaa", "front")]
    )
    assert served_by(catalog) == ("ModelDeployment", "team-a", "llama")


def test_a_route_over_its_own_namespaces_deployment_still_wins() -> None:
    # A canary route created after the deployment whose name it fronts.
    catalog = build_catalog(
        [md("team-a", "llama"), md("team-a", "canary", model="llama-canary")],
        [mr("team-a", "llama-canary-split", backend="canary")],
    )
    assert served_by(catalog) == ("ModelRoute", "team-a", "llama-canary-split")
    kind, _, message = clash(catalog)
    assert kind == "name-shadowed"  # a note, not a mistake
    assert message.endswith("(a ModelRoute comes before a ModelDeployment of its own namespace)")
    # ... and it keeps the name when an older claim of another namespace is not there, but
    # loses it to one that is: namespace first, then kind.
    older = md("team-b", "llama", created="2026-10-01T00:00:00Z")
    catalog = build_catalog(
        [md("team-a", "llama"), md("team-a", "canary", model="x"), older],
        [mr("team-a", "front", backend="canary")],
    )
    assert served_by(catalog) == ("ModelDeployment", "team-b", "llama")
    kinds = sorted(p.kind for p in catalog.problems)
    assert kinds == ["name-taken", "route-name-clash"]


def test_the_oldest_claim_decides_the_namespace_even_if_it_is_not_the_winner() -> None:
    # team-a's deployment is the oldest claim; team-a's newer route fronts it and wins,
    # although team-b's route is older than that route.
    catalog = build_catalog(
        [md("team-a", "llama", created="2026-10-01T00:00:00Z")],
        [
            mr("team-a", "front", created=NEW, backend="llama"),
            mr("team-b", "grab", created=OLD),
        ],
    )
    assert served_by(catalog) == ("ModelRoute", "team-a", "front")
    grab = [p for p in catalog.problems if p.objects[0].name == "grab" and p.model]
    assert [p.kind for p in grab] == ["route-name-clash"]
    assert "ModelDeployment team-a/llama is older (created 2026-10-01T00:00:00Z" in grab[0].message


@pytest.mark.parametrize(
    ("a_created", "b_created", "winner", "why"),
    [
        # Same age: the first namespace in name order.
        (OLD, OLD, "team-a", "same age or no creation time, the first in namespace/name order"),
        # Neither dated (static files, validate): the same.
        (None, None, "team-a", "same age or no creation time"),
        # A dated claim comes before an undated one, whatever the namespace order.
        (None, NEW, "team-b", "ModelDeployment team-b/llama has a creation time"),
        (NEW, None, "team-a", "ModelDeployment team-a/llama has a creation time"),
        # Instants are compared, not strings: 05:00+02:00 is 03:00Z, older than 04:00Z.
        (NEW, "2026-12-02T05:00:00+02:00", "team-b", "is older"),
    ],
)
def test_ties_and_unknown_ages(
    a_created: str | None, b_created: str | None, winner: str, why: str
) -> None:
    catalog = build_catalog(
        [md("team-a", "llama", created=a_created), md("team-b", "llama", created=b_created)], []
    )
    assert served_by(catalog) == ("ModelDeployment", winner, "llama")
    kind, objects, message = clash(catalog)
    assert kind == "name-taken" and objects[1].namespace == winner
    assert why in message


def test_within_a_namespace_the_older_of_two_deployments_keeps_the_name() -> None:
    # Was: the first by name, whatever the age.
    catalog = build_catalog(
        [md("team", "a-new", created=NEW), md("team", "b-old", created=OLD)], []
    )
    assert served_by(catalog) == ("ModelDeployment", "team", "b-old")
    kind, _, message = clash(catalog)
    assert kind == "name-shadowed" and "ModelDeployment team/b-old is older" in message


def test_static_deployment_infos_without_a_time_sort_by_namespace_and_name() -> None:
    # cli_validate and the static file build DeploymentInfo without ``created``.
    infos = [DeploymentInfo(DeploymentKey(ns, "d"), "m", ()) for ns in ("zz", "aa")]
    catalog = build_catalog(infos, [])
    assert served_by(catalog, "m") == ("ModelDeployment", "aa", "d")


def test_many_claims_on_one_name_cost_linear_time() -> None:
    """br13: one tenant's 4,000 ModelRoutes on another tenant's name. The catalog looked up
    each namespace's oldest claim for every loser (a scan of the name's claims each time),
    and the status writer scanned every problem for every route: 11 s and 1.3 s of CPU on
    the gateway's event loop at each watch event (no request served meanwhile). Now
    indexed: the catalog and every route's conditions in well under a second; the bound
    is on CPU time, with room for a slow machine."""
    import time

    owner = md("team-a", "llama")
    routes = [mr("hostile", f"r{i}", created=f"2026-12-02T04:{i // 60 % 60:02d}:{i % 60:02d}Z")
              for i in range(4000)]  # fmt: skip
    start = time.process_time()
    catalog = build_catalog([owner], routes)
    conditions = [route_conditions(catalog, route) for route in routes]
    spent = time.process_time() - start
    assert catalog.resolve(LLAMA) == DeploymentTarget(owner.key)
    assert all(accepted.status == "False" for accepted, _ in conditions)
    assert spent < 2.5, f"{spent:.1f} s of CPU"
