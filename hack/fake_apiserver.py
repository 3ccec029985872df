"""A fast, minimal Kubernetes API server for load benchmarks (not for tests).

KMock is faithful but serves a few hundred requests per second; at 1,000 ModelDeployments it,
not the operator, would be the bottleneck. This server keeps objects in dicts and answers
only what the operator's member-cluster client sends (``clusters.client``): ``/version``,
Nodes and Pods lists, and get/list (with an equality ``labelSelector``)/create/merge-patch/
delete of Namespaces, Services, Deployments and PodDisruptionBudgets. Every request is
counted by (method, resource); ``GET /_stats`` returns the counts, ``POST /_reset`` clears
them. Run in its own process so its CPU is not the operator's:

    python hack/fake_apiserver.py --port 0      # prints "listening on http://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from typing import Any

from aiohttp import web

Store = dict[tuple[str, str | None, str], dict[str, Any]]
"""(resource plural, namespace, name) -> object."""

RESOURCES = {"namespaces", "services", "deployments", "poddisruptionbudgets"}


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


def make_app() -> web.Application:
    store: Store = {}
    counts: Counter[str] = Counter()
    version = [0]

    def status(code: int, reason: str) -> web.Response:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
        return web.json_response({**body, "reason": reason, "message": reason}, status=code)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(dict(counts))

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
        counts[f"{request.method} {resource}"] += 1
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
            return web.json_response({"kind": "List", "items": items})
        if request.method == "POST":
            body = await request.json()
            key = (resource, namespace, body["metadata"]["name"])
            if key in store:
                return status(409, "AlreadyExists")
            version[0] += 1
            body["metadata"].update(resourceVersion=str(version[0]), generation=1)
            store[key] = body
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
            return web.json_response(merged)
        if request.method == "DELETE":
            del store[key]
            return web.json_response({"kind": "Status", "status": "Success"})
        return status(405, "MethodNotAllowed")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    app.router.add_get("/version", version_)
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
