"""AzureNodePoolProvider driving the real azure-mgmt-compute/containerservice clients against
the local ARM stub over TLS (the SDK refuses bearer tokens over plain HTTP; the stub's
throwaway certificate is trusted through REQUESTS_CA_BUNDLE), plus the Retail Prices client
against the same stub: discovery, the agent pool lifecycle with long-running operations,
the requests ARM receives, idempotency, ownership, and the classification of every error
code the provider promises to translate.
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import time
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
from modelfleet.providers.azure import AzureNodePoolProvider

try:  # tests/integration on sys.path (pytest's default rootdir-less import)
    from cloud_fixtures import RecordingSleep
    from cloud_stubs import CloudStub, azure_error
except ImportError:  # pragma: no cover - run as a package
    from tests.integration.cloud_fixtures import RecordingSleep
    from tests.integration.cloud_stubs import CloudStub, azure_error

pytestmark = pytest.mark.integration

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"
REGION = "eastus"
CLUSTER = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/ml-serving/providers/"
    "Microsoft.ContainerService/managedClusters/aks-prod"
)
POOLS = CLUSTER + "/agentPools"
TOKEN = "eyJ0eXAi.STATIC-TEST-TOKEN.not-for-logs"
NC40 = "Standard_NC40ads_H100_v5"
ND96 = "Standard_ND96isr_H100_v5"


class StaticToken:
    """A TokenCredential handing out one fixed token (tests never reach Entra ID)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(TOKEN, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(TOKEN, int(time.time()) + 3600)


def _sku(name: str, family: str, vcpus: int, gpus: int, zones: list[str], **extra: Any) -> Any:
    return {
        "resourceType": "virtualMachines",
        "name": name,
        "tier": "Standard",
        "size": name.removeprefix("Standard_"),
        "family": family,
        "locations": [REGION],
        "locationInfo": [{"location": REGION, "zones": zones}],
        "capabilities": [
            {"name": "vCPUs", "value": str(vcpus)},
            {"name": "GPUs", "value": str(gpus)},
            {"name": "MemoryGB", "value": "320"},
        ],
        "restrictions": extra.get("restrictions", []),
    }


def _price(sku: str, price: float, sku_name: str, product: str) -> dict[str, Any]:
    return {
        "currencyCode": "USD",
        "retailPrice": price,
        "unitPrice": price,
        "armRegionName": REGION,
        "location": "US East",
        "armSkuName": sku,
        "skuName": sku_name,
        "productName": product,
        "serviceName": "Virtual Machines",
        "type": "Consumption",
        "unitOfMeasure": "1 Hour",
        "isPrimaryMeterRegion": True,
    }


def _seed(stub: CloudStub) -> None:
    restricted_zone = {
        "type": "Zone",
        "values": [REGION],
        "restrictionInfo": {"locations": [REGION], "zones": ["3"]},
        "reasonCode": "NotAvailableForSubscription",
    }
    restricted_location = {
        "type": "Location",
        "values": [REGION],
        "restrictionInfo": {"locations": [REGION]},
        "reasonCode": "NotAvailableForSubscription",
    }
    stub.resource_skus = [
        _sku(
            NC40,
            "standardNCADSH100v5Family",
            40,
            1,
            ["1", "2", "3"],
            restrictions=[restricted_zone],
        ),
        _sku(ND96, "standardNDSH100v5Family", 96, 8, ["1", "2"]),
        _sku(
            "Standard_NC24ads_A100_v4",
            "StandardNCADSA100v4Family",
            24,
            1,
            ["1"],
            restrictions=[restricted_location],
        ),
        _sku("Standard_NV36ads_A10_v5", "StandardNVADSA10v5Family", 36, 1, ["1"]),
        _sku("Standard_D4s_v5", "standardDSv5Family", 4, 0, ["1", "2", "3"]),
        {"resourceType": "disks", "name": "Premium_LRS", "locations": [REGION]},
        _sku("Standard_NC40ads_H100_v5", "standardNCADSH100v5Family", 40, 1, [])
        | {"locations": ["westus"], "locationInfo": [{"location": "westus", "zones": []}]},
    ]
    stub.usages = {
        REGION: [
            {
                "unit": "Count",
                "currentValue": 150,
                "limit": 300,
                "name": {"value": "cores", "localizedValue": "Total Regional vCPUs"},
            },
            {
                "unit": "Count",
                "currentValue": 20,
                "limit": 100,
                "name": {
                    "value": "standardNCADSH100v5Family",
                    "localizedValue": "Standard NCADS H100 v5 Family vCPUs",
                },
            },
            {
                "unit": "Count",
                "currentValue": 0,
                "limit": 200,
                "name": {
                    "value": "standardNDSH100v5Family",
                    "localizedValue": "Standard NDSH100v5 Family vCPUs",
                },
            },
            {
                "unit": "Count",
                "currentValue": 0,
                "limit": 1000,
                "name": {
                    "value": "lowPriorityCores",
                    "localizedValue": "Total Regional Spot vCPUs",
                },
            },
        ]
    }
    linux = "Virtual Machines NCads H100 v5 Series"
    stub.retail_prices = [
        _price(NC40, 7.05, "NC40ads H100 v5", linux),
        _price(NC40, 8.90, "NC40ads H100 v5", linux + " Windows"),
        _price(NC40, 2.50, "NC40ads H100 v5 Spot", linux),
        _price(NC40, 3.10, "NC40ads H100 v5 Spot", linux + " Windows"),
        _price(NC40, 1.40, "NC40ads H100 v5 Low Priority", linux),
        _price(ND96, 98.00, "ND96isr H100 v5", "Virtual Machines NDSH100v5 Series"),
    ]


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStub]:
    with CloudStub(tmp_path_factory.mktemp("azure-stub")) as server:
        yield server


