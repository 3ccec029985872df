"""``modelfleet run``: start the operator (kopf under the hood) with its metrics endpoint.

Logging, the liveness endpoint, the namespaces watched and the intervals are options; the
handlers themselves live in ``modelfleet.handlers`` and are registered on import.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from modelfleet.runtime import OperatorContext, RunSettings, build_context, describe_demand_watch

log = logging.getLogger(__name__)

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@")


class RedactUrlCredentials(logging.Filter):
    """Replaces ``user:password@`` in any URL of a record's message with ``***@``.

    kopf logs each object it processes whole at debug ("Creation is in progress: {body}",
    each update's diff), and a FleetCluster's ``spec.prometheus.url`` may carry basic-auth
    credentials (the only way the operator takes them): without this, ``modelfleet run -v``
    wrote the password to the log. The record is rewritten in place (message formatted,
    args dropped) so every handler sees the redacted text; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _URL_USERINFO.sub(r"\g<scheme>***@", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACTION = RedactUrlCredentials()


def redact_logs() -> None:
    """Install the redaction where object bodies are logged (kopf's ``kopf.objects``
    logger, whatever handlers are attached) and on the root logger's handlers (every other
    record that reaches them). Idempotent."""
    objects = logging.getLogger("kopf.objects")
    if _REDACTION not in objects.filters:
        objects.addFilter(_REDACTION)
    for handler in logging.getLogger().handlers:
        if _REDACTION not in handler.filters:
            handler.addFilter(_REDACTION)


@dataclass(frozen=True)
class RunOptions:
    """What ``modelfleet run`` was asked to do."""

    namespaces: Sequence[str] = ()
    """Namespaces whose ModelDeployments are served; empty means all (cluster-wide)."""
    liveness_port: int | None = 8081
    """Port of the /healthz liveness endpoint (None: no endpoint)."""
    metrics_port: int | None = 9100
    """Port of the Prometheus /metrics endpoint (None: not served)."""
    settings: RunSettings = field(default_factory=RunSettings)


async def run_operator(
    options: RunOptions,
    *,
    context: OperatorContext | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or the process is signalled). ``context`` may be
    pre-built (tests, embedding); otherwise it is built from the environment."""
    import kopf

    import modelfleet.handlers  # noqa: F401  (registers the handlers)
    from modelfleet.metrics.operator_metrics import start_metrics_server

    redact_logs()
    owned = context is None
    ctx = context or await build_context(settings=options.settings)
    demand = describe_demand_watch(ctx, options.namespaces)
    if ctx.demand_leases is None:
        log.warning(demand)
    else:
        log.info(demand)
    server = (
        start_metrics_server(ctx.metrics, options.metrics_port) if options.metrics_port else None
    )
    liveness = f"http://0.0.0.0:{options.liveness_port}/healthz" if options.liveness_port else None
    try:
        await kopf.operator(
            clusterwide=not options.namespaces,
            namespaces=list(options.namespaces),
            liveness_endpoint=liveness,
            standalone=True,
            memo=ctx,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        if server is not None:
            server.stop()
        if owned:
            await ctx.close()


def configure_logging(*, json_format: bool, verbose: bool) -> None:
    """kopf's logging setup (JSON or text) applied to the whole process."""
    import kopf

    kopf.configure(
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if json_format else kopf.LogFormat.FULL,
    )
    redact_logs()
