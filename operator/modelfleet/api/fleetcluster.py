"""The ``FleetCluster`` resource: one member cluster modelfleet may place replicas on.

Cluster-scoped, group ``modelfleet.io``, version ``v1alpha1``, short name ``fc``. A
FleetCluster names the cloud account behind the cluster (for node pools), how to reach its
API server (a kubeconfig Secret; none means the hub cluster itself) and the GPU offerings it
can provide. The operator writes its health, stockouts and node pools to ``status``.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal

from pydantic import Field, model_validator

from modelfleet.api.common import (
    ApiModel,
    CapacityType,
    CloudName,
    Condition,
    DnsLabel,
    GpuName,
    ObjectMeta,
    RegionName,
    Timestamp,
    ZoneName,
)

Provider = Literal["aws", "gcp", "azure", "static", "simulated"]
Health = Literal["Healthy", "Suspect", "Failed", "Recovering", "Unknown"]


class SecretKeyRef(ApiModel):
    """A key of a Secret in the hub cluster."""

    namespace: DnsLabel = Field(description="Namespace of the Secret.")
    name: str = Field(description="Name of the Secret.", min_length=1, max_length=253)
    key: str = Field(default="kubeconfig", description="Key holding the value.", max_length=253)


class PrometheusEndpoint(ApiModel):
    """The Prometheus that scrapes this cluster's inference pods."""

    url: str = Field(
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090.",
        pattern=r"^https?://[^\s]+$",
        max_length=2048,
    )


class AwsSettings(ApiModel):
    """EKS cluster whose managed node groups modelfleet sizes."""

    cluster_name: str = Field(description="EKS cluster name.", min_length=1, max_length=100)
    node_role_arn: str | None = Field(
        default=None,
        description="IAM role for the nodes of node groups modelfleet creates.",
        pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$",
    )
    subnet_ids: list[str] | None = Field(
        default=None,
        max_length=32,
        description="Subnets for new node groups.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    ami_type: str = Field(
        default="AL2023_x86_64_NVIDIA", description="AMI type for GPU node groups."
    )


