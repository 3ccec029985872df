"""``modelfleet validate`` checks object names the way the API server does (QA br9).

Found on main 6465787: the README says validate checks "exactly what the API server will
enforce", yet ``metadata.name: My_Model`` (or ``UPPER``, ``-x``, ``ünï``) and
``metadata.namespace: Team_A`` passed with exit 0; ``kubectl apply`` refuses every one
("a lowercase RFC 1123 subdomain must consist of ...").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

runner = CliRunner()


def manifest(kind: str, name: str, namespace: str | None = None) -> str:
    ns = f", namespace: {namespace}" if namespace else ""
    meta = f"metadata: {{name: '{name}'{ns}}}\n"
    if kind == "FleetCluster":
        spec = (
            "spec:\n  provider: simulated\n  cloud: gcp\n  region: europe-west4\n"
            "  gpuOfferings: [{gpu: H100, gpuMemoryGiB: 80, gpusPerNode: 1, "
            "instanceType: a3-highgpu-1g, onDemandPerHour: 12.1}]\n"
        )
    else:
        spec = (
            "spec:\n  model: {name: m}\n  runtime: {engine: vllm}\n"
            "  resources: {gpu: {count: 1, types: [H100]}}\n  replicas: {min: 1, max: 2}\n"
        )
    return f"apiVersion: modelfleet.io/v1alpha1\nkind: {kind}\n{meta}{spec}"


@pytest.mark.parametrize("kind", ["ModelDeployment", "FleetCluster"])
@pytest.mark.parametrize("name", ["My_Model", "UPPER", "-x", "x-", "ünï", "a" * 254, "a..b"])
def test_an_invalid_name_is_refused_naming_the_field(tmp_path: Path, kind: str, name: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(manifest(kind, name), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    assert "metadata.name: not a lowercase RFC 1123 subdomain" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("kind", ["ModelDeployment", "FleetCluster"])
@pytest.mark.parametrize("name", ["llama-8b", "a.b", "a" * 253, "0abc"])
def test_a_valid_name_passes(tmp_path: Path, kind: str, name: str) -> None:
    path = tmp_path / "m.yaml"
    ns = "team-a" if kind == "ModelDeployment" else None
    path.write_text(manifest(kind, name, ns), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("namespace", ["Team_A", "a.b", "n" * 64])
def test_an_invalid_namespace_is_refused(tmp_path: Path, namespace: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(manifest("ModelDeployment", "ok", namespace), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    assert "metadata.namespace: not a lowercase RFC 1123 label" in result.output
