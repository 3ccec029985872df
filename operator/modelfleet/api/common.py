"""Types shared by every modelfleet resource: the pydantic base, conditions, selectors.

The models here are the single source of truth for the CRD schemas (see ``crdgen``): every
field carries a description (it becomes ``kubectl explain`` text) and every constraint that
pydantic enforces is mirrored in the OpenAPI schema, or as a CEL rule where it spans fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# DNS-1123 label: what Kubernetes accepts as a cluster/object name component.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Clouds and regions: lower-case words joined by dashes (us-east-1, us-central1, eastus).
CLOUD_PATTERN = r"^[a-z][a-z0-9-]*[a-z0-9]$"
REGION_PATTERN = r"^[a-z][a-z0-9-]*[a-z0-9]$"
ZONE_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"  # us-east-1a, us-central1-c, Azure "1"
# GPU model names as users write them: H100, A100-80GB, L40S, RTX-6000-Ada.
GPU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# KEP-1623 reason: CamelCase identifier.
DEFAULT_IN_CODE = "x-modelfleet-default-in-code"
"""``json_schema_extra`` key (``True``): the field's default stays in the model and is left
out of the CRD (``api.crdgen``), so the API server never writes it into a stored object."""
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)]
CloudName = Annotated[str, StringConstraints(pattern=CLOUD_PATTERN, max_length=32)]
RegionName = Annotated[str, StringConstraints(pattern=REGION_PATTERN, max_length=63)]
ZoneName = Annotated[str, StringConstraints(pattern=ZONE_PATTERN, max_length=63)]
GpuName = Annotated[str, StringConstraints(pattern=GPU_PATTERN, max_length=63)]


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_as_utc)]
"""A point in time, always zone-aware: one written without a zone (``2026-12-01T20:00:00``,
which the API server's ``date-time`` format accepts) is read as UTC. The operator compares
these with its own aware clock; a naive one raised TypeError on every pass (a status
timestamp hand-edited or restored without its ``Z`` stopped the object's reconciliation)."""

CapacityType = Literal["OnDemand", "Spot"]
"""How a node is bought: on-demand (never reclaimed) or spot (cheaper, reclaimable)."""


class ApiModel(BaseModel):
    """Base for every API type: camelCase on the wire, unknown fields rejected, immutable.

    ``x_validations`` holds CEL rules (``{"rule": ..., "message": ...}``) that the CRD
    generator puts under ``x-kubernetes-validations``; each one mirrors a pydantic validator
    of the same model so that kubectl and ``modelfleet validate`` reject the same input.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=False,
        # YAML files (validate, plan, simulate) can say .inf/.nan; the API server cannot
        # carry them (JSON): reject them here too rather than read .inf as "no limit".
        allow_inf_nan=False,
    )
    x_validations: ClassVar[list[dict[str, str]]] = []

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        if cls.x_validations:
            target = handler.resolve_ref_schema(schema)
            target["x-kubernetes-validations"] = [dict(rule) for rule in cls.x_validations]
        return schema


class Condition(ApiModel):
    """A KEP-1623 status condition: the latest observation of one aspect of the object."""

    type: str = Field(
        description="Condition type in CamelCase: Ready, Progressing, Degraded, SLOMet, "
        "CapacityAvailable (ModelDeployment); Reachable, Ready (FleetCluster); Accepted, "
        "ResolvedRefs (ModelRoute).",
        pattern=r"^[A-Z][A-Za-z0-9]*$",
        max_length=316,
    )
    status: Literal["True", "False", "Unknown"] = Field(
        description="Status of the condition: True, False or Unknown."
    )
    reason: str = Field(
        description="Programmatic identifier (CamelCase) for the last transition.",
        pattern=REASON_PATTERN,
        min_length=1,
        max_length=1024,
    )
    message: str = Field(
        description="Human-readable explanation of the last transition: what is wrong and "
        "what to change.",
        max_length=32768,
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="metadata.generation of the object this condition was computed from.",
    )
    last_transition_time: Timestamp = Field(
        description="When the condition last changed status (RFC 3339)."
    )


class LabelSelectorRequirement(ApiModel):
    """One label selector requirement, as in Kubernetes label selectors."""

    key: str = Field(description="Label key the requirement applies to.", max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="Relation between the key and the values."
    )
    values: list[str] | None = Field(
        default=None,
        max_length=64,
        description="Values for In and NotIn; must be empty for Exists and DoesNotExist.",
    )


class LabelSelector(ApiModel):
    """A Kubernetes label selector: matchLabels AND every matchExpressions requirement."""

    match_labels: dict[str, str] | None = Field(
        default=None, description="Labels a cluster must carry, all of them, with these values."
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, max_length=32, description="Set-based requirements, all must hold."
    )

    def matches(self, labels: dict[str, str]) -> bool:
        """True when ``labels`` satisfy every term of the selector (an empty selector matches)."""
        for key, value in (self.match_labels or {}).items():
            if labels.get(key) != value:
                return False
        for req in self.match_expressions or []:
            present = req.key in labels
            values = req.values or []
            if req.operator == "In" and (not present or labels[req.key] not in values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


class ObjectMeta(ApiModel):
    """The part of Kubernetes object metadata modelfleet reads.

    Unknown metadata keys (managedFields, ownerReferences, ...) are accepted and ignored:
    metadata is owned by the API server, not by this schema.
    """

    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="Object name.", min_length=1, max_length=253)
    namespace: str | None = Field(default=None, description="Namespace (namespaced kinds only).")
    labels: dict[str, str] = Field(default_factory=dict, description="Object labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Object annotations.")
    uid: str | None = Field(default=None, description="Server-assigned unique id.")
    generation: int | None = Field(default=None, description="Server-assigned spec generation.")
    creation_timestamp: Timestamp | None = Field(
        default=None, description="Server-assigned creation time."
    )
    resource_version: str | None = Field(default=None, description="Server resource version.")
    deletion_timestamp: Timestamp | None = Field(default=None, description="Set when deleting.")
    finalizers: list[str] = Field(default_factory=list, description="Finalizers on the object.")


def dump(model: BaseModel) -> dict[str, Any]:
    """Serialise an API model as Kubernetes wants it: camelCase, no unset/None fields."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)
