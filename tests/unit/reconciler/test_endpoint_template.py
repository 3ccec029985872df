"""FleetCluster ``spec.endpointTemplate``: ``status.endpoints`` says, per member cluster,
the URL the gateway reaches that cluster's Service at (default: the in-cluster name, the
same for every cluster). The API model and the CRD's pattern accept the same templates."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from reconciler_world import World, fleet_cluster, model_deployment

from modelfleet.api import FleetCluster
from modelfleet.api.crdgen import fleet_cluster_crd
from modelfleet.clusters.workloads import service_name, service_url

MCS = "http://{name}.{namespace}.svc.clusterset.local:{port}"
INGRESS = "https://{namespace}-{name}.use1.models.example.com"


def with_template(cluster: FleetCluster, template: str | None) -> FleetCluster:
    body = cluster.model_dump(by_alias=True, exclude_none=True, mode="json")
    body["spec"]["endpointTemplate"] = template
    return FleetCluster.model_validate(body)


async def test_each_member_cluster_gets_its_own_endpoint_url() -> None:
    world = World(
        [
            with_template(fleet_cluster("east", region="us-east-1", price=10.0), INGRESS),
            fleet_cluster("west", region="us-west-2", price=12.0),
        ]
    )
    await world.start()
    spread = {"spread": {"minRegions": 2}}
    world.add(model_deployment("llama", replicas={"min": 2, "max": 2}, placement=spread))
    await world.reconcile("llama")
    status = world.deployments["llama"].status
    assert status is not None and status.endpoints is not None
    assert {(e.cluster, e.url) for e in status.endpoints} == {
        ("east", "https://default-llama.use1.models.example.com"),
        ("west", "http://llama.default.svc.cluster.local:8000"),  # no template: in-cluster
    }


def test_service_url_fills_every_placeholder() -> None:
    md = model_deployment("Llama_3")  # {name} is the Service's name: a DNS label
    name = service_name("Llama_3")
    assert name.startswith("llama-3-")
    assert service_url(md) == f"http://{name}.default.svc.cluster.local:8000"
    assert service_url(md, MCS) == f"http://{name}.default.svc.clusterset.local:8000"


def _template_schema(crd: dict[str, Any]) -> dict[str, Any]:
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema: dict[str, Any] = root["properties"]["spec"]["properties"]["endpointTemplate"]
    return schema


CRD_PATTERN = _template_schema(fleet_cluster_crd())["pattern"]


@pytest.mark.parametrize("template", [MCS, INGRESS, "http://10.0.0.7:{port}"])
def test_templates_with_known_placeholders_are_accepted(template: str) -> None:
    assert with_template(fleet_cluster("c", region="us-east-1", price=1.0), template)
    assert re.fullmatch(CRD_PATTERN, template)


@pytest.mark.parametrize(
    "template",
    [
        "http://{name}.{cluster}.example.com",  # unknown placeholder
        "http://{name.upper}.example.com",  # attribute access
        "ftp://{name}.example.com",  # not http(s)
        "http://{name} .example.com",  # space
        "{name}.example.com",  # no scheme
        "https://user:s3cret@{name}.example.com",  # a credential, copied into status
        "https://{name}.example.com:{port}/@x",  # '@' anywhere: no userinfo sneaks in
        "http://{",  # a lone brace
        "javascript:alert(1)//{name}",
        "file:///etc/{name}",
    ],
)
def test_other_templates_are_refused_by_the_model_and_the_crd(template: str) -> None:
    with pytest.raises(ValidationError, match="endpointTemplate"):
        with_template(fleet_cluster("c", region="us-east-1", price=1.0), template)
    assert not re.fullmatch(CRD_PATTERN, template)


def test_the_crd_files_carry_the_pattern() -> None:
    from pathlib import Path

    crd: dict[str, Any] = yaml.safe_load(
        (Path(__file__).parents[3] / "crds" / "fleetclusters.modelfleet.io.yaml").read_text()
    )
    assert _template_schema(crd)["pattern"] == CRD_PATTERN
