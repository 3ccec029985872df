"""Why ``modelfleet run`` cannot start, in one line, before kopf starts retrying.

Without these checks a newcomer's first ``modelfleet run`` printed 40-200 lines of
traceback: a ``FileNotFoundError`` for ``~/.kube/config``, nine kopf retries ending in
``ClientConnectorError`` for an unreachable server, a ``TypeError`` deep in the kubeconfig
loader for an empty file, a ``ModuleNotFoundError`` when only the demo's extras are
installed. ``check_operator_extras`` and ``check_hub`` find each of those up front and
raise ``StartupError`` whose message says what is wrong and what to do; the CLI prints it
and exits 1. Errors after a successful start are the operator's business (conditions,
Events, logs), not this module's.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from modelfleet.extras import missing_extra

OPERATOR_MODULES = ("kopf", "kubernetes_asyncio", "aiohttp", "prometheus_client")
"""Modules of the ``operator`` extra that ``modelfleet run`` imports."""


class StartupError(Exception):
    """The operator cannot start; ``str(error)`` is one line for the user."""


def check_operator_extras() -> None:
    """Raise ``StartupError`` naming the missing modules when the ``operator`` extra is not
    installed (the light ``[sim]`` install of ``make demo`` lacks it)."""
    missing = []
    for module in OPERATOR_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise StartupError(missing_extra("modelfleet run", "operator", ", ".join(missing)))


def kubeconfig_location() -> tuple[Path, str]:
    """The kubeconfig the operator reads outside a pod and where that choice came from:
    the first entry of ``$KUBECONFIG``, else ``~/.kube/config`` (as ``runtime.hub_client``)."""
    configured = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if configured:
        return Path(configured).expanduser(), "$KUBECONFIG"
    return Path("~/.kube/config").expanduser(), "the default location; set $KUBECONFIG"


def _named(entries: Any, key: str) -> dict[str, Any]:
    """``{name: entry[key]}`` of a kubeconfig list (clusters, users, contexts); malformed
    entries are left out (the loader reports those)."""
    found: dict[str, Any] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            found[entry["name"]] = entry.get(key)
    return found


def kubeconfig_problem(kubeconfig: dict[str, Any]) -> str | None:
    """What makes a parsed kubeconfig unusable, in words naming the part at fault, or None.

    Checks what the kubernetes client's loader only reports as an opaque exception (or as an
    unreachable server): the current-context exists; its cluster and user are defined; the
    cluster's server is an http(s) URL with a host; an exec credential plugin
    (``aws eks get-token``, ``gke-gcloud-auth-plugin``, ``kubelogin``) is on ``$PATH``.
    """
    current = kubeconfig.get("current-context")
    contexts = _named(kubeconfig.get("contexts"), "context")
    if not current:
        return "it has no current-context (`kubectl config use-context NAME`)"
    if current not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        return f"its current-context {current!r} is not one of its contexts ({known})"
    context = contexts[current] if isinstance(contexts[current], dict) else {}
    cluster_name = context.get("cluster")
    clusters = _named(kubeconfig.get("clusters"), "cluster")
    if cluster_name not in clusters or not isinstance(clusters[cluster_name], dict):
        return f"context {current!r} names cluster {cluster_name!r}, which it does not define"
    server = str(clusters[cluster_name].get("server") or "")
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (
            f"cluster {cluster_name!r} has server {server!r}, not an http(s) URL with a host "
            "(e.g. https://api.example.com:6443)"
        )
    user_name = context.get("user")
    users = _named(kubeconfig.get("users"), "user")
    if user_name and user_name not in users:
        return f"context {current!r} names user {user_name!r}, which it does not define"
    user = users.get(user_name) if user_name else None
    command = (user.get("exec") or {}).get("command") if isinstance(user, dict) else None
    if command and shutil.which(str(command)) is None:
        return (
            f"user {user_name!r} gets its credentials from the exec plugin {command!r}, which "
            "is not installed (not on $PATH): install it, or use a token kubeconfig "
            "(docs/member-clusters.md#kubeconfig-secret)"
        )
    return None


def _server_of(kubeconfig: dict[str, Any]) -> str:
    """The current context's server URL, or "?" when the kubeconfig does not say."""
    try:
        contexts = {c["name"]: c["context"] for c in kubeconfig.get("contexts") or []}
        cluster_name = contexts[kubeconfig["current-context"]]["cluster"]
        clusters = {c["name"]: c["cluster"] for c in kubeconfig.get("clusters") or []}
        return str(clusters[cluster_name]["server"])
    except (KeyError, TypeError, AttributeError):
        return "?"


