"""EKS managed node group shapes <-> modelfleet pools (pure).

Names, idempotency tokens, the create request and the reading of ``DescribeNodegroup``
answers live here, apart from the calls, so each rule can be read (and tested) on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from modelfleet import labels
from modelfleet.api.fleetcluster import AwsSettings
from modelfleet.providers.aws.errors import classify_issue
from modelfleet.providers.base import NodePool, PoolIssue, PoolSpec, PoolState
from modelfleet.providers.errors import is_capacity_error

NODEGROUP_PREFIX: Final = "mf-"
DEFAULT_DISK_GIB: Final = 200
"""Root volume of GPU nodes. EKS's default (20 GiB) cannot hold an inference image."""

EKS_STATES: Final[Mapping[str, PoolState]] = {
    "CREATING": "Creating",
    "ACTIVE": "Active",
    "UPDATING": "Updating",
    "DELETING": "Deleting",
    "CREATE_FAILED": "Failed",
    "DELETE_FAILED": "Failed",
    "DEGRADED": "Degraded",
}
EKS_CAPACITY: Final = {"OnDemand": "ON_DEMAND", "Spot": "SPOT"}
TAINT_EFFECTS: Final = {
    "NoSchedule": "NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
}
RESIZABLE: Final = frozenset({"ACTIVE", "DEGRADED"})
"""States in which EKS accepts UpdateNodegroupConfig."""


def nodegroup_name(pool_id: str) -> str:
    """The EKS node group name of a pool: ``mf-<pool_id>`` (15 chars, within EKS's 63)."""
    return f"{NODEGROUP_PREFIX}{pool_id}"


def request_token(*parts: object) -> str:
    """A deterministic ``clientRequestToken`` (35 chars) from ``parts``."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()
    return f"mf-{digest[:32]}"


def max_size(spec: PoolSpec) -> int:
    """maxSize of the group: the offering's node limit when larger, never below 1 (EKS)."""
    return max(1, spec.nodes, spec.offering.max_nodes or spec.nodes)


def create_request(
    spec: PoolSpec,
    *,
    settings: AwsSettings,
    node_role_arn: str,
    subnets: Sequence[str],
    hour: str,
) -> dict[str, Any]:
    """Keyword arguments of ``eks.create_nodegroup`` for ``spec``.

    ``hour`` (UTC, ``YYYYMMDDHH``) goes into the token with the pool id and configuration:
    a retry within the hour is idempotent in EKS; the same pool made again (after a delete)
    in a later hour is not mistaken for a retry of the first create.
    """
    name = nodegroup_name(spec.pool_id)
    capacity = EKS_CAPACITY[spec.capacity_type]
    size = max_size(spec)
    token = request_token(
        "create",
        name,
        spec.offering.instance_type,
        capacity,
        spec.nodes,
        size,
        ",".join(subnets),
        settings.ami_type,
        node_role_arn,
        hour,
    )
    return {
        "clusterName": settings.cluster_name,
        "nodegroupName": name,
        "scalingConfig": {"minSize": 0, "maxSize": size, "desiredSize": spec.nodes},
        "subnets": list(subnets),
        "instanceTypes": [spec.offering.instance_type],
        "amiType": settings.ami_type,
        "capacityType": capacity,
        "nodeRole": node_role_arn,
        "diskSize": DEFAULT_DISK_GIB,
        "labels": spec.node_labels(),
        "taints": [
            {
                "key": labels.GPU_TAINT_KEY,
                "value": labels.GPU_TAINT_VALUE,
                "effect": TAINT_EFFECTS[labels.GPU_TAINT_EFFECT],
            }
        ],
        "tags": spec.tags(),
        "clientRequestToken": token,
    }


