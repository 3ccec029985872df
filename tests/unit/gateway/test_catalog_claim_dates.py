"""A model-name claim is dated by when it began, as its trusted writer recorded it
(``catalog.build_catalog``; ``route_status.model_names``): the gateway's
``status.modelNames`` on a ModelRoute, the operator's ``status.servedModel`` on a
ModelDeployment.

Before (br13 F1): the claim was dated by the object's ``metadata.creationTimestamp``, so a
tenant owning any old ModelRoute or ModelDeployment edited its ``spec.model`` /
``spec.aliases`` / ``spec.model.name`` to another tenant's name and took it (and its
requests).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelfleet.api.modelroute import ModelRoute
from modelfleet.gateway.catalog import (
    Catalog,
    DeploymentInfo,
    DeploymentTarget,
    ObjectRef,
    RouteTarget,
    build_catalog,
    deployment_from_object,
)
from modelfleet.gateway.route_verdicts import model_names

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
JAN = "2026-01-01T00:00:00Z"
OCT = "2026-10-01T00:00:00Z"
NOV = "2026-11-01T00:00:00Z"
DEC = "2026-12-01T00:00:00Z"
NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
ROUTE = ObjectRef("ModelRoute", "team-b", "old")


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def md(namespace: str, name: str, model: str, created: str,
       served: tuple[str, str] | None = None) -> DeploymentInfo:  # fmt: skip
    """A ModelDeployment as the hub watch sees it; ``served``: its status.servedModel."""
    obj: dict[str, Any] = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": {"model": {"name": model}, "replicas": {"min": 0, "max": 1}},
    }
    if served is not None:
        obj["status"] = {"servedModel": {"name": served[0], "since": served[1]}}
    info = deployment_from_object(obj)
    assert info is not None
    return info


def mr(model: str, *, created: str = JAN, aliases: list[str] | None = None,
       recorded: list[tuple[str, str]] | None = None) -> ModelRoute:  # fmt: skip
    """team-b's route ``old``; ``recorded``: its status.modelNames (None: never recorded)."""
    spec: dict[str, Any] = {"model": model, "rules": [{"backends": [{"deployment": "mine"}]}]}
    if aliases:
        spec["aliases"] = aliases
    obj: dict[str, Any] = {
        "metadata": {"name": "old", "namespace": "team-b", "creationTimestamp": created},
        "spec": spec,
    }
    if recorded is not None:
        obj["status"] = {"modelNames": [{"name": n, "since": s} for n, s in recorded]}
    return ModelRoute.model_validate(obj)


def served_by(catalog: Catalog, model: str = LLAMA) -> str:
    target = catalog.resolve(model)
    if isinstance(target, RouteTarget):
        return f"ModelRoute {target.namespace}/{target.name}"
    assert isinstance(target, DeploymentTarget)
    return f"ModelDeployment {target.key}"


TEAM_A = md("team-a", "llama", LLAMA, NOV)


def test_an_old_route_edited_to_a_newer_tenants_name_does_not_take_it() -> None:
    # team-b's January route claimed 'mine-public' (the gateway recorded it); team-b edits
    # spec.model to team-a's name: the claim dates from the edit (the catalog's now).
    edited = mr(LLAMA, recorded=[("mine-public", JAN)])
    catalog = build_catalog([TEAM_A], [edited], now=NOW)
    assert served_by(catalog) == "ModelDeployment team-a/llama"
    [problem] = [p for p in catalog.problems if p.model == LLAMA]
    assert problem.objects[0] == ROUTE
    assert problem.why == (
        "the name belongs to namespace 'team-a', the first to claim it: ModelDeployment "
        "team-a/llama is older (created 2026-11-01T00:00:00Z, ModelRoute team-b/old claimed "
        "2026-12-02T05:00:00Z)"
    )
    assert catalog.claimed_since(ROUTE, LLAMA) == NOW
    # An alias added by an edit is dated the same way.
    aliased = mr("mine-public", aliases=[LLAMA], recorded=[("mine-public", JAN)])
    catalog = build_catalog([TEAM_A], [aliased], now=NOW)
    assert served_by(catalog) == "ModelDeployment team-a/llama"
    assert catalog.claimed_since(ROUTE, "mine-public") == at(JAN)


