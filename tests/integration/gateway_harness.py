"""A gateway in front of stub engines, on loopback, for the gateway's integration tests.

``gateway_for(...)`` writes a static endpoints file for the given stubs and routes, starts
the real ``serve_gateway`` on port 0 and yields it with an official ``openai.AsyncOpenAI``
client pointed at it (client-side retries off, so what the test sees is the gateway's
doing). ``rewrite`` changes the file while the gateway runs (it re-reads it on change).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import yaml
from openai_stub import StubEngine

from modelfleet.gateway.run import GatewayOptions, RunningGateway, serve_gateway
from modelfleet.gateway.settings import GatewaySettings


@dataclass(frozen=True)
class Dep:
    """A deployment of the static file: its stubs, served model and (per stub) region/ready."""

    name: str
    model: str
    stubs: Sequence[StubEngine]
    regions: Mapping[str, str] | None = None
    not_ready: frozenset[str] = frozenset()
    names: Mapping[str, str] | None = None
    """Endpoint name per stub name, when not the stub's own (one stub in two deployments)."""

    def as_yaml(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": "team",
            "model": self.model,
            "endpoints": [
                {
                    "url": s.url,
                    "name": (self.names or {}).get(s.name, s.name),
                    "region": (self.regions or {}).get(s.name),
                    "ready": s.name not in self.not_ready,
                }
                for s in self.stubs
            ],
        }


def write_endpoints(path: Path, deps: Sequence[Dep], routes: Sequence[dict[str, Any]]) -> None:
    """Write the static file (bumping its mtime so a running gateway re-reads it)."""
    text = yaml.safe_dump(
        {"deployments": [d.as_yaml() for d in deps], "routes": list(routes)}, sort_keys=False
    )
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    new = path.stat().st_mtime_ns
    if new <= old:  # coarse file-system clocks: make the change visible
        os.utime(path, ns=(old + 1_000_000, old + 1_000_000))


def route(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A ModelRoute manifest in namespace ``team``."""
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": name, "namespace": "team"},
        "spec": spec,
    }


@dataclass
class Harness:
    running: RunningGateway
    client: openai.AsyncOpenAI
    path: Path

    @property
    def url(self) -> str:
        return self.running.url

    def rewrite(self, deps: Sequence[Dep], routes: Sequence[dict[str, Any]] = ()) -> None:
        write_endpoints(self.path, deps, routes)

    def client_with(self, key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)


@contextlib.asynccontextmanager
async def gateway_for(
    tmp_path: Path,
    deps: Sequence[Dep],
    routes: Sequence[dict[str, Any]] = (),
    *,
    settings: GatewaySettings | None = None,
    api_key: str = "unused",
    **options: Any,
) -> AsyncIterator[Harness]:
    """Start a gateway over a static file of ``deps`` and ``routes`` (see module doc)."""
    path = tmp_path / "endpoints.yaml"
    write_endpoints(path, deps, routes)
    opts = GatewayOptions(
        host="127.0.0.1",
        port=0,
        management_port=0,
        endpoints_file=path,
        settings=settings or GatewaySettings(scrape_interval=0),
        **options,
    )
    async with serve_gateway(opts) as running:
        client = openai.AsyncOpenAI(
            base_url=f"{running.url}/v1", api_key=api_key, max_retries=0, timeout=30
        )
        try:
            yield Harness(running, client, path)
        finally:
            await client.close()
