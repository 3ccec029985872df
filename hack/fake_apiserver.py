"""A fast, minimal Kubernetes API server for load benchmarks (not for tests).

KMock is faithful but serves a few hundred requests per second; at 1,000 ModelDeployments it,
not the operator, would be the bottleneck. This server keeps objects in dicts and answers
only what the operator's member-cluster client sends (``clusters.client``): ``/version``,
Nodes and Pods lists, and get/list (with an equality ``labelSelector``)/create/merge-patch/
delete of Namespaces, Services, Deployments and PodDisruptionBudgets, and watches of those
collections (``?watch=true``) the way kube-apiserver serves them: every write bumps one
resourceVersion counter, a LIST carries ``metadata.resourceVersion``, a watch streams the
events after its ``resourceVersion`` (from a bounded history; one older than the history
gets an ``ERROR`` event with code 410, "too old resource version"), honours
``labelSelector`` (an object leaving the selection is DELETED), ``timeoutSeconds`` (the
stream ends cleanly) and ``allowWatchBookmarks`` (a BOOKMARK every ``bookmark_seconds``).

Every request is counted by (method, resource), lists as ``LIST <resource>`` and watches
as ``WATCH <resource>``;
``GET /_stats`` returns the counts and ``open watches``, ``POST /_reset`` clears them. For
tests of watch clients: ``POST /_drop`` cuts every open watch connection (no clean end),
``POST /_compact`` forgets the event history (resuming from an older resourceVersion then
gets the 410 ERROR event), ``POST /_refuse_watches?code=N`` answers watches with HTTP N (0
to stop), ``POST /_pause`` holds watch events back until ``POST /_resume`` (a lagging
watch). Run in its own process so its CPU is not the operator's:

    python hack/fake_apiserver.py --port 0      # prints "listening on http://127.0.0.1:PORT"

Tests load it with importlib and run ``make_app()`` on a loopback port (aiohttp). Clients
of the benchmark and the tests use ``kubeconfig(url)`` and ``request_counts(session, url)``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.client_exceptions import ClientConnectionResetError

Store = dict[tuple[str, str | None, str], dict[str, Any]]
"""(resource plural, namespace, name) -> object."""

RESOURCES = {"namespaces", "services", "deployments", "poddisruptionbudgets"}


def kubeconfig(url: str, *, name: str = "fake") -> dict[str, Any]:
    """A kubeconfig (bearer token; the server checks none) whose current context is the
    server at ``url``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {"token": "fake"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


async def request_counts(session: ClientSession, url: str) -> Counter[str]:
    """The server's request counts by ``METHOD resource`` (``LIST x``, ``WATCH x``) and its
    ``open watches`` (``GET /_stats``)."""
    async with session.get(url + "/_stats") as resp:
        return Counter(await resp.json())


def _merge(live: Any, patch: Any) -> Any:
    if not isinstance(patch, dict) or not isinstance(live, dict):
        return patch
    out = dict(live)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(live.get(key), value)
    return out


def _selected(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


_KINDS = {
    "namespaces": "Namespace",
    "services": "Service",
    "deployments": "Deployment",
    "poddisruptionbudgets": "PodDisruptionBudget",
}


def _event_for(
    watcher: Any,
    resource: str,
    namespace: str | None,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    deleted: bool,
) -> dict[str, Any] | None:
    """The event ``watcher`` gets for a write, or None when it is not concerned."""
    if resource != watcher.resource:
        return None
    if watcher.namespace is not None and namespace != watcher.namespace:
        return None
    now_in = not deleted and _selected(obj, watcher.selector)
    was_in = old is not None and _selected(old, watcher.selector)
    if now_in:
        return {"type": "MODIFIED" if was_in else "ADDED", "object": obj}
    if was_in:  # deleted, or no longer selected
        return {"type": "DELETED", "object": obj}
    return None


def _parse(path: str) -> tuple[str, str | None, str | None] | None:
    """(resource, namespace, name) of a core or apps/policy path, else None."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        rest = parts[3:]
    else:
        return None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        return rest[2], rest[1], rest[3] if len(rest) > 3 else None
    if rest[:1] == ["namespaces"]:
        return "namespaces", None, rest[1] if len(rest) > 1 else None
    if rest:
        return rest[0], None, rest[1] if len(rest) > 1 else None
    return None


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Watcher:
    resource: str
    namespace: str | None
    selector: str | None
    queue: asyncio.Queue[dict[str, Any] | None]
    request: web.Request


@dataclass
class _History:
    """Events after resourceVersion ``floor``, oldest first (bounded like etcd's window)."""

    events: deque[tuple[int, str, str | None, dict[str, Any], dict[str, Any] | None, bool]]
    floor: int = 0


def make_app(*, history: int = 100_000, bookmark_seconds: float = 60.0) -> web.Application:
    """The server; ``history`` events are kept for watches to resume from."""
    store: Store = {}
    counts: Counter[str] = Counter()
    version = [0]
    log = _History(deque(maxlen=history))
    watchers: set[_Watcher] = set()
    refuse = [0]
    flowing = asyncio.Event()
    flowing.set()

    def publish(
        resource: str,
        namespace: str | None,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        deleted: bool = False,
    ) -> None:
        """Record a write (``obj`` is the new state, ``old`` the previous; a deletion passes
        the deleted object with ``old`` = the same object and no longer stores it)."""
        if len(log.events) == log.events.maxlen and log.events:
            log.floor = log.events[0][0]
        log.events.append((version[0], resource, namespace, obj, old, deleted))
        for watcher in list(watchers):
            event = _event_for(watcher, resource, namespace, obj, old, deleted)
            if event is not None:
                watcher.queue.put_nowait(event)

    async def watch(
        request: web.Request, resource: str, namespace: str | None
    ) -> web.StreamResponse:
        counts[f"WATCH {resource}"] += 1
        if refuse[0]:
            return status(refuse[0], "Refused")
        selector = request.query.get("labelSelector")
        since = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        bookmarks = request.query.get("allowWatchBookmarks") == "true"
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        watcher = _Watcher(resource, namespace, selector, asyncio.Queue(), request)
        if since and since < log.floor:
            gone = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "code": 410,
                "reason": "Expired",
                "message": f"too old resource version: {since} ({log.floor})",
            }
            await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            await response.write_eof()
            return response
        if not since:  # no resourceVersion: every object as ADDED (what a real server does)
            for (r, ns, _), obj in list(store.items()):
                mine = r == resource and (namespace is None or ns == namespace)
                if mine and _selected(obj, selector):
                    watcher.queue.put_nowait({"type": "ADDED", "object": obj})
        else:
            for rv, r, ns, obj, old, deleted in list(log.events):
                if rv > since and r == resource:
                    event = _event_for(watcher, r, ns, obj, old, deleted)
                    if event is not None:
                        watcher.queue.put_nowait(event)
        watchers.add(watcher)
        try:
            return await _stream(response, watcher, timeout, bookmarks)
        except (ConnectionResetError, ClientConnectionResetError):
            return response  # the client went away
        finally:
            watchers.discard(watcher)

    async def _stream(
        response: web.StreamResponse, watcher: _Watcher, timeout: float, bookmarks: bool
    ) -> web.StreamResponse:
        request = watcher.request
        resource = watcher.resource
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + bookmark_seconds
        while True:
            now = loop.time()
            if now >= deadline:
                break
            wait = min(deadline, next_bookmark if bookmarks else deadline) - now
            try:
                event = await asyncio.wait_for(watcher.queue.get(), max(0.0, wait))
            except TimeoutError:
                if bookmarks and loop.time() >= next_bookmark:
                    next_bookmark = loop.time() + bookmark_seconds
                    mark = {
                        "kind": _KINDS.get(resource, "Object"),
                        "metadata": {"resourceVersion": str(version[0])},
                    }
                    await response.write(
                        json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n"
                    )
                continue
            if event is None:  # _drop: cut the connection, no clean end
                if request.transport is not None:
                    request.transport.close()
                return response
            await flowing.wait()  # _pause: events are held (a lagging watch)
            await response.write(json.dumps(event).encode() + b"\n")
        await response.write_eof()
        return response

    async def drop(_: web.Request) -> web.Response:
        for watcher in list(watchers):
            watcher.queue.put_nowait(None)
        return web.json_response({"dropped": len(watchers)})

    async def compact(_: web.Request) -> web.Response:
        log.events.clear()
        log.floor = version[0]
        return web.json_response({"floor": log.floor})

    async def pause(_: web.Request) -> web.Response:
        flowing.clear()
        return web.json_response({})

    async def resume(_: web.Request) -> web.Response:
        flowing.set()
        return web.json_response({})

    async def refuse_watches(request: web.Request) -> web.Response:
        refuse[0] = int(request.query.get("code", "0"))
        return web.json_response({"refuse": refuse[0]})

    def status(code: int, reason: str) -> web.Response:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
        return web.json_response({**body, "reason": reason, "message": reason}, status=code)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({**counts, "open watches": len(watchers)})

    async def reset(_: web.Request) -> web.Response:
        counts.clear()
        return web.json_response({})

    async def version_(_: web.Request) -> web.Response:
        counts["GET version"] += 1
        return web.json_response({"gitVersion": "v1.28.0-fake"})

    async def any_(request: web.Request) -> web.Response:
        parsed = _parse(request.path)
        if parsed is None:
            return status(404, "NotFound")
        resource, namespace, name = parsed
        if request.method == "GET" and name is None and request.query.get("watch") == "true":
            return await watch(request, resource, namespace)
        listing = request.method == "GET" and name is None
        counts[f"{'LIST' if listing else request.method} {resource}"] += 1
        if resource in ("nodes", "pods"):
            return web.json_response({"kind": "List", "items": []})
        if resource not in RESOURCES:
            return status(404, "NotFound")
        if request.method == "GET" and name is None:
            selector = request.query.get("labelSelector")
            items = [
                o
                for (r, ns, _), o in store.items()
                if r == resource
                and (namespace is None or ns == namespace)
                and _selected(o, selector)
            ]
            return web.json_response(
                {"kind": "List", "metadata": {"resourceVersion": str(version[0])}, "items": items}
            )
        if request.method == "POST":
            body = await request.json()
            key = (resource, namespace, body["metadata"]["name"])
            if key in store:
                return status(409, "AlreadyExists")
            version[0] += 1
            body["metadata"].update(resourceVersion=str(version[0]), generation=1)
            store[key] = body
            publish(resource, namespace, body, None)
            return web.json_response(body, status=201)
        key = (resource, namespace, name or "")
        live = store.get(key)
        if live is None:
            return status(404, "NotFound")
        if request.method == "GET":
            return web.json_response(live)
        if request.method == "PATCH":
            version[0] += 1
            merged = _merge(live, json.loads(await request.text()))
            merged["metadata"]["resourceVersion"] = str(version[0])
            store[key] = merged
            publish(resource, namespace, merged, live)
            return web.json_response(merged)
        if request.method == "DELETE":
            del store[key]
            version[0] += 1
            gone = {**live, "metadata": {**live["metadata"], "resourceVersion": str(version[0])}}
            publish(resource, namespace, gone, live, deleted=True)
            return web.json_response({"kind": "Status", "status": "Success"})
        return status(405, "MethodNotAllowed")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_get("/version", version_)
    app.router.add_post("/_drop", drop)
    app.router.add_post("/_compact", compact)
    app.router.add_post("/_pause", pause)
    app.router.add_post("/_resume", resume)
    app.router.add_post("/_refuse_watches", refuse_watches)
    app.router.add_route("*", "/{tail:.*}", any_)
    return app


async def serve(port: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    sockets = site._server.sockets if site._server else []
    print(f"listening on http://127.0.0.1:{sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
