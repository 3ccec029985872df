"""The framework-free reconciler: gather inputs, call the pure core, apply, report status.

kopf handlers (``modelfleet.handlers``), the tests and the simulator drive these classes;
nothing here imports kopf.
"""

from modelfleet.reconciler.deployment import (
    EventRecord,
    FinalizeOutcome,
    ReconcileOutcome,
    Reconciler,
    ReconcilerSettings,
)
from modelfleet.reconciler.fleet import (
    FleetSettings,
    PoolUpkeep,
    ProbeOutcome,
    probe_fleet_cluster,
)
from modelfleet.reconciler.memory import ProviderRegistry, StockoutMemory

__all__ = [
    "EventRecord",
    "FinalizeOutcome",
    "FleetSettings",
    "PoolUpkeep",
    "ProbeOutcome",
    "ProviderRegistry",
    "ReconcileOutcome",
    "Reconciler",
    "ReconcilerSettings",
    "StockoutMemory",
    "probe_fleet_cluster",
]
