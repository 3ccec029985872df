"""`modelfleet plan` with a capacity profile for one GPU type of several allowed (brk15a G1).

docs/api.md's example profiles H100 only (12.9 req/s at 600/250 tokens); on
examples/multicloud-failover.yaml (types H100, A100-80GB, L40S) with two replicas on L40S
and 40 req/s, plan sized every GPU "at 12.9 req/s per replica", asked for 4 and placed them
on L40S and A100-80GB: the cheap slow GPUs looked cheapest per unit of capacity, and the
fleet was a third of what the load needs. Now an unprofiled type is estimated from the H100
profile scaled by data-sheet figures (docs/decisions.md, "Predictive mode"), and the plan
says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml
from typer.testing import CliRunner

from modelfleet.cli import app

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "examples" / "fleet"
NOW = "2025-06-01T12:00:30Z"
runner = CliRunner()

H100_CAP = 1 / (600 / 40_000 + 250 / 4_000)  # 12.9 req/s
# NVIDIA data sheets: the slower of bandwidth and dense BF16 relative to H100 (3.35 TB/s, 989).
ESTIMATE = {
    "H100": H100_CAP,
    "L40S": H100_CAP * min(0.864 / 3.35, 181 / 989),
    "A100-80GB": H100_CAP * min(2.039 / 3.35, 312 / 989),
}


def _files(tmp_path: Path, *, placed_on_l40s: bool = True) -> tuple[Path, Path]:
    doc = yaml.safe_load((ROOT / "examples" / "multicloud-failover.yaml").read_text())
    doc["spec"]["workload"] = {"promptTokens": 600, "outputTokens": 250}
    doc["spec"]["capacityProfiles"] = [
        {
            "gpu": "H100",
            "gpuCount": 1,
            "source": "Measured",
            "prefillTokensPerSecond": 40000,
            "decodeTokensPerSecond": 4000,
        }
    ]
    if placed_on_l40s:
        doc["status"] = {
            "placements": [
                {
                    "cluster": "aws-use1",
                    "region": "us-east-1",
                    "cloud": "aws",
                    "gpu": "L40S",
                    "instanceType": "g6e.xlarge",
                    "capacityType": "OnDemand",
                    "replicas": 2,
                    "ready": 2,
                }
            ]
        }
    md = tmp_path / "md.yaml"
    md.write_text(yaml.safe_dump(doc))
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(
        yaml.safe_dump(
            {
                "observedAt": "2025-06-01T12:00:00Z",
                "deployments": {
                    "default/llama-8b": {
                        "aws-use1": {"readyReplicas": 2, "ttftP95Ms": 150, "requestRate": 40.0}
                    }
                },
            }
        )
    )
    return md, metrics


def _plan(md: Path, metrics: Path) -> dict[str, object]:
    result = runner.invoke(
        app,
        [
            "plan",
            "--fleet",
            str(FLEET),
            "--now",
            NOW,
            "-o",
            "json",
            "--metrics",
            str(metrics),
            str(md),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def _placed_capacity(data: dict[str, object]) -> float:
    placements = data["placements"]
    assert isinstance(placements, list)
    return sum(p["replicas"] * ESTIMATE[p["gpu"]] for p in placements)


def test_the_fleet_covers_the_load_at_the_estimated_speeds(tmp_path: Path) -> None:
    """Before: 5 replicas placed (2 L40S + 3 A100-80GB): 16.9 req/s at data-sheet speed for
    40 req/s + 20% headroom. Now the L40S replicas count at 2.36 req/s each."""
    data = _plan(*_files(tmp_path))
    changes = data["changes"]
    assert isinstance(changes, list)
    (scale_up,) = [c for c in changes if c["reason"] == "ScaleUp"]
    assert "at 2.36 req/s per replica" in scale_up["message"], scale_up
    assert data["desiredReplicas"] == 16  # replicas.max: 21 wanted at the L40S estimate
    assert _placed_capacity(data) >= 40 * 1.2, data["placements"]


def test_a_fresh_deployment_is_sized_at_the_profiled_gpu_and_placed_on_it(tmp_path: Path) -> None:
    """No replicas yet: sized at the candidate cheapest per unit of capacity, the H100 at
    $6.98/h for 12.9 req/s ($0.54 per req/s; the L40S at $1.86/h for 2.36 is $0.79): 4
    replicas, and what is placed covers the load at the estimated speeds."""
    data = _plan(*_files(tmp_path, placed_on_l40s=False))
    assert data["desiredReplicas"] == math.ceil(40 * 1.2 / H100_CAP) == 4
    assert _placed_capacity(data) >= 40 * 1.2, data["placements"]


def test_the_reasons_say_which_gpus_are_estimated_and_from_what(tmp_path: Path) -> None:
    data = _plan(*_files(tmp_path))
    reasons = data["reasons"]
    assert isinstance(reasons, list)
    estimated = {
        (r["cluster"], r["offering"]): r["message"]
        for r in reasons
        if r["reason"] == "CapacityEstimated"
    }
    assert (
        "no capacity profile for GPU L40S: estimated at 2.36 req/s per replica from the H100 profile (12.9 req/s x 0.18"
        in estimated[("aws-use1", "g6e.xlarge")]
    )
    assert "GPU A100-80GB: estimated at 4.07 req/s" in estimated[("gcp-usc1", "a2-ultragpu-1g")]
    assert not any("H100" in k[1] for k in estimated)
