"""The static provider's view of a member cluster's Nodes, over a member-cluster client.

The static provider's "cloud API" is the Kubernetes API: it reads the labelled Nodes of
pre-provisioned capacity. Providers and cluster clients are sibling adapters that never
import each other (import-linter ``layers``), so the static provider owns a narrow port
(``providers.static.NodeSource``) and this module, above both, plugs a ``ClusterClient``
into it. It is also the one place where cluster errors become provider errors for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from modelfleet.clusters import ClusterClient
from modelfleet.clusters.errors import ClusterError, ClusterForbidden, ClusterUnreachable
from modelfleet.clusters.objects import NodeInfo
from modelfleet.providers.errors import PermissionDenied, ProviderError, Unreachable


class ClusterNodeSource:
    """``NodeSource`` over the member cluster ``cluster``'s client."""

    def __init__(self, client: ClusterClient, *, cluster: str) -> None:
        self._client = client
        self._cluster = cluster

    async def list_nodes(self, selector: Mapping[str, str] | None = None) -> list[NodeInfo]:
        """Nodes whose labels include every pair of ``selector`` (all nodes when None).
        Raises ``Unreachable``, ``PermissionDenied`` (naming the RBAC rule) or
        ``ProviderError``."""
        with self._translated():
            return await self._client.list_nodes(selector)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Cluster errors -> provider errors: the one place this is translated."""
        try:
            yield
        except ClusterUnreachable as error:
            raise Unreachable(f"cluster {self._cluster}: {error.message}") from error
        except ClusterForbidden as error:
            raise PermissionDenied(
                f"cluster {self._cluster}: cannot list nodes ({error.message})",
                permission="nodes: list (ClusterRole modelfleet-member)",
            ) from error
        except ClusterError as error:
            raise ProviderError(f"cluster {self._cluster}: {error}") from error
