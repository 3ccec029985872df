"""`modelfleet validate` on the file `modelfleet profile --out` writes (a breaker's find,
brk15a): it is a `spec.capacityProfiles` patch for `kubectl patch md NAME --type merge
--patch-file`, with no kind, and validate refused it as "not a modelfleet resource
(None/None)": the profile could only be checked by pasting it into a manifest. It is now
checked against the API model's rules for a profile."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from modelfleet.cli import app

runner = CliRunner()

PATCH = """\
# modelfleet profile of stub on 1 x L40S at http://127.0.0.1:42741/v1
# Apply: kubectl patch md NAME --type merge --patch-file THIS_FILE
# (replaces the list)
spec:
  capacityProfiles:
  - gpu: L40S
    gpuCount: 1
    source: Measured
    prefillTokensPerSecond: 1010.6
    decodeTokensPerSecond: 85.3
    promptTokens: 100.0
    outputTokens: 20.0
    measurement:
      requestsPerSecond: 3.0
      at: '2026-12-02T06:25:31.295941Z'
      endpoint: http://127.0.0.1:42741/v1
      ttftP95Ms: 135.0
      tpotP95Ms: 15.49
      curve:
      - {requestsPerSecond: 1.0, ttftP95Ms: 99.9, tpotP95Ms: 12.07}
      - {requestsPerSecond: 2.2, ttftP95Ms: 141.6, tpotP95Ms: 17.31}
      - {requestsPerSecond: 6.4, ttftP95Ms: 207.4, tpotP95Ms: 21.25}
"""


def _validate(tmp_path: Path, text: str) -> tuple[int, str, str]:
    path = tmp_path / "h100.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["validate", str(path)])
    return result.exit_code, " ".join(result.stdout.split()), " ".join(result.stderr.split())


def test_a_written_profile_validates_as_a_patch(tmp_path: Path) -> None:
    code, out, err = _validate(tmp_path, PATCH)
    assert code == 0, (out, err)
    assert "spec.capacityProfiles patch: 1 profile(s)" in out, out
    assert "not a modelfleet resource" not in err, err


def test_a_broken_profile_patch_names_the_field(tmp_path: Path) -> None:
    broken = PATCH.replace("ttftP95Ms: 207.4", "ttftP95Ms: 107.4").replace(
        "decodeTokensPerSecond: 85.3", "decodeTokensPerSecond: -1"
    )
    code, _, err = _validate(tmp_path, broken)
    assert code == 1, err
    assert "spec.capacityProfiles.0.decodeTokensPerSecond" in err, err
    assert "spec.capacityProfiles.0.measurement.curve" in err and "curve.2.ttftP95Ms" in err, err


def test_other_documents_without_a_kind_are_still_refused(tmp_path: Path) -> None:
    code, _, err = _validate(tmp_path, "spec:\n  replicas: {min: 1, max: 2}\n")
    assert code == 1, err
    assert "not a modelfleet resource" in err, err
