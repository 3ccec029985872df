"""ClusterRegistry: one ClusterClient per FleetCluster, built from its kubeconfig Secret.

The reconciler asks for a cluster's client on every pass; building one (parsing a
kubeconfig, creating TLS contexts and a connection pool) on every pass would be wasteful,
and keeping one forever would miss rotated credentials. So the registry caches a client per
FleetCluster and rebuilds it when the Secret changes: it re-reads the Secret at most every
``recheck_seconds`` and rebuilds when its resourceVersion or content differs. A FleetCluster
without ``kubeconfigSecretRef`` is the hub itself and gets the hub's own client.

Kubeconfig contents are credentials: they are never logged, never put in an error message
and never kept beyond the client built from them (only a SHA-256 digest is kept, to notice
changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from modelfleet.api.fleetcluster import FleetCluster
from modelfleet.clusters.client import ClusterClient, KubernetesClusterClient, SecretReader
from modelfleet.clusters.errors import ClusterConfigError, ClusterNotFound

logger = logging.getLogger(__name__)


class ClientFactory(Protocol):
    """Builds a ClusterClient from a parsed kubeconfig (the real one, or a test's fake)."""

    async def __call__(self, kubeconfig: Mapping[str, Any], *, name: str) -> ClusterClient:
        """A client for the kubeconfig's current context; ``ClusterConfigError`` if unusable."""
        ...


async def kubernetes_client_factory(kubeconfig: Mapping[str, Any], *, name: str) -> ClusterClient:
    """The default factory: a ``KubernetesClusterClient`` over HTTP."""
    return await KubernetesClusterClient.from_kubeconfig(kubeconfig, name=name)


@dataclass
class _Entry:
    client: ClusterClient
    ref: tuple[str, str, str]  # (namespace, name, key) of the Secret
    fingerprint: tuple[str | None, str]  # (resourceVersion, sha256 of the kubeconfig)
    checked_at: float  # monotonic seconds


class ClusterRegistry:
    """Caches a ClusterClient per FleetCluster name; see the module docstring."""

    def __init__(
        self,
        *,
        hub: ClusterClient,
        secrets: SecretReader,
        factory: ClientFactory = kubernetes_client_factory,
        recheck_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``hub`` serves FleetClusters without a kubeconfig Secret (it is never closed
        here); ``secrets`` reads kubeconfig Secrets in the hub; ``recheck_seconds`` is how
        long a cached client is used before its Secret is read again."""
        self._hub = hub
        self._secrets = secrets
        self._factory = factory
        self._recheck_seconds = recheck_seconds
        self._monotonic = monotonic
        self._entries: dict[str, _Entry] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def client_for(self, cluster: FleetCluster) -> ClusterClient:
        """The client for ``cluster``, built or rebuilt as needed (see the module doc).

        Raises ``ClusterConfigError`` when the Secret, its key or its kubeconfig is unusable
        (naming the Secret, never its content); errors reading the Secret from the hub
        (``ClusterUnreachable``, ``ClusterForbidden``) propagate. A cached client stays in
        use until a rebuild succeeds.
        """
        name = cluster.metadata.name
        ref = cluster.spec.kubeconfig_secret_ref
        async with self._locks[name]:
            entry = self._entries.get(name)
            if ref is None:
                if entry is not None:  # the FleetCluster now points at the hub
                    await self._drop(name)
                return self._hub
            ref_key = (ref.namespace, ref.name, ref.key)
            now = self._monotonic()
            if (
                entry is not None
                and entry.ref == ref_key
                and now - entry.checked_at < self._recheck_seconds
            ):
                return entry.client
            content, resource_version = await self._read_kubeconfig(name, ref_key)
            fingerprint = (resource_version, hashlib.sha256(content).hexdigest())
            if entry is not None and entry.ref == ref_key and entry.fingerprint == fingerprint:
                entry.checked_at = now
                return entry.client
            client = await self._factory(_parse_kubeconfig(content, name, ref_key), name=name)
            if entry is not None:
                await _close_quietly(entry.client)
            self._entries[name] = _Entry(client, ref_key, fingerprint, now)
            logger.info(
                "cluster %s: client %s from Secret %s/%s (resourceVersion %s)",
                name,
                "rebuilt" if entry is not None else "built",
                ref.namespace,
                ref.name,
                resource_version,
            )
            return client

    async def forget(self, name: str) -> None:
        """Close and drop the cached client of FleetCluster ``name`` (deleted). Idempotent."""
        async with self._locks[name]:
            await self._drop(name)

    async def close(self) -> None:
        """Close every client built here (not the hub's). Idempotent."""
        for name in list(self._entries):
            await self.forget(name)

    async def _drop(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is not None:
            await _close_quietly(entry.client)

    async def _read_kubeconfig(
        self, cluster: str, ref: tuple[str, str, str]
    ) -> tuple[bytes, str | None]:
        namespace, secret_name, key = ref
        try:
            secret = await self._secrets.read_secret(namespace, secret_name)
        except ClusterNotFound:
            raise ClusterConfigError(
                f"kubeconfig Secret {namespace}/{secret_name} not found in the hub",
                cluster=cluster,
            ) from None
        content = secret.data.get(key)
        if not content:
            raise ClusterConfigError(
                f"kubeconfig Secret {namespace}/{secret_name} has no key {key!r} "
                f"(keys: {', '.join(sorted(secret.data)) or 'none'})",
                cluster=cluster,
            )
        return content, secret.resource_version


def _parse_kubeconfig(content: bytes, cluster: str, ref: tuple[str, str, str]) -> dict[str, Any]:
    namespace, secret_name, key = ref
    where = f"kubeconfig Secret {namespace}/{secret_name} key {key!r}"
    try:
        parsed = yaml.safe_load(content)
    except yaml.YAMLError as error:  # its message quotes the content: never show it
        raise ClusterConfigError(
            f"{where} is not YAML ({type(error).__name__})", cluster=cluster
        ) from None
    if not isinstance(parsed, dict):
        raise ClusterConfigError(f"{where} is not a kubeconfig mapping", cluster=cluster)
    return parsed


async def _close_quietly(client: ClusterClient) -> None:
    with contextlib.suppress(Exception):
        await client.close()
