"""``modelfleet profile`` with its default Poisson arrivals (QA br9).

Found on main 6465787: the README's command (``--start-rate 1``, 30 s steps, Poisson
arrivals, seed 0) against an endpoint answering in 21 ms TTFT p95 and 2 ms TPOT p95 ended
"no offered rate met the objectives: no profile written" (exit 1) after one step: that
step's Poisson draw sent 23 requests in 30 s, and a step passed only if its completed
requests reached 80% of ``rate x duration`` (24), so the draw alone failed it, whatever the
endpoint did. Every other profile test uses uniform arrivals. Here the same draw happens at
8 req/s in 3 s steps (seed 0: 19 requests of a nominal 24), through the real CLI against
the stub of ``profile_stub.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelfleet.api.validation import Document, validate_document

try:
    from profile_stub import OpenAIStub, run_profile, started_stub
except ImportError:  # tests as a package
    from tests.integration.profile_stub import OpenAIStub, run_profile, started_stub

pytestmark = pytest.mark.integration


stub = pytest.fixture(started_stub)


async def test_a_poisson_draw_below_the_nominal_rate_does_not_fail_a_fast_step(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    out_file = tmp_path / "h100.yaml"
    code, out = await run_profile(
        stub.url,
        "--model", "stub", "--gpu", "H100", "--start-rate", "8", "--max-rate", "8",
        "--step-seconds", "3", "--refine", "0", "--ttft-p95-ms", "5000",
        "--prompt-tokens", "16", "--output-tokens", "4", "--out", str(out_file),
        timeout=120,
    )  # fmt: skip
    assert code == 0, out
    assert "within SLO" in out and "no offered rate" not in out, out
    assert stub.requests == 4 + 19  # 4 warm-up requests, then the draw: below 0.8 x 8 x 3
    fragment = yaml.safe_load(out_file.read_text())  # a spec fragment
    profiles = fragment["spec"]["capacityProfiles"]
    md = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m"},
        "spec": {
            "model": {"name": "stub"},
            "resources": {"gpu": {"count": 1, "types": ["H100"]}},
            "replicas": {"min": 1, "max": 2},
            "capacityProfiles": profiles,
        },
    }
    assert validate_document(Document("h100.yaml", 0, md)) == []
    # What was served: 19 requests in 3 s.
    assert profiles[0]["measurement"]["requestsPerSecond"] == pytest.approx(19 / 3, abs=1e-3)
