"""The ``ModelRoute`` resource: how the gateway maps a model name clients send to deployments.

Namespaced, group ``modelfleet.io``, version ``v1alpha1``, short name ``mr``. A ModelRoute
gives a public model name (and aliases) to one or more ModelDeployments of its namespace,
with ordered rules: a match on request headers and on the prompt's size, then a weighted
split between deployments (canary), and fallback deployments for when the chosen one has no
ready endpoint. It is enough for the planner/executor pattern: requests marked as planning
(a header) or with a long prompt go to a large reasoning model, the rest to a fast one.

It is a resource of its own, not a field of ModelDeployment: a route spans deployments
(a canary is two deployments), and the teams that own routing and serving differ. The
gateway reads it and writes its status: ``Accepted`` (False when another ModelRoute took one
of its model names, or when the gateway ignores the route as invalid) and ``ResolvedRefs``
(False when a backend or fallback deployment does not exist), see docs/gateway.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, ValidationInfo, model_validator

from modelfleet.api.common import ApiModel, Condition, DnsLabel, ObjectMeta, Timestamp

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$"
"""What a client may send as ``model`` (same rule as ModelDeployment spec.model.name)."""

ModelName = Annotated[
    str, StringConstraints(pattern=MODEL_NAME_PATTERN, min_length=1, max_length=253)
]
STORED_CONTEXT: dict[str, bool] = {"stored": True}
"""Validation context for an object the API server already admitted (the gateway reading
the hub): duplicate entries, which the CRD now refuses but an object stored before that
may still hold, are tolerated there (the gateway de-duplicates them and logs a warning)
rather than dropping the whole route."""


def duplicates(values: Iterable[str]) -> list[str]:
    """The values that appear more than once, in first-repeat order."""
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for value in values:
        if value in seen:
            repeated[value] = None
        seen.add(value)
    return list(repeated)


def _stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


# RFC 9110 token characters: what an HTTP header name may contain.
HeaderName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", min_length=1, max_length=256)
]


class HeaderMatch(ApiModel):
    """One request header the rule requires (names compare case-insensitively)."""

    name: HeaderName = Field(description="Header name, e.g. x-modelfleet-role.")
    value: str | None = Field(
        default=None,
        max_length=1024,
        description="Exact value the header must have; unset means the header must be present.",
    )


class RouteMatch(ApiModel):
    """When a rule applies: every condition given must hold (an empty match always holds)."""

    x_validations: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.minPromptChars) || !has(self.maxPromptChars) || "
            "self.minPromptChars <= self.maxPromptChars",
            "message": "match.minPromptChars must not exceed match.maxPromptChars",
        }
    ]

    headers: list[HeaderMatch] | None = Field(
        default=None, max_length=16, description="Headers the request must carry, all of them."
    )
    min_prompt_chars: int | None = Field(
        default=None,
        ge=0,
        description="The prompt has at least this many characters (chat: the text of every "
        "message; completions: the prompt). About 4 characters make a token in English.",
    )
    max_prompt_chars: int | None = Field(
        default=None, ge=0, description="The prompt has at most this many characters."
    )

    @model_validator(mode="after")
    def _ordered(self) -> RouteMatch:
        low, high = self.min_prompt_chars, self.max_prompt_chars
        if low is not None and high is not None and low > high:
            raise ValueError(
                f"match.minPromptChars must not exceed match.maxPromptChars (min={low}, max={high})"
            )
        return self


class RouteBackend(ApiModel):
    """A ModelDeployment of the route's namespace and its share of the rule's traffic."""

    deployment: DnsLabel = Field(description="ModelDeployment name (same namespace).")
    weight: int = Field(
        default=1,
        ge=0,
        le=10000,
        description="Relative share of the rule's requests (0 takes none unless the others "
        "have no ready endpoint).",
    )


class RouteRule(ApiModel):
    """A match and where the matching requests go. Rules are tried in order; first wins."""

    x_validations: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "self.backends.exists(b, b.weight > 0)",
            "message": "a rule needs at least one backend with a positive weight",
        }
    ]

    name: str | None = Field(
        default=None, max_length=63, description="Rule name, for metrics and logs."
    )
    match: RouteMatch | None = Field(
        default=None, description="Conditions; unset means every request matches."
    )
    backends: list[RouteBackend] = Field(
        min_length=1,
        max_length=16,
        description="Deployments sharing the matched requests by weight (a canary is two); "
        "each deployment at most once.",
        # A list keyed by deployment: the API server refuses two entries for one deployment.
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["deployment"],
        },
    )

    @model_validator(mode="after")
    def _some_weight(self, info: ValidationInfo) -> RouteRule:
        if not any(b.weight > 0 for b in self.backends):
            raise ValueError("a rule needs at least one backend with a positive weight")
        repeated = duplicates(b.deployment for b in self.backends)
        if repeated and not _stored(info):
            raise ValueError(
                f"backends: deployment {', '.join(repeated)} listed more than once "
                "(give each deployment once, with the sum of the weights)"
            )
        return self


class ModelRouteSpec(ApiModel):
    """A public model name, its aliases, ordered rules and fallbacks."""

    x_validations: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.aliases) || !(self.model in self.aliases)",
            "message": "aliases must not repeat spec.model",
        },
        {
            "rule": "self.onNoMatch != 'Fallback' || (has(self.fallback) && "
            "size(self.fallback) > 0)",
            "message": "onNoMatch: Fallback needs spec.fallback",
        },
    ]

    model: ModelName = Field(
        description="The name clients send as the OpenAI `model` field, e.g. assistant."
    )
    aliases: list[ModelName] | None = Field(
        default=None,
        max_length=32,
        description="Other names that mean this route.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    rules: list[RouteRule] = Field(
        min_length=1, max_length=32, description="Tried in order; the first that matches wins."
    )
    fallback: list[DnsLabel] | None = Field(
        default=None,
        max_length=8,
        description="ModelDeployments (same namespace) tried in order when the rule's "
        "deployments have no ready endpoint; requests are held only when these have none "
        "either. Each at most once.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    on_no_match: Literal["Reject", "Fallback"] = Field(
        default="Reject",
        description="When no rule matches: Reject (404 to the client) or Fallback (send to "
        "the fallback deployments).",
    )

    @model_validator(mode="after")
    def _aliases_distinct(self, info: ValidationInfo) -> ModelRouteSpec:
        if self.aliases and self.model in self.aliases:
            raise ValueError("aliases must not repeat spec.model")
        if not _stored(info):
            for field, values in (("aliases", self.aliases), ("fallback", self.fallback)):
                repeated = duplicates(values or ())
                if repeated:
                    raise ValueError(f"{field}: {', '.join(repeated)} listed more than once")
        if self.on_no_match == "Fallback" and not self.fallback:
            raise ValueError("onNoMatch: Fallback needs spec.fallback")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Every model name this route answers to: ``model`` first, then the aliases."""
        return (self.model, *(self.aliases or ()))