@pytest.fixture
def arm(stub: CloudStub, monkeypatch: pytest.MonkeyPatch) -> CloudStub:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stub.ca_file))
    stub.aks_pools.clear()
    stub.aks_machines.clear()
    stub.faults.clear()
    stub.azure_async_failure = None
    stub.clear_calls()
    _seed(stub)
    return stub


def _cluster(*, declared: list[dict[str, Any]] | None = None) -> FleetCluster:
    spec: dict[str, Any] = {
        "provider": "azure",
        "region": REGION,
        "zones": ["1", "2"],
        "azure": {
            "subscriptionId": SUBSCRIPTION,
            "resourceGroup": "ml-serving",
            "clusterName": "aks-prod",
        },
    }
    if declared is not None:
        spec["gpuOfferings"] = declared
    return FleetCluster.model_validate({"metadata": {"name": "aks-eus"}, "spec": spec})


def _provider(stub: CloudStub, **kwargs: Any) -> AzureNodePoolProvider:
    kwargs.setdefault("sdk_credential", StaticToken())
    kwargs.setdefault("sleep", RecordingSleep())
    kwargs.setdefault("live_prices", False)
    kwargs.setdefault("operation_wait", 10)
    cluster = kwargs.pop("cluster", None) or _cluster()
    return AzureNodePoolProvider(cluster, base_url=stub.https_url, **kwargs)


H100 = Offering("H100", 94, 1, NC40, 6.98, 2.79, zones=("1", "2"))


def _spec(offering: Offering = H100, *, nodes: int = 2, capacity: str = "Spot") -> PoolSpec:
    return PoolSpec("aks-eus", offering, capacity, nodes)  # type: ignore[arg-type]


def _pool_path(spec: PoolSpec) -> str:
    return f"{POOLS}/mf{spec.pool_id[:10]}"


# -- discovery ------------------------------------------------------------------------------


