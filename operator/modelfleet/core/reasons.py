"""Why the planner did (or did not do) something: stable machine codes plus a message.

Every candidate that gets no replicas and every change to a deployment's placement carries a
``Reason``. The codes are a contract: the reconciler maps them to status conditions and
Events, dashboards group by them, and tests assert on them. Add codes freely; never rename.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Hard constraints on a candidate (cluster, offering, capacity type).
EXCLUDED_BY_CLOUD: Final = "ExcludedByCloud"
EXCLUDED_BY_REGION: Final = "ExcludedByRegion"
EXCLUDED_BY_SELECTOR: Final = "ExcludedBySelector"
CLUSTER_CORDONED: Final = "ClusterCordoned"
CLUSTER_UNHEALTHY: Final = "ClusterUnhealthy"
CLUSTER_FAILING_BACK: Final = "ClusterFailingBack"
GPU_TYPE_MISMATCH: Final = "GpuTypeMismatch"
GPU_MEMORY_TOO_SMALL: Final = "GpuMemoryTooSmall"
TOO_MANY_GPUS_PER_REPLICA: Final = "TooManyGpusPerReplica"
SPOT_NOT_ALLOWED: Final = "SpotNotAllowed"
NO_SPOT_OFFERED: Final = "NoSpotOffered"
STOCKOUT: Final = "Stockout"
ZONE_STOCKOUT: Final = "ZoneStockout"
SPOT_HYSTERESIS: Final = "SpotHysteresis"
QUOTA_EXHAUSTED: Final = "QuotaExhausted"
NO_CAPACITY_PROFILE: Final = "NoCapacityProfile"
"""The deployment has capacity profiles, none for this GPU type, and ``core.gpus`` has no
data-sheet figures to estimate one from."""

# Soft outcomes: the candidate was allowed but not (fully) used.
OVER_BUDGET: Final = "OverBudget"
SPREAD_LIMIT: Final = "SpreadLimit"
NOT_CHEAPEST: Final = "NotCheapest"
STANDBY_REGION: Final = "StandbyRegion"
CAPACITY_ESTIMATED: Final = "CapacityEstimated"
"""No profile for this GPU type: its capacity is estimated from another type's profile
(``core.profiles.capacity_basis``); the candidate may get replicas."""

# Deployment-level outcomes (cluster and offering are empty).
UNPLACED: Final = "Unplaced"
NO_CANDIDATES: Final = "NoCandidates"
BUDGET_EXCEEDED: Final = "BudgetExceeded"
SPREAD_UNSATISFIED: Final = "SpreadUnsatisfied"
SPOT_SPREAD_UNAVAILABLE: Final = "SpotSpreadUnavailable"
STANDBY_UNAVAILABLE: Final = "StandbyUnavailable"
ON_DEMAND_BASE_UNSATISFIED: Final = "OnDemandBaseUnsatisfied"
REGION_LOSS_UNCOVERED: Final = "RegionLossUncovered"
SOLVER_LIMIT: Final = "SolverLimit"
METRICS_MISSING: Final = "MetricsMissing"

# Changes (what moved and why).
SCALE_UP: Final = "ScaleUp"
SCALE_DOWN: Final = "ScaleDown"
PANIC_SCALE_UP: Final = "PanicScaleUp"
SCALE_TO_ZERO: Final = "ScaleToZero"
SCALE_FROM_ZERO: Final = "ScaleFromZero"
HOLD: Final = "Hold"
CLUSTER_FAILED: Final = "ClusterFailed"
REPLICAS_RETIRING: Final = "ReplicasRetiring"
SPOT_RECLAIMED: Final = "SpotReclaimed"
SPOT_RETURN: Final = "SpotReturn"
PLACED: Final = "Placed"
REMOVED: Final = "Removed"
WARM_NODES: Final = "WarmNodes"


@dataclass(frozen=True, slots=True)
class Reason:
    """One explanation: ``code`` is a stable CamelCase identifier, ``message`` is for humans.

    ``cluster`` and ``offering`` (an instance type) are empty when the reason concerns the
    whole deployment or the whole cluster; ``capacity_type`` is empty when it concerns both.
    """

    code: str
    message: str
    cluster: str = ""
    offering: str = ""
    capacity_type: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON form: ``{cluster, offering, capacityType, reason, message}``."""
        return {
            "cluster": self.cluster,
            "offering": self.offering,
            "capacityType": self.capacity_type,
            "reason": self.code,
            "message": self.message,
        }
