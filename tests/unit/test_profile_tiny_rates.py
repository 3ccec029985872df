"""``modelfleet profile`` never writes a profile the operator refuses.

The writer rounded every rate to 3 decimals. A sweep with long steps (``--step-seconds``
2,000 and more: one request completed per step is 0.0005 req/s or less) measured a
capacity that rounded to ``requestsPerSecond: 0``, written beside a curve whose higher
steps did not round to 0, and a curve beside ``requestsPerSecond: 0`` is invalid (the
curve is read relative to it): ``modelfleet validate`` and the operator refused the file
the command had just written. A positive rate now keeps 3 significant digits where 3
decimals would make it 0; the token rates likewise (0 reads as "cannot serve").

Writer -> validator: the manifest ``profile_manifest`` writes, pasted into a
ModelDeployment, through ``modelfleet validate`` (the API models, the CRD schema and its
rules, as the API server and the operator read it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from modelfleet.api import ModelDeployment
from modelfleet.cli import app
from modelfleet.profile.command import ProfileRequest, profile_manifest
from modelfleet.profile.mix import Mix
from modelfleet.profile.search import RequestResult, StepResult, profile_from

runner = CliRunner()

STEP_SECONDS = 2_500.0


def _step(rate: float, completed: int, ttft_ms: float) -> StepResult:
    """``completed`` requests served in one step of ``STEP_SECONDS``."""
    results = tuple(
        RequestResult(ttft_s=ttft_ms / 1000, tpot_s=0.02, prompt_tokens=600, output_tokens=250)
        for _ in range(completed)
    )
    return StepResult(rate=rate, duration_s=STEP_SECONDS, results=results)


def _manifest(steps: list[StepResult], passed: list[bool]) -> dict[str, object]:
    result = profile_from(steps, passed)
    assert result is not None
    request = ProfileRequest(
        base_url="http://127.0.0.1:9/v1",
        model="m",
        gpu="H100",
        gpu_count=1,
        ttft_p95_ms=200.0,
        tpot_p95_ms=None,
        mix=Mix(prompt_median=600, output_median=250),
        step_seconds=STEP_SECONDS,
    )
    fragment = profile_manifest(request, result, steps=steps)
    spec: dict[str, object] = {
        "model": {"name": "m"},
        "runtime": {"engine": "vllm"},
        "resources": {"gpu": {"count": 1, "memoryGiB": 40, "types": ["H100"]}},
        "replicas": {"min": 1, "max": 2},
        "slo": {"ttftP95Ms": 200},
        **fragment["spec"],  # type: ignore[dict-item]
    }
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "slow", "namespace": "default"},
        "spec": spec,
    }


def test_a_tiny_measured_rate_is_written_as_a_valid_profile(tmp_path: Path) -> None:
    # One request per 2,500 s step within the SLO (0.0004 req/s), five beyond it (0.002).
    steps = [_step(0.001, 1, 150.0), _step(0.002, 5, 900.0)]
    doc = _manifest(steps, [True, False])
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output  # refused on main: "requestsPerSecond is 0"
    md = ModelDeployment.model_validate(doc)
    profile = md.spec.capacity_profiles[0]  # type: ignore[index]
    assert profile.measurement is not None
    assert profile.measurement.requests_per_second == pytest.approx(0.0004)
    assert [p.requests_per_second for p in profile.measurement.curve or []] == [0.0004, 0.002]
    assert profile.prefill_tokens_per_second > 0 and profile.decode_tokens_per_second > 0


def test_positive_round_keeps_ordinary_values_and_never_rounds_a_positive_one_to_zero() -> None:
    from modelfleet.profile.command import positive_round

    assert positive_round(12.3456, 3) == 12.346  # what the writer always wrote
    assert positive_round(0.0, 3) == 0.0
    assert positive_round(0.0004, 3) == 0.0004
    assert positive_round(1 / 2_600, 3) == 0.000385
    assert positive_round(0.04, 1) == 0.04
