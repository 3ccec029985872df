"""The ``modelfleet gateway`` command: flags to ``GatewayOptions``, then ``run_gateway``.

Kept apart from ``modelfleet.cli`` (which only registers it) so the CLI module stays small;
aiohttp and kubernetes_asyncio are imported only when the command runs, so the light install
can still show ``--help``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from modelfleet.cli_bounds import GATEWAY, refuse_bad_names, refuse_bad_numbers, refuse_same_port
from modelfleet.extras import missing_extra

err = Console(stderr=True, soft_wrap=True)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        return json.dumps(entry)


def configure_logging(*, json_format: bool, verbose: bool) -> None:
    """Log to stderr, as JSON lines or text (the operator's formats, without kopf)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        _JsonFormatter()
        if json_format
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


def gateway(
    endpoints_file: Annotated[
        Path | None,
        typer.Option(
            "--endpoints-file",
            metavar="<file>",
            help="Static endpoints file (YAML, see docs/gateway.md) instead of the hub.",
        ),
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig",
            metavar="<file>",
            help="Hub kubeconfig (default: in-cluster, then ~/.kube).",
        ),
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            metavar="<namespace>",
            help="Serve this namespace (repeatable; default all).",
        ),
    ] = None,
    route_status: Annotated[
        bool,
        typer.Option(
            "--route-status/--no-route-status",
            help="Write ModelRoute status conditions and Events (name clashes, missing "
            "deployments), and name-clash Events on ModelDeployments, on the hub.",
        ),
    ] = True,
    activator_namespace: Annotated[
        str | None,
        typer.Option(
            "--activator-namespace",
            metavar="<namespace>",
            envvar="MODELFLEET_POD_NAMESPACE",
            help="Namespace of the demand Leases that wake the operator for requests held "
            "at zero replicas (default: the gateway pod's own namespace; none outside a "
            "pod: no wake-ups).",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(metavar="<address>", help="Address to listen on.")
    ] = "0.0.0.0",
    port: Annotated[int, typer.Option(metavar="<port>", help="Client-facing port.")] = 8080,
    management_port: Annotated[
        int, typer.Option(metavar="<port>", help="Port of /metrics, /healthz, /readyz (0: none).")
    ] = 9090,
    region: Annotated[
        str | None,
        typer.Option(
            metavar="<region>", help="This gateway's region (preferred while it has headroom)."
        ),
    ] = None,
    api_keys_file: Annotated[
        Path | None,
        typer.Option(
            metavar="<path>", help="API keys: YAML mapping id -> key, or a folder (mounted Secret)."
        ),
    ] = None,
    api_keys_secret: Annotated[
        str | None,
        typer.Option(metavar="<namespace/name>", help="API keys from hub Secret NAMESPACE/NAME."),
    ] = None,
    rate_limit: Annotated[
        float,
        typer.Option(
            metavar="<per-second>",
            help="Requests/s per API key, 0.001 or more (0: unlimited).",
        ),
    ] = 0.0,
    rate_burst: Annotated[int, typer.Option(metavar="<n>", help="Burst per API key.")] = 20,
    max_request_bytes: Annotated[
        int, typer.Option(metavar="<bytes>", help="Largest request body.")
    ] = 4 << 20,
    hold_timeout: Annotated[
        float,
        typer.Option(
            metavar="<seconds>", help="Seconds to hold a request while no endpoint is ready."
        ),
    ] = 60.0,
    max_attempts: Annotated[
        int, typer.Option(metavar="<n>", help="Endpoints tried per request.")
    ] = 3,
    first_byte_timeout: Annotated[
        float, typer.Option(metavar="<seconds>", help="Seconds to the first byte of an answer.")
    ] = 120.0,
    scrape_interval: Annotated[
        float,
        typer.Option(
            metavar="<seconds>",
            help="Seconds between engine /metrics scrapes, 1 to 3600 (0: off).",
        ),
    ] = 5.0,
    tls_cert: Annotated[
        Path | None, typer.Option(metavar="<file>", help="TLS certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(metavar="<file>", help="TLS private key (PEM).")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request (no keys).")] = False,
    log_format: Annotated[str, typer.Option(metavar="<json|text>", help="json or text.")] = "text",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs.")] = False,
) -> None:
    """Run the global OpenAI-compatible gateway in front of every ModelDeployment."""
    import asyncio

    secret: tuple[str, str] | None = None
    if api_keys_secret is not None:
        ns, _, name = api_keys_secret.partition("/")
        if not ns or not name:
            err.print("[red]error:[/red] --api-keys-secret must be NAMESPACE/NAME")
            raise typer.Exit(2)
        refuse_bad_names(err, "--api-keys-secret", "namespace", [ns])
        refuse_bad_names(err, "--api-keys-secret", "object", [name])
        secret = (ns, name)
    refuse_bad_names(err, "--namespace", "namespace", namespace or ())
    refuse_bad_names(err, "--activator-namespace", "namespace", [activator_namespace])
    refuse_bad_names(err, "--region", "region", [region])
    if log_format not in ("json", "text"):
        err.print("[red]error:[/red] --log-format must be json or text")
        raise typer.Exit(2)
    if tls_key is not None and tls_cert is None:
        err.print("[red]error:[/red] --tls-key needs --tls-cert")
        raise typer.Exit(2)
    # Before any file is read or port bound (modelfleet.cli_bounds).
    refuse_bad_numbers(err, GATEWAY, locals())
    refuse_same_port(err, ("--port", port), ("--management-port", management_port))

    try:  # aiohttp, kubernetes_asyncio and prometheus_client: the operator extra
        from modelfleet.gateway.auth import KeySourceError
        from modelfleet.gateway.catalog import StaticFileError
        from modelfleet.gateway.run import GatewayOptions, HubConfigError, run_gateway
    except ImportError as exc:
        hint = missing_extra("modelfleet gateway", "operator", exc.name or str(exc))
        err.print(f"[red]error:[/red] {escape(hint)}", highlight=False)  # [operator]: no markup
        raise typer.Exit(2) from exc
    from modelfleet.gateway.settings import GatewaySettings

    level = os.environ.get("MODELFLEET_LOG_LEVEL", "").lower()
    configure_logging(json_format=log_format == "json", verbose=verbose or level == "debug")
    settings = GatewaySettings(
        region=region,
        rate_limit_per_second=rate_limit,
        rate_limit_burst=rate_burst,
        max_request_bytes=max_request_bytes,
        hold_timeout=hold_timeout,
        max_attempts=max_attempts,
        first_byte_timeout=first_byte_timeout,
        scrape_interval=scrape_interval,
    )
    options = GatewayOptions(
        host=host,
        port=port,
        management_port=management_port or None,
        endpoints_file=endpoints_file,
        kubeconfig=kubeconfig,
        namespaces=tuple(namespace or ()),
        api_keys_file=api_keys_file,
        api_keys_secret=secret,
        tls_cert=tls_cert,
        tls_key=tls_key,
        access_log=access_log,
        route_status=route_status,
        activator_namespace=activator_namespace,
        settings=settings,
    )
    try:
        asyncio.run(run_gateway(options))
    except (StaticFileError, KeySourceError, HubConfigError, OSError) as exc:
        # A --host the resolver does not know said only "[Errno -2] Name or service not known".
        what = f"--host {host}: {exc.strerror}" if isinstance(exc, socket.gaierror) else str(exc)
        err.print(f"[red]error:[/red] {escape(what)}", highlight=False)
        raise typer.Exit(2) from exc
