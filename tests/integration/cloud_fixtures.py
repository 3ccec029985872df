"""The three clouds for end-to-end operator tests, set up as the provider tests set them up.

- AWS: a moto server (real boto3/botocore over HTTP, found through ``AWS_ENDPOINT_URL``)
  holding a VPC, subnets, IAM roles and an EKS cluster; what moto cannot do (capacity
  errors) is injected by ``FaultySession``, a boto3 session whose clients raise botocore's
  real ``ClientError`` for chosen methods (the seam ``AwsNodePoolProvider`` takes as
  ``session_factory``).
- GCP: the GKE + Compute Engine REST stub of ``cloud_stubs`` seeded with one region, and a
  service-account key (a real RSA key) whose token endpoint is the stub.
- Azure: the same stub's ARM routes over TLS, and a TokenCredential with a fixed token
  (Entra ID is never reached).

The provider test modules keep their own richer helpers; these are the minimum the
operator-level tests need, kept apart so that no test module imports another.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


class RecordingSleep:
    """A provider's ``sleep`` seam that returns at once and records each delay (seconds)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


# -- AWS (moto) ---------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A ThreadedMotoServer on a free loopback port; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def warm_up_moto(moto_url: str, *, region: str) -> None:
    """Make moto load its EC2 instance-type catalogue now (seconds, once per server), so
    the first offering discovery in a test is as quick as AWS's."""
    import boto3

    ec2 = boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ec2.describe_instance_types(InstanceTypes=["p5.48xlarge"])
    ec2.describe_instance_type_offerings(LocationType="availability-zone")


def use_moto(monkeypatch: pytest.MonkeyPatch, moto_url: str, tmp_path: Path, region: str) -> None:
    """Empty moto, found through AWS_ENDPOINT_URL with fake keys; no profile, no IRSA."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    for var in ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@dataclass(frozen=True)
class EksCluster:
    """What ``create_eks_cluster`` made in moto."""

    name: str
    node_role_arn: str
    subnet_ids: list[str]


def create_eks_cluster(moto_url: str, *, region: str, name: str) -> EksCluster:
    """A VPC with one subnet per zone, a cluster and a node IAM role, and EKS cluster ``name``."""
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=moto_url)

    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    iam = client("iam")
    trust = '{"Version":"2012-10-17","Statement":[]}'
    cluster_role = iam.create_role(RoleName="eks-cluster", AssumeRolePolicyDocument=trust)
    node_role = iam.create_role(RoleName="modelfleet-nodes", AssumeRolePolicyDocument=trust)
    client("eks").create_cluster(
        name=name,
        roleArn=cluster_role["Role"]["Arn"],
        resourcesVpcConfig={"subnetIds": subnets},
    )
    return EksCluster(name=name, node_role_arn=node_role["Role"]["Arn"], subnet_ids=subnets)


def client_error(
    code: str, message: str = "", *, operation: str = "Op", status: int = 400
) -> Exception:
    """botocore's ClientError as the SDK raises it for an AWS error response."""
    from botocore.exceptions import ClientError

    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    error: Exception = ClientError(response, operation)
    return error


Fault = Callable[[Callable[..., Any], dict[str, Any]], Any]
"""What a faulty client does instead of a call: given the real method and the params."""


def fail(error: Exception) -> Fault:
    """The call never reaches AWS; ``error`` is raised instead."""

    def fault(real: Callable[..., Any], params: dict[str, Any]) -> Any:
        raise error

    return fault


def edit(change: Callable[[dict[str, Any]], None]) -> Fault:
    """AWS answers, and ``change`` edits the answer (e.g. adds health issues)."""

    def fault(real: Callable[..., Any], params: dict[str, Any]) -> Any:
        result: dict[str, Any] = real(**params)
        change(result)
        return result

    return fault


@dataclass
class FaultySession:
    """A boto3 session whose clients record every call and play queued faults per method.

    ``faults[method]`` is consumed one fault per call; ``sticky[method]`` applies to every
    call. ``stubbed[service]`` swaps in a client prepared with botocore's Stubber.
    """

    faults: dict[str, list[Fault]] = field(default_factory=dict)
    sticky: dict[str, Fault] = field(default_factory=dict)
    stubbed: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    credentials: Mapping[str, str] | None = None

    def factory(self, region: str, credentials: Mapping[str, str] | None) -> FaultySession:
        self.credentials = credentials
        from modelfleet.providers.aws.sdk import default_session_factory

        self._real = default_session_factory(region, credentials)
        return self

    def client(self, service_name: str, *, config: Any = None) -> Any:
        real = self._real.client(service_name, config=config)
        if service_name in self.stubbed:
            return self.stubbed[service_name](real)
        return FaultyClient(real, self)

    def called(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]


class FaultyClient:
    def __init__(self, real: Any, session: FaultySession) -> None:
        self._real = real
        self._session = session

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._real, name)
        if not callable(real) or name.startswith("_"):
            return real

        def call(**params: Any) -> Any:
            self._session.calls.append((name, params))
            queued = self._session.faults.get(name)
            if queued:
                return queued.pop(0)(real, params)
            if name in self._session.sticky:
                return self._session.sticky[name](real, params)
            return real(**params)

        return call


# -- GCP (GKE + Compute stub) --------------------------------------------------------------


def seed_gcp(
    stub: Any, *, project: str, region: str, zone: str, machine_types: Mapping[str, tuple[str, int]]
) -> None:
    """One region with one zone selling ``machine_types`` (name -> (accelerator, count)),
    with GPU quota to spare."""
    stub.regions[region] = {
        "name": region,
        "zones": [f"https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}"],
        "quotas": [
            {"metric": "NVIDIA_H100_GPUS", "limit": 64, "usage": 0},
            {"metric": "PREEMPTIBLE_NVIDIA_H100_GPUS", "limit": 64, "usage": 0},
        ],
    }
    accelerators = sorted({accelerator for accelerator, _ in machine_types.values()})
    stub.accelerator_types[zone] = [
        {"name": name, "maximumCardsPerInstance": 8} for name in accelerators
    ]
    stub.machine_types[zone] = [
        {
            "name": name,
            "guestCpus": 208,
            "memoryMb": 1900000,
            "accelerators": [{"guestAcceleratorType": accelerator, "guestAcceleratorCount": n}],
        }
        for name, (accelerator, n) in machine_types.items()
    ]


def service_account_key(*, project: str, token_uri: str) -> str:
    """A service-account key (``service_account.json``) with a fresh RSA key; Google's SDK
    signs self-signed JWTs with it and asks ``token_uri`` for tokens."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return json.dumps(
        {
            "type": "service_account",
            "project_id": project,
            "private_key_id": "0123abcd",
            "private_key": pem,
            "client_email": f"modelfleet@{project}.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": token_uri,
        }
    )


def no_google_access_boundary_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """google-auth looks up a service account's regional access boundary at
    iamcredentials.googleapis.com in the background; tests never leave loopback."""
    import google.auth.credentials

    monkeypatch.setattr(
        google.auth.credentials.CredentialsWithRegionalAccessBoundary,
        "_is_regional_access_boundary_lookup_required",
        lambda self: False,
    )


# -- Azure (ARM stub) ----------------------------------------------------------------------


class StaticToken:
    """A TokenCredential handing out one fixed token (tests never reach Entra ID)."""

    token = "eyJ0eXAi.STATIC-E2E-TOKEN.not-for-logs"

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self.token, int(time.time()) + 3600)
