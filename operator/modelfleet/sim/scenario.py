"""Scenario files: what to simulate — the fleet, the deployments and their traffic, events.

A scenario is a TOML file (TOML, not YAML, so that ``modelfleet validate examples/`` keeps
meaning "Kubernetes manifests"): it references FleetCluster and ModelDeployment manifests in
their normal CRD format (paths relative to the scenario file), gives each deployment a
traffic model, lists events (region outage, GPU stockout, spot reclaim wave, traffic burst)
and may override any world-model parameter under ``[world]``. ``load_scenario`` validates
all of it and raises ``ScenarioError`` whose messages name the file and the field.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from modelfleet.api import FleetCluster, ModelDeployment
from modelfleet.api.common import CapacityType
from modelfleet.api.validation import ManifestLoadError, iter_documents, pydantic_errors
from modelfleet.sim.traffic import (
    MAX_REPLAYED_REQUESTS,
    apply_bursts,
    diurnal_rate,
    replayed_requests,
)
from modelfleet.sim.traffic_spec import Burst, TraceSpec, TrafficSpec, parse_at
from modelfleet.sim.world import SimModel, World


class DeploymentRef(SimModel):
    """A ModelDeployment manifest and the traffic it receives."""

    manifest: str = Field(description="ModelDeployment manifest, relative to the scenario.")
    name: str | None = Field(
        default=None, description="Which ModelDeployment, when the file holds several."
    )
    traffic: TrafficSpec


class _Timed(SimModel):
    """An event at a moment of the scenario."""

    at: str | float = Field(description="When, from the scenario start ('13:30', '90m').")

    @field_validator("at")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        parse_at(value)
        return value

    @property
    def at_seconds(self) -> float:
        return parse_at(self.at)


class _Targeted(_Timed):
    """Where an event strikes: any of cluster, region, cloud (all given must match)."""

    cluster: str | None = Field(default=None, description="FleetCluster name.")
    region: str | None = Field(default=None, description="Region (every cluster in it).")
    cloud: str | None = Field(default=None, description="Cloud label.")

    def matches(self, cluster: FleetCluster) -> bool:
        """Whether ``cluster`` is hit by this event."""
        return (
            (self.cluster is None or cluster.metadata.name == self.cluster)
            and (self.region is None or cluster.spec.region == self.region)
            and (self.cloud is None or cluster.spec.cloud_name == self.cloud)
        )

    @model_validator(mode="after")
    def _somewhere(self) -> _Targeted:
        if self.cluster is None and self.region is None and self.cloud is None:
            raise ValueError("name at least one of cluster, region, cloud")
        return self


class RegionOutage(_Targeted):
    """The clusters' API servers become unreachable and their pods vanish; the cloud API of
    the region is down too (node pools cannot be changed)."""

    type: Literal["regionOutage"]
    duration_minutes: float = Field(gt=0, description="How long the outage lasts.")


class Stockout(_Targeted):
    """No new nodes of a GPU (and capacity type) in the matched clusters for a while."""

    type: Literal["stockout"]
    duration_minutes: float = Field(gt=0, description="How long capacity is unavailable.")
    gpu: str = Field(description="GPU model, e.g. H100.")
    capacity_type: CapacityType | Literal["Any"] = Field(
        default="Any", description="OnDemand, Spot or Any."
    )


class SpotReclaim(_Targeted):
    """A reclaim wave: a fraction of the matched spot nodes get an interruption notice now
    and vanish when it expires; spot capacity stays short for ``stockoutMinutes``."""

    type: Literal["spotReclaim"]
    fraction: float = Field(default=1.0, gt=0, le=1, description="Share of spot nodes hit.")
    gpu: str | None = Field(default=None, description="Only this GPU model (default: all).")
    stockout_minutes: float = Field(
        default=30.0, ge=0, description="No new spot capacity there for this long."
    )


class TrafficBurst(_Timed):
    """A traffic burst on one deployment (or all)."""

    type: Literal["trafficBurst"]
    duration_minutes: float = Field(gt=0, description="Length of the burst.")
    multiplier: float = Field(gt=0, description="Rate multiplier at the burst's height.")
    deployment: str | None = Field(default=None, description="ModelDeployment name (all).")


Event = Annotated[RegionOutage | Stockout | SpotReclaim | TrafficBurst, Field(discriminator="type")]


class ScenarioSpec(SimModel):
    """The scenario file's content."""

    name: str = Field(min_length=1, description="Scenario name (in reports).")
    description: str = Field(default="", description="What it shows.")
    seed: int = Field(default=1, ge=0, description="Seed of every random draw.")
    duration_hours: float = Field(default=24.0, gt=0, le=24 * 14, description="Length.")
    start_hour: float = Field(default=0.0, ge=0, lt=24, description="UTC hour at the start.")
    fleet: list[str] = Field(min_length=1, description="FleetCluster manifests or folders.")
    deployments: list[DeploymentRef] = Field(min_length=1)
    events: list[Event] = Field(default_factory=list)
    world: World = Field(default_factory=World)


