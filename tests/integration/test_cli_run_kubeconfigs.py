"""``modelfleet run`` with a kubeconfig that is there but broken: the one line names the part
at fault.

Before these checks a current-context naming no context, a context naming an undefined
cluster and an exec plugin that is not installed all said "kubeconfig is unusable
(ConfigException/FileNotFoundError): it needs clusters, users, contexts and a
current-context" (the exec case with a stray ``[Errno 2]`` line above it); a server URL
without an http(s) scheme said the API server "did not answer within 5s"; a folder given
as $KUBECONFIG said "no kubeconfig at" it. Each case here hands ``check_hub`` (what
``modelfleet run`` calls first) such a kubeconfig; one runs the console script to check
the exec case is a single line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from tests.integration.kube_emulator import closed_url

from modelfleet.extras import install_command
from modelfleet.run_errors import StartupError, check_hub

pytestmark = pytest.mark.integration


def _kubeconfig(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "hub", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "admin", "user": {"token": "t"}}],
        "contexts": [{"name": "work", "context": {"cluster": "hub", "user": "admin"}}],
        "current-context": "work",
    }
    config.update(changes)
    return config


def _write(path: Path, config: dict[str, Any] | None) -> None:
    if config is not None:
        path.write_text(yaml.safe_dump(config))


async def _startup_error(
    path: Path, config: dict[str, Any] | None, monkeypatch: pytest.MonkeyPatch
) -> str:
    _write(path, config)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(StartupError) as caught:
        await check_hub(timeout=2.0)
    return str(caught.value)


async def test_a_current_context_that_is_not_defined_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _kubeconfig(**{"current-context": "prod"})
    message = await _startup_error(tmp_path / "config", config, monkeypatch)
    assert "current-context 'prod' is not one of its contexts (work)" in message


async def test_a_kubeconfig_without_a_current_context_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _kubeconfig()
    del config["current-context"]
    message = await _startup_error(tmp_path / "config", config, monkeypatch)
    assert "no current-context" in message
    assert "kubectl config use-context" in message


async def test_a_context_naming_an_undefined_cluster_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _kubeconfig(
        contexts=[{"name": "work", "context": {"cluster": "gone", "user": "admin"}}]
    )
    message = await _startup_error(tmp_path / "config", config, monkeypatch)
    assert "context 'work' names cluster 'gone', which it does not define" in message


@pytest.mark.parametrize("server", ["ftp://127.0.0.1:6443", "127.0.0.1:6443", "https://"])
async def test_a_server_that_is_not_an_http_url_is_not_called_unreachable(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _kubeconfig(clusters=[{"name": "hub", "cluster": {"server": server}}])
    message = await _startup_error(tmp_path / "config", config, monkeypatch)
    assert f"cluster 'hub' has server {server!r}, not an http(s) URL" in message
    assert "did not answer" not in message


async def test_a_folder_as_kubeconfig_is_called_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = await _startup_error(tmp_path, None, monkeypatch)
    assert f"kubeconfig {tmp_path} ($KUBECONFIG) is a folder, not a file" in message


def _exec_kubeconfig(command: str) -> dict[str, Any]:
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": command,
        "args": ["eks", "get-token", "--cluster-name", "prod"],
    }
    return _kubeconfig(users=[{"name": "admin", "user": {"exec": plugin}}])


def test_a_missing_exec_plugin_is_one_line_naming_the_plugin(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(yaml.safe_dump(_exec_kubeconfig("aws-cli-not-installed")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("modelfleet")), "run"],
        capture_output=True,
        text=True,
        env={**env, "KUBECONFIG": str(config)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "exec plugin 'aws-cli-not-installed', which is not installed" in lines[0]
    assert "token kubeconfig" in lines[0]


async def test_an_installed_exec_plugin_is_not_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sys.executable exists, so the kubeconfig passes this check and fails later (the
    # "plugin" prints no credential): whatever the error, it must not blame the plugin's
    # absence.
    config = _exec_kubeconfig(sys.executable)
    message = await _startup_error(tmp_path / "config", config, monkeypatch)
    assert "not installed" not in message


def test_the_install_hint_names_this_interpreter_s_pip(tmp_path: Path) -> None:
    # README runs .venv/bin/modelfleet without activating the venv: a bare `pip install`
    # would go to another Python and the next `modelfleet run` would fail the same way.
    script = (
        "import sys; sys.modules['kopf'] = None; "
        "sys.argv = ['modelfleet', 'run']; "
        "from modelfleet.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1, result.stderr
    line = " ".join(result.stderr.split())  # rich may wrap the long path
    assert install_command("operator").startswith(f"{sys.executable} -m pip install ")
    assert install_command("operator") in line


async def test_a_refused_connection_is_not_called_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A closed port refuses at once: saying the server "did not answer within 5s" sends the
    # newcomer looking for a slow server rather than a wrong address or a stopped cluster.
    server = closed_url()
    config = _kubeconfig(clusters=[{"name": "hub", "cluster": {"server": server}}])
    message = await _startup_error(tmp_path / "config", config, monkeypatch)
    assert f"cannot reach the hub API server {server}" in message
    assert "cannot connect to the API server (ClientConnectorError)" in message
    assert "did not answer" not in message


@pytest.mark.parametrize("status", [200, 404])
async def test_a_web_server_that_is_not_kubernetes_is_named_before_kopf_starts(
    status: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A kubeconfig pointing at the wrong port (a web app, an ingress) used to pass the
    # preflight, then kopf printed ~160 lines with 4 tracebacks ("Resource observer has
    # failed: <!DOCTYPE HTML>...").
    async def page(_: web.Request) -> web.Response:
        return web.Response(status=status, text="<!DOCTYPE HTML><html>hello</html>")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        server = f"http://127.0.0.1:{port}"
        config = _kubeconfig(clusters=[{"name": "hub", "cluster": {"server": server}}])
        message = await _startup_error(tmp_path / "config", config, monkeypatch)
    finally:
        await runner.cleanup()
    assert f"{server} (from kubeconfig {tmp_path / 'config'}) answered GET /version" in message
    assert "not as a Kubernetes API server does" in message