class ModelNameClaim(ApiModel):
    """When the gateway first saw a route claim one model name (its claim's date)."""

    name: str = Field(description="A model name of spec.model or spec.aliases.")
    since: Timestamp = Field(
        description="When the gateway first saw this route claim the name (RFC 3339); the "
        "first-come rule dates the claim by it, not by the route's creation."
    )


class ModelRouteStatus(ApiModel):
    """What the gateway does with the route, written by the gateway only."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    observed_generation: int | None = Field(
        default=None, description="metadata.generation the status was computed from."
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="Accepted (False: another ModelRoute serves one of its model names, or "
        "the gateway ignores the route as invalid), ResolvedRefs (False: a backend or fallback "
        "deployment does not exist).",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    model_names: list[ModelNameClaim] | None = Field(
        default=None,
        description="The model names the route claims, each with when the gateway first saw "
        "it claimed: a name added by an edit is dated by the edit, so an old route edited to "
        "another tenant's name does not take it (docs/gateway.md).",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )


class ModelRoute(ApiModel):
    """Routing of one public model name to ModelDeployments (read by the gateway)."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: Literal["modelfleet.io/v1alpha1"] = Field(
        default="modelfleet.io/v1alpha1", description="modelfleet.io/v1alpha1"
    )
    kind: Literal["ModelRoute"] = Field(default="ModelRoute", description="Kind.")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: ModelRouteSpec = Field(description="Desired routing.")
    status: ModelRouteStatus | None = Field(
        default=None, description="Observed state, written by the gateway."
    )
