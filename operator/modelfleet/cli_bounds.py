"""The bounds of every numeric command-line option, and the one check that refuses the rest.

Click reads ``nan``, ``inf``, ``-5`` and ``1e-9`` as valid numbers, and each command used to
check its own options its own way, some not at all: ``modelfleet gateway --scrape-interval
1e-9`` scraped every engine's ``/metrics`` back to back, ``modelfleet run --interval 1e-9``
took an interval its 2 s timers cannot keep and ``--interval 1e300`` overflowed the
schedule's datetime on every pass, ``--metrics-port 70000`` reached the socket,
``modelfleet profile --sigma 1000`` overflowed the length sampler and ``--step-seconds 1e-9``
held each rate for no request at all, ``modelfleet simulate --hours 1e-9`` reported 100 %
of no minute. Each option's bound is stated once here (the help, docs/gateway.md,
docs/operations.md and the chart's values.schema.json say the same), and
``refuse_bad_numbers`` turns the first value outside its bound into one line naming the
flag and the bound, exit status 2, before the command reads a file, binds a port or starts
a load.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import typer
from rich.console import Console
from rich.markup import escape

from modelfleet.api.common import DNS_LABEL_PATTERN, REGION_PATTERN


@dataclass(frozen=True)
class Bound:
    """The values a numeric option takes: a finite number from ``low`` to ``high`` (both
    included, ``low`` excluded when ``low_open``), or exactly ``off`` (0 for "none" or
    "off"). ``what`` says it in words, as the refusal prints it."""

    low: float
    high: float
    what: str
    low_open: bool = False
    off: float | None = None

    def admits(self, value: float) -> bool:
        """Whether ``value`` is valid: finite (never NaN or infinite) and within the bound."""
        if not math.isfinite(value):
            return False
        if self.off is not None and value == self.off:
            return True
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high


TICK_SECONDS = 2.0
"""The operator's handler timers tick this often (``modelfleet.handlers.TICK_SECONDS``,
kept equal by a test; not imported, the CLI must load without kopf): a shorter interval
cannot be kept."""

DAY = 86_400.0
PORT = Bound(0, 65535, "a port from 0 to 65535")
PORT_OR_OFF = Bound(1, 65535, "a port from 1 to 65535, or 0 (none)", off=0)

GATEWAY: Mapping[str, Bound] = {
    # 1e-300 req/s made the Retry-After of a refused request infinite: math.ceil raised and
    # the request got a 500. Below one request per 1000 s a limit is a ban.
    "rate_limit": Bound(0.001, math.inf, "requests/s, 0.001 or more, or 0 (unlimited)", off=0),
    "rate_burst": Bound(1, math.inf, "a burst of 1 request or more"),
    "max_request_bytes": Bound(1024, math.inf, "a body size of 1024 bytes or more"),
    "hold_timeout": Bound(0, math.inf, "seconds, 0 or more"),
    "max_attempts": Bound(1, math.inf, "1 endpoint or more"),
    "first_byte_timeout": Bound(1e-3, math.inf, "seconds, 0.001 or more"),
    # Each scrape may take up to 1 s (its timeout's floor); more often than once a second
    # the loop scraped every engine back to back. An hour-old load signal steers by a fleet
    # that has moved on: use 0 to turn scraping off.
    "scrape_interval": Bound(1, 3600, "seconds from 1 to 3600, or 0 (off)", off=0),
    "port": PORT,
    "management_port": PORT_OR_OFF,
}
"""``modelfleet gateway`` (the chart's ``gateway.*`` values say the same). A value outside
them used to start a gateway that failed every request: ``--max-attempts 0`` answered 503
without trying an endpoint, ``--first-byte-timeout -1`` (or NaN) 504 at once,
``--max-request-bytes 0`` 413 to every body; ``--rate-limit -5`` turned the limit off."""

RUN: Mapping[str, Bound] = {
    # The handlers tick every 2 s: a shorter interval is not kept. ``now + interval`` of
    # 1e300 s overflowed the schedule's datetime (OverflowError on every pass); a day is
    # the longest that still autoscales.
    "interval": Bound(TICK_SECONDS, DAY, "seconds from 2 to 86400"),
    "probe_interval": Bound(TICK_SECONDS, DAY, "seconds from 2 to 86400"),
    # No cloud brings a GPU node to Ready within a minute (boot, driver, kubelet
    # registration): below it every grow was a stockout. Karpenter's registration timeout
    # is 15 min; a pool not Ready in a day is a stockout by any measure.
    "launch_timeout": Bound(60, DAY, "seconds from 60 to 86400"),
    "max_concurrent_reconciles": Bound(1, math.inf, "1 or more"),
    "liveness_port": PORT_OR_OFF,
    "metrics_port": PORT_OR_OFF,
}
"""``modelfleet run`` (the chart's ``operator.*`` values say the same)."""

PROFILE: Mapping[str, Bound] = {
    # The written profile's gpuCount (api.profiles.CapacityProfileSpec, which the command
    # also checks first with the rest of what it will write).
    "gpu_count": Bound(1, 16, "GPUs from 1 to 16"),
    "ttft_p95_ms": Bound(0, math.inf, "milliseconds above 0", low_open=True),
    "tpot_p95_ms": Bound(0, math.inf, "milliseconds above 0", low_open=True),
    # Beyond any model's context window (profile.mix.MAX_TOKENS, kept equal by a test):
    # 1e12 built a prompt of a trillion words.
    "prompt_tokens": Bound(1, 10_000_000, "from 1 to 10000000 tokens"),
    "output_tokens": Bound(1, 10_000_000, "from 1 to 10000000 tokens"),
    # Lengths are median * exp(N(0, sigma)): sigma 3 already puts the 95th percentile at
    # 140x the median; sigma 1000 overflowed math.exp mid-run.
    "sigma": Bound(0, 3, "from 0 (fixed lengths) to 3"),
    "start_rate": Bound(0, math.inf, "requests/s above 0", low_open=True),
    "growth": Bound(1, 100, "a factor above 1, at most 100", low_open=True),
    "max_rate": Bound(0, math.inf, "requests/s above 0", low_open=True),
    "step_seconds": Bound(1, math.inf, "seconds, 1 or more"),
    # The bisection stops at a 5 % gap anyway (profile.search.next_rate).
    "refine": Bound(0, 20, "from 0 to 20"),
}
"""``modelfleet profile``; the sweep's shape is checked after (``sweep_problem``)."""

PROFILE_MAX_STEPS = 64
"""The most rate steps a sweep's growth phase may take (``--start-rate`` x ``--growth``
up to ``--max-rate``): the defaults take 9; ``--growth 1.0000001`` took 55 million."""

SIMULATE: Mapping[str, Bound] = {
    # SLO attainment is counted in minutes: a shorter run reported 100 % of no minute.
    "hours": Bound(1 / 60, math.inf, "1/60 (one minute) or more"),
    "jobs": Bound(1, math.inf, "1 or more"),
    "seed": Bound(0, math.inf, "0 or more"),
}
"""``modelfleet simulate``."""


def bad_number(bounds: Mapping[str, Bound], **values: float | None) -> str | None:
    """The first of ``values`` (option name, as the Python parameter -> value; None: not
    given) outside its bound in ``bounds``, as one line naming the flag; None when all are
    valid. Raises KeyError for an option ``bounds`` does not know."""
    for name, value in values.items():
        if value is None:
            continue
        bound = bounds[name]
        if not bound.admits(value):
            return f"--{name.replace('_', '-')} must be {bound.what}, got {value}"
    return None


def refuse_bad_numbers(
    err: Console, bounds: Mapping[str, Bound], given: Mapping[str, object]
) -> None:
    """Check every option of ``bounds`` as the command was given it: ``given`` holds the
    command's parameters by name (its ``locals()`` before it assigns any other name), so
    no option of the table can be left out of the check. ``bad_number``, printed as an
    error on ``err``: raises ``typer.Exit(2)`` when one is outside its bound; KeyError when
    ``given`` lacks an option of ``bounds``, TypeError when one is not a number."""
    values: dict[str, float | None] = {}
    for name in bounds:
        value = given[name]
        if value is not None and not isinstance(value, int | float):
            raise TypeError(f"{name} is {type(value).__name__}, not a number")
        values[name] = value
    problem = bad_number(bounds, **values)
    if problem is not None:
        err.print(f"[red]error:[/red] {escape(problem)}", highlight=False)
        raise typer.Exit(2)


def refuse_same_port(err: Console, first: tuple[str, int], second: tuple[str, int]) -> None:
    """Two listening ports of one process (flag, port) must differ unless 0 (none, or a port
    the system picks): the second bind failed after start-up. Raises ``typer.Exit(2)``."""
    (flag_a, a), (flag_b, b) = first, second
    if a and a == b:
        err.print(f"[red]error:[/red] {flag_a} and {flag_b} are both {a}: give each its own port")
        raise typer.Exit(2)


def sweep_problem(
    *, start_rate: float, growth: float, max_rate: float, step_seconds: float
) -> str | None:
    """What is wrong with a profile sweep whose options are each within ``PROFILE``: a
    first step that sends no request on average (``start_rate * step_seconds < 1``), a
    ``max_rate`` below ``start_rate``, or more than ``PROFILE_MAX_STEPS`` growth steps;
    None when it can run."""
    if start_rate * step_seconds < 1:
        return (
            f"--start-rate {start_rate:g} for --step-seconds {step_seconds:g} sends "
            f"{start_rate * step_seconds:.3g} requests in the first step; at least 1 is needed"
        )
    if max_rate < start_rate:
        return f"--max-rate {max_rate:g} is below --start-rate {start_rate:g}"
    steps = 1 + math.ceil(math.log(max_rate / start_rate) / math.log(growth) - 1e-9)
    if steps > PROFILE_MAX_STEPS:
        return (
            f"--start-rate {start_rate:g} x --growth {growth} up to --max-rate {max_rate:g} "
            f"takes {steps} steps; at most {PROFILE_MAX_STEPS}"
        )
    return None


_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
NameKind = Literal["namespace", "object", "region"]
_NAMES: Mapping[NameKind, tuple[str, int, str]] = {
    "namespace": (DNS_LABEL_PATTERN, 63, "lowercase letters, digits and '-', at most 63"),
    "object": (_SUBDOMAIN, 253, "lowercase letters, digits, '-' and '.', at most 253"),
    "region": (REGION_PATTERN, 63, "lowercase letters, digits and '-', e.g. us-east-1"),
}
"""Kubernetes names (a namespace is a DNS-1123 label, a Secret's name a DNS-1123 subdomain;
the chart's ``dnsLabel`` is the same pattern) and the API's region names. ``run --namespace
Team_A`` went on to the hub and watched a namespace that cannot exist; ``gateway --region
"US East"`` never matched an endpoint's region, so the preference for it was off without
a word."""


def refuse_bad_names(err: Console, flag: str, kind: NameKind, values: Iterable[str | None]) -> None:
    """Refuse the first of ``values`` (None: not given) that is not a ``kind`` name, as one
    error line naming ``flag`` and the rule; raises ``typer.Exit(2)``."""
    pattern, longest, rule = _NAMES[kind]
    for value in values:
        if value is not None and not (len(value) <= longest and re.match(pattern, value)):
            what = "not an object name" if kind == "object" else f"not a {kind} name"
            err.print(
                f"[red]error:[/red] {flag} {escape(repr(value))}: {what} ({escape(rule)})",
                highlight=False,
            )
            raise typer.Exit(2)
