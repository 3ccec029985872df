"""``modelfleet plan``: what would the operator do for a deployment, and what would it cost.

Reads FleetCluster manifests (their ``status`` may carry health and stockouts), one
ModelDeployment (its ``status.placements`` are the replicas already running) and optionally
a metrics file, runs the same ``core.plan`` as the operator, and prints a table with the
reasons or one JSON object. The metrics file format (see tests/fixtures/metrics/):

```yaml
observedAt: "2025-06-01T12:00:00Z"   # optional, defaults to --now; > 120 s before it: stale
deployments:
  default/llama-8b:                   # namespace/name, or a bare name in namespace default
    aws-use1: {readyReplicas: 2, ttftP95Ms: 310, tpotP95Ms: 42, queuePerReplica: 5,
               requestRate: 14.2, tokensPerSecond: 2100,
               kvCachePerReplica: 0.9, runningPerReplica: 40}   # saturation (optional)
```
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from modelfleet.api.advice import deployment_advice
from modelfleet.api.modeldeployment import ModelDeployment
from modelfleet.api.validation import ManifestLoadError, load_objects
from modelfleet.cli_layout import Column, print_lines, table_lines, wrap
from modelfleet.core import DecisionState, MetricsSnapshot, Plan, plan, unsatisfiable
from modelfleet.core.from_api import deployment_from_api, fleet_from_api
from modelfleet.core.types import DEFAULT_SETTINGS, ClusterSignals


class PlanInputError(Exception):
    """Invalid ``plan`` input; the message names the file and the field."""


class _SignalsFile(BaseModel):
    """One cluster's signals in a metrics file (all optional; finite: ``queuePerReplica:
    .inf`` ended the plan in an OverflowError traceback, the operator's Prometheus source
    drops non-finite samples the same way)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", allow_inf_nan=False
    )

    ready_replicas: int | None = Field(default=None, ge=0)
    ttft_p95_ms: float | None = Field(default=None, ge=0)
    tpot_p95_ms: float | None = Field(default=None, ge=0)
    queue_per_replica: float | None = Field(default=None, ge=0)
    request_rate: float | None = Field(default=None, ge=0)
    tokens_per_second: float | None = Field(default=None, ge=0)
    kv_cache_per_replica: float | None = Field(default=None, ge=0, le=1)
    running_per_replica: float | None = Field(default=None, ge=0)
    observed_at: datetime | None = None


