"""GcpNodePoolProvider driving the real google-cloud-container/compute clients (REST
transport) against the local GKE + Compute Engine stub: discovery, the pool lifecycle, the
requests GKE receives, idempotency, ownership, and the classification of every error code
the provider promises to translate.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from modelfleet.api.fleetcluster import FleetCluster
from modelfleet.core import Offering
from modelfleet.providers import (
    InsufficientCapacity,
    InvalidConfiguration,
    KnowsNodes,
    NodeRef,
    NotFound,
    PermissionDenied,
    PoolIssue,
    PoolSpec,
    ProviderUnavailable,
    QuotaExceeded,
    RemovesNodes,
    Throttled,
    Unreachable,
)
from modelfleet.providers.gcp import GcpNodePoolProvider

try:  # tests/integration on sys.path (pytest's default rootdir-less import)
    from cloud_fixtures import RecordingSleep
    from cloud_stubs import CloudStub, gcp_error
except ImportError:  # pragma: no cover - run as a package
    from tests.integration.cloud_fixtures import RecordingSleep
    from tests.integration.cloud_stubs import CloudStub, gcp_error

pytestmark = pytest.mark.integration

PROJECT = "ml-prod-12345"
REGION = "us-central1"
PARENT = f"/v1/projects/{PROJECT}/locations/{REGION}/clusters/serving"
POOLS = PARENT + "/nodePools"
SECRET_MARKER = "PRIVATE-KEY-MATERIAL"


def _machine(name: str, accelerator: str | None, count: int) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "guestCpus": 12, "memoryMb": 87040}
    if accelerator:
        item["accelerators"] = [
            {"guestAcceleratorType": accelerator, "guestAcceleratorCount": count}
        ]
    return item


def _seed(stub: CloudStub) -> None:
    stub.regions[REGION] = {
        "name": REGION,
        "zones": [
            f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{REGION}-{z}"
            for z in "abc"
        ],
        "quotas": [
            {"metric": "NVIDIA_H100_GPUS", "limit": 16, "usage": 8},
            {"metric": "PREEMPTIBLE_NVIDIA_H100_GPUS", "limit": 64, "usage": 0},
            {"metric": "NVIDIA_L4_GPUS", "limit": 4, "usage": 1},
            {"metric": "NVIDIA_A100_80GB_GPUS", "limit": 0, "usage": 0},
            {"metric": "CPUS", "limit": 2400, "usage": 100},
        ],
    }
    stub.accelerator_types = {
        f"{REGION}-a": [
            {"name": n, "maximumCardsPerInstance": 8}
            for n in ("nvidia-h100-80gb", "nvidia-l4", "nvidia-a100-80gb", "nvidia-future")
        ],
        f"{REGION}-b": [{"name": "nvidia-l4", "maximumCardsPerInstance": 8}],
        f"{REGION}-c": [{"name": "nvidia-h100-80gb", "maximumCardsPerInstance": 8}],
    }
    stub.machine_types = {
        f"{REGION}-a": [
            _machine("a3-highgpu-1g", "nvidia-h100-80gb", 1),
            _machine("a3-highgpu-8g", "nvidia-h100-80gb", 8),
            _machine("a2-ultragpu-1g", "nvidia-a100-80gb", 1),
            _machine("g2-standard-8", "nvidia-l4", 1),
            _machine("n2-standard-8", None, 0),
            _machine("x9-future-1g", "nvidia-future", 1),
        ],
        # H100 machine type listed, but zone b has no H100 accelerator type: not offered there.
        f"{REGION}-b": [
            _machine("g2-standard-8", "nvidia-l4", 1),
            _machine("a3-highgpu-8g", "nvidia-h100-80gb", 8),
        ],
        f"{REGION}-c": [_machine("a3-highgpu-8g", "nvidia-h100-80gb", 8)],
    }


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStub]:
    with CloudStub(tmp_path_factory.mktemp("gcp-stub")) as server:
        yield server


@pytest.fixture
def gcp(stub: CloudStub) -> CloudStub:
    stub.gke_pools.clear()
    stub.igms.clear()
    stub.igm_instances.clear()
    stub.faults.clear()
    stub.clear_calls()
    _seed(stub)
    return stub


def _cluster(*, declared: list[dict[str, Any]] | None = None) -> FleetCluster:
    spec: dict[str, Any] = {
        "provider": "gcp",
        "region": REGION,
        "zones": [f"{REGION}-a", f"{REGION}-b"],
        "gcp": {"project": PROJECT, "location": REGION, "clusterName": "serving"},
    }
    if declared is not None:
        spec["gpuOfferings"] = declared
    return FleetCluster.model_validate({"metadata": {"name": "gke-usc1"}, "spec": spec})


def _provider(stub: CloudStub, **kwargs: Any) -> GcpNodePoolProvider:
    from google.auth.credentials import AnonymousCredentials

    kwargs.setdefault("sdk_credentials", AnonymousCredentials())
    kwargs.setdefault("sleep", RecordingSleep())
    return GcpNodePoolProvider(_cluster(), endpoint=stub.http_url, **kwargs)


H100_8 = Offering("H100", 80, 8, "a3-highgpu-8g", 88.49, 29.53, zones=(f"{REGION}-a",))
L4_1 = Offering("L4", 24, 1, "g2-standard-8", 0.85, 0.34)


def _spec(offering: Offering = H100_8, *, nodes: int = 2, capacity: str = "Spot") -> PoolSpec:
    return PoolSpec("gke-usc1", offering, capacity, nodes)  # type: ignore[arg-type]


# -- discovery ------------------------------------------------------------------------------


async def test_discovery_joins_machine_types_accelerators_quota_and_prices(gcp: CloudStub) -> None:
    offerings = {o.instance_type: o for o in await _provider(gcp).discover_offerings()}

    assert set(offerings) == {"a3-highgpu-1g", "a3-highgpu-8g", "a2-ultragpu-1g", "g2-standard-8"}
    h100x8 = offerings["a3-highgpu-8g"]
    # 16 - 8 H100s left in the region: one 8-GPU node or eight 1-GPU nodes.
    assert (h100x8.gpu, h100x8.gpu_memory_gib, h100x8.gpus_per_node) == ("H100", 80, 8)
    assert h100x8.max_nodes == 1
    assert offerings["a3-highgpu-1g"].max_nodes == 8
    # Zone b lists the machine type but not the accelerator; zone c is not the cluster's.
    assert h100x8.zones == (f"{REGION}-a",)
    assert offerings["g2-standard-8"].zones == (f"{REGION}-a", f"{REGION}-b")
    assert offerings["g2-standard-8"].max_nodes == 3
    assert offerings["a2-ultragpu-1g"].max_nodes == 0
    assert (offerings["a2-ultragpu-1g"].gpu, offerings["a2-ultragpu-1g"].gpu_memory_gib) == (
        "A100-80GB",
        80,
    )
    # Prices come from the bundled table for us-central1.
    assert (h100x8.on_demand_per_hour, h100x8.spot_per_hour) == (88.49, 29.53)
    # Only the cluster's zones were listed, never zone c.
    listed = {r.path for r in gcp.calls("GET", r"/(machineTypes|acceleratorTypes)$")}
    assert not [p for p in listed if f"{REGION}-c" in p]
    assert len(listed) == 4


async def test_declared_offerings_win_field_by_field(gcp: CloudStub) -> None:
    from google.auth.credentials import AnonymousCredentials

    declared = [
        {
            "gpu": "H100",
            "gpuMemoryGiB": 80,
            "gpusPerNode": 8,
            "instanceType": "a3-highgpu-8g",
            "onDemandPerHour": 70.0,
            "maxNodes": 3,
        },
        {
            "gpu": "H100",
            "gpuMemoryGiB": 80,
            "gpusPerNode": 8,
            "instanceType": "a3-megagpu-8g",
            "onDemandPerHour": 90.0,
            "spotPerHour": 40.0,
        },
    ]
    provider = GcpNodePoolProvider(
        _cluster(declared=declared), endpoint=gcp.http_url, sdk_credentials=AnonymousCredentials()
    )
    offerings = {o.instance_type: o for o in await provider.discover_offerings()}

    h100x8 = offerings["a3-highgpu-8g"]
    assert h100x8.on_demand_per_hour == 70.0  # declared
    assert h100x8.max_nodes == 3  # declared
    assert h100x8.spot_per_hour == 29.53  # not declared: discovered (table)
    assert h100x8.zones == (f"{REGION}-a",)  # not declared: discovered
    assert offerings["a3-megagpu-8g"].spot_per_hour == 40.0  # declared only


# -- pool lifecycle -------------------------------------------------------------------------


async def test_create_sends_gke_node_pool_with_gpu_spot_labels_taints(gcp: CloudStub) -> None:
    provider = _provider(gcp)
    spec = _spec(nodes=2)

    pool = await provider.ensure_pool(spec)

    assert pool.name == f"mf-{spec.pool_id}"
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?", pool.name)
    assert (pool.state, pool.desired_nodes, pool.ready_nodes) == ("Creating", 2, 0)
    assert (pool.instance_type, pool.capacity_type, pool.gpu) == ("a3-highgpu-8g", "Spot", "H100")
    (create,) = gcp.calls("POST", POOLS + "$")
    body = create.body["nodePool"]  # type: ignore[index]
    config = body["config"]
    assert body["name"] == pool.name
    assert body["initialNodeCount"] == 2
    assert body["locations"] == [f"{REGION}-a"]  # one zone: GKE sizes per zone
    assert not body.get("autoscaling", {}).get("enabled", False)
    assert config["machineType"] == "a3-highgpu-8g"
    assert config["spot"] is True
    (accelerator,) = config["accelerators"]
    assert accelerator["acceleratorType"] == "nvidia-h100-80gb"
    assert int(accelerator["acceleratorCount"]) == 8
    assert accelerator["gpuDriverInstallationConfig"]["gpuDriverVersion"] in (3, "LATEST")
    assert config["labels"] == spec.node_labels()
    (taint,) = config["taints"]
    assert (taint["key"], taint["value"]) == ("nvidia.com/gpu", "present")
    assert taint["effect"] in (1, "NO_SCHEDULE")
    assert config["resourceLabels"] == {
        "modelfleet-io-managed": "true",
        "modelfleet-io-cluster": "gke-usc1",
        "modelfleet-io-offering": "a3-highgpu-8g",
    }
    # Callers see modelfleet's own tag keys on every cloud.
    assert pool.tags["modelfleet.io/managed"] == "true"


async def test_on_demand_pool_is_not_spot(gcp: CloudStub) -> None:
    pool = await _provider(gcp).ensure_pool(_spec(L4_1, nodes=1, capacity="OnDemand"))

    (create,) = gcp.calls("POST", POOLS + "$")
    config = create.body["nodePool"]["config"]  # type: ignore[index]
    assert not config.get("spot", False)
    assert config["accelerators"][0]["acceleratorType"] == "nvidia-l4"
    assert pool.capacity_type == "OnDemand"


async def test_resize_then_noop_then_delete(gcp: CloudStub) -> None:
    provider = _provider(gcp)
    spec = _spec(nodes=2)
    await provider.ensure_pool(spec)
    gcp.settle_gke()

    ready = await provider.get_pool(spec)
    assert (ready.state, ready.desired_nodes, ready.ready_nodes) == ("Active", 2, 2)

    grown = await provider.ensure_pool(_spec(nodes=5))
    (resize,) = gcp.calls("POST", r":setSize$")
    assert resize.path == f"{POOLS}/{grown.name}:setSize"
    assert int(resize.body["nodeCount"]) == 5  # type: ignore[index]
    assert (grown.state, grown.desired_nodes) == ("Updating", 5)

    gcp.settle_gke()
    gcp.clear_calls()
    same = await provider.ensure_pool(_spec(nodes=5))
    assert (same.state, same.desired_nodes, same.ready_nodes) == ("Active", 5, 5)
    assert gcp.calls("POST") == []  # neither create nor setSize

    await provider.delete_pool(same.name)
    assert [r.path for r in gcp.calls("DELETE")] == [f"{POOLS}/{same.name}"]
    with pytest.raises(NotFound):
        await provider.get_pool(spec)
    await provider.delete_pool(same.name)  # idempotent: already gone
    assert len(gcp.calls("DELETE")) == 1


async def test_second_ensure_sends_no_create(gcp: CloudStub) -> None:
    provider = _provider(gcp)
    await provider.ensure_pool(_spec(nodes=2))
    await provider.ensure_pool(_spec(nodes=2))

    assert len(gcp.calls("POST", POOLS + "$")) == 1
    assert gcp.calls("POST", r":setSize$") == []


async def test_409_already_exists_on_create_is_success(gcp: CloudStub) -> None:
    provider = _provider(gcp)
    spec = _spec(nodes=2)
    await provider.ensure_pool(spec)
    gcp.settle_gke()
    gcp.clear_calls()
    # The next read misses the pool (stale read / lost response): create answers 409.
    gcp.inject(
        "GET",
        re.escape(f"{POOLS}/mf-{spec.pool_id}") + "$",
        404,
        gcp_error(404, "NOT_FOUND", "Not found"),
    )

    pool = await provider.ensure_pool(spec)

    assert [r.path for r in gcp.calls("POST")] == [POOLS]  # one create, answered 409
    assert (pool.name, pool.state, pool.desired_nodes) == (f"mf-{spec.pool_id}", "Active", 2)


async def test_pool_status_and_conditions_become_state_and_issues(gcp: CloudStub) -> None:
    provider = _provider(gcp)
    spec = _spec(nodes=1)
    await provider.ensure_pool(spec)
    stored = gcp.gke_pools[(PROJECT, REGION, "serving")][f"mf-{spec.pool_id}"]

    stored["status"] = "ERROR"
    stored["conditions"] = [
        {
            "code": "GCE_STOCKOUT",
            "message": "Zone us-central1-a has no a3-highgpu-8g capacity",
            "canonicalCode": "RESOURCE_EXHAUSTED",
        }
    ]
    failed = await provider.get_pool(spec)
    assert failed.state == "Failed"
    # A stockout reported on the pool is flagged as capacity (the operator makes it a mark).
    assert failed.issues == (
        PoolIssue(
            "GCE_STOCKOUT", "Zone us-central1-a has no a3-highgpu-8g capacity", capacity=True
        ),
    )

    stored["status"] = "RUNNING_WITH_ERROR"
    stored["conditions"] = [{"code": "GKE_SERVICE_ACCOUNT_DELETED", "message": "sa deleted"}]
    assert (await provider.get_pool(spec)).state == "Degraded"
    [issue] = (await provider.get_pool(spec)).issues
    assert (issue.code, issue.capacity) == ("GKE_SERVICE_ACCOUNT_DELETED", False)

    for status, state in [
        ("PROVISIONING", "Creating"),
        ("RECONCILING", "Updating"),
        ("STOPPING", "Deleting"),
        ("RUNNING", "Active"),
    ]:
        stored["status"], stored["conditions"] = status, []
        assert (await provider.get_pool(spec)).state == state


async def test_list_only_owned_pools_and_refuse_deleting_unowned(gcp: CloudStub) -> None:
    provider = _provider(gcp)
    mine = await provider.ensure_pool(_spec(nodes=1))
    gcp.gke_pools[(PROJECT, REGION, "serving")]["default-pool"] = {
        "name": "default-pool",
        "config": {"machineType": "e2-standard-4", "resourceLabels": {"team": "infra"}},
        "initialNodeCount": 3,
        "locations": [f"{REGION}-a"],
        "status": "RUNNING",
        "instanceGroupUrls": [],
    }

    listed = await provider.list_pools()

    assert [p.name for p in listed] == [mine.name]
    assert listed[0].tags["modelfleet.io/cluster"] == "gke-usc1"
    with pytest.raises(InvalidConfiguration, match="default-pool"):
        await provider.delete_pool("default-pool")
    assert gcp.calls("DELETE") == []


async def test_existing_unowned_pool_with_our_name_is_not_adopted(gcp: CloudStub) -> None:
    spec = _spec(nodes=1)
    gcp.gke_pools[(PROJECT, REGION, "serving")] = {
        f"mf-{spec.pool_id}": {
            "name": f"mf-{spec.pool_id}",
            "status": "RUNNING",
            "config": {"machineType": "a3-highgpu-8g"},
            "locations": [],
        }
    }
    with pytest.raises(InvalidConfiguration, match="not labelled"):
        await _provider(gcp).ensure_pool(spec)
    assert gcp.calls("POST") == []


# -- credentials ----------------------------------------------------------------------------


async def test_service_account_key_from_secret_is_used_and_never_logged(
    gcp: CloudStub, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth.credentials
    import google.auth.jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    # google-auth looks up the service account's regional access boundary at
    # iamcredentials.googleapis.com in the background; tests never leave loopback.
    monkeypatch.setattr(
        google.auth.credentials.CredentialsWithRegionalAccessBoundary,
        "_is_regional_access_boundary_lookup_required",
        lambda self: False,
    )
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    email = f"modelfleet@{PROJECT}.iam.gserviceaccount.com"
    key = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "0123abcd",
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": f"{gcp.http_url}/oauth2/token",
    }
    caplog.set_level(logging.DEBUG)
    provider = GcpNodePoolProvider(
        _cluster(), credentials={"service_account.json": json.dumps(key)}, endpoint=gcp.http_url
    )
    gcp.inject("POST", POOLS + "$", 403, gcp_error(403, "PERMISSION_DENIED", "denied"))

    with pytest.raises(PermissionDenied) as caught:
        await provider.ensure_pool(_spec())

    # The GAPIC client signs a self-signed JWT with the key from the Secret.
    (get,) = gcp.calls("GET", POOLS)
    scheme, _, token = get.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = google.auth.jwt.decode(token, certs=public_pem, verify=True, audience=None)
    assert claims["iss"] == email
    text = f"{caught.value} {caught.value!r} {provider!r} {caplog.text}"
    for secret in (pem.splitlines()[1], pem.splitlines()[-2], token):
        assert secret not in text


async def test_unreadable_service_account_key_is_invalid_configuration(gcp: CloudStub) -> None:
    provider = GcpNodePoolProvider(
        _cluster(),
        credentials={"service_account.json": "{not json " + SECRET_MARKER},
        endpoint=gcp.http_url,
    )
    with pytest.raises(InvalidConfiguration) as caught:
        await provider.list_pools()
    assert SECRET_MARKER not in str(caught.value)


def test_missing_sdk_raises_provider_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.cloud

    monkeypatch.setitem(sys.modules, "google.cloud.container_v1", None)
    monkeypatch.delattr(google.cloud, "container_v1", raising=False)
    with pytest.raises(ProviderUnavailable, match=re.escape('"modelfleet[gcp]"')):
        GcpNodePoolProvider(_cluster())


# -- error classification through the real SDK ---------------------------------------------

ERROR_CASES: list[tuple[str, int, dict[str, Any], type[Exception], str | None]] = [
    (
        "zone-exhausted",
        503,
        gcp_error(
            503,
            "UNAVAILABLE",
            "The zone 'projects/p/zones/us-central1-a' does not have enough resources available to "
            "fulfill the request. '(resource type:compute)'. ZONE_RESOURCE_POOL_EXHAUSTED",
        ),
        InsufficientCapacity,
        "ZONE_RESOURCE_POOL_EXHAUSTED",
    ),
    (
        "zone-exhausted-details",
        400,
        gcp_error(
            400,
            "FAILED_PRECONDITION",
            "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS: a3-highgpu-8g in us-central1-a",
        ),
        InsufficientCapacity,
        "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
    ),
    (
        "gce-stockout",
        500,
        gcp_error(500, "INTERNAL", "GCE_STOCKOUT: no spot capacity"),
        InsufficientCapacity,
        "GCE_STOCKOUT",
    ),
    (
        "pool-exhausted-phrase",
        503,
        gcp_error(503, "UNAVAILABLE", "Instance could not be created: resource pool exhausted"),
        InsufficientCapacity,
        "ZONE_RESOURCE_POOL_EXHAUSTED",
    ),
    (
        "quota-403",
        403,
        gcp_error(
            403,
            "PERMISSION_DENIED",
            'Insufficient regional quota to satisfy request: resource "NVIDIA_H100_GPUS": request '
            "requires '16.0' and is short '8.0'",
            reason="QUOTA_EXCEEDED",
        ),
        QuotaExceeded,
        "QUOTA_EXCEEDED",
    ),
    (
        "quota-429",
        429,
        gcp_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota 'PREEMPTIBLE_NVIDIA_H100_GPUS' exceeded. Limit: 8.0 in region us-central1.",
            reason="QUOTA_EXCEEDED",
        ),
        QuotaExceeded,
        "QUOTA_EXCEEDED",
    ),
    (
        "rate-limit",
        429,
        gcp_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute'",
            reason="RATE_LIMIT_EXCEEDED",
        ),
        Throttled,
        "RATE_LIMIT_EXCEEDED",
    ),
    (
        "resource-exhausted",
        429,
        gcp_error(429, "RESOURCE_EXHAUSTED", "Too many requests"),
        Throttled,
        "RESOURCE_EXHAUSTED",
    ),
    (
        "not-found",
        404,
        gcp_error(
            404, "NOT_FOUND", f"Not found: projects/{PROJECT}/locations/{REGION}/clusters/serving."
        ),
        NotFound,
        "NOT_FOUND",
    ),
    (
        "permission",
        403,
        gcp_error(
            403,
            "PERMISSION_DENIED",
            'Required "container.nodePools.create" permission(s) for "projects/p".',
            reason="IAM_PERMISSION_DENIED",
            metadata={"permission": "container.nodePools.create"},
        ),
        PermissionDenied,
        "PERMISSION_DENIED",
    ),
    (
        "invalid",
        400,
        gcp_error(
            400, "INVALID_ARGUMENT", 'Accelerator type "nvidia-h100-80gb" is not supported in zone'
        ),
        InvalidConfiguration,
        "INVALID_ARGUMENT",
    ),
    (
        "unavailable",
        503,
        gcp_error(503, "UNAVAILABLE", "The service is currently unavailable."),
        Unreachable,
        "UNAVAILABLE",
    ),
    ("internal", 500, gcp_error(500, "INTERNAL", "Internal error."), Unreachable, "INTERNAL"),
]


@pytest.mark.parametrize(
    ("status", "body", "expected", "cloud_code"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
async def test_create_errors_are_classified(
    gcp: CloudStub,
    status: int,
    body: dict[str, Any],
    expected: type[Exception],
    cloud_code: str | None,
) -> None:
    sleep = RecordingSleep()
    provider = _provider(gcp, sleep=sleep, max_attempts=2)
    gcp.inject("POST", POOLS + "$", status, body, times=2)

    with pytest.raises(expected) as caught:
        await provider.ensure_pool(_spec())

    error: Any = caught.value
    assert error.cloud_code == cloud_code
    assert "Authorization" not in str(error)
    if isinstance(error, InsufficientCapacity):
        assert (error.instance_type, error.capacity_type) == ("a3-highgpu-8g", "Spot")
    if isinstance(error, PermissionDenied):
        assert error.permission == "container.nodePools.create"
        assert "container.nodePools.create" in str(error)
    # Only Throttled is retried (bounded: max_attempts=2 -> one sleep).
    assert len(sleep.delays) == (1 if expected is Throttled else 0)
    assert len(gcp.calls("POST", POOLS + "$")) == (2 if expected is Throttled else 1)


async def test_permission_denied_names_the_operation_permission(gcp: CloudStub) -> None:
    provider = _provider(gcp)
    await provider.ensure_pool(_spec(nodes=1))
    gcp.settle_gke()
    gcp.inject("POST", r":setSize$", 403, gcp_error(403, "PERMISSION_DENIED", "Forbidden."))

    with pytest.raises(PermissionDenied) as caught:
        await provider.ensure_pool(_spec(nodes=4))

    assert caught.value.permission == "container.nodePools.update"


async def test_discovery_permission_names_compute_permission(gcp: CloudStub) -> None:
    gcp.inject("GET", r"/regions/", 403, gcp_error(403, "PERMISSION_DENIED", "Forbidden"))
    with pytest.raises(PermissionDenied) as caught:
        await _provider(gcp).discover_offerings()
    assert caught.value.permission == "compute.regions.get"


async def test_throttled_is_retried_with_bounded_jittered_backoff(gcp: CloudStub) -> None:
    sleep = RecordingSleep()
    provider = _provider(gcp, sleep=sleep, max_attempts=4)
    busy = gcp_error(429, "RESOURCE_EXHAUSTED", "rate", reason="RATE_LIMIT_EXCEEDED")
    gcp.inject("POST", POOLS + "$", 429, busy, times=2, headers={"Retry-After": "3"})

    pool = await provider.ensure_pool(_spec())

    assert pool.state == "Creating"
    assert len(sleep.delays) == 2
    assert all(3.0 <= d <= 4.5 for d in sleep.delays)  # Retry-After honoured, jitter <= 50%

    gcp.inject("GET", r"/nodePools$", 429, busy, times=10)
    with pytest.raises(Throttled):
        await provider.list_pools()
    assert len(sleep.delays) == 2 + 3  # four attempts, then give up


async def test_cluster_busy_with_another_operation_is_throttled(gcp: CloudStub) -> None:
    gcp.inject(
        "POST",
        POOLS + "$",
        400,
        gcp_error(
            400,
            "FAILED_PRECONDITION",
            "Cluster is running incompatible operation operation-123. CLUSTER_ALREADY_HAS_OPERATION",
        ),
    )
    pool = await _provider(gcp, max_attempts=2).ensure_pool(_spec())
    assert pool.state == "Creating"


async def test_connection_refused_is_unreachable() -> None:
    from google.auth.credentials import AnonymousCredentials

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = GcpNodePoolProvider(
        _cluster(),
        endpoint=f"http://127.0.0.1:{port}",
        sdk_credentials=AnonymousCredentials(),
        timeout=5,
    )
    with pytest.raises(Unreachable):
        await provider.list_pools()


def test_prices_table_is_dated_and_sourced() -> None:
    from modelfleet.providers.gcp.catalog import load_price_table

    table = load_price_table()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", table.as_of)
    assert table.source.startswith("https://cloud.google.com/")


async def test_tags_read_back_name_the_same_pool(gcp: CloudStub) -> None:
    """Orphan GC rebuilds a PoolSpec from a pool's tags: they must round-trip exactly."""
    from modelfleet.providers.base import pool_id

    provider = _provider(gcp)
    dotted = PoolSpec("gke.usc1", L4_1, "OnDemand", 1)
    pool = await provider.ensure_pool(dotted)
    (create,) = gcp.calls("POST", POOLS + "$")
    labels = create.body["nodePool"]["config"]["resourceLabels"]  # type: ignore[index]
    assert labels["modelfleet-io-cluster"] == "gke_usc1"  # GCP labels allow no dots
    assert pool.tags["modelfleet.io/cluster"] == "gke.usc1"
    rebuilt = pool_id(pool.tags["modelfleet.io/cluster"], pool.instance_type, pool.capacity_type)
    assert pool.name == f"mf-{rebuilt}"

    with pytest.raises(InvalidConfiguration, match="GCP labels"):
        await provider.ensure_pool(PoolSpec("x" * 70, L4_1, "OnDemand", 1))


