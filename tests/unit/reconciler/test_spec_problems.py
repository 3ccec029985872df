"""An invalid FleetCluster or ModelDeployment is reported in an Event (and a condition) that
anyone who can read Events sees: it names each field and what is wrong, never the value
(pydantic's own ``str(exc)`` quotes the input, a credential in an endpoint URL included)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from reconciler_world import fleet_cluster

from modelfleet.api import FleetCluster
from modelfleet.handlers import spec_problems

SECRET = "s3cret-t0ken"


def test_an_invalid_endpoint_template_is_named_without_its_credential() -> None:
    body = fleet_cluster("east", region="us-east-1", price=1.0).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    body["spec"]["endpointTemplate"] = f"https://user:{SECRET}@{{cluster}}.example.com"
    with pytest.raises(ValidationError) as caught:
        FleetCluster.model_validate(body)
    assert SECRET in str(caught.value)  # what the FleetCluster Event used to carry
    message = spec_problems(caught.value)
    assert message.startswith("spec.endpointTemplate: String should match pattern")
    assert SECRET not in message
