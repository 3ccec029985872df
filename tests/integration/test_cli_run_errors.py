"""``modelfleet run`` without a usable hub: one line on stderr, exit 1, no traceback.

Each case runs the installed console script in a subprocess, as a newcomer would (issue
14): no kubeconfig, an empty one, an unreachable API server, and a Python without the
``operator`` extra (simulated by blocking the import of ``prometheus_client``). One case
checks the same preflight passes against a live API server (a KMock emulator), so the
checks are not simply always failing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.integration.kube_emulator import closed_url, kube_emulator

from modelfleet.extras import install_command
from modelfleet.run_errors import check_hub

pytestmark = pytest.mark.integration

MODELFLEET = Path(sys.executable).with_name("modelfleet")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    clean.pop("KUBECONFIG", None)
    return subprocess.run(
        args or [str(MODELFLEET), "run"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=120,
        check=False,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def _kubeconfig(server: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "hub", "cluster": {"server": server}}],
        "users": [{"name": "hub", "user": {"token": "t"}}],
        "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "hub"}}],
        "current-context": "hub",
    }


def test_no_kubeconfig_names_the_path_tried(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "config"
    line = _one_line_error(_run({"KUBECONFIG": str(missing)}))
    assert f"no kubeconfig at {missing}" in line
    assert "$KUBECONFIG" in line


def test_no_kubeconfig_at_the_default_location(tmp_path: Path) -> None:
    line = _one_line_error(_run({"HOME": str(tmp_path)}))
    assert f"no kubeconfig at {tmp_path / '.kube' / 'config'}" in line


def test_an_empty_kubeconfig_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "config"
    empty.write_text("")
    line = _one_line_error(_run({"KUBECONFIG": str(empty)}))
    assert f"kubeconfig {empty} is empty" in line


def test_an_unreachable_server_is_one_line_not_retries(tmp_path: Path) -> None:
    server = closed_url()
    config = tmp_path / "config"
    config.write_text(yaml.safe_dump(_kubeconfig(server)))
    result = _run({"KUBECONFIG": str(config)})
    line = _one_line_error(result)
    assert f"cannot reach the hub API server {server}" in line
    assert str(config) in line


def test_missing_operator_extras_say_what_to_install() -> None:
    script = (
        "import sys; sys.modules['prometheus_client'] = None; "
        "sys.argv = ['modelfleet', 'run']; "
        "from modelfleet.cli import main; main()"
    )
    line = _one_line_error(_run({}, sys.executable, "-c", script))
    assert "missing: prometheus_client" in line
    assert install_command("operator") in line  # the same cwd: tests/unit/test_install_hints.py


async def test_a_reachable_hub_passes_the_preflight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with kube_emulator(crds=False) as hub:
        config = tmp_path / "config"
        config.write_text(yaml.safe_dump(hub.kubeconfig()))
        monkeypatch.setenv("KUBECONFIG", str(config))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        await check_hub()
        assert ("GET", "/version") in hub.requests()