async def test_discovery_never_raises_not_found(gcp: CloudStub) -> None:
    del gcp.regions[REGION]
    with pytest.raises(InvalidConfiguration, match=REGION):
        await _provider(gcp).discover_offerings()


async def test_create_pins_the_pool_to_a_zone_that_offers_the_machine(gcp: CloudStub) -> None:
    """The reconciler passes the FleetCluster's zones (us-central1-a, -b) when the plan does
    not restrict the pool; the machine type is offered in -b only, so the pool must go
    there, not to the first cluster zone (where GKE could never start a node)."""
    only_b = Offering("H100", 80, 8, "a3-highgpu-8g", 88.49, 29.53, zones=(f"{REGION}-b",))
    spec = PoolSpec("gke-usc1", only_b, "Spot", 1, zones=(f"{REGION}-a", f"{REGION}-b"))

    await _provider(gcp).ensure_pool(spec)

    (create,) = gcp.calls("POST", POOLS + "$")
    assert create.body["nodePool"]["locations"] == [f"{REGION}-b"]  # type: ignore[index]


# -- removing chosen nodes ---------------------------------------------------------------------


async def test_remove_nodes_deletes_exactly_the_chosen_vm_from_the_instance_group(
    gcp: CloudStub,
) -> None:
    provider = _provider(gcp)
    assert isinstance(provider, RemovesNodes)
    await provider.ensure_pool(_spec(nodes=3))
    gcp.settle_gke()
    ((key, listed),) = gcp.igm_instances.items()
    vms = list(listed)
    project, zone, group = key
    chosen = vms[0]  # the oldest: a count resize of this stub would take the newest
    after = await provider.remove_nodes(
        _spec(nodes=2), [NodeRef(chosen, f"gce://{project}/{zone}/{chosen}")]
    )
    assert gcp.igm_instances[key] == vms[1:]
    (call,) = gcp.calls("POST", r"/deleteInstances$")
    assert call.path.endswith(f"/zones/{zone}/instanceGroupManagers/{group}/deleteInstances")
    assert call.body == {
        "instances": [f"projects/{project}/zones/{zone}/instances/{chosen}"],
        "skipInstancesOnValidationError": True,
    }
    assert after.desired_nodes == 2
    assert gcp.calls("POST", r":setSize$") == []  # no count resize at all
    # Gone already: skipped by the group, the size stays.
    again = await provider.remove_nodes(
        _spec(nodes=2), [NodeRef(chosen, f"gce://{project}/{zone}/{chosen}")]
    )
    assert again.desired_nodes == 2 and len(gcp.igm_instances[key]) == 2


