"""Condition types and reasons (KEP-1623) that modelfleet writes, in one place.

Argo CD's health check (charts/modelfleet/files/argocd/*.lua), the docs and the reconciler
all key on these strings: change them here and there together.
"""

from __future__ import annotations

from typing import Final

# ModelDeployment condition types.
READY: Final = "Ready"
PROGRESSING: Final = "Progressing"
DEGRADED: Final = "Degraded"
SLO_MET: Final = "SLOMet"
CAPACITY_AVAILABLE: Final = "CapacityAvailable"

# FleetCluster condition types.
REACHABLE: Final = "Reachable"

# Reasons for Ready=False that no amount of waiting fixes: the user must change the spec or
# the fleet. Argo CD reports these as Degraded rather than Progressing.
TERMINAL_REASONS: Final = frozenset(
    {
        "InvalidSpec",  # the spec passed the schema but is unusable (e.g. unknown engine image)
        "NoCandidates",  # no FleetCluster satisfies the hard constraints (GPU, region, selector)
        "BudgetExceeded",  # maxCostPerHour cannot pay for replicas.min
    }
)
