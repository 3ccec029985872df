"""Labels, taints and annotations modelfleet puts on what it owns, in one place.

Node pools carry the node labels below and workloads select them, so the two must agree;
every object modelfleet creates carries the ownership labels so it can be found with a label
selector and garbage-collected.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime
from typing import Final

PREFIX: Final = "modelfleet.io"

# Ownership of workloads (Deployment, Service, PDB) in member clusters.
DEPLOYMENT: Final = f"{PREFIX}/deployment"
NAMESPACE: Final = f"{PREFIX}/namespace"
UID: Final = f"{PREFIX}/uid"
MANAGED: Final = f"{PREFIX}/managed"  # "true" on every object and cloud pool modelfleet owns
CLUSTER: Final = f"{PREFIX}/cluster"  # FleetCluster name, on cloud pools
OFFERING: Final = f"{PREFIX}/offering"  # instance type of a cloud pool (tag)

# Node labels set on every pool modelfleet creates (and by hand on static nodes): workloads
# use them as their nodeSelector.
NODE_INSTANCE_TYPE: Final = f"{PREFIX}/instance-type"
NODE_CAPACITY_TYPE: Final = f"{PREFIX}/capacity-type"  # "on-demand" | "spot"
NODE_POOL: Final = f"{PREFIX}/pool"

# GPU nodes are tainted so that only GPU workloads land there; workloads tolerate it.
GPU_TAINT_KEY: Final = "nvidia.com/gpu"
GPU_TAINT_VALUE: Final = "present"
GPU_TAINT_EFFECT: Final = "NoSchedule"

# Annotation on a ModelDeployment listing FleetClusters whose leftovers may be abandoned on
# deletion when they are unreachable (comma-separated names, or "*").
ABANDON_CLUSTERS: Final = f"{PREFIX}/abandon-clusters"


def capacity_label(capacity_type: str) -> str:
    """Node-label value for a capacity type: OnDemand -> on-demand, Spot -> spot."""
    return "spot" if capacity_type == "Spot" else "on-demand"


# Taints that the handlers of a spot interruption notice (or of a node's imminent removal)
# put on a Node: the node is going within seconds to minutes, so it is no place for a new
# replica (core/warm.py never counts it as a warm node). A handler that only cordons the
# node (``kubectl drain``, Karpenter, the AWS Node Termination Handler do) is seen through
# ``spec.unschedulable`` anyway.
INTERRUPTION_TAINTS: Final = frozenset(
    {
        # GKE: a Spot/preemptible VM received its preemption notice (graceful node shutdown).
        "cloud.google.com/impending-node-termination",
        # AWS Node Termination Handler: EC2 spot interruption notice, rebalance
        # recommendation, scheduled maintenance, ASG lifecycle termination.
        "aws-node-termination-handler/spot-itn",
        "aws-node-termination-handler/rebalance-recommendation",
        "aws-node-termination-handler/scheduled-maintenance",
        "aws-node-termination-handler/asg-lifecycle-termination",
        # Karpenter (v1, and v0.3x): the node is being disrupted (interruption included).
        "karpenter.sh/disrupted",
        "karpenter.sh/disruption",
        # cluster-autoscaler is removing the node; Kubernetes' non-graceful shutdown mark.
        "ToBeDeletedByClusterAutoscaler",
        "node.kubernetes.io/out-of-service",
    }
)


def capacity_type_of(label: str) -> str | None:
    """The capacity type (``OnDemand``/``Spot``) a ``NODE_CAPACITY_TYPE`` value names."""
    return {"on-demand": "OnDemand", "spot": "Spot"}.get(label)


@functools.lru_cache(maxsize=4096)
def pool_id(cluster: str, instance_type: str, capacity_type: str) -> str:
    """Deterministic 12-hex-char id of a (cluster, instance type, capacity type) pool.

    Providers build pool names from it within their cloud's rules (AKS: 12 lowercase
    alphanumerics; GKE: 40 chars; EKS: 63) and derive idempotency tokens from it, so a retry
    after a timeout can never create a second pool; workloads carry it in their names and
    node selectors. It lives with the labels because both sides (providers, clusters) use it.
    Memoised (pure, on strings): every pass names the same pools.
    """
    digest = hashlib.sha256(f"{cluster}\x00{instance_type}\x00{capacity_type}".encode())
    return digest.hexdigest()[:12]


def node_labels(cluster: str, instance_type: str, capacity_type: str) -> dict[str, str]:
    """Labels every node of a pool carries; workloads select on them."""
    return {
        NODE_INSTANCE_TYPE: instance_type,
        NODE_CAPACITY_TYPE: capacity_label(capacity_type),
        NODE_POOL: pool_id(cluster, instance_type, capacity_type),
    }


# Annotation on a ModelDeployment: the RFC 3339 time of a request held for it while no
# replica exists. The operator writes it when the gateway's demand Lease (below) changes,
# and anyone allowed to patch the ModelDeployment may too. Not under PREFIX: kopf ignores
# changes to annotations under its own storage prefix, and this change must wake the
# operator (reconciler/activator.py).
DEMAND_SEEN_AT: Final = f"activator.{PREFIX}/demand-seen-at"


def zoned_time(raw: object) -> datetime | None:
    """An RFC 3339 time with a zone (``2026-12-01T12:00:00Z``), as the wake-up annotation
    and a demand Lease's ``spec.renewTime`` carry it; None for anything else (not a string,
    malformed, no zone): such a value is ignored, never an error."""
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


# The gateway's demand Leases (coordination.k8s.io/v1, in the gateway's own namespace): one
# per ModelDeployment it held a request for, spec.renewTime the time of that request. The
# operator watches the Leases carrying DEMAND_LEASE=true (loop/demand_leases.py).
DEMAND_LEASE: Final = f"activator.{PREFIX}/demand"
DEMAND_FOR_NAMESPACE: Final = f"activator.{PREFIX}/namespace"
DEMAND_FOR_DEPLOYMENT: Final = f"activator.{PREFIX}/deployment"
"""Label (the name, when it fits a label value) and annotation (always ``namespace/name``)."""
DEMAND_RELEASE: Final = f"activator.{PREFIX}/release"
"""Label: the chart release whose gateway wrote the Lease (``$MODELFLEET_RELEASE``, which the
chart sets on the gateway and the operator); absent when the gateway runs without it. The
operator's sweep of Leases naming no deployment (``loop/lease_sweep.py``) deletes its own
release's and unlabelled ones under the gateway's naming, never another release's."""
RELEASE_ENV: Final = "MODELFLEET_RELEASE"
"""Environment variable naming the chart release (``.Release.Name``)."""


def label_value(text: str) -> str:
    """``text`` as a valid label value: unchanged when it fits (63 characters), else cut to
    56 characters plus ``-`` and a 6-hex digest of the whole. The value of
    ``DEPLOYMENT`` on every object and pod modelfleet writes for a ModelDeployment
    (``clusters.workloads``), so also what the Prometheus selector matches it against
    (``metrics.queries.SelectorLabels``): names up to 63 characters (the usual case)
    appear verbatim, a longer one (a ModelDeployment name may have 253) only this way."""
    if len(text) <= 63:
        return text
    return f"{text[:56].rstrip('-_.')}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def demand_lease_name(namespace: str, name: str) -> str:
    """The demand Lease of ModelDeployment ``namespace/name``: ``<namespace>.<name>`` (a
    namespace has no dot, so the pair is unambiguous), or ``<namespace>-<digest>`` where
    that would pass the 253 characters of an object name. The digest form has no dot, so
    no real pair takes it: ``<namespace>.<digest>`` would be the Lease of a deployment
    named like the digest, and the two would share their wake-ups."""
    full = f"{namespace}.{name}"
    if len(full) <= 253:
        return full
    return f"{namespace}-{hashlib.sha256(name.encode()).hexdigest()[:40]}"
