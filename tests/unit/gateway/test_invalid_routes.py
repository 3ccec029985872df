"""What the gateway records on a ModelRoute it ignores as invalid (``invalid_routes``): the
model names it declares, dated as the catalog dates a valid route's claims, and why it is
ignored. Pure functions, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelfleet.gateway.catalog import build_catalog
from modelfleet.gateway.invalid_routes import (
    InvalidRoute,
    invalid_message,
    invalid_model_names,
    parse_route,
)
from modelfleet.gateway.route_verdicts import wanted_status

JAN = datetime(2026, 1, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def obj(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "metadata": {
            "name": "r",
            "namespace": "team-b",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": spec,
    }
    if status is not None:
        found["status"] = status
    return found


RULES = [{"backends": [{"deployment": "d"}]}]


def invalid(spec: dict[str, Any], status: dict[str, Any] | None = None) -> InvalidRoute:
    parsed = parse_route(obj(spec, status))
    assert isinstance(parsed, InvalidRoute), parsed
    return parsed


def test_a_valid_route_is_not_an_invalid_one() -> None:
    assert not isinstance(parse_route(obj({"model": "m", "rules": RULES})), InvalidRoute)


@pytest.mark.parametrize(
    ("spec", "names", "error"),
    [
        # A CEL rule the server may not enforce: the names are fine.
        (
            {"model": "m", "aliases": ["a"], "rules": RULES, "onNoMatch": "Fallback"},
            ("m", "a"),
            "onNoMatch: Fallback needs spec.fallback",
        ),
        # A name that is not a model name is left out (a fix must rename it).
        ({"model": "-bad", "aliases": ["a", "a", 3], "rules": RULES}, ("a",), "spec.model"),
        ({"model": "m"}, ("m",), "spec.rules: Field required"),
        ({"model": "m", "aliases": "a", "rules": RULES}, ("m",), "spec.aliases"),
    ],
)
def test_the_names_an_invalid_route_declares_and_why_it_is_refused(
    spec: dict[str, Any], names: tuple[str, ...], error: str
) -> None:
    route = invalid(spec)
    assert route.names == names
    assert error in route.error
    assert "Value error," not in route.error
    assert invalid_message(route).startswith(f"the gateway ignores this route: {route.error}.")


def test_the_error_is_cut_to_a_bounded_length() -> None:
    aliases = [f"-{i}" for i in range(30)]  # 30 errors, one per alias, and one per rule
    route = invalid({"model": "m", "rules": [{"backends": []}] * 30, "aliases": aliases})
    assert len(route.error) <= 1000
    assert route.error.endswith("...")


BAD = {"model": "m", "aliases": ["a"], "rules": RULES, "onNoMatch": "Fallback"}


@pytest.mark.parametrize(
    ("status", "wanted"),
    [
        # Never recorded: dated by its creation, as the catalog dates such a route.
        (None, (("m", JAN), ("a", JAN))),
        ({"conditions": []}, (("m", JAN), ("a", JAN))),
        # Recorded: a listed name keeps its date; one an edit added is dated now; a listed
        # name no longer declared is dropped.
        (
            {"modelNames": [{"name": "m", "since": "2026-11-01T00:00:00Z"},
                            {"name": "gone", "since": "2026-11-01T00:00:00Z"}]},
            (("m", NOV), ("a", NOW)),
        ),
        ({"modelNames": []}, (("m", NOW), ("a", NOW))),
        # An unreadable status is no record (dated as never recorded, then written afresh).
        ({"modelNames": "junk"}, (("m", JAN), ("a", JAN))),
    ],
)  # fmt: skip
def test_an_invalid_routes_names_are_dated_as_a_valid_routes(
    status: dict[str, Any] | None, wanted: tuple[tuple[str, datetime], ...]
) -> None:
    assert invalid_model_names(invalid(BAD, status), NOW) == wanted


def test_an_object_without_readable_metadata_is_nothing_to_write_to() -> None:
    assert parse_route({"metadata": {"namespace": "x"}, "spec": BAD}) is None


def test_an_invalid_route_is_wanted_not_accepted_and_nothing_else() -> None:
    route = invalid(BAD)
    [accepted], names = wanted_status(build_catalog([], []), route, NOW)
    assert (accepted.type, accepted.status, accepted.reason) == ("Accepted", "False", "InvalidSpec")
    assert accepted.message == invalid_message(route)
    assert names == (("m", JAN), ("a", JAN))
