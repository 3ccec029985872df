"""The gateway as activator: wake the operator when a request is held at zero replicas.

Holding a request for a deployment with no ready endpoint (``holding.HoldQueue``) makes
demand visible through ``modelfleet_gateway_pending_requests``, but the operator sees that
gauge only after a Prometheus scrape and its next reconcile. KServe's activator instead
tells the autoscaler at once; here the gateway writes the time of the held request into the
ModelDeployment's annotation ``activator.modelfleet.io/demand-seen-at``
(``labels.DEMAND_SEEN_AT``) with a JSON merge patch. The change is an update event: the
operator reconciles at once and reads it as demand (``reconciler/activator.py``).

At most one write per deployment per ``interval`` seconds (a burst of held requests is one
write); writes run in the background and never delay or fail a request: an API error is
logged (a 403 names the RBAC verb the chart grants, ``patch`` on modeldeployments).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from modelfleet import GROUP, VERSION
from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.labels import DEMAND_SEEN_AT

log = logging.getLogger(__name__)


class DemandWaker:
    """Writes the wake-up annotation for held deployments. Use on one event loop.

    ``api_client`` is a ``kubernetes_asyncio.client.ApiClient`` for the hub; ``interval``
    is the least time (seconds) between two writes for one deployment; ``clock`` gives
    monotonic seconds for that limit and ``wall`` the time written.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        interval: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api_client
        self._interval = interval
        self._clock = clock
        self._wall = wall
        self._last: dict[DeploymentKey, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.writes = 0
        """Annotation writes that succeeded."""

    def held(self, key: DeploymentKey) -> None:
        """A request for ``key`` is being held: write the annotation unless one was written
        within ``interval``. Returns at once (the write runs in the background)."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return
        self._last[key] = now
        task = asyncio.get_running_loop().create_task(self._write(key, self._wall()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, key: DeploymentKey, when: datetime) -> None:
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        stamp = when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = {"metadata": {"annotations": {DEMAND_SEEN_AT: stamp}}}
        api = client.CustomObjectsApi(self._api)
        # A merge patch (the generated client's stubs do not declare _content_type).
        options: dict[str, Any] = {"_content_type": "application/merge-patch+json"}
        try:
            await api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                key.namespace,
                "modeldeployments",
                key.name,
                body,
                **options,
            )
        except ApiException as exc:
            self._last.pop(key, None)  # let the next held request try again
            hint = " (the gateway needs 'patch' on modeldeployments)" if exc.status == 403 else ""
            log.warning("could not wake the operator for %s: %s%s", key, exc.status, hint)
            return
        except Exception as exc:  # transport errors: the Prometheus signal still follows
            self._last.pop(key, None)
            log.warning("could not wake the operator for %s: %s", key, exc)
            return
        self.writes += 1

    @property
    def in_flight(self) -> int:
        """Writes started and not finished."""
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel writes still in flight."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
