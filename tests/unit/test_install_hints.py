"""Every missing-extra hint is one message, and the command it gives is the true one.

``modelfleet run`` said ``pip install "modelfleet[operator]"`` while the README installs
from a source checkout with ``pip install -e '.[operator]'`` (the name alone asks the
package index, not the checkout being run); ``serve`` and ``profile`` said
``pip install 'modelfleet[...]'`` in another form again, and ``simulate`` and ``gateway``
printed a traceback. They all go through ``modelfleet.extras`` now:

- from a source checkout (what the README and CI install, ``pip install -e``): this
  interpreter's pip, ``-e`` on the checkout (``.`` from its root);
- from an installed package: this interpreter's pip on ``modelfleet[extra]``.

A missing package is simulated the way Python sees one: ``sys.modules[name] = None``
makes its import raise ImportError, in a fresh interpreter per command.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = shlex.quote(sys.executable)


def _extras() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(data["project"]["optional-dependencies"])


def test_from_the_checkout_the_hint_installs_the_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from modelfleet.extras import install_command, source_checkout

    assert source_checkout() == ROOT, "the tests run on an editable install (make test)"
    monkeypatch.chdir(ROOT)
    assert install_command("operator") == f"{PYTHON} -m pip install -e '.[operator]'"
    monkeypatch.chdir(tmp_path)  # elsewhere: the checkout's path
    assert install_command("serving") == f"{PYTHON} -m pip install -e '{ROOT}[serving]'"


def test_an_installed_package_names_the_package(tmp_path: Path) -> None:
    """The package laid out as pip installs it (``site-packages/modelfleet``, no
    pyproject.toml above it)."""
    site = tmp_path / "site-packages"
    shutil.copytree(
        ROOT / "operator" / "modelfleet",
        site / "modelfleet",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    script = (
        "import modelfleet; from modelfleet.extras import install_command; "
        "print(modelfleet.__file__); print(install_command('profile'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    where, command = result.stdout.splitlines()
    assert Path(where).is_relative_to(site), where
    assert command == f"{PYTHON} -m pip install 'modelfleet[profile]'"


COMMANDS = [
    # (command line, module made missing, extra, what the message names)
    (["run"], "kopf", "operator", "modelfleet run"),
    (["serve", "--model", "m"], "fastapi", "serving", "modelfleet serve"),
    (
        [
            "profile",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--gpu",
            "H100",
            "--ttft-p95-ms",
            "200",
            "--prompt-tokens",
            "600",
            "--output-tokens",
            "250",
        ],
        "openai",
        "profile",
        "modelfleet profile",
    ),
    (["simulate", "--hours", "1"], "numpy", "sim", "modelfleet simulate"),
    (["gateway"], "aiohttp", "operator", "modelfleet gateway"),
]


@pytest.mark.parametrize(("argv", "module", "extra", "what"), COMMANDS, ids=lambda v: str(v))
def test_each_command_says_the_one_true_hint(
    tmp_path: Path, argv: list[str], module: str, extra: str, what: str
) -> None:
    assert extra in _extras()
    script = (
        f"import sys; sys.modules[{module!r}] = None; "
        f"sys.argv = ['modelfleet', *{argv!r}]; "
        "from modelfleet.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the checkout: the hint names its path
        timeout=120,
        check=False,
    )
    assert result.returncode in (1, 2), (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    line = " ".join(result.stderr.split())
    expected = (
        f"error: {what} needs the {extra} extra (missing: {module}): "
        f"{PYTHON} -m pip install -e '{ROOT}[{extra}]'"
    )
    assert line == expected, line


def _reach_sdk(provider: str) -> None:
    """Import ``provider``'s SDK through its one import seam."""
    if provider == "aws":
        from modelfleet.providers.aws.sdk import import_module

        import_module("boto3")
    elif provider == "gcp":
        from modelfleet.providers.gcp.sdk import load_sdk as load_gcp

        load_gcp()
    else:
        from modelfleet.providers.azure.sdk import load_sdk as load_azure

        load_azure()


CLOUD_SDKS = [("aws", "boto3"), ("gcp", "google.cloud"), ("azure", "azure.identity")]
"""(provider, a module of its SDK made missing)."""


@pytest.mark.parametrize(("provider", "module"), CLOUD_SDKS, ids=lambda v: str(v))
def test_a_cloud_provider_without_its_extra_names_the_package_not_a_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, provider: str, module: str
) -> None:
    """A provider's message ends up in a FleetCluster's Events and the operator's log, read
    by cluster users: it names ``modelfleet[<cloud>]`` and never the operator pod's
    interpreter or source checkout (the CLI's hint above keeps them: a local terminal)."""
    from modelfleet.providers import ProviderUnavailable

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ProviderUnavailable) as caught:
        _reach_sdk(provider)
    message = str(caught.value)
    assert message.startswith(f"the {provider} provider needs the {provider} extra (missing: ")
    assert f'"modelfleet[{provider}]"' in message, message
    assert sys.executable not in message and str(ROOT) not in message, message
    assert "/" not in message and "-e " not in message, message


def test_a_cloud_provider_module_that_cannot_load_names_the_package_not_a_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``providers.factory.provider_for``'s own import of the provider's package: the same
    message for cluster users as the SDK seams'."""
    from datetime import UTC, datetime

    from modelfleet.api import FleetCluster
    from modelfleet.clusters.fake import InMemoryClusterClient
    from modelfleet.providers import ProviderUnavailable
    from modelfleet.providers.factory import provider_for
    from modelfleet.reconciler.node_source import ClusterNodeSource

    monkeypatch.setitem(sys.modules, "modelfleet.providers.gcp", None)
    cluster = FleetCluster.model_validate(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "FleetCluster",
            "metadata": {"name": "w"},
            "spec": {
                "provider": "gcp",
                "region": "europe-west4",
                "gcp": {"project": "my-project", "location": "europe-west4", "clusterName": "c"},
            },
        }
    )
    nodes = ClusterNodeSource(InMemoryClusterClient("w"), cluster="w")
    with pytest.raises(ProviderUnavailable) as caught:
        provider_for(cluster, nodes=nodes, clock=lambda: datetime.now(UTC))
    message = str(caught.value)
    assert '"modelfleet[gcp]"' in message, message
    assert sys.executable not in message and str(ROOT) not in message, message
