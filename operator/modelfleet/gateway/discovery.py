"""Where the catalog comes from: the hub's ModelDeployments and ModelRoutes (list, then
watch), or a static YAML file (re-read when it changes). Also the API keys Secret.

``HubSource`` talks to the hub's API server through ``kubernetes_asyncio`` (kubeconfig or
in-cluster credentials): per resource and namespace it lists, then watches from the list's
resourceVersion, and lists again whenever the watch ends or fails (410 Gone included), with
a capped backoff on errors. Every change rebuilds the catalog from the objects it holds and
hands it to the gateway at once, so a deployment that gets a ready endpoint releases its
held requests within one watch event. Given a ``RouteStatusWriter``, it also hands it each
catalog with the routes, whose status (route clashes, missing deployments) it writes: the
only writes the gateway makes (see ``route_status``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from modelfleet import GROUP, VERSION
from modelfleet.api.modelroute import ModelRoute
from modelfleet.background import cancel_and_wait
from modelfleet.gateway.auth import ApiKeys, KeySourceError, keys_from_file, keys_from_secret
from modelfleet.gateway.catalog import (
    Catalog,
    DeploymentInfo,
    StaticFileError,
    build_catalog,
    catalog_from_static,
    deployment_from_object,
)
from modelfleet.gateway.invalid_routes import InvalidRoute, parse_route
from modelfleet.gateway.route_status import RouteStatusWriter

log = logging.getLogger(__name__)

WATCH_TIMEOUT_SECONDS: Final = 300
"""Server-side watch timeout; the watch is re-listed after it (a normal end)."""
MAX_BACKOFF_SECONDS: Final = 30.0
ABSENT_RETRY_SECONDS: Final = 60.0
"""How often a resource the hub does not serve (its CRD missing) is listed again."""

ObjectKey = tuple[str, str]


class HubSource:
    """Keeps a catalog of the hub's ModelDeployments and ModelRoutes up to date.

    ``api_client`` is a ``kubernetes_asyncio.client.ApiClient``; ``namespaces`` empty means
    every namespace (cluster-wide list/watch). ``on_catalog`` receives each new catalog;
    ``route_status`` (optional) gets it too, with the routes, to write their status.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        on_catalog: Callable[[Catalog], None],
        namespaces: tuple[str, ...] = (),
        route_status: RouteStatusWriter | None = None,
    ) -> None:
        self._api = api_client
        self._on_catalog = on_catalog
        self._route_status = route_status
        self._namespaces: tuple[str | None, ...] = namespaces or (None,)
        self._deployments: dict[str | None, dict[ObjectKey, DeploymentInfo]] = {}
        self._routes: dict[str | None, dict[ObjectKey, ModelRoute | InvalidRoute]] = {}
        """Per namespace watched, the routes: served, or ignored as invalid (not in the
        catalog; their status still records their names, ``invalid_routes``)."""
        self._publish_scheduled = False
        self._tasks: list[asyncio.Task[None]] = []
        self.synced = asyncio.Event()
        """Set once every list has been loaded once."""
        self._listed: set[tuple[str, str | None]] = set()

    def start(self) -> None:
        """Start the list/watch loops (one per resource and namespace)."""
        for namespace in self._namespaces:
            self._deployments[namespace] = {}
            self._routes[namespace] = {}
            self._tasks.append(
                asyncio.create_task(self._watch_forever("modeldeployments", namespace))
            )
            self._tasks.append(asyncio.create_task(self._watch_forever("modelroutes", namespace)))

    async def close(self) -> None:
        """Stop watching."""
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()

    def _store(self, plural: str, namespace: str | None) -> dict[ObjectKey, Any]:
        if plural == "modeldeployments":
            return self._deployments[namespace]
        return self._routes[namespace]

    @staticmethod
    def _parse(plural: str, obj: Mapping[str, Any]) -> Any:
        if plural == "modeldeployments":
            return deployment_from_object(obj)
        return parse_route(obj)

    def _changed(self) -> None:
        if not self._publish_scheduled:
            self._publish_scheduled = True
            asyncio.get_running_loop().call_soon(self._publish)

    def _publish(self) -> None:
        self._publish_scheduled = False
        if not self.synced.is_set():
            return  # no partial catalog before every list arrived (readiness waits for it)
        deployments = [d for store in self._deployments.values() for d in store.values()]
        routes = [r for store in self._routes.values() for r in store.values()]
        catalog = build_catalog(deployments, [r for r in routes if isinstance(r, ModelRoute)])
        self._on_catalog(catalog)
        if self._route_status is not None:
            self._route_status.submit(catalog, routes)

    def _call(self, plural: str, namespace: str | None) -> Any:
        from kubernetes_asyncio import client

        api = client.CustomObjectsApi(self._api)

        def call(**kw: Any) -> Any:
            # The generated client writes booleans as "True"; send the canonical "true"
            # that every API server (and emulator) parses.
            kw = {k: ("true" if v is True and not k.startswith("_") else v) for k, v in kw.items()}
            if namespace is None:
                return api.list_cluster_custom_object(GROUP, VERSION, plural, **kw)
            return api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, **kw)

        return call

    def _listed_once(self, plural: str, namespace: str | None) -> None:
        self._listed.add((plural, namespace))
        if len(self._listed) == 2 * len(self._namespaces):
            self.synced.set()
        self._changed()

    async def _watch_forever(self, plural: str, namespace: str | None) -> None:
        from kubernetes_asyncio import watch
        from kubernetes_asyncio.client.exceptions import ApiException

        backoff = 1.0
        where = namespace or "all namespaces"
        while True:
            try:
                list_call = self._call(plural, namespace)
                store = self._store(plural, namespace)
                try:
                    listing = await list_call()
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    # The CRD is not installed (e.g. ModelRoute on an older chart): serve
                    # without it, and look again later.
                    log.warning(
                        "%s are not served by the hub (404); looking again in %.0fs",
                        plural,
                        ABSENT_RETRY_SECONDS,
                    )
                    store.clear()
                    self._listed_once(plural, namespace)
                    await asyncio.sleep(ABSENT_RETRY_SECONDS)
                    continue
                fresh: dict[ObjectKey, Any] = {}
                for item in listing.get("items") or []:
                    parsed = self._parse(plural, item)
                    if parsed is not None:
                        fresh[_key(item)] = parsed
                store.clear()
                store.update(fresh)
                self._listed_once(plural, namespace)
                version = (listing.get("metadata") or {}).get("resourceVersion")
                backoff = 1.0
                stream = watch.Watch()
                async with stream.stream(
                    list_call,
                    resource_version=version,
                    timeout_seconds=WATCH_TIMEOUT_SECONDS,
                    allow_watch_bookmarks=True,
                ) as events:
                    async for event in events:
                        kind = event.get("type")
                        obj = event.get("raw_object") or {}
                        if kind not in ("ADDED", "MODIFIED", "DELETED"):
                            continue
                        if kind == "DELETED":
                            store.pop(_key(obj), None)
                        else:
                            parsed = self._parse(plural, obj)
                            if parsed is None:
                                store.pop(_key(obj), None)
                            else:
                                store[_key(obj)] = parsed
                        self._changed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # API errors, transport errors: relist after a pause
                log.warning(
                    "watch of %s in %s failed (%s: %s); listing again in %.0fs",
                    plural,
                    where,
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def _key(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))