def scaling_update(
    group: Mapping[str, Any], spec: PoolSpec, *, cluster_name: str
) -> dict[str, Any] | None:
    """Keyword arguments of ``eks.update_nodegroup_config`` resizing ``group`` to ``spec``.

    None when nothing is to do: the desired size already matches, or the group is not in a
    state where EKS accepts updates (the next reconcile tries again). The token hashes the
    group's ``modifiedAt``, so a lost-response retry is idempotent while a later resize to
    a size used before (3 -> 5 -> 3) is a new request.
    """
    current = (group.get("scalingConfig") or {}).get("desiredSize")
    if current == spec.nodes or group.get("status") not in RESIZABLE:
        return None
    name = str(group["nodegroupName"])
    scaling = {"minSize": 0, "maxSize": max_size(spec), "desiredSize": spec.nodes}
    return {
        "clusterName": cluster_name,
        "nodegroupName": name,
        "scalingConfig": scaling,
        "clientRequestToken": request_token(
            "update", name, group.get("modifiedAt"), *scaling.values()
        ),
    }


def instance_id(provider_id: str) -> str | None:
    """The EC2 instance id of a Node's ``spec.providerID`` (``aws:///us-east-1a/i-0abc``),
    None when it is not an AWS one."""
    if not provider_id.startswith("aws://"):
        return None
    last = provider_id.rstrip("/").rsplit("/", 1)[-1]
    return last if last.startswith("i-") else None


def owned_by(group: Mapping[str, Any], cluster: str) -> bool:
    """True when ``group`` is tagged managed=true and (if tagged) for FleetCluster ``cluster``."""
    tags = group.get("tags") or {}
    return bool(tags.get(labels.MANAGED) == "true" and tags.get(labels.CLUSTER, cluster) == cluster)


def asg_names(groups: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Auto Scaling group name -> node group name, for every group."""
    out: dict[str, str] = {}
    for group in groups:
        for asg in (group.get("resources") or {}).get("autoScalingGroups") or []:
            out[str(asg["name"])] = str(group["nodegroupName"])
    return out


def ready_counts(asgs: Sequence[Mapping[str, Any]], *, owners: Mapping[str, str]) -> dict[str, int]:
    """InService + Healthy instances per node group, from ``AutoScalingGroups`` entries."""
    ready: dict[str, int] = {}
    for asg in asgs:
        group = owners.get(str(asg["AutoScalingGroupName"]))
        if group is None:
            continue
        healthy = sum(
            1
            for i in asg.get("Instances") or []
            if i.get("LifecycleState") == "InService" and i.get("HealthStatus") == "Healthy"
        )
        ready[group] = ready.get(group, 0) + healthy
    return ready


def _issue(raw: Mapping[str, Any], *, instance_type: str, group: Mapping[str, Any]) -> PoolIssue:
    """One node group health issue, classified with the same table as API errors."""
    issue = PoolIssue(code=str(raw.get("code")), message=str(raw.get("message") or ""))
    capacity_type = "Spot" if group.get("capacityType") == "SPOT" else "OnDemand"
    error = classify_issue(issue, instance_type=instance_type, capacity_type=capacity_type)
    return PoolIssue(issue.code, issue.message, capacity=is_capacity_error(error))


def to_node_pool(
    group: Mapping[str, Any], *, cluster: str, ready_nodes: int, gpu: str | None
) -> NodePool:
    """A ``DescribeNodegroup`` answer as a ``NodePool`` (unknown EKS states read Degraded)."""
    tags = dict(group.get("tags") or {})
    instance_types = group.get("instanceTypes") or [tags.get(labels.OFFERING, "")]
    issues = (group.get("health") or {}).get("issues") or []
    return NodePool(
        name=str(group["nodegroupName"]),
        instance_type=str(instance_types[0]),
        capacity_type="Spot" if group.get("capacityType") == "SPOT" else "OnDemand",
        desired_nodes=int((group.get("scalingConfig") or {}).get("desiredSize") or 0),
        ready_nodes=ready_nodes,
        state=EKS_STATES.get(str(group.get("status")), "Degraded"),
        gpu=gpu,
        issues=tuple(_issue(i, instance_type=str(instance_types[0]), group=group) for i in issues),
        managed=owned_by(group, cluster),
        tags=tags,
    )
