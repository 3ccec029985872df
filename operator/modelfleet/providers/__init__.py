"""GPU node-pool providers: one per cloud (aws, gcp, azure) plus static and simulated.

``providers.factory.provider_for`` builds the provider a FleetCluster names. Cloud
providers import their SDK lazily, so the core install stays light and a missing extra gives
a clear error. ``capacity_issue`` finds, on any provider's pool, the health issue its
provider classified as "no capacity/quota" (reported after an accepted resize).
"""

from modelfleet.providers.base import (
    KnowsNodes,
    NodePool,
    NodePoolProvider,
    NodeRef,
    PoolIssue,
    PoolSpec,
    RemovesNodes,
    capacity_issue,
)
from modelfleet.providers.errors import (
    InsufficientCapacity,
    InvalidConfiguration,
    NotFound,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    Throttled,
    Unreachable,
    is_capacity_error,
)

__all__ = [
    "InsufficientCapacity",
    "InvalidConfiguration",
    "KnowsNodes",
    "NodePool",
    "NodePoolProvider",
    "NodeRef",
    "NotFound",
    "PermissionDenied",
    "PoolIssue",
    "PoolSpec",
    "ProviderError",
    "ProviderUnavailable",
    "QuotaExceeded",
    "RemovesNodes",
    "Throttled",
    "Unreachable",
    "capacity_issue",
    "is_capacity_error",
]