async def test_discovery_from_skus_usages_and_retail_prices(arm: CloudStub) -> None:
    provider = _provider(arm, live_prices=True, prices_url=f"{arm.http_url}/api/retail/prices")

    offerings = {o.instance_type: o for o in await provider.discover_offerings()}

    # No A100 (location restricted), no A10 (partial-GPU NV size), no CPU or disk SKUs.
    assert set(offerings) == {NC40, ND96}
    nc40, nd96 = offerings[NC40], offerings[ND96]
    assert (nc40.gpu, nc40.gpu_memory_gib, nc40.gpus_per_node) == ("H100", 94, 1)
    assert (nd96.gpu, nd96.gpu_memory_gib, nd96.gpus_per_node) == ("H100", 80, 8)
    assert nc40.zones == ("1", "2")  # zone 3 restricted for the subscription
    assert nc40.max_nodes == 2  # (100 - 20) family vCPUs / 40
    assert nd96.max_nodes == 1  # family has 200, but only 150 regional vCPUs left / 96
    # Linux pay-as-you-go and Spot meters; Windows and Low Priority ignored.
    assert (nc40.on_demand_per_hour, nc40.spot_per_hour) == (7.05, 2.50)
    # The API has no Spot meter for ND96 here: the bundled table fills the gap.
    assert (nd96.on_demand_per_hour, nd96.spot_per_hour) == (98.00, 39.33)
    (skus,) = arm.calls("GET", r"/Microsoft\.Compute/skus$")
    assert skus.query["$filter"] == f"location eq '{REGION}'"
    price_calls = arm.calls("GET", r"/api/retail/prices$")
    filters = [c.query["$filter"] for c in price_calls if "$skip" not in c.query]
    assert sorted(filters) == sorted(
        f"serviceName eq 'Virtual Machines' and armRegionName eq '{REGION}' "
        f"and armSkuName eq '{size}' and priceType eq 'Consumption'"
        for size in (NC40, ND96)
    )
    assert any("$skip" in c.query for c in price_calls), "NextPageLink was followed"
    # A second discovery within the cache window asks the price API nothing.
    arm.clear_calls()
    await provider.discover_offerings()
    assert arm.calls("GET", r"/api/retail/prices$") == []


