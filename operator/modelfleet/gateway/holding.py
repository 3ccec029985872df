"""Holding requests while a deployment has no ready endpoint (scale from zero).

KServe's activator does this in front of a scaled-to-zero service; here it is the same
for a whole fleet. A request whose deployments have no healthy endpoint waits (at most
``max_held_per_deployment`` of them per deployment, at most ``hold_timeout`` seconds) and is
released as soon as a new catalog or a recovered endpoint makes one available; otherwise it
gets a 503 with Retry-After. While requests wait, ``modelfleet_gateway_pending_requests``
counts them (a backlog, not a rate: the autoscaler's demand signal is the rate of
``modelfleet_gateway_received_requests_total``, counted on arrival in ``app.Gateway``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum

from modelfleet.gateway.catalog import DeploymentKey
from modelfleet.gateway.metrics import GatewayMetrics
from modelfleet.gateway.settings import GatewaySettings


class HoldOutcome(StrEnum):
    """How a hold ended (a metrics label)."""

    RELEASED = "released"
    TIMEOUT = "timeout"
    OVERFLOW = "overflow"
    CANCELLED = "cancelled"


class HoldQueue:
    """Bounded waiting for an endpoint, per deployment. Use on one event loop."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._held: dict[DeploymentKey, int] = {}
        self._changed = asyncio.Event()
        self.on_hold: Callable[[DeploymentKey], None] | None = None
        """Called when a request starts waiting for ``key`` (the activator's wake-up)."""

    def held(self, key: DeploymentKey) -> int:
        """Requests waiting for ``key`` right now."""
        return self._held.get(key, 0)

    def notify(self) -> None:
        """Something changed (new catalog, endpoint back): every waiter checks again."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait(self, key: DeploymentKey, available: Callable[[], bool]) -> HoldOutcome:
        """Wait until ``available()`` is true, for at most ``hold_timeout`` seconds.

        Returns RELEASED (at once when already available), TIMEOUT, or OVERFLOW when
        ``key`` already has ``max_held_per_deployment`` waiters. Cancellation propagates.
        """
        if available():
            return HoldOutcome.RELEASED
        if self.held(key) >= self._settings.max_held_per_deployment:
            self._metrics.held(key, HoldOutcome.OVERFLOW.value).inc()
            return HoldOutcome.OVERFLOW
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.hold_timeout
        self._held[key] = self.held(key) + 1
        if self.on_hold is not None:
            self.on_hold(key)
        pending = self._metrics.pending(key)
        pending.inc()
        outcome = HoldOutcome.CANCELLED
        try:
            while True:
                changed = self._changed
                if available():
                    outcome = HoldOutcome.RELEASED
                    return outcome
                remaining = deadline - loop.time()
                if remaining <= 0:
                    outcome = HoldOutcome.TIMEOUT
                    return outcome
                try:
                    async with asyncio.timeout(remaining):
                        await changed.wait()
                except TimeoutError:
                    pass
        finally:
            self._held[key] -= 1
            if not self._held[key]:
                del self._held[key]
            pending.dec()
            self._metrics.held(key, outcome.value).inc()