class _MetricsFile(BaseModel):
    """The ``--metrics`` file: signals per deployment, per cluster."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    observed_at: datetime | None = None
    deployments: dict[str, dict[str, _SignalsFile]] = Field(default_factory=dict)


def _aware(value: datetime | None, default: datetime) -> datetime:
    if value is None:
        return default
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def load_metrics(path: Path, *, now: datetime) -> MetricsSnapshot:
    """Parse a metrics file. Raises PlanInputError naming ``path`` and the bad field, or
    saying that it is empty (no YAML document: a truncated or wrong file, never meant as
    "no signals")."""
    try:
        # A named stream, so that YAML errors say the file rather than "<unicode string>".
        with path.open(encoding="utf-8") as stream:
            raw = yaml.safe_load(stream)
    except OSError as exc:
        raise PlanInputError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PlanInputError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PlanInputError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:  # planning on it would be planning without metrics, silently
        raise PlanInputError(
            f"{path}: empty: no signals (a mapping with observedAt and deployments, see "
            "tests/fixtures/metrics/); to plan without metrics, leave out --metrics"
        )
    if not isinstance(raw, dict):
        raise PlanInputError(
            f"{path}: not a metrics file (a mapping with observedAt and deployments)"
        )
    try:
        parsed = _MetricsFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise PlanInputError(f"{path}: {field}: {first['msg']}") from exc
    observed = _aware(parsed.observed_at, now)
    by_deployment = {
        (name if "/" in name else f"default/{name}"): {
            cluster: ClusterSignals(
                ready_replicas=s.ready_replicas,
                ttft_p95_ms=s.ttft_p95_ms,
                tpot_p95_ms=s.tpot_p95_ms,
                queue_per_replica=s.queue_per_replica,
                request_rate=s.request_rate,
                tokens_per_second=s.tokens_per_second,
                kv_cache_per_replica=s.kv_cache_per_replica,
                running_per_replica=s.running_per_replica,
                observed_at=_aware(s.observed_at, observed) if s.observed_at else None,
            )
            for cluster, s in clusters.items()
        }
        for name, clusters in parsed.deployments.items()
    }
    return MetricsSnapshot(by_deployment=by_deployment, observed_at=observed)


def parse_now(value: str | None) -> datetime:
    """``--now`` as an aware datetime (UTC when no offset is given); the current time when
    unset (the CLI is the shell: it may read the clock)."""
    if value is None:
        return datetime.now(UTC)
    try:
        return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")), datetime.now(UTC))
    except ValueError as exc:
        raise PlanInputError(f"--now: not an ISO 8601 time: {value!r}") from exc


def make_plan(
    deployment: Path, fleet: Path, *, metrics: Path | None, now: datetime
) -> tuple[ModelDeployment, Plan]:
    """Load the inputs and run the planner: the ModelDeployment planned and its plan.
    Raises PlanInputError on invalid input."""
    try:
        _, clusters = load_objects([fleet])
        deployments, extra_clusters = load_objects([deployment])
    except ManifestLoadError as exc:
        raise PlanInputError(str(exc)) from exc
    if len(deployments) != 1:
        raise PlanInputError(
            f"{deployment}: kind: expected exactly one ModelDeployment, found {len(deployments)}"
        )
    if not clusters and not extra_clusters:
        raise PlanInputError(f"{fleet}: kind: no FleetCluster manifests found")
    md = deployments[0]
    snapshot = fleet_from_api([*clusters, *extra_clusters], [md], default_health="Healthy")
    signals = load_metrics(metrics, now=now) if metrics else MetricsSnapshot()
    return md, plan(
        deployment_from_api(md), snapshot, metrics=signals, state=DecisionState(), now=now
    )


def render_table(result: Plan, console: Console) -> None:
    """Print ``result`` as tables: summary, placements, node pools, changes, reasons, in
    ``console.width`` columns; a row too wide moves its prose, then its widest names, onto
    lines beneath it, and no name is cut (``modelfleet.cli_layout``)."""
    width = console.width
    headroom = (
        f" (of which region-loss headroom ${result.headroom_cost_per_hour:,.2f}/h)"
        if result.headroom_cost_per_hour
        else ""
    )
    keep = "\u00a0"  # a word and its figure stay on one line when wrapped (cli_layout.wrap)
    summary = (
        f"{result.deployment}: desired{keep}{result.desired_replicas}"
        f" +{keep}standby{keep}{result.standby_replicas}, placed{keep}{result.placed_replicas}, "
        f"unplaced{keep}{result.unplaced}, cost{keep}${result.cost_per_hour:,.2f}/h{headroom}; "
        f"placement:{keep}{result.placement_method}"
    )
    lines: list[Text | str] = [Text(line) for line in wrap(summary, width)]
    lines[0].stylize("bold", 0, len(result.deployment))  # type: ignore[union-attr]
    terminal = unsatisfiable(result)
    if terminal is not None:
        said = wrap(f"{terminal.code}: {terminal.message}", width)
        lines += [Text(line) for line in said]
        lines[-len(said)].stylize("red", 0, len(terminal.code))  # type: ignore[union-attr]
    place = (
        Column("cluster"),
        Column("cloud"),
        Column("region"),
        Column("gpu"),
        Column("instance type"),
        Column("capacity"),
        Column("replicas", right=True),
    )
    rows: list[tuple[str, ...]] = [
        (p.cluster, p.cloud, p.region, p.gpu, p.instance_type, p.capacity_type, str(p.replicas))
        for p in result.placements
    ]
    lines += ["", *table_lines("Placements", place, rows, width=width)]
    pools = (
        Column("cluster"),
        Column("instance type"),
        Column("capacity"),
        Column("nodes", right=True),
        Column("$/node-h", right=True),
    )
    rows = [
        (n.cluster, n.instance_type, n.capacity_type, str(n.nodes), f"{n.price_per_node_hour:g}")
        for n in result.node_pools
    ]
    lines += ["", *table_lines("Node pools", pools, rows, width=width)]
    if result.changes:
        changes = (
            Column("change"),
            Column("cluster"),
            Column("offering"),
            Column("why", prose=True),
        )
        rows = [(c.code, c.cluster, c.offering, c.message) for c in result.changes]
        lines += ["", *table_lines("Changes", changes, rows, width=width)]
    reasons = (
        Column("reason"),
        Column("cluster"),
        Column("offering"),
        Column("capacity"),
        Column("why", prose=True),
    )
    rows = [
        (r.code, r.cluster or "-", r.offering or "*", r.capacity_type or "*", r.message)
        for r in result.reasons
    ]
    lines += ["", *table_lines("Reasons", reasons, rows, width=width)]
    print_lines(console, lines)


def rounded(value: Any, key: str = "") -> Any:
    """``value`` (JSON types) with floats rounded for people: money (keys ending in
    ``PerHour``, e.g. ``costPerHour``, USD) to cents, other figures (rates in requests/s,
    capacities) to 3 decimals, so ``-o json`` never shows ``5.489999999999999``."""
    if isinstance(value, dict):
        return {k: rounded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, key) for v in value]
    if isinstance(value, float):
        return round(value, 2 if key.endswith("PerHour") else 3)
    return value


def stale_signals(metrics: MetricsSnapshot, now: datetime) -> datetime | None:
    """The oldest observation time in ``metrics`` that the planner ignores as stale at
    ``now`` (older than ``PlannerSettings.stale_after_seconds``); None when none is."""
    limit = DEFAULT_SETTINGS.stale_after_seconds
    times = [
        s.observed_at or metrics.observed_at
        for clusters in metrics.by_deployment.values()
        for s in clusters.values()
    ]
    old = [t for t in times if t is not None and (now - t).total_seconds() > limit]
    return min(old) if old else None


def plan_command(
    deployment: Path,
    fleet: Path,
    *,
    metrics: Path | None = None,
    now: str | None = None,
    output: Literal["table", "json"] = "table",
    out: Console,
    err: Console,
) -> int:
    """Run ``modelfleet plan``; returns the exit status (0 ok, 2 invalid input).

    A plan that cannot place everything still exits 0: the output says what is missing.
    """
    try:
        when = parse_now(now)
        md, result = make_plan(deployment, fleet, metrics=metrics, now=when)
        signals = load_metrics(metrics, now=when) if metrics else None
        stale = stale_signals(signals, when) if signals else None
    except PlanInputError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return 2
    for line in deployment_advice(md):  # valid, but likely not what was meant
        err.print(f"[yellow]note:[/yellow] {escape(line)}", highlight=False)
    if signals is not None and result.deployment not in signals.by_deployment:
        found = ", ".join(sorted(signals.by_deployment)) or "none"
        err.print(
            f"[yellow]warning:[/yellow] {escape(str(metrics))}: no signals for "
            f"{escape(result.deployment)} (deployments in the file: {escape(found)}): the "
            "plan is the plan without metrics",
            highlight=False,
        )
    if stale is not None:
        limit = DEFAULT_SETTINGS.stale_after_seconds
        err.print(
            f"[yellow]warning:[/yellow] {escape(str(metrics))}: signals observed at "
            f"{stale.isoformat()} are stale at {when.isoformat()} (older than {limit:g} s) "
            "and were ignored: the plan is the plan without them; pass --now to plan as of "
            "when they were observed",
            highlight=False,
        )
    if output == "json":
        out.print(json.dumps(rounded(result.to_dict()), indent=2), markup=False, highlight=False)
    else:
        render_table(result, out)
    return 0
