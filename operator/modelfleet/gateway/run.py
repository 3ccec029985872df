"""Wiring of ``modelfleet gateway``: the sources, the key refresher, the client-facing and
management HTTP servers, TLS and shutdown.

``serve_gateway`` is an async context manager used by the command and by the tests alike,
so the tests exercise exactly what runs in production (the tests bind port 0 and read the
URLs back).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from modelfleet.gateway.activator import DemandWaker
from modelfleet.gateway.app import Gateway, api_app, management_app
from modelfleet.gateway.auth import ApiKeys
from modelfleet.gateway.discovery import HubSource, KeyRefresher, StaticFileSource
from modelfleet.gateway.route_status import RouteStatusWriter
from modelfleet.gateway.settings import GatewaySettings
from modelfleet.labels import RELEASE_ENV

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class GatewayOptions:
    """How to run a gateway (the command-line flags)."""

    host: str = "0.0.0.0"
    port: int = 8080
    """Client-facing port (0: any free port)."""
    management_port: int | None = 9090
    """Port of /metrics, /healthz, /readyz (None: not served; 0: any free port)."""
    endpoints_file: Path | None = None
    """Static endpoints file; None means watch the hub."""
    kubeconfig: Path | None = None
    """Kubeconfig of the hub; None means in-cluster, then $KUBECONFIG/~/.kube/config."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to serve from the hub (empty: all)."""
    api_keys_file: Path | None = None
    """YAML mapping of key id to key, or a folder of files (a mounted Secret)."""
    api_keys_secret: tuple[str, str] | None = None
    """(namespace, name) of a hub Secret whose entries are API keys."""
    keys_refresh_seconds: float = 30.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    access_log: bool = False
    route_status: bool = True
    """Write ModelRoute status conditions and Events (hub only; see ``route_status``)."""
    activator_namespace: str | None = None
    """Namespace of the demand Leases (``activator``); None: the pod's own namespace (the
    service account's), and outside a pod no wake-ups (the Prometheus signal remains)."""
    settings: GatewaySettings = field(default_factory=GatewaySettings)


@dataclass
class RunningGateway:
    """A started gateway: its URLs and the live ``Gateway``."""

    gateway: Gateway
    url: str
    """Client-facing base URL, e.g. http://127.0.0.1:8080 (https with TLS)."""
    management_url: str | None


class HubConfigError(ValueError):
    """No usable hub configuration (the message says what to pass instead)."""


