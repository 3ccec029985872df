"""Every numeric option of ``gateway``, ``run``, ``profile`` and ``simulate`` has real
bounds (``modelfleet.cli_bounds``), refused with exit status 2 and the flag named before the
command reads a file, contacts the hub, sends load or simulates; the chart's
values.schema.json admits exactly what the CLI admits for the values it sets.

Each refusal below was accepted before: ``gateway --scrape-interval 1e-9`` scraped every
engine back to back, ``run --interval 1e300`` overflowed the schedule's datetime on every
pass and ``--launch-timeout 1e-9`` made every grow a stockout, ``--metrics-port 70000``
reached the socket, ``profile --sigma 1000`` overflowed the length sampler mid-run,
``simulate --hours 1e-9`` reported 100 % of no minute.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from modelfleet.cli import app, run, simulate
from modelfleet.cli_bounds import GATEWAY, RUN, SIMULATE, TICK_SECONDS, Bound
from modelfleet.cli_bounds import PROFILE as PROFILE_BOUNDS
from modelfleet.cli_profile import profile_command
from modelfleet.gateway.command import gateway

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
PROFILE = ["profile", "http://127.0.0.1:9/v1", "--model", "m", "--gpu", "H100"]
# The discard port: nothing listens, so a command past the checks says it cannot connect.

REFUSED = [
    (["gateway", "--scrape-interval", "1e-9"], "--scrape-interval"),
    (["gateway", "--scrape-interval", "0.5"], "--scrape-interval"),
    (["gateway", "--scrape-interval", "3601"], "--scrape-interval"),
    (["gateway", "--rate-limit", "1e-300"], "--rate-limit"),
    (["gateway", "--port", "9090"], "--port and --management-port are both 9090"),
    (["run", "--interval", "1e-9"], "--interval"),
    (["run", "--interval", "1"], "--interval"),  # the timers tick every 2 s
    (["run", "--interval", "1e300"], "--interval"),
    (["run", "--probe-interval", "1e-9"], "--probe-interval"),
    (["run", "--probe-interval", "1e300"], "--probe-interval"),
    (["run", "--launch-timeout", "1e-9"], "--launch-timeout"),
    (["run", "--launch-timeout", "59"], "--launch-timeout"),
    (["run", "--launch-timeout", "1e300"], "--launch-timeout"),
    (["run", "--liveness-port", "70000"], "--liveness-port"),
    (["run", "--metrics-port", "-1"], "--metrics-port"),
    (["run", "--liveness-port", "9100"], "--liveness-port and --metrics-port are both 9100"),
    ([*PROFILE, "--gpu-count", "17"], "--gpu-count"),
    ([*PROFILE, "--sigma", "1000"], "--sigma"),
    ([*PROFILE, "--sigma", "-1"], "--sigma"),
    ([*PROFILE, "--ttft-p95-ms", "0"], "--ttft-p95-ms"),
    ([*PROFILE, "--tpot-p95-ms", "-5"], "--tpot-p95-ms"),
    ([*PROFILE, "--prompt-tokens", "0"], "--prompt-tokens"),
    ([*PROFILE, "--output-tokens", "-3"], "--output-tokens"),
    ([*PROFILE, "--prompt-tokens", "1e12"], "--prompt-tokens"),
    ([*PROFILE, "--step-seconds", "1e-9"], "--step-seconds"),
    ([*PROFILE, "--max-rate", "-1"], "--max-rate"),
    ([*PROFILE, "--growth", "1000"], "--growth"),
    ([*PROFILE, "--refine", "-1"], "--refine"),
    ([*PROFILE, "--refine", "1000000"], "--refine"),
    ([*PROFILE, "--start-rate", "1e-9"], "--start-rate 1e-09 for --step-seconds 30 sends"),
    ([*PROFILE, "--max-rate", "0.5"], "--max-rate 0.5 is below --start-rate 1"),
    (
        [*PROFILE, "--growth", "1.0000001"],
        "--start-rate 1 x --growth 1.0000001 up to --max-rate 256 takes 55451779",
    ),
    (["simulate", "--hours", "1e-9", "--policy", "static-peak"], "--hours"),
    (["simulate", "--hours", "0.01", "--policy", "static-peak"], "--hours"),
]


NAMES = [
    (["run", "--namespace", "Team_A"], "--namespace 'Team_A': not a namespace name"),
    (["gateway", "-n", "ok", "-n", "x" * 64], "--namespace 'xxx"),
    (["gateway", "--activator-namespace", "Ops"], "--activator-namespace 'Ops'"),
    (["gateway", "--api-keys-secret", "ns/a/b"], "--api-keys-secret 'a/b': not an object name"),
    (["gateway", "--api-keys-secret", "NS/keys"], "--api-keys-secret 'NS'"),
    (["gateway", "--region", "US East"], "--region 'US East': not a region name"),
]
"""Names Kubernetes (and the chart's schema) would refuse, or that could never match."""
REFUSED += NAMES


@pytest.mark.parametrize(
    ("argv", "named"), REFUSED, ids=[" ".join([a[0], *a[-2:]]) for a, _ in REFUSED]
)
def test_a_value_outside_its_bound_is_refused_before_anything_starts(
    argv: list[str], named: str
) -> None:
    result = runner.invoke(app, argv)
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert f"error: {named}" in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    # Nothing was started: no endpoints file read, no hub, no load, no simulation.
    for later in ("endpoints", "kubeconfig", "cannot connect", "SLO"):
        assert later not in output, output


def test_the_edges_of_each_bound_pass(tmp_path: Path) -> None:
    """The bounds' own ends are valid: each command gets past the check (and stops at what
    follows it, there being no endpoints file, hub or endpoint here)."""
    missing = str(tmp_path / "no-such-endpoints.yaml")
    gateway = ["gateway", "--endpoints-file", missing, "--rate-limit", "0.001"]
    gateway += ["-n", "team-a", "--region", "us-east-1", "--activator-namespace", "modelfleet"]
    gateway += ["--api-keys-secret", "team-a/gateway.api-keys"]
    for value in ("1", "3600", "0"):
        result = runner.invoke(app, [*gateway, "--scrape-interval", value])
        assert "must be" not in result.output and "name (" not in result.output, result.output
        # past the checks: the endpoints file, or the hub the API keys Secret is read from
        assert "cannot read" in result.output or "cannot reach the hub" in result.output
    lowest = ["--interval", "2", "--probe-interval", "2", "--launch-timeout", "60"]
    highest = ["--interval", "86400", "--probe-interval", "86400", "--launch-timeout", "86400"]
    for edges in (lowest, highest):
        ports = ["--liveness-port", "0", "--metrics-port", "0", "-n", "team-a", "-n", "b2"]
        result = runner.invoke(app, ["run", *edges, *ports])
        assert result.exit_code == 1, result.output  # got to the hub check
        assert "must be" not in result.output, result.output
    edges = ["--sigma", "3", "--refine", "20", "--step-seconds", "1", "--growth", "100"]
    result = runner.invoke(app, [*PROFILE, *edges])
    assert "cannot connect" in result.output, result.output
    result = runner.invoke(
        app, [*PROFILE, "--start-rate", "0.001", "--step-seconds", "1000", "--max-rate", "0.001"]
    )
    assert "cannot connect" in result.output, result.output
    result = runner.invoke(app, ["simulate", "--hours", str(1 / 60), "--policy", "static-peak"])
    assert result.exit_code == 0, result.output


def _numeric_parameters(command: Callable[..., object]) -> set[str]:
    """The parameters of a command function typed int or float (None allowed; not bool)."""
    names = set()
    for name, hint in typing.get_type_hints(command).items():
        kinds = set(typing.get_args(hint)) - {type(None)} or {hint}
        if kinds <= {int, float}:
            names.add(name)
    return names


@pytest.mark.parametrize(
    ("command", "bounds"),
    [(gateway, GATEWAY), (run, RUN), (profile_command, PROFILE_BOUNDS), (simulate, SIMULATE)],
    ids=["gateway", "run", "profile", "simulate"],
)
def test_every_numeric_option_has_a_bound(
    command: Callable[..., object], bounds: Mapping[str, Bound]
) -> None:
    """A numeric option added later without a bound fails here, not in a user's hands."""
    numeric = _numeric_parameters(command)
    assert numeric == set(bounds), f"numeric options {sorted(numeric)}, bounds {sorted(bounds)}"


def test_the_run_intervals_start_at_the_handlers_tick() -> None:
    from modelfleet.handlers import TICK_SECONDS as HANDLERS_TICK

    assert TICK_SECONDS == HANDLERS_TICK
    assert RUN["interval"].low == RUN["probe_interval"].low == HANDLERS_TICK


CHART = [
    # (values.schema.json path, the bound of the flag the chart passes it to)
    (("operator", "launchTimeoutSeconds"), RUN["launch_timeout"]),
    (("operator", "maxConcurrentReconciles"), RUN["max_concurrent_reconciles"]),
    (("gateway", "rateLimitPerSecond"), GATEWAY["rate_limit"]),
    (("gateway", "rateLimitBurst"), GATEWAY["rate_burst"]),
    (("gateway", "holdTimeoutSeconds"), GATEWAY["hold_timeout"]),
    (("gateway", "maxRequestBytes"), GATEWAY["max_request_bytes"]),
]


def _probes(bound: Bound, integer: bool) -> list[float]:
    ends = [v for v in (bound.low, bound.high, bound.off) if v is not None and math.isfinite(v)]
    step = 1.0 if integer else 1e-6
    values = {0.0, -1.0, 1e12, *ends, *(e - step for e in ends), *(e + step for e in ends)}
    return sorted(values)


@pytest.mark.parametrize(("path", "bound"), CHART, ids=lambda v: str(v))
def test_the_chart_schema_admits_what_the_flag_admits(path: tuple[str, str], bound: Bound) -> None:
    schema: dict[str, Any] = json.loads((ROOT / "charts/modelfleet/values.schema.json").read_text())
    node = schema
    for key in path:
        node = node["properties"][key]
    integer = node["type"] == "integer"
    for value in _probes(bound, integer):
        typed: float = int(value) if integer else value
        chart = jsonschema.Draft7Validator(node).is_valid(typed)
        assert chart == bound.admits(typed), f"{'.'.join(path)}={typed}: chart says {chart}"


def test_the_profile_gpu_count_bound_is_the_written_profile_s() -> None:
    from modelfleet.api.profiles import CapacityProfileSpec

    metadata = CapacityProfileSpec.model_fields["gpu_count"].metadata
    ge = next(m.ge for m in metadata if hasattr(m, "ge"))
    le = next(m.le for m in metadata if hasattr(m, "le"))
    assert (PROFILE_BOUNDS["gpu_count"].low, PROFILE_BOUNDS["gpu_count"].high) == (ge, le)


def test_the_profile_token_bound_is_the_mix_s() -> None:
    from modelfleet.profile.mix import MAX_TOKENS
    from modelfleet.sim.traffic import MAX_TRACE_TOKENS

    assert PROFILE_BOUNDS["prompt_tokens"].high == PROFILE_BOUNDS["output_tokens"].high
    assert PROFILE_BOUNDS["prompt_tokens"].high == MAX_TOKENS == MAX_TRACE_TOKENS


def test_a_trace_row_beyond_any_context_window_names_the_line(tmp_path: Path) -> None:
    """It passed as a length and every warm-up request failed (OverflowError), blamed on the
    endpoint."""
    trace = tmp_path / "t.csv"
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:01,100,5\n"
        "2023-11-16 18:00:02,99999999999999999999999,5\n"
    )
    result = runner.invoke(app, [*PROFILE, "--trace", str(trace)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert f"--trace: {trace}:3: a token count above 10,000,000" in output, output
    assert "warm-up" not in output, output
