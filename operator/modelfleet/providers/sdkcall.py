"""Running one synchronous cloud SDK call, shared by the GCP and Azure providers.

The SDKs block, so each call runs in a worker thread; its clients are resolved lazily,
inside that thread (credential lookups may block too), and whatever the SDK raises is
translated into a typed ``ProviderError`` exactly once, by the provider's ``classify``.
Programming errors (and errors already typed) propagate unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar

from modelfleet.providers.errors import ProviderError

T = TypeVar("T")

PROGRAMMING_ERRORS: Final = (TypeError, AttributeError, NameError, AssertionError)
"""Bugs, not cloud errors: never classified."""


class ClientSource(Protocol):
    """Something that hands out SDK clients by name (``GcpClients``, ``AzureClients``)."""

    def get(self, name: str) -> Any: ...


class LazyClient:
    """Resolves the SDK client ``name`` on attribute access, inside the worker thread."""

    def __init__(self, clients: ClientSource, name: str) -> None:
        self._clients = clients
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._clients.get(self._name), attribute)


def classified(fn: Callable[[], T], classify: Callable[[Exception], ProviderError]) -> T:
    """``fn()``, with any exception other than a ProviderError or a programming error
    raised as ``classify(exception)`` (chained)."""
    try:
        return fn()
    except (ProviderError, *PROGRAMMING_ERRORS):
        raise
    except Exception as err:
        raise classify(err) from err