def test_an_old_deployment_edited_to_a_newer_tenants_name_does_not_take_it() -> None:
    # The operator recorded team-b's served name 'mine' in January; spec.model.name edited.
    edited = md("team-b", "mine", LLAMA, JAN, served=("mine", JAN))
    catalog = build_catalog([TEAM_A, edited], [], now=NOW)
    assert served_by(catalog) == "ModelDeployment team-a/llama"
    # The operator caught up: it dated the new name by the edit (after team-a's claim).
    caught_up = md("team-b", "mine", LLAMA, JAN, served=(LLAMA, DEC))
    catalog = build_catalog([TEAM_A, caught_up], [], now=NOW)
    assert served_by(catalog) == "ModelDeployment team-a/llama"
    [problem] = [p for p in catalog.problems if p.model == LLAMA]
    assert problem.kind == "name-taken" and problem.objects[0].namespace == "team-b"


def test_a_recorded_since_is_the_claims_date_not_the_creation() -> None:
    # The route was created in December but recorded its claim in October (kept as written):
    # it was first; and a deployment created in January whose recorded name dates from
    # December loses to a November claim.
    first = mr(LLAMA, created=DEC, recorded=[(LLAMA, OCT)])
    assert served_by(build_catalog([TEAM_A], [first], now=NOW)) == "ModelRoute team-b/old"
    renamed = md("team-c", "x", LLAMA, JAN, served=(LLAMA, DEC))
    assert served_by(build_catalog([TEAM_A, renamed], [], now=NOW)) == (
        "ModelDeployment team-a/llama"
    )


def test_never_recorded_claims_fall_back_to_the_creation_time() -> None:
    # No status.modelNames (a new route, or one from before the list) and no
    # status.servedModel: grandfathered at the creation, as before.
    assert served_by(build_catalog([TEAM_A], [mr(LLAMA)], now=NOW)) == "ModelRoute team-b/old"
    catalog = build_catalog([TEAM_A, md("team-b", "mine", LLAMA, JAN)], [], now=NOW)
    assert served_by(catalog) == "ModelDeployment team-b/mine"
    assert build_catalog([TEAM_A], [mr(LLAMA)], now=NOW).claimed_since(ROUTE, LLAMA) == at(JAN)


def test_the_status_list_adds_new_names_drops_gone_ones_and_never_rewrites_one() -> None:
    # Never recorded: every name with the date the catalog used (the creation).
    route = mr("mine-public", aliases=["mine-2"])
    catalog = build_catalog([TEAM_A], [route], now=NOW)
    assert model_names(catalog, route, NOW) == (("mine-public", at(JAN)), ("mine-2", at(JAN)))
    # Edited: 'mine-2' dropped, LLAMA added with the catalog's now, 'mine-public' kept as
    # recorded (an entry written by another replica is not rewritten).
    edited = mr("mine-public", aliases=[LLAMA], recorded=[("mine-public", OCT), ("mine-2", JAN)])
    catalog = build_catalog([TEAM_A], [edited], now=NOW)
    later = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    assert model_names(catalog, edited, later) == (("mine-public", at(OCT)), (LLAMA, NOW))
    # Recorded since: the catalog's next now does not move it.
    recorded = mr("mine-public", aliases=[LLAMA], recorded=[("mine-public", OCT), (LLAMA, DEC)])
    catalog = build_catalog([TEAM_A], [recorded], now=later)
    assert model_names(catalog, recorded, later) == (("mine-public", at(OCT)), (LLAMA, at(DEC)))


def test_the_br13_edit_takeover_fails_once_the_gateway_has_recorded_the_route() -> None:
    # br13's repro, through the writer's record: team-b's January route as the gateway
    # recorded it, then edited to team-a's name (a new generation, the status kept).
    b = md("team-b", "mine", "mine", JAN, served=("mine", JAN))
    before = mr("mine-public")
    record = model_names(build_catalog([TEAM_A, b], [before], now=NOW), before, NOW)
    stored = [(n, t.strftime("%Y-%m-%dT%H:%M:%SZ")) for n, t in record]
    after = mr(LLAMA, recorded=stored)
    assert served_by(build_catalog([TEAM_A, b], [after], now=NOW)) == "ModelDeployment team-a/llama"
    # The deployment edit, once the operator has recorded its served name.
    b2 = md("team-b", "mine", LLAMA, JAN, served=("mine", JAN))
    assert served_by(build_catalog([TEAM_A, b2], [], now=NOW)) == "ModelDeployment team-a/llama"
