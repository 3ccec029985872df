"""The planner's output: a ``Plan`` the reconciler applies and the CLI prints.

A plan is a complete description of the target state of one deployment (not a diff): the
replicas wanted, where they go, the node pools that hold them, what it costs, and why.
Replicas that must keep running until their replacements are ready (make-before-break) are
listed in ``retiring``; the reconciler removes them only once the new replicas are ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelfleet.core.autoscale import Signals
from modelfleet.core.reasons import BUDGET_EXCEEDED, NO_CANDIDATES, Reason
from modelfleet.core.state import DecisionState
from modelfleet.core.types import CapacityType


@dataclass(frozen=True, slots=True)
class PlacementDecision:
    """``replicas`` of the deployment on (cluster, instance type, capacity type)."""

    cluster: str
    cloud: str
    region: str
    gpu: str
    instance_type: str
    capacity_type: CapacityType
    replicas: int
    replicas_per_node: int
    price_per_node_hour: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form with the API's camelCase names."""
        return {
            "cluster": self.cluster,
            "cloud": self.cloud,
            "region": self.region,
            "gpu": self.gpu,
            "instanceType": self.instance_type,
            "capacityType": self.capacity_type,
            "replicas": self.replicas,
        }


@dataclass(frozen=True, slots=True)
class NodePoolSize:
    """Nodes the deployment's pool on (cluster, instance type, capacity type) must have."""

    cluster: str
    instance_type: str
    gpu: str
    capacity_type: CapacityType
    nodes: int
    price_per_node_hour: float
    zones: tuple[str, ...] = ()
    """Zones the pool may grow in when some of its offering's zones are stocked out (the
    zone fall-through); empty: the cluster's default zones."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form with the API's camelCase names (``zones`` only when restricted)."""
        out: dict[str, Any] = {
            "cluster": self.cluster,
            "instanceType": self.instance_type,
            "gpu": self.gpu,
            "capacityType": self.capacity_type,
            "nodes": self.nodes,
        }
        if self.zones:
            out["zones"] = list(self.zones)
        return out


@dataclass(frozen=True, slots=True)
class Retiring:
    """Existing replicas the plan replaces; ``lost`` ones are gone (failed cluster, reclaimed
    spot), the others keep serving until their replacements are ready."""

    cluster: str
    instance_type: str
    capacity_type: CapacityType
    replicas: int
    lost: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "cluster": self.cluster,
            "instanceType": self.instance_type,
            "capacityType": self.capacity_type,
            "replicas": self.replicas,
            "lost": self.lost,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """The target state of one deployment.

    - ``desired_replicas``: what the autoscaler wants; ``standby_replicas`` come on top.
    - ``placements`` sum to ``desired_replicas + standby_replicas - unplaced``.
    - ``node_pools``: nodes per pool for the placements, the retiring replicas that still
      serve, and every replica Ready there now (``core.nodepools``: a pool never shrinks
      under a serving replica; its node goes once a later pass no longer observes it).
    - ``cost_per_hour``: USD per hour of the placements' nodes (retiring replicas and the
      nodes held for replicas being removed excluded).
    - ``reasons``: one per candidate that got nothing (or less than it could take) and per
      deployment-level problem; ``changes``: one per difference from the existing placement.
    """

    deployment: str
    desired_replicas: int
    standby_replicas: int
    placements: tuple[PlacementDecision, ...]
    node_pools: tuple[NodePoolSize, ...]
    retiring: tuple[Retiring, ...]
    cost_per_hour: float
    unplaced: int
    reasons: tuple[Reason, ...]
    changes: tuple[Reason, ...]
    state: DecisionState
    signals: Signals | None = None
    """The fleet-wide aggregate of the deployment's signals the autoscaler decided on
    (status reports exactly these figures, so SLOMet and the autoscaler never disagree)."""
    headroom_cost_per_hour: float = 0.0
    """USD per hour that ``failover.tolerateRegionLoss`` adds over the same plan without it."""
    placement_method: str = "greedy"
    """``greedy`` (fast path, provably optimal), ``solver`` (MILP optimum), ``solver-limit``
    (best found within the solver's limits) or ``greedy-fallback`` (see core.placement)."""
    warm_pools: frozenset[tuple[str, str, str]] | None = None
    """(cluster, instance type, capacity type) of the pools whose Ready idle nodes this
    deployment's scale-up could take (``core.warm.warm_pools`` at the price factor this
    pass's warm placement applies: the urgent one while the SLO breaks or the fleet is
    saturated); None: not known (every pool counts as wanted). The pools stage releases an
    idle node that no deployment wants without the scale-in delay."""
    first_pool: tuple[str, str, str] | None = None
    """The cheapest growth candidate (where a scale-up grows first, taking what its pool
    holds by size); None: none, or not known. The pools stage keeps idle nodes for the full
    scale-in delay only on some deployment's first pool."""

    @property
    def placed_replicas(self) -> int:
        """Replicas the plan places (including standby)."""
        return sum(p.replicas for p in self.placements)

    def to_dict(self) -> dict[str, Any]:
        """The ``modelfleet plan -o json`` object (JSON types only)."""
        return {
            "deployment": self.deployment,
            "desiredReplicas": self.desired_replicas,
            "standbyReplicas": self.standby_replicas,
            "placedReplicas": self.placed_replicas,
            "placements": [p.to_dict() for p in self.placements],
            "nodePools": [n.to_dict() for n in self.node_pools],
            "retiring": [r.to_dict() for r in self.retiring],
            "costPerHour": round(self.cost_per_hour, 4),
            "headroomCostPerHour": round(self.headroom_cost_per_hour, 4),
            "placementMethod": self.placement_method,
            "unplaced": self.unplaced,
            "reasons": [r.to_dict() for r in self.reasons],
            "changes": [c.to_dict() for c in self.changes],
            "state": self.state.to_dict(),
        }


def unsatisfiable(plan: Plan) -> Reason | None:
    """The terminal problem of ``plan``, if any: a Reason with code ``NoCandidates`` or
    ``BudgetExceeded`` (see ``api.conditions.TERMINAL_REASONS``), else None.

    Terminal means waiting cannot help: no cluster/offering satisfies the hard constraints, or
    ``maxCostPerHour`` cannot pay for ``replicas.min``. Stockouts, quota and unhealthy
    clusters are transient and never terminal.
    """
    for reason in plan.reasons:
        if reason.code in (NO_CANDIDATES, BUDGET_EXCEEDED) and not reason.cluster:
            return reason
    return None
