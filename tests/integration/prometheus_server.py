"""A real Prometheus server and a scrape target for integration tests.

Tests that read metrics run the Debian/upstream ``prometheus`` binary on a loopback port
with a throw-away config and TSDB, scraping a ``TextExporter`` (an HTTP thread serving
whatever exposition text a callable returns). Use ``prometheus_binary()`` first: it skips
the test when the binary is missing on a workstation and fails it on CI, where
``apt-get install prometheus`` is part of the set-up.

Importable helper, not a conftest: ``from prometheus_server import ...`` (tests/integration
on sys.path, pytest's default) or ``from tests.integration.prometheus_server import ...``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

STARTUP_TIMEOUT_S = 30.0


def on_ci() -> bool:
    """Whether the ``CI`` environment variable says this is a CI run."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def prometheus_binary() -> str:
    """Path of the ``prometheus`` binary. Skips the calling test when it is missing, unless
    on CI, where a missing binary fails the test (CI must run these tests)."""
    found = shutil.which("prometheus")
    if found:
        return found
    message = "the prometheus binary is not installed (apt-get install prometheus)"
    if on_ci():
        pytest.fail(f"{message}; CI must install it", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A loopback TCP port free at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TextExporter:
    """Serves ``render()`` as Prometheus text exposition on ``http://127.0.0.1:<port>/metrics``
    from a daemon thread, so that exact values (engine metric names with colons, counters
    without ``_total``) can be exposed as the engines expose them."""

    def __init__(self, render: Callable[[], str]) -> None:
        self.scrapes = 0

        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = render().encode()
                exporter.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def target(self) -> str:
        """``host:port`` for a scrape config."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class PrometheusServer:
    """A Prometheus process scraping ``targets`` every ``scrape_interval``.

    ``start()`` returns once ``/-/ready`` answers; ``stop()`` terminates (then kills) the
    process. Its log is kept in ``workdir/prometheus.log``; ``log_tail()`` gives the end of
    it for assertion messages.
    """

    def __init__(
        self,
        binary: str,
        workdir: Path,
        *,
        targets: Sequence[str],
        scrape_interval: str = "1s",
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.port = 0
        self.log_path = workdir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {"job_name": "exporter", "static_configs": [{"targets": self.targets}]}
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        return path

    def start(self, *, timeout_s: float = STARTUP_TIMEOUT_S, attempts: int = 3) -> None:
        """Start and wait until ready. Retries on another port when the chosen one was taken
        in the meantime. Raises ``RuntimeError`` with the log tail on failure."""
        config = self._write_config()
        for _ in range(attempts):
            self.port = free_port()
            tsdb = self.workdir / f"tsdb-{self.port}"
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={tsdb}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--storage.tsdb.retention.time=1h",
                        "--log.level=info",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ready(timeout_s):
                return
            exited = self._process.poll() is not None
            self.stop()
            if not (exited and "address already in use" in self.log_tail()):
                break
        raise RuntimeError(f"prometheus did not become ready; log:\n{self.log_tail()}")

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply,
            ):
                if reply.status == 200:
                    return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Terminate the process (kill after 10 s). Idempotent."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log."""
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Run an instant query (blocking) and return ``data.result``."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as reply:
            payload = json.load(reply)
        result: list[dict[str, Any]] = payload["data"]["result"]
        return result

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        *,
        timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``predicate(result)`` holds. Raises ``AssertionError`` with the
        last result and the log tail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        result: list[dict[str, Any]] = []
        while True:
            with contextlib.suppress(OSError, KeyError, ValueError):
                result = self.query(promql)
                if predicate(result):
                    return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout_s}s waiting for {promql!r}; last result "
                    f"{result!r}; prometheus log:\n{self.log_tail()}"
                )
            time.sleep(0.25)


def expected_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float:
    """Prometheus' histogram_quantile, restated for checking it: linear interpolation inside
    the bucket that holds rank q*total; the +Inf bucket yields the highest finite bound.
    ``counts`` are cumulative per upper bound in ``bounds``."""
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    raise AssertionError("unreachable: the last bucket holds every observation")