async def test_remove_nodes_refuses_nodes_outside_the_pools_groups(gcp: CloudStub) -> None:
    provider = _provider(gcp)
    await provider.ensure_pool(_spec(nodes=1))
    gcp.settle_gke()
    with pytest.raises(InvalidConfiguration, match="not in GKE node pool"):
        await provider.remove_nodes(
            _spec(nodes=0), [NodeRef("elsewhere", f"gce://{PROJECT}/{REGION}-c/vm-1")]
        )
    with pytest.raises(InvalidConfiguration, match="not a GCE instance"):
        await provider.remove_nodes(_spec(nodes=0), [NodeRef("n", "aws:///us-east-1a/i-0abc")])
    assert gcp.calls("POST", r"/deleteInstances$") == []
    with pytest.raises(NotFound):
        await provider.remove_nodes(_spec(L4_1, nodes=0), [])


async def test_owned_nodes_are_the_vms_the_pools_instance_groups_list(gcp: CloudStub) -> None:
    provider = _provider(gcp)
    assert isinstance(provider, KnowsNodes)
    await provider.ensure_pool(_spec(nodes=2))
    gcp.settle_gke()
    ((key, listed),) = gcp.igm_instances.items()
    project, zone, _group = key
    nodes = [NodeRef(vm, f"gce://{project}/{zone}/{vm}") for vm in listed] + [
        NodeRef("gone", f"gce://{project}/{zone}/gke-deleted-vm"),
        NodeRef("other-zone", f"gce://{project}/{REGION}-c/{listed[0]}"),
        NodeRef("other-cloud", "aws:///us-east-1a/i-0abc"),
    ]
    assert await provider.owned_nodes(_spec(nodes=2), nodes) == set(listed)
    assert gcp.calls("POST", r"/listManagedInstances$"), "the group was not listed"
    assert await provider.owned_nodes(_spec(L4_1, nodes=0), nodes) == frozenset()
