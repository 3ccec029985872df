"""The pure decision core: autoscaling, placement, spot hedging, failover, node pools.

Everything here is a function of immutable inputs (``DeploymentSpec``, ``FleetSnapshot``,
``MetricsSnapshot``, ``DecisionState``, ``now``) to a ``Plan``: no I/O, no clock reads, no
kopf/kubernetes/cloud SDK imports (enforced by import-linter). The reconciler, the CLI and
the simulator all call ``plan``; docs/decisions.md explains each rule.
"""

from modelfleet.core.health import HealthRecord, accepts_new_replicas, is_lost, next_health
from modelfleet.core.planner import plan
from modelfleet.core.reasons import Reason
from modelfleet.core.result import NodePoolSize, PlacementDecision, Plan, Retiring, unsatisfiable
from modelfleet.core.state import DecisionState
from modelfleet.core.stockouts import (
    active_stockout,
    backoff_seconds,
    prune,
    record_capacity_error,
    record_capacity_success,
)
from modelfleet.core.types import (
    DEFAULT_SETTINGS,
    ClusterSignals,
    ClusterView,
    DeploymentSpec,
    ExistingPlacement,
    FailoverPolicy,
    FleetSnapshot,
    GpuNeed,
    MetricsSnapshot,
    Offering,
    PlacementPolicy,
    PlannerSettings,
    ScalingPolicy,
    Selector,
    StockoutMark,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "ClusterSignals",
    "ClusterView",
    "DecisionState",
    "DeploymentSpec",
    "ExistingPlacement",
    "FailoverPolicy",
    "FleetSnapshot",
    "GpuNeed",
    "HealthRecord",
    "MetricsSnapshot",
    "NodePoolSize",
    "Offering",
    "PlacementDecision",
    "PlacementPolicy",
    "Plan",
    "PlannerSettings",
    "Reason",
    "Retiring",
    "ScalingPolicy",
    "Selector",
    "StockoutMark",
    "accepts_new_replicas",
    "active_stockout",
    "backoff_seconds",
    "is_lost",
    "next_health",
    "plan",
    "prune",
    "record_capacity_error",
    "record_capacity_success",
    "unsatisfiable",
]
