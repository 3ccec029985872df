"""Advice on a valid ModelDeployment: what the API accepts but its author likely did not mean.

``modelfleet validate`` and ``modelfleet plan`` print each line as a note on stderr; the
exit status does not change (the API server and the operator accept the spec as it is).
Pure: it reads the model, nothing else.
"""

from __future__ import annotations

from modelfleet.api.modeldeployment import ModelDeployment


def deployment_advice(md: ModelDeployment) -> list[str]:
    """Notes on ``md``, each one sentence naming the fields involved:

    - ``replicas.min`` 0 without ``spec.metrics.demand``: at zero replicas no engine
      reports load, so only the modelfleet gateway's wake-up can start the deployment
      (docs/decisions.md, "Scale from zero"); without the gateway it stays at zero.
    - a measured capacity profile whose capacity point (``measurement.ttftP95Ms`` or
      ``tpotP95Ms``) is above the deployment's objective: measured against a looser SLO, it
      overstates what one replica sustains within this one.
    - a profile of another GPU count than the replicas' (``modelfleet profile`` without
      ``--gpu-count``): it describes no replica and is not used
      (``core.profiles.applicable``).
    - profiles that leave out GPU types the deployment may use (``resources.gpu.types``, or
      any GPU when unset): a replica on such a GPU is sized and priced at an estimate from
      the profiled types and the GPUs' data-sheet figures (``core.profiles.capacity_basis``),
      and a GPU the table does not know is not used at all.
    """
    spec = md.spec
    notes: list[str] = []
    demand = spec.metrics.demand if spec.metrics is not None else None
    if spec.replicas.min == 0 and not demand:
        notes.append(
            "replicas.min is 0 and spec.metrics.demand is not set: at zero replicas no "
            "engine reports load, so only the modelfleet gateway's wake-up (a request it "
            "holds) can start this deployment; without the gateway in front it stays at "
            "zero. Name the demand at zero replicas in PromQL in spec.metrics.demand "
            '(docs/decisions.md, "Scale from zero")'
        )
    objectives = (
        ("TTFT", "ttftP95Ms", "--ttft-p95-ms", spec.slo.ttft_p95_ms),
        ("TPOT", "tpotP95Ms", "--tpot-p95-ms", spec.slo.tpot_p95_ms),
    )
    for i, profile in enumerate(spec.capacity_profiles):
        measured = profile.measurement
        if measured is None:
            continue
        for name, field, option, objective in objectives:
            value = measured.ttft_p95_ms if name == "TTFT" else measured.tpot_p95_ms
            if objective is None or value is None or value <= objective:
                continue
            notes.append(
                f"spec.capacityProfiles.{i} ({profile.gpu}) was measured at {name} p95 "
                f"{value:g} ms, above spec.slo.{field} {objective:g} ms: its capacity point "
                "breaks this deployment's objective, so it overstates what one replica "
                f"sustains within it; measure again with {option} {objective:g}"
            )
    count = spec.resources.gpu.count
    for i, profile in enumerate(spec.capacity_profiles):
        if profile.gpu_count is not None and profile.gpu_count != count:
            notes.append(
                f"spec.capacityProfiles.{i} ({profile.gpu}) is for {profile.gpu_count} "
                f"GPU(s) per replica and resources.gpu.count is {count}: it describes no "
                f"replica and is not used; measure with --gpu-count {count} (or unset its "
                "gpuCount if it holds for any count)"
            )
    usable = [p for p in spec.capacity_profiles if p.gpu_count in (None, count)]
    profiled = sorted({p.gpu for p in usable})
    if profiled:
        allowed = spec.resources.gpu.types
        missing = [t for t in allowed or () if t not in profiled]
        sized = (
            "is sized and priced at an estimate scaled down from the profiled types by "
            "data-sheet memory bandwidth and BF16 compute (a GPU without data-sheet "
            "figures in modelfleet is not used); profile them (modelfleet profile) or list "
            "only profiled types in resources.gpu.types"
        )
        if missing:
            notes.append(
                f"spec.capacityProfiles covers {', '.join(profiled)} but not "
                f"{', '.join(missing)} of resources.gpu.types: a replica there {sized}"
            )
        elif not allowed:
            notes.append(
                f"spec.capacityProfiles covers {', '.join(profiled)} and resources.gpu.types "
                f"is unset (any GPU): a replica on another GPU type {sized}"
            )
    return notes
