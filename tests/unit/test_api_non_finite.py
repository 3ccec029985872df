"""Infinite numbers are rejected by ``modelfleet validate`` like the API server rejects them.

The API server cannot carry ``.inf`` or ``.nan`` (JSON has no such numbers), but a file
read by ``modelfleet validate``, ``plan`` or ``simulate`` is YAML, which does. ``ge=0``
already rejects NaN; ``.inf`` passed every bound: a profile curve point at ``.inf``
requests/s became a load of ``inf`` and a correction of 0 (clamped to the floor, halving
the capacity), and ``maxCostPerHour: .inf`` read as "no limit" in a file the cluster would
refuse. The rejection names the field.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelfleet.cli import app

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
      - {{requestsPerSecond: 1, tpotP95Ms: 20}}
      - {{requestsPerSecond: {rate}, tpotP95Ms: {tpot}}}
"""


def _validate(tmp_path: Path, rate: str, tpot: str) -> tuple[int, str]:
    path = tmp_path / "md.yaml"
    path.write_text(MANIFEST.format(rate=rate, tpot=tpot))
    result = runner.invoke(app, ["validate", str(path)])
    return result.exit_code, result.output


def test_a_finite_curve_is_valid(tmp_path: Path) -> None:
    code, output = _validate(tmp_path, "4", "35")
    assert code == 0, output


@pytest.mark.parametrize(
    ("rate", "tpot", "field"),
    [
        (".inf", "35", "requestsPerSecond"),
        ("4", ".inf", "tpotP95Ms"),
        (".nan", "35", "requestsPerSecond"),
    ],
)
def test_a_non_finite_curve_point_is_rejected_naming_the_field(
    tmp_path: Path, rate: str, tpot: str, field: str
) -> None:
    code, output = _validate(tmp_path, rate, tpot)
    assert code != 0, output
    assert f"capacityProfiles.0.measurement.curve.1.{field}" in output
