"""The ModelRoute conditions the gateway writes (``route_conditions``, pure): a route that
loses a model name to another says which route won and why; a missing backend says which
deployment is missing; a route with neither problem is accepted."""

from __future__ import annotations

import re
from typing import Any

import pytest

from modelfleet.api.modelroute import ModelRoute
from modelfleet.gateway.catalog import DeploymentInfo, DeploymentKey, build_catalog
from modelfleet.gateway.route_status import event_name
from modelfleet.gateway.route_verdicts import route_conditions


def route(
    name: str, model: str, *, namespace: str = "team", created: str | None = None, **spec: Any
) -> ModelRoute:
    body = {"model": model, "rules": [{"backends": [{"deployment": "qwen"}]}], **spec}
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if created is not None:
        metadata["creationTimestamp"] = created
    return ModelRoute.model_validate({"metadata": metadata, "spec": body})


QWEN = DeploymentInfo(DeploymentKey("team", "qwen"), "qwen-1.5b", ())


def by_type(r: ModelRoute, routes: list[ModelRoute]) -> dict[str, tuple[str, str, str]]:
    catalog = build_catalog([QWEN], routes)
    return {c.type: (c.status, c.reason, c.message) for c in route_conditions(catalog, r)}


def test_a_route_alone_is_accepted_and_resolved() -> None:
    alone = route("assistant", "assistant", aliases=["helper"])
    conditions = by_type(alone, [alone])
    assert conditions["Accepted"] == (
        "True",
        "Accepted",
        "serves model name(s) 'assistant', 'helper'",
    )
    assert conditions["ResolvedRefs"][:2] == ("True", "ResolvedRefs")


def test_the_route_second_in_namespace_name_order_loses_the_name_and_is_told_who_won() -> None:
    first = route("a-first", "assistant")
    second = route("b-second", "assistant", aliases=["helper"])
    assert by_type(first, [second, first])["Accepted"][:2] == ("True", "Accepted")
    status, reason, message = by_type(second, [second, first])["Accepted"]
    assert (status, reason) == ("False", "ModelNameClash")
    assert "model name 'assistant' is served by ModelRoute team/a-first" in message
    assert "first in namespace/name order" in message
    assert "it still serves 'helper'" in message
    # Namespace comes first in the order: a route of namespace "alpha" beats "team"'s.
    other = route("z-last", "assistant", namespace="alpha")
    status, _, message = by_type(first, [first, other])["Accepted"]
    assert status == "False" and "ModelRoute alpha/z-last" in message
    assert "it serves no model name" in message


def test_the_older_route_keeps_a_name_whatever_the_namespace_of_a_newer_one() -> None:
    # Gateway API's conflict rule: a route created later in a namespace that sorts first
    # ("a-team" < "team") must not take over a name another team already serves.
    served = route("assistant", "assistant", created="2026-11-30T09:00:00Z")
    grab = route("assistant", "assistant", namespace="a-team", created="2026-12-01T08:00:00Z")
    assert by_type(served, [grab, served])["Accepted"][:2] == ("True", "Accepted")
    status, reason, message = by_type(grab, [grab, served])["Accepted"]
    assert (status, reason) == ("False", "ModelNameClash")
    assert "served by ModelRoute team/assistant" in message and "older" in message
    # Same age: namespace/name order decides; a route the server has not dated comes last.
    twin = route("assistant", "assistant", namespace="a-team", created="2026-11-30T09:00:00Z")
    assert by_type(served, [served, twin])["Accepted"][0] == "False"
    undated = route("assistant", "assistant", namespace="a-team")
    assert by_type(served, [undated, served])["Accepted"][0] == "True"
    assert by_type(undated, [undated, served])["Accepted"][0] == "False"
    # Offsets are compared as instants: 10:00+02:00 is older than 09:00Z.
    offset = route("x", "assistant", namespace="zz", created="2026-11-30T10:00:00+02:00")
    assert by_type(offset, [served, offset])["Accepted"][0] == "True"


def test_a_missing_backend_or_fallback_deployment_is_named() -> None:
    broken = route("assistant", "assistant", fallback=["ghost"])
    status, reason, message = by_type(broken, [broken])["ResolvedRefs"]
    assert (status, reason) == ("False", "DeploymentNotFound")
    assert message.startswith("ModelDeployment team/ghost named as backend or fallback")
    assert by_type(broken, [broken])["Accepted"][0] == "True"


# A DNS subdomain (what the API server demands of an Event's name): labels of alphanumerics
# and '-', each starting and ending alphanumeric, 253 characters at most.
DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"


@pytest.mark.parametrize(
    "name",
    [
        "assistant",
        "a" * 253,  # the longest route name
        "a" * 199 + "." + "b" * 53,  # the cut falls right after a '.'
        "a" * 197 + ".b-" + "b" * 53,  # ... after a one-character label and its '-'
        "a" * 199 + "-" + "b" * 53,  # ... after a '-'
    ],
)
def test_event_names_are_dns_subdomains_for_any_route_name(name: str) -> None:
    assert re.fullmatch(DNS_SUBDOMAIN, name) and len(name) <= 253  # a valid route name
    event = event_name(name, "0123456789abcdef")
    assert re.fullmatch(DNS_SUBDOMAIN, event), event
    assert len(event) <= 253 and event.endswith(".0123456789abcdef")