class GcpSettings(ApiModel):
    """GKE cluster whose node pools modelfleet sizes."""

    project: str = Field(description="GCP project id.", pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    location: str = Field(description="Cluster location (region or zone).", max_length=63)
    cluster_name: str = Field(description="GKE cluster name.", min_length=1, max_length=100)


class AzureSettings(ApiModel):
    """AKS cluster whose agent pools modelfleet sizes."""

    subscription_id: str = Field(
        description="Azure subscription id.",
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    )
    resource_group: str = Field(description="Resource group of the AKS cluster.", max_length=90)
    cluster_name: str = Field(description="AKS cluster name.", min_length=1, max_length=63)


class SimulatedSettings(ApiModel):
    """Behaviour of the in-process simulated provider (tests, simulator, demos)."""

    provisioning_seconds: float = Field(
        default=0, ge=0, description="Seconds from a node request until the node is ready."
    )


class GpuOffering(ApiModel):
    """A GPU node type this cluster can provide. Prices are per node per hour (USD)."""

    x_validations: ClassVar[list[dict[str, str]]] = []

    gpu: GpuName = Field(description="GPU model, e.g. H100, A100-80GB, L40S.")
    gpu_memory_gi_b: float = Field(alias="gpuMemoryGiB", gt=0, description="Memory per GPU, GiB.")
    gpus_per_node: int = Field(ge=1, le=16, description="GPUs on one node.")
    instance_type: str = Field(
        description="Instance type / machine type / VM size.", min_length=1, max_length=128
    )
    on_demand_per_hour: float | None = Field(
        default=None,
        ge=0,
        description=(
            "On-demand price per node-hour, USD; unset: no on-demand price known (spot "
            "only, or static nodes without a declared price), so no on-demand replicas "
            "are placed on it."
        ),
    )
    spot_per_hour: float | None = Field(
        default=None, ge=0, description="Spot price per node-hour, USD; no spot when unset."
    )
    max_nodes: int | None = Field(
        default=None,
        ge=0,
        description="Most nodes of this offering, on-demand and spot together (quota or "
        "pool limit).",
    )
    zones: list[ZoneName] | None = Field(
        default=None,
        max_length=16,
        description="Zones offering it; all the cluster's zones when unset.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


ENDPOINT_TEMPLATE_PATTERN = r"^https?://([^{}\s@]|\{(name|namespace|port)\})+$"
"""An http(s) URL whose only placeholders are {name}, {namespace} and {port}, without
``@``: a ``user:password@`` in the URL would be copied into every ModelDeployment's
``status.endpoints`` for anyone who can read it (credentials belong in a Secret)."""


class FleetClusterSpec(ApiModel):
    """A member cluster: its cloud, region, access and GPU offerings."""

    x_validations: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "self.provider != 'aws' || has(self.aws)",
            "message": "provider aws needs spec.aws",
        },
        {
            "rule": "self.provider != 'gcp' || has(self.gcp)",
            "message": "provider gcp needs spec.gcp",
        },
        {
            "rule": "self.provider != 'azure' || has(self.azure)",
            "message": "provider azure needs spec.azure",
        },
        {
            "rule": "self.provider != 'simulated' || (has(self.gpuOfferings) && "
            "size(self.gpuOfferings) > 0)",
            "message": "provider simulated needs at least one spec.gpuOfferings entry",
        },
    ]

    provider: Provider = Field(
        description="Who sizes GPU node pools: aws (EKS), gcp (GKE), azure (AKS), static "
        "(pre-provisioned nodes, never resized) or simulated (in-process)."
    )
    cloud: CloudName | None = Field(
        default=None, description="Cloud label used by placement; defaults to the provider."
    )
    region: RegionName = Field(description="Region of the cluster, e.g. us-east-1.")
    zones: list[ZoneName] | None = Field(
        default=None,
        max_length=16,
        description="Zones the cluster's nodes may use.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    kubeconfig_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Kubeconfig for the member cluster; unset means the hub itself."
    )
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Cloud credentials, when the standard chain (IRSA, workload identity) is "
        "not used: the provider reads the Secret's keys by name (aws: aws_access_key_id, "
        "aws_secret_access_key, aws_session_token; gcp: service_account.json; azure: "
        "tenant_id, client_id, client_secret), so `key` is not used. Never logged or copied "
        "into status.",
    )
    prometheus: PrometheusEndpoint | None = Field(
        default=None, description="Prometheus scraping the cluster's inference pods."
    )
    aws: AwsSettings | None = Field(default=None, description="EKS settings (provider aws).")
    gcp: GcpSettings | None = Field(default=None, description="GKE settings (provider gcp).")
    azure: AzureSettings | None = Field(default=None, description="AKS settings (provider azure).")
    simulated: SimulatedSettings | None = Field(
        default=None, description="Simulated provider behaviour (provider simulated)."
    )
    gpu_offerings: list[GpuOffering] | None = Field(
        default=None,
        max_length=64,
        description="Declared GPU offerings; they override or fill gaps in discovered ones.",
    )
    cordoned: bool = Field(
        default=False, description="When true, no new replicas are placed here (drain)."
    )
    endpoint_template: str | None = Field(
        default=None,
        pattern=ENDPOINT_TEMPLATE_PATTERN,
        max_length=512,
        description="URL of a ModelDeployment's Service in this cluster as the gateway "
        "reaches it (status.endpoints[].url): {name} (the Service), {namespace} and {port} "
        "are filled in. Default http://{name}.{namespace}.svc.cluster.local:{port}, the "
        "in-cluster name, which only the cluster itself (or shared service discovery) "
        "resolves, the same for every cluster. E.g. "
        "https://{namespace}-{name}.use1.models.example.com (an ingress per cluster, which "
        "you create).",
    )

    @model_validator(mode="after")
    def _provider_settings(self) -> FleetClusterSpec:
        for provider in ("aws", "gcp", "azure"):
            if self.provider == provider and getattr(self, provider) is None:
                raise ValueError(f"provider {provider} needs spec.{provider}")
        if self.provider == "simulated" and not self.gpu_offerings:
            raise ValueError("provider simulated needs at least one spec.gpuOfferings entry")
        return self

    @property
    def cloud_name(self) -> str:
        """The cloud label placement uses: ``cloud`` or, when unset, the provider."""
        return self.cloud or self.provider