async def check_hub(*, timeout: float = 5.0) -> None:
    """Connect to the hub as the operator will and ask for ``/version`` once.

    In a pod (``$KUBERNETES_SERVICE_HOST``) the service account is used; otherwise the
    kubeconfig of ``kubeconfig_location``. Raises ``StartupError`` when the kubeconfig is
    missing, a folder, empty, not YAML or unusable (``kubeconfig_problem``), or the API
    server does not answer within ``timeout`` seconds, rejects the credentials or is not a
    Kubernetes API server (``/version`` missing or without ``gitVersion``). Any other
    answer (even 403: RBAC is the chart's job and the operator reports it per object) lets
    the operator start.
    """
    from modelfleet.clusters import KubernetesClusterClient
    from modelfleet.clusters.errors import (
        ClusterError,
        ClusterForbidden,
        ClusterNotFound,
        ClusterUnreachable,
    )

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        where = "the in-cluster service account"
        server = (
            f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:"
            f"{os.environ.get('KUBERNETES_SERVICE_PORT', '443')}"
        )
        try:
            client = await KubernetesClusterClient.in_cluster(name="hub", request_timeout=timeout)
        except ClusterError as error:
            raise StartupError(f"cannot use {where}: {error.message}") from None
    else:
        path, source = kubeconfig_location()
        where = f"kubeconfig {path}"
        if path.is_dir():
            raise StartupError(
                f"kubeconfig {path} ({source}) is a folder, not a file: point $KUBECONFIG at "
                "the hub cluster's kubeconfig file"
            )
        if not path.is_file():
            raise StartupError(
                f"no kubeconfig at {path} ({source}): point $KUBECONFIG at the hub cluster's "
                "kubeconfig, or run the operator in the hub (helm install, see README)"
            )
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise StartupError(f"{where} cannot be read as YAML: {detail}") from None
        if not loaded:
            raise StartupError(
                f"{where} is empty: it needs clusters, users, contexts and a current-context "
                "(e.g. `kubectl config view --raw` of a working setup)"
            )
        if not isinstance(loaded, dict):
            raise StartupError(f"{where} is not a kubeconfig (a YAML mapping)")
        problem = kubeconfig_problem(loaded)
        if problem is not None:
            raise StartupError(f"{where} is unusable: {problem}")
        server = _server_of(loaded)
        try:
            client = await KubernetesClusterClient.from_kubeconfig(
                loaded, name="hub", request_timeout=timeout
            )
        except ClusterError as error:
            raise StartupError(f"{where}: {error.message}") from None
    not_kubernetes = (
        f"{server} (from {where}) answered GET /version, but not as a Kubernetes API server "
        "does: check the server address and port"
    )
    try:
        version = await client.server_version()
        if "gitVersion" not in version:  # e.g. a web server's HTML page
            raise StartupError(not_kubernetes)
    except ClusterNotFound:  # every API server serves /version
        raise StartupError(not_kubernetes) from None
    except ClusterUnreachable as error:
        raise StartupError(
            f"cannot reach the hub API server {server} (from {where}): "
            f"{error.message}; is the cluster up and the server address right?"
        ) from None
    except ClusterForbidden as error:
        if error.status == 401:
            raise StartupError(
                f"the hub API server {server} rejected the credentials of {where} "
                "(expired token or certificate?)"
            ) from None
    except ClusterError:
        pass  # it answered: the operator reports anything else per object
    except StartupError:
        raise
    except Exception as error:  # e.g. an exec credential plugin that is not installed
        raise StartupError(
            f"cannot connect to the hub API server {server} (from {where}): "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from None
    finally:
        await client.close()
