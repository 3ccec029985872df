"""Run the built-in server in-process for tests: the real FastAPI app under a real uvicorn
on a loopback port, the real engine thread, a tiny random-weight model written to disk and
loaded through the real loading path. Clients talk to it over HTTP (the official ``openai``
client).

Importable helper, not a conftest: ``from serving_harness import ...``.
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import uvicorn

from modelfleet.serving.api import ModelService
from modelfleet.serving.server import create_app
from modelfleet.serving.settings import EngineSettings, ServerSettings

MODEL_NAME = "tiny-chat"
READY_TIMEOUT_S = 60.0


@dataclass
class RunningServer:
    """A server on ``url`` (``http://127.0.0.1:PORT``)."""

    url: str
    service: ModelService

    @property
    def api(self) -> str:
        """Base URL for OpenAI clients."""
        return f"{self.url}/v1"

    def metrics_text(self) -> str:
        """GET /metrics."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as reply:
            text: str = reply.read().decode()
            return text

    def sample(self, name: str, **labels: str) -> float:
        """Value of one series in /metrics (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(self.metrics_text()):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    def wait_metric(
        self, name: str, value: float, *, timeout_s: float = 60.0, **labels: str
    ) -> None:
        """Poll /metrics until ``name{labels}`` equals ``value`` (AssertionError after
        ``timeout_s``, a hang bound: it returns as soon as the value is there)."""
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            last = self.sample(name, **labels)
            if last == value:
                return
            time.sleep(0.05)
        raise AssertionError(f"{name}{labels} stayed {last}, expected {value}")


def settings_for(model_dir: Path, **engine: Any) -> ServerSettings:
    """Settings serving ``model_dir`` as ``MODEL_NAME`` on a free port, engine overrides."""
    return ServerSettings(
        model=str(model_dir),
        served_model_name=(MODEL_NAME,),
        port=0,
        cache_dir=model_dir.parent / "cache",
        cpu_threads=1,  # the tiny model runs faster on one thread, above all on a busy machine
        engine=replace(EngineSettings(), **engine),
    )


@contextlib.contextmanager
def running_server(settings: ServerSettings, *, wait_ready: bool = True) -> Iterator[RunningServer]:
    """Serve ``create_app(settings)`` with uvicorn on a thread; stops it on exit."""
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    running = RunningServer(url=f"http://127.0.0.1:{port}", service=app.state.service)
    try:
        if wait_ready:
            _wait_ready(running)
        yield running
    finally:
        server.should_exit = True
        thread.join(30)


def _wait_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(f"{server.url}/ready", timeout=2) as reply,
        ):
            if reply.status == 200:
                return
        if server.service.load_error:
            raise RuntimeError(f"model failed to load: {server.service.load_error}")
        time.sleep(0.05)
    raise RuntimeError("the server did not become ready")