async def hub_api_client(kubeconfig: Path | None) -> Any:
    """A ``kubernetes_asyncio`` ApiClient for the hub (kubeconfig file, else in-cluster,
    else the default kubeconfig). Raises HubConfigError."""
    from kubernetes_asyncio import client, config

    configuration = type.__call__(client.Configuration)
    try:
        if kubeconfig is not None:
            await config.load_kube_config(
                config_file=str(kubeconfig), client_configuration=configuration
            )
        else:
            try:
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            except config.ConfigException:
                await config.load_kube_config(client_configuration=configuration)
    except Exception as exc:  # ConfigException, missing files, malformed kubeconfigs
        where = kubeconfig or "in-cluster or ~/.kube/config"
        raise HubConfigError(
            f"cannot reach the hub with {where} ({type(exc).__name__}); pass --kubeconfig, "
            "or --endpoints-file for a gateway without a hub"
        ) from None
    return client.ApiClient(configuration)


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _pod_namespace() -> str | None:
    """The namespace of the pod this runs in (its service account's), None outside a pod."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _ssl_context(options: GatewayOptions) -> ssl.SSLContext | None:
    if options.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(options.tls_cert), str(options.tls_key or options.tls_cert))
    return context


def _bound_port(runner: web.AppRunner) -> int:
    server = runner.addresses[0]
    return int(server[1])


@contextlib.asynccontextmanager
async def serve_gateway(options: GatewayOptions) -> AsyncIterator[RunningGateway]:
    """Start a gateway for the duration of the block.

    Raises StaticFileError / KeySourceError (bad file or Secret at start-up), OSError (port
    in use), or the API client's configuration errors.
    """
    keys = ApiKeys(required=options.api_keys_file is not None or bool(options.api_keys_secret))
    gateway = Gateway(options.settings, keys=keys)
    api_client: Any = None
    hub: HubSource | None = None
    writer: RouteStatusWriter | None = None
    static: StaticFileSource | None = None
    refresher: KeyRefresher | None = None
    waker: DemandWaker | None = None
    runners: list[web.AppRunner] = []
    try:
        if options.endpoints_file is None or options.api_keys_secret is not None:
            api_client = await hub_api_client(options.kubeconfig)
        if options.endpoints_file is not None:
            static = StaticFileSource(options.endpoints_file, on_catalog=gateway.set_catalog)
            static.load()
            static.start()
        else:
            if options.route_status:
                writer = RouteStatusWriter(
                    api_client,
                    instance=socket.gethostname(),
                    on_event_dropped=lambda kind: gateway.metrics.events_dropped(kind).inc(),
                )
            hub = HubSource(
                api_client,
                on_catalog=gateway.set_catalog,
                namespaces=options.namespaces,
                route_status=writer,
            )
            hub.start()
            lease_namespace = options.activator_namespace or _pod_namespace()
            if lease_namespace:  # scale from zero: wake the operator at once
                release = os.environ.get(RELEASE_ENV) or None
                waker = DemandWaker(
                    api_client,
                    namespace=lease_namespace,
                    release=release,
                    on_unanswered=lambda key: gateway.metrics.demand_unanswered(key).inc(),
                )
                gateway.holds.on_hold = waker.held
                log.info(
                    "demand Leases: written in namespace %s (release %s); the operator reads "
                    "them only in its own namespace ($MODELFLEET_POD_NAMESPACE, logged at its "
                    "start as 'demand Leases: watching namespace ...'): both must be the same",
                    lease_namespace,
                    release or "<none>",
                )
            else:
                log.warning(
                    "no namespace for demand Leases (--activator-namespace): requests held "
                    "at zero replicas wake the operator only through Prometheus"
                )
        if keys.required:
            refresher = KeyRefresher(
                keys,
                file=options.api_keys_file,
                secret=options.api_keys_secret,
                api_client=api_client,
                interval=options.keys_refresh_seconds,
            )
            count = await refresher.load()
            log.info("loaded %d API key(s)", count)
            refresher.start()
        gateway.start()

        tls = _ssl_context(options)
        # handler_cancellation: a client that hangs up stops its request (a held one leaves
        # the queue; a forwarded one closes its upstream connection, freeing the engine).
        api_runner = web.AppRunner(
            api_app(gateway),
            handler_cancellation=True,
            access_log=logging.getLogger("modelfleet.gateway.access")
            if options.access_log
            else None,
        )
        await api_runner.setup()
        runners.append(api_runner)
        await web.TCPSite(api_runner, options.host, options.port, ssl_context=tls).start()
        scheme = "https" if tls else "http"
        host = "127.0.0.1" if options.host in ("0.0.0.0", "") else options.host
        url = f"{scheme}://{host}:{_bound_port(api_runner)}"
        management_url = None
        if options.management_port is not None:
            mgmt_runner = web.AppRunner(management_app(gateway), access_log=None)
            await mgmt_runner.setup()
            runners.append(mgmt_runner)
            await web.TCPSite(mgmt_runner, options.host, options.management_port).start()
            management_url = f"http://{host}:{_bound_port(mgmt_runner)}"
        management = (
            f"management: {management_url}"
            if management_url
            else "no management port: /metrics, /healthz and /readyz are not served"
        )
        log.info("gateway listening on %s (%s)", url, management)
        yield RunningGateway(gateway=gateway, url=url, management_url=management_url)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        for source in (hub, writer, static, refresher, waker):
            if source is not None:
                await source.close()
        await gateway.close()
        if api_client is not None:
            await api_client.close()


async def run_gateway(options: GatewayOptions) -> None:
    """Run until SIGTERM or SIGINT (the ``modelfleet gateway`` command)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve_gateway(options):
        # Everything imported and built so far lives for the whole process: move it out of
        # the garbage collector's generations so full collections (pauses of tens of ms with
        # pydantic and aiohttp loaded) only walk per-request garbage.
        gc.collect()
        gc.freeze()
        await stop.wait()
        log.info("shutting down")