class ScenarioError(Exception):
    """A scenario that cannot be simulated; ``errors`` name the file and field each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass(frozen=True)
class Scenario:
    """A loaded, validated scenario: the spec plus the manifests it references."""

    spec: ScenarioSpec
    source: Path
    fleet: tuple[FleetCluster, ...]
    deployments: tuple[ModelDeployment, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    def traffic_of(self, md: ModelDeployment) -> TrafficSpec:
        """The traffic of ``md`` with every trafficBurst event for it merged in."""
        index = self.deployments.index(md)
        traffic = self.spec.deployments[index].traffic
        extra = [
            Burst(at=e.at, duration_minutes=e.duration_minutes, multiplier=e.multiplier)
            for e in self.spec.events
            if isinstance(e, TrafficBurst)
            and (e.deployment is None or e.deployment == md.metadata.name)
        ]
        return traffic.model_copy(update={"bursts": [*traffic.bursts, *extra]})


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if not str(part).startswith("function-"))


def _format(source: Path, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(
            p
            for p in err["loc"]
            if p not in ("regionOutage", "stockout", "spotReclaim", "trafficBurst")
        )
        message = err["msg"].removeprefix("Value error, ")
        out.append(f"{source}: {_field(loc) or '(top level)'}: {message}")
    return out


def _load_manifests(paths: list[Path], kind: str, field: str, source: Path) -> list[Any]:
    model = FleetCluster if kind == "FleetCluster" else ModelDeployment
    try:
        docs = list(iter_documents(paths))
    except ManifestLoadError as exc:
        raise ScenarioError([f"{source}: {field}: {exc}"]) from exc
    out = []
    errors: list[str] = []
    for doc in docs:
        if doc.data.get("kind") != kind:
            continue
        try:
            out.append(model.model_validate(doc.data))
        except ValidationError as exc:
            errors.extend(f"{source}: {field}: {e}" for e in pydantic_errors(doc, exc))
    if errors:
        raise ScenarioError(errors)
    return out


def _trace_problem(trace: TraceSpec, spec: ScenarioSpec, *, field: str) -> str | None:
    """Why the resolved ``trace`` cannot be replayed in ``spec`` (None: it can): read now,
    so that a bad row or an oversized replay is an error naming the field, not a
    traceback (or the machine's memory) once the run has started."""
    offset = int(spec.world.control.warmup_minutes * 60)
    seconds = offset + int(spec.duration_hours * 3600)
    try:
        requests = replayed_requests(trace, seconds=seconds, offset=offset)
    except (OSError, ValueError) as exc:
        return f"{field}.file: {exc}"
    if requests > MAX_REPLAYED_REQUESTS:
        return (
            f"{field}: stretch {trace.stretch:g}, rateScale {trace.rate_scale:g} and repeat "
            f"{trace.repeat} would lay out {requests:,.0f} requests over the run (at most "
            f"{MAX_REPLAYED_REQUESTS:,}): raise stretch or lower rateScale"
        )
    return None


def _curve_problem(traffic: TrafficSpec, spec: ScenarioSpec, *, field: str) -> str | None:
    """Why the generated (diurnal, bursts) ``traffic`` is too large to simulate in
    ``spec`` (None: it is not): the requests it draws on average over the warm-up and the
    run, against the replay's limit (``MAX_REPLAYED_REQUESTS``: the report keeps one entry
    per request, and a rate past about 1e18 per second is no Poisson draw at all)."""
    offset = int(spec.world.control.warmup_minutes * 60)
    seconds = offset + int(spec.duration_hours * 3600)
    start_hour = (spec.start_hour - offset / 3600.0) % 24.0
    with np.errstate(over="ignore", invalid="ignore"):
        rate = apply_bursts(
            diurnal_rate(traffic, seconds, start_hour=start_hour), traffic.bursts, offset=offset
        )
        requests = float(np.sum(rate))
    if requests <= MAX_REPLAYED_REQUESTS:  # False for inf and nan too
        return None
    return (
        f"{field}: peakRps {traffic.peak_rps:g}, troughRps {traffic.trough_rps:g} and the "
        f"bursts (trafficBurst events included) would draw {requests:,.3g} requests over the "
        f"run (at most {MAX_REPLAYED_REQUESTS:,}): lower peakRps or a burst's multiplier"
    )


def load_scenario(path: Path | str, *, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read and validate the scenario at ``path`` and the manifests it references.

    ``overrides`` replace top-level keys (camelCase) before validation (the CLI's
    ``--seed`` and ``--hours``); a ``durationHours`` override drops the events it no longer
    reaches. Raises ScenarioError naming the file and the field.
    """
    source = Path(path)
    try:
        raw = tomllib.loads(source.read_text())
    except FileNotFoundError as exc:
        raise ScenarioError([f"{source}: no such scenario file"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{source}: not valid TOML: {exc}"]) from exc
    except (OSError, UnicodeDecodeError) as exc:  # a folder, a binary file, no permission
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScenarioError([f"{source}: cannot be read: {reason}"]) from exc
    shortened = "durationHours" in (overrides or {})
    raw.update(overrides or {})
    try:
        spec = ScenarioSpec.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(_format(source, exc)) from exc
    if shortened:
        # A shorter run (--hours) simply does not reach the later events.
        end = spec.duration_hours * 3600
        spec = spec.model_copy(update={"events": [e for e in spec.events if e.at_seconds < end]})
    base = source.parent
    fleet = _load_manifests([base / p for p in spec.fleet], "FleetCluster", "fleet", source)
    if not fleet:
        raise ScenarioError([f"{source}: fleet: no FleetCluster manifest found in {spec.fleet}"])
    names = [c.metadata.name for c in fleet]
    if len(set(names)) != len(names):
        raise ScenarioError([f"{source}: fleet: FleetCluster names repeat: {sorted(names)}"])
    deployments: list[ModelDeployment] = []
    errors: list[str] = []
    for i, ref in enumerate(spec.deployments):
        field = f"deployments.{i}.manifest"
        found = _load_manifests([base / ref.manifest], "ModelDeployment", field, source)
        if ref.name is not None:
            found = [m for m in found if m.metadata.name == ref.name]
        if len(found) != 1:
            what = f"named {ref.name!r} " if ref.name else ""
            errors.append(
                f"{source}: {field}: expected one ModelDeployment {what}in {ref.manifest}, "
                f"found {len(found)}"
                + ("" if ref.name or not found else f" (set deployments.{i}.name)")
            )
            continue
        deployments.append(found[0])
    refs = list(spec.deployments)
    for i, ref in enumerate(refs):
        trace = ref.traffic.trace
        if trace is None:
            continue
        file = Path(os.path.normpath(base / trace.file))  # lexical: ../ as written
        if not file.is_file():
            errors.append(
                f"{source}: deployments.{i}.traffic.trace.file: no such file {trace.file!r} "
                f"(resolved to {file})"
            )
            continue
        if trace.shift_seconds >= spec.duration_hours * 3600 and not shortened:
            # As an event after the end (below): the user's mistake, not a quiet empty run.
            errors.append(
                f"{source}: deployments.{i}.traffic.trace.shift: {trace.shift!r} lands the "
                f"trace's first request at or after the end of the scenario "
                f"({spec.duration_hours:g} h): nothing of it would be replayed"
            )
            continue
        resolved = trace.model_copy(update={"path": str(file)})
        if problem := _trace_problem(resolved, spec, field=f"deployments.{i}.traffic.trace"):
            errors.append(f"{source}: {problem}")
            continue
        traffic = ref.traffic.model_copy(update={"trace": resolved})
        refs[i] = ref.model_copy(update={"traffic": traffic})
    spec = spec.model_copy(update={"deployments": refs})
    md_names = [m.metadata.name for m in deployments]
    if len(set(md_names)) != len(md_names):
        errors.append(f"{source}: deployments: ModelDeployment names repeat: {md_names}")
    for i, event in enumerate(spec.events):
        if isinstance(event, TrafficBurst):
            if event.deployment is not None and event.deployment not in md_names:
                errors.append(
                    f"{source}: events.{i}.deployment: no ModelDeployment {event.deployment!r} "
                    f"(have {', '.join(md_names)})"
                )
            continue
        if not any(event.matches(c) for c in fleet):
            where = {
                k: v
                for k, v in (
                    ("cluster", event.cluster),
                    ("region", event.region),
                    ("cloud", event.cloud),
                )
                if v
            }
            key = next(iter(where))
            errors.append(f"{source}: events.{i}.{key}: no FleetCluster matches {where}")
        gpu = getattr(event, "gpu", None)
        if gpu is not None and not any(
            o.gpu == gpu for c in fleet if event.matches(c) for o in c.spec.gpu_offerings or []
        ):
            errors.append(f"{source}: events.{i}.gpu: no matched cluster offers {gpu!r}")
        if event.at_seconds > spec.duration_hours * 3600 and not shortened:
            errors.append(f"{source}: events.{i}.at: after the end of the scenario")
    for c in fleet:
        for o in c.spec.gpu_offerings or []:
            if o.gpu not in spec.world.gpus:
                errors.append(
                    f"{source}: fleet: {c.metadata.name} offers {o.gpu!r}, which has no GPU "
                    f"profile; add world.gpus.{o.gpu}"
                )
    if not errors:
        errors.extend(f"{source}: {p}" for p in _weights_problems(spec, fleet, deployments))
    if errors:
        raise ScenarioError(errors)
    scenario = Scenario(
        spec=spec, source=source, fleet=tuple(fleet), deployments=tuple(deployments)
    )
    for i, md in enumerate(scenario.deployments):
        traffic = scenario.traffic_of(md)
        if traffic.trace is None and (
            problem := _curve_problem(traffic, spec, field=f"deployments.{i}.traffic")
        ):
            errors.append(f"{source}: {problem}")
    if errors:
        raise ScenarioError(errors)
    return scenario


def _weights_problems(
    spec: ScenarioSpec, fleet: list[FleetCluster], deployments: list[ModelDeployment]
) -> list[str]:
    """Where the world's model cannot be loaded: its weights (``paramsBillion`` x
    ``bytesPerParam``) above the usable memory (``kvCacheMemoryFraction`` of the GPUs of one
    replica) of a GPU type a deployment may be placed on. The serving model would otherwise
    run such a replica with no KV cache at one request at a time, and the report would
    quietly measure nonsense."""
    world = spec.world
    weights = world.model.params_billion * 1e9 * world.model.bytes_per_param
    out: list[str] = []
    for md in deployments:
        need = md.spec.resources.gpu
        gpus = sorted(
            {
                o.gpu
                for c in fleet
                for o in c.spec.gpu_offerings or []
                if (not need.types or o.gpu in need.types)
                and (need.memory_gi_b is None or o.gpu_memory_gi_b >= need.memory_gi_b)
                and o.gpus_per_node >= need.count
                and o.gpu in world.gpus
            }
        )
        for gpu in gpus:
            usable = (
                world.gpus[gpu].memory_gib
                * 2**30
                * need.count
                * world.engine.kv_cache_memory_fraction
            )
            if weights > usable:
                out.append(
                    f"world.model.paramsBillion: {world.model.params_billion:g} B parameters x "
                    f"{world.model.bytes_per_param:g} bytes = {weights / 2**30:,.0f} GiB of "
                    f"weights do not fit in {usable / 2**30:,.0f} GiB usable on "
                    f"{need.count} x {gpu} (deployment {md.metadata.name}: "
                    "resources.gpu.count, world.engine.kvCacheMemoryFraction)"
                )
    return out
