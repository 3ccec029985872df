"""The modelfleet API (group ``modelfleet.io``, version ``v1alpha1``) as pydantic models.

These models are the source of truth: the CRDs in ``crds/`` are generated from them
(``modelfleet crds``) and ``modelfleet validate`` checks manifests against both.
"""

from modelfleet.api.common import Condition, LabelSelector, ObjectMeta, dump
from modelfleet.api.fleetcluster import (
    FleetCluster,
    FleetClusterSpec,
    FleetClusterStatus,
    GpuOffering,
    NodePoolStatus,
    Stockout,
)
from modelfleet.api.modeldeployment import (
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    PlacementStatus,
)

__all__ = [
    "Condition",
    "FleetCluster",
    "FleetClusterSpec",
    "FleetClusterStatus",
    "GpuOffering",
    "LabelSelector",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "NodePoolStatus",
    "ObjectMeta",
    "PlacementStatus",
    "Stockout",
    "dump",
]