async def test_prices_fall_back_to_bundled_table(
    arm: CloudStub, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/api/retail/prices"
    caplog.set_level(logging.WARNING)

    offerings = {
        o.instance_type: o
        for o in await _provider(arm, live_prices=True, prices_url=dead).discover_offerings()
    }

    assert (offerings[NC40].on_demand_per_hour, offerings[NC40].spot_per_hour) == (6.98, 2.79)
    assert "bundled Azure prices" in caplog.text

    arm.clear_calls()
    await _provider(arm, live_prices=False).discover_offerings()
    assert arm.calls("GET", r"/api/retail/prices$") == []


async def test_declared_offerings_win_field_by_field(arm: CloudStub) -> None:
    declared = [
        {
            "gpu": "H100",
            "gpuMemoryGiB": 94,
            "gpusPerNode": 1,
            "instanceType": NC40,
            "onDemandPerHour": 5.5,
            "maxNodes": 10,
        },
    ]
    provider = _provider(arm, cluster=_cluster(declared=declared))
    (nc40,) = [o for o in await provider.discover_offerings() if o.instance_type == NC40]
    assert (nc40.on_demand_per_hour, nc40.max_nodes) == (5.5, 10)  # declared
    assert (nc40.spot_per_hour, nc40.zones) == (2.79, ("1", "2"))  # discovered


# -- pool lifecycle -------------------------------------------------------------------------


async def test_create_sends_spot_agent_pool_and_waits_for_the_operation(arm: CloudStub) -> None:
    spec = _spec(nodes=2)

    pool = await _provider(arm).ensure_pool(spec)

    assert re.fullmatch(r"[a-z][a-z0-9]{0,11}", pool.name)
    assert pool.name == f"mf{spec.pool_id[:10]}"
    (put,) = arm.calls("PUT", POOLS)
    assert put.path == _pool_path(spec)
    assert put.headers.get("if-none-match") == "*"  # never replaces an existing pool
    assert put.headers["authorization"] == f"Bearer {TOKEN}"
    props = put.body["properties"]  # type: ignore[index]
    assert props["count"] == 2
    assert props["vmSize"] == NC40
    assert (props["mode"], props["osType"]) == ("User", "Linux")
    assert props["enableAutoScaling"] is False
    assert props["scaleSetPriority"] == "Spot"
    assert props["scaleSetEvictionPolicy"] == "Delete"
    assert props["spotMaxPrice"] == -1
    assert props["nodeLabels"] == spec.node_labels()
    assert props["nodeTaints"] == ["nvidia.com/gpu=present:NoSchedule"]
    assert props["tags"] == {
        "modelfleet.io-managed": "true",
        "modelfleet.io-cluster": "aks-eus",
        "modelfleet.io-offering": NC40,
    }
    assert props["availabilityZones"] == ["1", "2"]
    # The SDK's poller followed Azure-AsyncOperation to completion.
    assert arm.calls("GET", r"/stub/azure-operations/")
    assert (pool.state, pool.desired_nodes, pool.ready_nodes) == ("Active", 2, 2)
    assert (pool.capacity_type, pool.gpu) == ("Spot", "H100")
    assert pool.tags["modelfleet.io/managed"] == "true"


async def test_on_demand_pool_has_no_spot_settings(arm: CloudStub) -> None:
    pool = await _provider(arm).ensure_pool(_spec(nodes=1, capacity="OnDemand"))
    (put,) = arm.calls("PUT", POOLS)
    props = put.body["properties"]  # type: ignore[index]
    assert "scaleSetPriority" not in props or props["scaleSetPriority"] == "Regular"
    assert "spotMaxPrice" not in props
    assert pool.capacity_type == "OnDemand"


async def test_resize_only_when_count_differs_then_delete(arm: CloudStub) -> None:
    provider = _provider(arm)
    spec = _spec(nodes=2)
    await provider.ensure_pool(spec)
    arm.clear_calls()

    same = await provider.ensure_pool(spec)
    assert arm.calls("PUT") == []
    assert same.desired_nodes == 2

    grown = await provider.ensure_pool(_spec(nodes=4))
    (put,) = arm.calls("PUT", POOLS)
    props = put.body["properties"]  # type: ignore[index]
    assert props["count"] == 4
    # A full GET-modify-PUT: nothing else about the pool changes.
    assert (props["vmSize"], props["scaleSetPriority"]) == (NC40, "Spot")
    assert props["nodeTaints"] == ["nvidia.com/gpu=present:NoSchedule"]
    assert "if-none-match" not in put.headers
    assert (grown.state, grown.desired_nodes) == ("Active", 4)

    await provider.delete_pool(grown.name)
    assert [r.path for r in arm.calls("DELETE")] == [_pool_path(spec)]
    with pytest.raises(NotFound):
        await provider.get_pool(spec)
    await provider.delete_pool(grown.name)  # idempotent
    assert len(arm.calls("DELETE")) == 1


async def test_busy_pool_is_not_resized(arm: CloudStub) -> None:
    provider = _provider(arm)
    spec = _spec(nodes=2)
    await provider.ensure_pool(spec)
    stored = arm.aks_pools[(SUBSCRIPTION, "ml-serving", "aks-prod")][f"mf{spec.pool_id[:10]}"]
    stored["properties"]["provisioningState"] = "Upgrading"
    arm.clear_calls()

    pool = await provider.ensure_pool(_spec(nodes=3))

    assert arm.calls("PUT") == []
    assert (pool.state, pool.desired_nodes) == ("Updating", 2)


async def test_precondition_failed_on_create_is_success(arm: CloudStub) -> None:
    provider = _provider(arm)
    spec = _spec(nodes=2)
    await provider.ensure_pool(spec)
    arm.clear_calls()
    arm.inject(
        "GET",
        re.escape(_pool_path(spec)) + "$",
        404,
        azure_error("NotFound", "Agent pool not found"),
    )

    pool = await provider.ensure_pool(spec)

    (put,) = arm.calls("PUT")  # answered 412 by If-None-Match: *
    assert put.headers.get("if-none-match") == "*"
    assert (pool.state, pool.desired_nodes) == ("Active", 2)


async def test_failed_operation_raises_capacity_then_pool_shows_the_issue(
    arm: CloudStub,
) -> None:
    provider = _provider(arm)
    spec = _spec(nodes=2)
    arm.azure_async_failure = azure_error(
        "ZonalAllocationFailed",
        "Allocation failed. We do not have sufficient capacity for the requested VM size in "
        "this zone.",
    )

    with pytest.raises(InsufficientCapacity) as caught:
        await provider.ensure_pool(spec)

    assert caught.value.cloud_code == "ZonalAllocationFailed"
    assert (caught.value.instance_type, caught.value.capacity_type) == (NC40, "Spot")
    pool = await provider.get_pool(spec)
    assert pool.state == "Failed"
    assert pool.ready_nodes == 0
    assert pool.issues[0].code == "ZonalAllocationFailed"
    assert pool.issues[0].capacity, "an allocation failure on the pool is a capacity issue"


async def test_stopped_pool_is_degraded(arm: CloudStub) -> None:
    provider = _provider(arm)
    spec = _spec(nodes=1)
    await provider.ensure_pool(spec)
    stored = arm.aks_pools[(SUBSCRIPTION, "ml-serving", "aks-prod")][f"mf{spec.pool_id[:10]}"]
    stored["properties"]["powerState"] = {"code": "Stopped"}

    pool = await provider.get_pool(spec)

    assert (pool.state, pool.ready_nodes) == ("Degraded", 0)
    assert PoolIssue("PowerStateStopped", "the agent pool is stopped") in pool.issues


async def test_list_only_tagged_pools_and_refuse_deleting_untagged(arm: CloudStub) -> None:
    provider = _provider(arm)
    mine = await provider.ensure_pool(_spec(nodes=1))
    arm.aks_pools[(SUBSCRIPTION, "ml-serving", "aks-prod")]["system"] = {
        "id": f"{POOLS}/system",
        "name": "system",
        "properties": {
            "count": 3,
            "vmSize": "Standard_D4s_v5",
            "mode": "System",
            "provisioningState": "Succeeded",
            "tags": {"team": "platform"},
        },
    }

    listed = await provider.list_pools()

    assert [p.name for p in listed] == [mine.name]
    assert listed[0].tags["modelfleet.io/cluster"] == "aks-eus"
    with pytest.raises(InvalidConfiguration, match="system"):
        await provider.delete_pool("system")
    assert arm.calls("DELETE") == []


async def test_existing_pool_of_other_size_is_not_touched(arm: CloudStub) -> None:
    provider = _provider(arm)
    spec = _spec(nodes=1)
    await provider.ensure_pool(spec)
    stored = arm.aks_pools[(SUBSCRIPTION, "ml-serving", "aks-prod")][f"mf{spec.pool_id[:10]}"]
    stored["properties"]["vmSize"] = ND96
    arm.clear_calls()

    with pytest.raises(InvalidConfiguration, match=ND96):
        await provider.ensure_pool(_spec(nodes=3))
    assert arm.calls("PUT") == []


# -- credentials ----------------------------------------------------------------------------


def test_client_secret_credentials_from_secret_are_used_not_shown() -> None:
    from azure.identity import ClientSecretCredential

    from modelfleet.providers.azure.sdk import build_credential, load_sdk

    secret = "s3cr3t-Value~from-the-Secret"
    credential = build_credential(
        load_sdk(),
        {
            "tenant_id": "11111111-1111-1111-1111-111111111111",
            "client_id": "app",
            "client_secret": secret,
        },
        None,
    )
    assert isinstance(credential, ClientSecretCredential)
    provider = AzureNodePoolProvider(
        _cluster(), credentials={"tenant_id": "t", "client_id": "c", "client_secret": secret}
    )
    assert secret not in repr(provider)
    assert secret not in repr(provider._clients)


async def test_incomplete_secret_is_invalid_configuration_without_the_secret(
    arm: CloudStub,
) -> None:
    secret = "s3cr3t-Value~from-the-Secret"
    provider = AzureNodePoolProvider(
        _cluster(),
        credentials={"client_id": "c", "client_secret": secret},
        base_url=arm.https_url,
    )
    with pytest.raises(InvalidConfiguration, match="tenant_id") as caught:
        await provider.list_pools()
    assert secret not in str(caught.value)
    assert arm.calls() == []


def test_missing_sdk_raises_provider_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.mgmt

    monkeypatch.setitem(sys.modules, "azure.mgmt.containerservice", None)
    monkeypatch.delattr(azure.mgmt, "containerservice", raising=False)
    with pytest.raises(ProviderUnavailable, match=re.escape('"modelfleet[azure]"')):
        AzureNodePoolProvider(_cluster())


# -- error classification through the real SDK ---------------------------------------------

WRITE = "Microsoft.ContainerService/managedClusters/agentPools/write"
ERROR_CASES: list[tuple[str, int, dict[str, Any], type[Exception], str | None]] = [
    (
        "allocation",
        200,
        azure_error("AllocationFailed", "Allocation failed."),
        InsufficientCapacity,
        "AllocationFailed",
    ),
    (
        "zonal-allocation",
        200,
        azure_error("ZonalAllocationFailed", "No capacity in zone 2."),
        InsufficientCapacity,
        "ZonalAllocationFailed",
    ),
    (
        "overconstrained",
        200,
        azure_error(
            "OverconstrainedAllocationRequest",
            "Allocation failed. VM(s) with the following constraints cannot be allocated",
        ),
        InsufficientCapacity,
        "OverconstrainedAllocationRequest",
    ),
    (
        "sku-not-available",
        400,
        azure_error(
            "SkuNotAvailable",
            f"The requested VM size {NC40} is currently not available in location '{REGION}'.",
        ),
        InsufficientCapacity,
        "SkuNotAvailable",
    ),
    (
        "aks-wrapped",
        400,
        azure_error(
            "ReconcileVMSSAgentPoolFailed",
            'Code="OverconstrainedZonalAllocationRequest" Message="Allocation failed."',
        ),
        InsufficientCapacity,
        "OverconstrainedZonalAllocationRequest",
    ),
    (
        "quota",
        400,
        azure_error(
            "QuotaExceeded",
            "Operation could not be completed as it results in exceeding approved "
            "standardNCADSH100v5Family Cores quota.",
        ),
        QuotaExceeded,
        "QuotaExceeded",
    ),
    (
        "operation-not-allowed-quota",
        409,
        azure_error(
            "OperationNotAllowed",
            "Operation results in exceeding quota limits of Core. Maximum allowed: 100, Current in "
            "use: 80, Additional requested: 40.",
        ),
        QuotaExceeded,
        "OperationNotAllowed",
    ),
    (
        "throttled",
        429,
        azure_error(
            "SubscriptionRequestsThrottled",
            "Number of write requests for subscription exceeded the limit of '1200' for time "
            "interval '01:00:00'.",
        ),
        Throttled,
        "SubscriptionRequestsThrottled",
    ),
    (
        "not-found",
        404,
        azure_error(
            "ResourceNotFound",
            "The Resource 'Microsoft.ContainerService/managedClusters/aks-prod' under resource group "
            "'ml-serving' was not found.",
        ),
        NotFound,
        "ResourceNotFound",
    ),
    (
        "authorization",
        403,
        azure_error(
            "AuthorizationFailed",
            "The client 'app-id' with object id '22222222-2222-2222-2222-222222222222' does not have "
            f"authorization to perform action '{WRITE}' over scope '{CLUSTER}' or the scope is "
            "invalid.",
        ),
        PermissionDenied,
        "AuthorizationFailed",
    ),
    (
        "invalid",
        400,
        azure_error(
            "InvalidParameter", "The value of parameter agentPoolProfile.count is invalid."
        ),
        InvalidConfiguration,
        "InvalidParameter",
    ),
    (
        "server-error",
        500,
        azure_error("InternalServerError", "An internal error occurred."),
        Unreachable,
        "InternalServerError",
    ),
    (
        "unavailable",
        503,
        azure_error("ServiceUnavailable", "Service unavailable."),
        Unreachable,
        "ServiceUnavailable",
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "expected", "cloud_code"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
async def test_errors_are_classified(
    arm: CloudStub,
    status: int,
    body: dict[str, Any],
    expected: type[Exception],
    cloud_code: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sleep = RecordingSleep()
    provider = _provider(arm, sleep=sleep, max_attempts=2)
    if status == 200:  # reported by the long-running operation, not the PUT
        arm.azure_async_failure = body
    else:
        arm.inject("PUT", POOLS + "/", status, body, times=2, headers={"Retry-After": "7"})

    with pytest.raises(expected) as caught:
        await provider.ensure_pool(_spec())

    error: Any = caught.value
    assert error.cloud_code == cloud_code
    assert TOKEN not in f"{error} {error!r} {caplog.text}"
    if isinstance(error, InsufficientCapacity):
        assert (error.instance_type, error.capacity_type) == (NC40, "Spot")
    if isinstance(error, PermissionDenied):
        assert error.permission == WRITE
        assert WRITE in str(error)
    if isinstance(error, Throttled):
        assert error.retry_after == 7.0  # Retry-After header
        assert len(sleep.delays) == 1 and 7.0 <= sleep.delays[0] <= 10.5
    else:
        assert sleep.delays == []


async def test_permission_denied_without_action_in_message_names_the_call(
    arm: CloudStub,
) -> None:
    arm.inject(
        "GET", r"/Microsoft\.Compute/skus$", 403, azure_error("AuthorizationFailed", "Forbidden.")
    )
    with pytest.raises(PermissionDenied) as caught:
        await _provider(arm).discover_offerings()
    assert caught.value.permission == "Microsoft.Compute/skus/read"


async def test_throttling_is_retried_then_succeeds(arm: CloudStub) -> None:
    sleep = RecordingSleep()
    arm.inject(
        "GET",
        r"/agentPools$",
        429,
        azure_error("TooManyRequests", "slow down"),
        times=2,
        headers={"Retry-After": "1"},
    )

    assert await _provider(arm, sleep=sleep).list_pools() == []
    assert len(sleep.delays) == 2
    assert all(d <= 20 * 1.5 for d in sleep.delays)


async def test_connection_refused_is_unreachable(arm: CloudStub) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = AzureNodePoolProvider(
        _cluster(),
        base_url=f"https://127.0.0.1:{port}",
        sdk_credential=StaticToken(),
        live_prices=False,
    )
    with pytest.raises(Unreachable):
        await provider.list_pools()


async def test_discovery_never_raises_not_found(arm: CloudStub) -> None:
    arm.inject("GET", r"/usages$", 404, azure_error("NotFound", "Location not found."))
    with pytest.raises(InvalidConfiguration, match=REGION):
        await _provider(arm).discover_offerings()


async def test_cluster_zones_do_not_put_the_pool_where_the_sku_is_restricted(
    arm: CloudStub,
) -> None:
    """Without a zone restriction in the plan the reconciler passes the FleetCluster's zones
    (1, 2); the SKU is offered in zone 2 only, so the pool must not ask for zone 1."""
    only_2 = Offering("H100", 94, 1, NC40, 6.98, 2.79, zones=("2",))
    spec = PoolSpec("aks-eus", only_2, "Spot", 1, zones=("1", "2"))

    await _provider(arm).ensure_pool(spec)

    (put,) = arm.calls("PUT", POOLS)
    assert put.body["properties"]["availabilityZones"] == ["2"]  # type: ignore[index]


# -- removing chosen nodes ---------------------------------------------------------------------


def _aks_node(machine: str) -> NodeRef:
    """An AKS VMSS Node: its name is the machine name, its providerID names the scale set."""
    scale_set, instance = machine.rsplit("vmss", 1)
    return NodeRef(
        machine,
        f"azure:///subscriptions/{SUBSCRIPTION}/resourceGroups/mc_ml-serving_aks-prod_eastus/"
        f"providers/Microsoft.Compute/virtualMachineScaleSets/{scale_set}vmss/"
        f"virtualMachines/{int(instance, 36)}",
    )


async def test_remove_nodes_deletes_exactly_the_chosen_machine(arm: CloudStub) -> None:
    provider = _provider(arm)
    assert isinstance(provider, RemovesNodes)
    spec = _spec(nodes=3)
    await provider.ensure_pool(spec)
    key = (SUBSCRIPTION, "ml-serving", "aks-prod", f"mf{spec.pool_id[:10]}")
    machines = list(arm.aks_machines[key])
    assert len(machines) == 3
    chosen = machines[0]  # the oldest: a count scale-down of this stub takes the newest
    arm.clear_calls()
    after = await provider.remove_nodes(_spec(nodes=2), [_aks_node(chosen)])
    (call,) = arm.calls("POST", r"/deleteMachines$")
    assert call.path == f"{_pool_path(spec)}/deleteMachines"
    assert call.body == {"machineNames": [chosen]}
    assert arm.aks_machines[key] == machines[1:]
    assert (after.desired_nodes, after.state) == (2, "Active")
    assert arm.calls("PUT") == []  # no count resize


async def test_remove_nodes_refuses_a_node_of_another_pool(arm: CloudStub) -> None:
    provider = _provider(arm)
    spec = _spec(nodes=1)
    await provider.ensure_pool(spec)
    with pytest.raises(InvalidConfiguration, match="not a machine of AKS agent pool"):
        await provider.remove_nodes(_spec(nodes=0), [_aks_node("aks-system-12345678-vmss000001")])
    with pytest.raises(InvalidConfiguration, match="not a machine"):
        await provider.remove_nodes(_spec(nodes=0), [NodeRef("n", "gce://p/z/vm")])
    assert arm.calls("POST", r"/deleteMachines$") == []


async def test_owned_nodes_are_the_agent_pools_machines(arm: CloudStub) -> None:
    provider = _provider(arm)
    assert isinstance(provider, KnowsNodes)
    spec = _spec(nodes=2)
    await provider.ensure_pool(spec)
    key = (SUBSCRIPTION, "ml-serving", "aks-prod", f"mf{spec.pool_id[:10]}")
    machines = list(arm.aks_machines[key])
    gone = machines[0][:-1] + "z"  # a machine of the pool's scale set AKS no longer lists
    nodes = [_aks_node(m) for m in machines] + [
        _aks_node(gone),
        _aks_node("aks-system-12345678-vmss000001"),
        NodeRef("other-cloud", "gce://p/z/vm"),
    ]
    assert await provider.owned_nodes(spec, nodes) == set(machines)
    assert arm.calls("GET", r"/machines$"), "the pool's machines were not listed"
    assert await provider.owned_nodes(_spec(capacity="OnDemand"), nodes) == frozenset()
