"""Say on the ModelDeployment when its ``pvc://`` model's claim is missing in a member cluster.

A ``pvc://<claimName>/<path>`` model reads its weights from a PersistentVolumeClaim the user
creates in each member cluster's workload namespace; modelfleet never creates it. Without
it the pods stay Pending (kube-scheduler: ``PodScheduled=False``, reason ``Unschedulable``,
``persistentvolumeclaim "<claimName>" not found``) and the Deployment itself reports nothing
but unready replicas. The FleetCluster probe already lists every modelfleet pod of its
cluster and publishes the claims they wait for in ``status.missingClaims``
(``objects.missing_claim``); this stage reads that list, so a deployment pass costs no
request more, and turns a match into a ``ClaimMissing`` Warning that also makes the
deployment Degraded (with the claim named). It lags the probe by one probe interval. Like every problem's Warning
(``PassLog.warn``), it is posted when the message is new, not again on each pass while the
recorded Degraded condition still says it (only every ``REANNOUNCE_SECONDS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.clusters.workloads import model_volume, workload_namespace
from modelfleet.reconciler.outcome import PassLog


def warn_missing_claims(
    md: ModelDeployment,
    clusters: Iterable[str],
    *,
    by_name: Mapping[str, FleetCluster],
    log: PassLog,
) -> list[str]:
    """Warn (``ClaimMissing``, Degraded) for each of ``clusters`` (where ``md`` has or is
    to have replicas) whose FleetCluster status lists ``md``'s ``pvc://`` claim as missing;
    return those clusters, sorted. Nothing for a model that is not on a PVC."""
    volume = model_volume(md)
    if volume is None:
        return []
    claim = f"{workload_namespace(md)}/{volume.claim_name}"
    missing = [
        name
        for name in sorted(set(clusters))
        if (cluster := by_name.get(name)) is not None
        and cluster.status is not None
        and claim in (cluster.status.missing_claims or ())
    ]
    if missing:
        message = (
            f"PersistentVolumeClaim {claim} not found in {', '.join(missing)}: the replicas "
            "there stay Pending until it is created (pvc:// model; modelfleet does not create "
            "the claim, docs/member-clusters.md)"
        )
        log.warn("ClaimMissing", message)  # posted once, not every pass (PassLog.warn)
    return missing