class Stockout(ApiModel):
    """A remembered capacity error: no (gpu, capacityType) here until ``until``."""

    gpu: str = Field(description="GPU model that ran out.")
    capacity_type: CapacityType = Field(description="OnDemand or Spot.")
    instance_type: str | None = Field(default=None, description="Instance type, when known.")
    since: Timestamp | None = Field(default=None, description="First capacity error of the run.")
    until: Timestamp = Field(description="Candidate is skipped until then.")
    failures: int = Field(default=1, ge=1, description="Consecutive capacity errors (backoff).")
    message: str | None = Field(default=None, description="The cloud's error, secrets removed.")
    zone: ZoneName | None = Field(
        default=None,
        description="Zone the cloud named in the error: only that zone is skipped (the pool "
        "falls through to its other zones); unset: every zone.",
    )


class NodePoolStatus(ApiModel):
    """A GPU node pool modelfleet manages in this cluster."""

    name: str = Field(description="Pool name in the cloud.")
    instance_type: str = Field(description="Instance type / machine type / VM size.")
    gpu: str | None = Field(default=None, description="GPU model.")
    capacity_type: CapacityType = Field(description="OnDemand or Spot.")
    desired_nodes: int = Field(ge=0, description="Nodes requested.")
    ready_nodes: int = Field(default=0, ge=0, description="Nodes ready.")
    state: str | None = Field(default=None, description="Cloud's pool state.")
    issues: list[str] | None = Field(default=None, description="Cloud's health issue codes.")
    scale_in_since: Timestamp | None = Field(
        default=None,
        description="Since when the deployments' bookings have been below the pool's Ready "
        "nodes: the scale-in delay counts from here (a restarted operator reads it back).",
    )


MISSING_CLAIMS_MAX: Final = 1024
"""Entries of ``status.missingClaims`` at most (the CRD's maxItems): the probe lists the first
by name, never more (a list over it failed the whole status, br15d)."""


class FleetClusterStatus(ApiModel):
    """Observed state of a member cluster, written by the operator only."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    observed_generation: int | None = Field(default=None, description="Generation observed.")
    conditions: list[Condition] | None = Field(
        default=None,
        description="Reachable, Ready.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    health: Health = Field(
        default="Unknown", description="Healthy, Suspect, Failed, Recovering, Unknown."
    )
    health_since: Timestamp | None = Field(default=None, description="When health last changed.")
    recovered_since: Timestamp | None = Field(
        default=None,
        description="When the cluster last came back from Failed (cleared when it fails "
        "again): each ModelDeployment's failover.failbackAfterSeconds counts from here.",
    )
    last_probe_time: Timestamp | None = Field(default=None, description="Last health probe.")
    last_success_time: Timestamp | None = Field(
        default=None, description="Last successful health probe."
    )
    stockouts: list[Stockout] | None = Field(
        default=None,
        description="Capacity errors: each candidate is skipped until its ``until``; expired "
        "ones stay an hour so the backoff keeps doubling, across operator restarts too.",
    )
    node_pools: list[NodePoolStatus] | None = Field(default=None, description="Managed pools.")
    offerings: list[GpuOffering] | None = Field(
        default=None, description="Offerings discovered from the cloud, merged with declared."
    )
    missing_claims: list[str] | None = Field(
        default=None,
        description="PersistentVolumeClaims (namespace/name) that modelfleet pods stay Pending "
        "for, as of the last answered probe, because they do not exist in this cluster: the "
        "claim of a pvc:// model that was not created here (modelfleet never creates it). "
        f"At most {MISSING_CLAIMS_MAX}, the first by name: a ClaimMissing Event says how many "
        "more there are.",
        max_length=MISSING_CLAIMS_MAX,
    )


class FleetCluster(ApiModel):
    """A member cluster of the fleet."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: Literal["modelfleet.io/v1alpha1"] = Field(
        default="modelfleet.io/v1alpha1", description="modelfleet.io/v1alpha1"
    )
    kind: Literal["FleetCluster"] = Field(default="FleetCluster", description="Kind.")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: FleetClusterSpec = Field(description="Desired state.")
    status: FleetClusterStatus | None = Field(default=None, description="Observed state.")
