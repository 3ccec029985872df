"""Member-cluster access: the ClusterClient interface, its HTTP and in-memory
implementations, the per-FleetCluster registry, and the rendering of inference workloads.

``workloads`` is pure (JSON in, JSON out); ``client`` and ``registry`` do the I/O;
``fake.InMemoryClusterClient`` stands in for a member cluster in the simulator and unit
tests. See docs/member-clusters.md for what is created in a member cluster and the RBAC
it needs.
"""

from modelfleet.clusters.client import (
    ClusterClient,
    ClusterProbe,
    KubernetesClusterClient,
    SecretData,
    SecretReader,
)
from modelfleet.clusters.errors import (
    ClusterConfigError,
    ClusterConflict,
    ClusterError,
    ClusterForbidden,
    ClusterNotFound,
    ClusterRejected,
    ClusterThrottled,
    ClusterUnreachable,
)
from modelfleet.clusters.objects import DeploymentReadiness, NodeInfo, ResourceKind
from modelfleet.clusters.registry import ClusterRegistry

__all__ = [
    "ClusterClient",
    "ClusterConfigError",
    "ClusterConflict",
    "ClusterError",
    "ClusterForbidden",
    "ClusterNotFound",
    "ClusterProbe",
    "ClusterRegistry",
    "ClusterRejected",
    "ClusterThrottled",
    "ClusterUnreachable",
    "DeploymentReadiness",
    "KubernetesClusterClient",
    "NodeInfo",
    "ResourceKind",
    "SecretData",
    "SecretReader",
]
