"""`modelfleet validate` and `modelfleet plan` on a valid ModelDeployment that will not do
what its author likely meant (a breaker's finds, brk15a, both silent before):

- ``replicas.min: 0`` without ``spec.metrics.demand``: nothing reports load at zero
  replicas, so without the gateway in front the deployment never starts (docs/decisions.md,
  "Scale from zero"); validate said "valid" and plan "desired 0".
- a measured capacity profile whose capacity point breaks the deployment's objective
  (``modelfleet profile --ttft-p95-ms 900`` applied to a 200 ms SLO): the capacity it
  states is not within this SLO.
- profiles that leave out GPU types the deployment may use: a replica there is sized at
  the smallest capacity profiled for another type, however slow its GPU (now an estimate
  scaled down by data-sheet figures, still worth profiling).

Each is a note on stderr; the exit status stays 0 (the API server accepts the spec).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from modelfleet.cli import app

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "examples" / "fleet"
runner = CliRunner()


def _manifest(tmp_path: Path, source: str, edit: dict[str, object]) -> Path:
    doc = yaml.safe_load((ROOT / "examples" / source).read_text())
    doc["spec"].update(edit)
    for key in [k for k, v in doc["spec"].items() if v is None]:
        del doc["spec"][key]
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.stderr.split())


def _zero_without_demand(tmp_path: Path) -> Path:
    return _manifest(tmp_path, "spot-hedged.yaml", {"metrics": None})


def test_min_zero_without_demand_is_said_by_validate_and_plan(tmp_path: Path) -> None:
    md = _zero_without_demand(tmp_path)
    for args in (("validate", str(md)), ("plan", "--fleet", str(FLEET), str(md))):
        code, err = _run(*args)
        assert code == 0, err
        assert "replicas.min is 0 and spec.metrics.demand is not set" in err, (args, err)
        assert "without the gateway in front it stays at zero" in err, err


def test_min_zero_with_demand_brings_no_note() -> None:
    md = ROOT / "examples" / "spot-hedged.yaml"  # min 0 and the gateway's demand named
    for args in (("validate", str(md)), ("plan", "--fleet", str(FLEET), str(md))):
        code, err = _run(*args)
        assert code == 0, err
        assert "spec.metrics.demand" not in err, (args, err)


def _profile(ttft: float, tpot: float) -> list[dict[str, object]]:
    return [
        {
            "gpu": "L40S",
            "source": "Measured",
            "prefillTokensPerSecond": 1000.0,
            "decodeTokensPerSecond": 100.0,
            "measurement": {"requestsPerSecond": 3.0, "ttftP95Ms": ttft, "tpotP95Ms": tpot},
        }
    ]


def test_a_profile_measured_above_the_slo_is_said(tmp_path: Path) -> None:
    # examples/multicloud-failover.yaml: slo ttftP95Ms 200, tpotP95Ms 50
    md = _manifest(tmp_path, "multicloud-failover.yaml", {"capacityProfiles": _profile(900, 60)})
    for args in (("validate", str(md)), ("plan", "--fleet", str(FLEET), str(md))):
        code, err = _run(*args)
        assert code == 0, err
        assert (
            "spec.capacityProfiles.0 (L40S) was measured at TTFT p95 900 ms, above "
            "spec.slo.ttftP95Ms 200 ms" in err
        ), (args, err)
        assert "measure again with --ttft-p95-ms 200" in err, err
        assert "TPOT p95 60 ms, above spec.slo.tpotP95Ms 50 ms" in err, err


def test_a_profile_measured_within_the_slo_brings_no_note(tmp_path: Path) -> None:
    md = _manifest(tmp_path, "multicloud-failover.yaml", {"capacityProfiles": _profile(200, 50)})
    code, err = _run("validate", str(md))
    assert code == 0, err
    assert "was measured at" not in err, err


def test_the_bundled_examples_bring_no_note() -> None:
    code, err = _run("validate", str(ROOT / "examples"))
    assert code == 0, err
    assert "spec.metrics.demand" not in err and "was measured at" not in err, err


def test_profiles_that_leave_out_allowed_gpus_are_said(tmp_path: Path) -> None:
    """Found with docs/api.md's declared example (an H100 profile) on
    examples/multicloud-failover.yaml (types H100, A100-80GB, L40S): plan sized 40 req/s at
    "12.9 req/s per replica" and placed the replicas on L40S and A100-80GB, for which no
    profile says anything."""
    md = _manifest(tmp_path, "multicloud-failover.yaml", {"capacityProfiles": _profile(150, 40)})
    for args in (("validate", str(md)), ("plan", "--fleet", str(FLEET), str(md))):
        code, err = _run(*args)
        assert code == 0, err
        assert (
            "spec.capacityProfiles covers L40S but not H100, A100-80GB of resources.gpu.types"
            in err
        ), (args, err)
        assert "estimate scaled down from the profiled types by data-sheet" in err, err


def test_profiles_with_any_gpu_allowed_are_said(tmp_path: Path) -> None:
    md = _manifest(tmp_path, "multicloud-failover.yaml", {"capacityProfiles": _profile(150, 40)})
    doc = yaml.safe_load(md.read_text())
    del doc["spec"]["resources"]["gpu"]["types"]
    md.write_text(yaml.safe_dump(doc))
    code, err = _run("validate", str(md))
    assert code == 0, err
    assert "resources.gpu.types is unset (any GPU)" in err, err


def test_a_profile_of_another_gpu_count_is_said(tmp_path: Path) -> None:
    profile = _profile(150, 40)
    profile[0]["gpuCount"] = 1  # modelfleet profile's default, for 2-GPU replicas
    md = _manifest(tmp_path, "multicloud-failover.yaml", {"capacityProfiles": profile})
    doc = yaml.safe_load(md.read_text())
    doc["spec"]["resources"]["gpu"] = {"count": 2, "types": ["L40S"]}
    md.write_text(yaml.safe_dump(doc))
    code, err = _run("validate", str(md))
    assert code == 0, err
    assert (
        "spec.capacityProfiles.0 (L40S) is for 1 GPU(s) per replica and resources.gpu.count "
        "is 2: it describes no replica and is not used; measure with --gpu-count 2" in err
    ), err
    assert "covers L40S" not in err, err  # not counted as covering the type
