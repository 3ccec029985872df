"""One capacity profile per (gpu, gpuCount, source) (docs/api.md, "Capacity profiles"):
two equally trusted entries for one key used to be accepted, and the planner used the
first one without a word, so a re-measured profile appended below the old one never
applied. ``modelfleet validate`` and the operator (``InvalidSpec``) now refuse them naming
both entries; a Measured and a Declared one for one GPU, or two counts, stay valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from modelfleet.api.modeldeployment import ModelDeploymentSpec
from modelfleet.cli import app

runner = CliRunner()

BASE = {
    "model": {"name": "llama-3.1-8b-instruct"},
    "runtime": {"engine": "vllm"},
    "resources": {"gpu": {"count": 1, "memoryGiB": 40, "types": ["H100"]}},
    "replicas": {"min": 1, "max": 4},
    "slo": {"ttftP95Ms": 500},
}
OLD = {"gpu": "H100", "prefillTokensPerSecond": 40000, "decodeTokensPerSecond": 4000}
NEW = {"gpu": "H100", "prefillTokensPerSecond": 20000, "decodeTokensPerSecond": 2000}


def _spec(*profiles: dict[str, object]) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({**BASE, "capacityProfiles": list(profiles)})


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (OLD, NEW),
        # source defaults to Declared: an explicit Declared repeats an unset one
        (OLD, {**NEW, "source": "Declared"}),
        (
            {**OLD, "source": "Measured", "gpuCount": 2},
            {**NEW, "source": "Measured", "gpuCount": 2},
        ),
    ],
)
def test_two_profiles_for_one_key_are_refused_naming_both(
    first: dict[str, object], second: dict[str, object]
) -> None:
    with pytest.raises(ValidationError) as refused:
        _spec(first, second)
    assert "capacityProfiles.1 repeats capacityProfiles.0 (same gpu, gpuCount and source)" in str(
        refused.value
    )


def test_profiles_that_differ_in_trust_or_count_are_kept() -> None:
    spec = _spec(
        OLD,
        {**NEW, "source": "Measured"},
        {**NEW, "gpuCount": 2},
        {**NEW, "gpu": "L40S"},
    )
    assert len(spec.capacity_profiles) == 4


def test_validate_refuses_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "md.yaml"
    path.write_text(
        "apiVersion: modelfleet.io/v1alpha1\nkind: ModelDeployment\n"
        "metadata: {name: dup, namespace: default}\n"
        "spec:\n"
        "  model: {name: llama-3.1-8b-instruct}\n"
        "  runtime: {engine: vllm}\n"
        "  resources: {gpu: {count: 1, memoryGiB: 40, types: [H100]}}\n"
        "  replicas: {min: 1, max: 4}\n"
        "  slo: {ttftP95Ms: 500}\n"
        "  capacityProfiles:\n"
        "  - {gpu: H100, prefillTokensPerSecond: 40000, decodeTokensPerSecond: 4000}\n"
        "  - {gpu: H100, prefillTokensPerSecond: 20000, decodeTokensPerSecond: 2000}\n"
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "capacityProfiles.1 repeats capacityProfiles.0" in result.output