class _EveryInterval:
    """A job run every ``interval`` seconds in the background, from ``start`` until
    ``close`` (the one loop of the gateway's reloaders). A subclass sets ``_interval``
    (seconds) and ``_task`` (None) and defines ``_tick``, which logs and swallows its own
    failures: one escaping ends the loop."""

    _interval: float
    _task: asyncio.Task[None] | None

    def start(self) -> None:
        """Run ``_tick`` every ``interval`` seconds in the background (the first after one
        interval)."""
        self._task = asyncio.create_task(self._poll())

    async def close(self) -> None:
        """Stop the background job (a tick in progress is cancelled)."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._tick()

    async def _tick(self) -> None:
        raise NotImplementedError


class StaticFileSource(_EveryInterval):
    """Re-reads a static endpoints file when its modification time changes.

    An invalid file is logged and the previous catalog kept. ``load()`` reads it once and
    raises StaticFileError (for a clear error at start-up).
    """

    def __init__(
        self, path: Path, *, on_catalog: Callable[[Catalog], None], interval: float = 1.0
    ) -> None:
        self._path = path
        self._on_catalog = on_catalog
        self._interval = interval
        self._mtime: int | None = None
        self._task: asyncio.Task[None] | None = None

    def load(self) -> None:
        """Read the file now and publish its catalog. Raises StaticFileError."""
        try:
            stat = self._path.stat()
            text = self._path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StaticFileError(f"{self._path}: cannot read ({exc.strerror})") from None
        try:
            catalog = catalog_from_static(text)
        except StaticFileError as exc:
            raise StaticFileError(f"{self._path}: {exc}") from None
        self._mtime = stat.st_mtime_ns
        self._on_catalog(catalog)

    async def _tick(self) -> None:
        """Reload the file when its modification time changed; keep the previous catalog
        when it cannot be read or is invalid."""
        try:
            if self._path.stat().st_mtime_ns != self._mtime:
                self.load()
                log.info("reloaded %s", self._path)
        except (OSError, StaticFileError) as exc:
            log.warning("keeping the previous endpoints: %s", exc)


class KeyRefresher(_EveryInterval):
    """Reloads API keys from a file/folder and/or a hub Secret every ``interval`` seconds.

    A failed reload keeps the keys already loaded (and logs the source, never a key).
    """

    def __init__(
        self,
        keys: ApiKeys,
        *,
        file: Path | None = None,
        secret: tuple[str, str] | None = None,
        api_client: Any = None,
        interval: float = 30.0,
    ) -> None:
        self._keys = keys
        self._file = file
        self._secret = secret
        self._api = api_client
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def load(self) -> int:
        """Load every source now; returns the number of keys. Raises KeySourceError."""
        found: dict[str, str] = {}
        if self._file is not None:
            found.update(keys_from_file(self._file))
        if self._secret is not None:
            found.update(await self._read_secret())
        self._keys.replace(found)
        return len(self._keys)

    async def _read_secret(self) -> dict[str, str]:
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        assert self._secret is not None
        namespace, name = self._secret
        try:
            secret = await client.CoreV1Api(self._api).read_namespaced_secret(name, namespace)
        except ApiException as exc:
            raise KeySourceError(
                f"Secret {namespace}/{name}: cannot read ({exc.status} {exc.reason})"
            ) from None
        return keys_from_secret({"data": secret.data or {}})

    async def _tick(self) -> None:
        """Reload every source; keep the keys already loaded when one fails."""
        try:
            await self.load()
        except (KeySourceError, OSError) as exc:
            log.warning("keeping the API keys already loaded: %s", exc)
        except Exception as exc:  # transport errors from the API client
            log.warning("keeping the API keys already loaded: %s", type(exc).__name__)
