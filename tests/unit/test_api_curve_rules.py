"""What ``measurement.curve`` may hold (docs/api.md, "The latency-vs-load curve"): rates
rising strictly point to point, a TTFT or TPOT p95 on every point, latencies that never
fall as the rate rises, a positive rate. ``modelfleet validate`` and ``plan`` refuse the
rest naming the field and the point; they used to be re-sorted, dropped or read as a
running maximum without a word. ``modelfleet profile`` writes only curves that pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.api.profiles import ProfilePoint, curve_problems
from modelfleet.cli import app
from modelfleet.profile.command import sweep_curve
from modelfleet.profile.search import RequestResult, StepResult

runner = CliRunner()

MANIFEST = """\
apiVersion: modelfleet.io/v1alpha1
kind: ModelDeployment
metadata: {{name: qwen-small}}
spec:
  model: {{name: qwen2.5-1.5b-instruct, uri: "hf://Qwen/Qwen2.5-1.5B-Instruct"}}
  runtime: {{engine: vllm}}
  resources: {{gpu: {{count: 1, memoryGiB: 24}}}}
  replicas: {{min: 1, max: 2}}
  slo: {{ttftP95Ms: 200}}
  capacityProfiles:
  - gpu: L40S
    prefillTokensPerSecond: 9000
    decodeTokensPerSecond: 1500
    source: Measured
    measurement:
      requestsPerSecond: 4
      curve:
{points}
"""

FIELD = "spec.capacityProfiles.0.measurement.curve"


def _write(tmp_path: Path, points: list[str]) -> Path:
    path = tmp_path / "md.yaml"
    path.write_text(MANIFEST.format(points="\n".join(f"      - {p}" for p in points)))
    return path


VALID = [
    # The docs' example, and a flat floor (equal latencies are fine), a TPOT-only curve.
    [
        "{requestsPerSecond: 1, ttftP95Ms: 120, tpotP95Ms: 24}",
        "{requestsPerSecond: 2, ttftP95Ms: 140, tpotP95Ms: 29.5}",
        "{requestsPerSecond: 4, ttftP95Ms: 181, tpotP95Ms: 38.2}",
    ],
    [
        "{requestsPerSecond: 1, ttftP95Ms: 120}",
        "{requestsPerSecond: 2, ttftP95Ms: 120}",
        "{requestsPerSecond: 3, ttftP95Ms: 300}",
    ],
    ["{requestsPerSecond: 1, tpotP95Ms: 20}", "{requestsPerSecond: 4, tpotP95Ms: 35}"],
]


@pytest.mark.parametrize("points", VALID)
def test_a_readable_curve_is_valid(tmp_path: Path, points: list[str]) -> None:
    result = runner.invoke(app, ["validate", str(_write(tmp_path, points))])
    assert result.exit_code == 0, result.output


INVALID = [
    (
        "unsorted",
        ["{requestsPerSecond: 3, tpotP95Ms: 30}", "{requestsPerSecond: 1, tpotP95Ms: 31}"],
        f"{FIELD}: curve.1.requestsPerSecond is not above curve.0's",
    ),
    (
        "duplicate rate",
        ["{requestsPerSecond: 2, tpotP95Ms: 30}", "{requestsPerSecond: 2, tpotP95Ms: 30}"],
        "curve.1.requestsPerSecond is not above curve.0's",
    ),
    (
        "TTFT falls",
        [
            "{requestsPerSecond: 1, ttftP95Ms: 150}",
            "{requestsPerSecond: 2, ttftP95Ms: 160}",
            "{requestsPerSecond: 3, ttftP95Ms: 140}",
        ],
        "curve.2.ttftP95Ms is below curve.1.ttftP95Ms",
    ),
    (
        "TPOT falls past a point without TPOT",
        [
            "{requestsPerSecond: 1, tpotP95Ms: 30}",
            "{requestsPerSecond: 2, ttftP95Ms: 100}",
            "{requestsPerSecond: 3, tpotP95Ms: 25}",
        ],
        "curve.2.tpotP95Ms is below curve.0.tpotP95Ms",
    ),
    (
        "no latency",
        ["{requestsPerSecond: 1, tpotP95Ms: 30}", "{requestsPerSecond: 2}"],
        "curve.1 has neither ttftP95Ms nor tpotP95Ms",
    ),
    (
        "zero rate (the CRD schema checks it too)",
        ["{requestsPerSecond: 0, tpotP95Ms: 30}", "{requestsPerSecond: 2, tpotP95Ms: 31}"],
        f"{FIELD}.0.requestsPerSecond",
    ),
]


@pytest.mark.parametrize(("case", "points", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_an_unreadable_curve_is_refused_naming_the_point(
    tmp_path: Path, case: str, points: list[str], expected: str
) -> None:
    path = _write(tmp_path, points)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code != 0, result.output
    assert expected in " ".join(result.output.split()), result.output
    planned = runner.invoke(app, ["plan", "--fleet", "examples/fleet", str(path)])
    assert planned.exit_code != 0, planned.output
    assert expected in " ".join(planned.output.split()), planned.output


@pytest.mark.parametrize("curve", [True, False], ids=["with a curve", "without"])
def test_a_curve_beside_a_zero_capacity_rate_is_refused(tmp_path: Path, curve: bool) -> None:
    """The curve's rates are read relative to ``requestsPerSecond``: beside 0 it was
    accepted and never used. A zero rate without a curve stays valid (the profile says the
    replica meets the SLO at no rate)."""
    points = ["{requestsPerSecond: 1, ttftP95Ms: 120}", "{requestsPerSecond: 2, ttftP95Ms: 140}"]
    text = (
        _write(tmp_path, points).read_text().replace("requestsPerSecond: 4", "requestsPerSecond: 0")
    )
    if not curve:
        text = text[: text.index("      curve:")]
    path = tmp_path / "md.yaml"
    path.write_text(text)
    expected = f"{FIELD}: curve is set but requestsPerSecond is 0"
    for args in (["validate", str(path)], ["plan", "--fleet", "examples/fleet", str(path)]):
        result = runner.invoke(app, args)
        output = " ".join(result.output.split())
        if curve:
            assert result.exit_code != 0 and expected in output, result.output
        else:
            assert result.exit_code == 0, result.output


def test_the_schema_refuses_a_zero_rate() -> None:
    """A 1.19 API server can check this one itself (``exclusiveMinimum``)."""
    from modelfleet.api.crdgen import model_deployment_crd

    crd = model_deployment_crd()
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    point = schema["properties"]["spec"]["properties"]["capacityProfiles"]["items"]
    point = point["properties"]["measurement"]["properties"]["curve"]["items"]
    rate = point["properties"]["requestsPerSecond"]
    assert (rate["minimum"], rate["exclusiveMinimum"]) == (0, True)
    assert "x-kubernetes-validations" not in point


def _step(rate: float, achieved: float, ttft_ms: float, tpot_ms: float) -> StepResult:
    n = 20
    results = tuple(
        RequestResult(
            ttft_s=ttft_ms / 1000, tpot_s=tpot_ms / 1000, prompt_tokens=10, output_tokens=5
        )
        for _ in range(n)
    )
    return StepResult(rate=rate, duration_s=n / achieved, results=results)


def test_profile_writes_only_a_readable_curve_of_measured_values() -> None:
    steps = [
        _step(1.0, 1.0, 120.0, 24.0),
        _step(2.0, 2.0, 118.0, 25.0),  # TTFT noise on the floor
        _step(4.0, 3.9, 150.0, 23.0),  # TPOT noise
        _step(8.0, 7.5, 400.0, 40.0),
        _step(9.0, 7.0, 900.0, 60.0),  # past saturation: served less at a higher rate
    ]
    curve = sweep_curve(steps)
    points = [ProfilePoint.model_validate(p) for p in curve]
    assert curve_problems(points) == []
    assert [p["requestsPerSecond"] for p in curve] == [1.0, 2.0, 3.9, 7.5]
    assert curve[1] == {"requestsPerSecond": 2.0, "tpotP95Ms": 25.0}
    assert curve[2] == {"requestsPerSecond": 3.9, "ttftP95Ms": 150.0}
    assert curve[3] == {"requestsPerSecond": 7.5, "ttftP95Ms": 400.0, "tpotP95Ms": 40.0}
