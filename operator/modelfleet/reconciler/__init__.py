"""The framework-free reconciler: gather inputs, call the pure core, apply, report status.

A pass for one ModelDeployment is a sequence of stage modules (``observe``, ``snapshot``,
``pools``, ``apply``, ``retire``, ``status``; ``finalize`` on deletion) run by
``Reconciler``; ``fleet`` is the FleetCluster pass. Operator-wide memory: ``StockoutMemory``
(stockout marks), ``PoolLedger`` (pool bookings), ``ProviderRegistry``. The operator loop
(``modelfleet.loop``) drives all of it; nothing here imports kopf.
"""

from modelfleet.reconciler.deployment import Reconciler, ReconcilerSettings
from modelfleet.reconciler.fleet import (
    FleetSettings,
    PoolUpkeep,
    ProbeOutcome,
    probe_fleet_cluster,
)
from modelfleet.reconciler.ledger import PoolLedger
from modelfleet.reconciler.memory import ProviderRegistry, StockoutMemory
from modelfleet.reconciler.outcome import (
    CapacityError,
    EventRecord,
    FinalizeOutcome,
    ReconcileOutcome,
)
from modelfleet.reconciler.pools import PoolSettings

__all__ = [
    "CapacityError",
    "EventRecord",
    "FinalizeOutcome",
    "FleetSettings",
    "PoolLedger",
    "PoolSettings",
    "PoolUpkeep",
    "ProbeOutcome",
    "ProviderRegistry",
    "ReconcileOutcome",
    "Reconciler",
    "ReconcilerSettings",
    "StockoutMemory",
    "probe_fleet_cluster",
]
