"""``modelfleet profile`` against a local OpenAI-compatible stub whose latency grows with
load in a known way (tests/integration/profile_stub.py), through the official ``openai``
client over real HTTP on loopback.

The stub's law gives the rate at which the *mean* TTFT reaches the objective (``lam*``);
the p95 reaches it earlier, and a busy test machine adds client-side delay, so the rate
found must lie in [0.35, 1.15] x ``lam*`` — and the profile written must be one the
ModelDeployment API accepts and that predicts the measured rate at the measured mix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from modelfleet.api import ModelDeployment
from modelfleet.core.from_api import deployment_from_api
from modelfleet.core.profiles import capacity_for
from modelfleet.profile.command import ProfileRequest, profile, profile_manifest
from modelfleet.profile.mix import Mix

try:
    from profile_stub import LatencyLaw, OpenAIStub
except ImportError:  # tests as a package
    from tests.integration.profile_stub import LatencyLaw, OpenAIStub

pytestmark = pytest.mark.integration

LAW = LatencyLaw()
OUTPUT = 10
TTFT_SLO_MS = 300.0


@pytest.fixture
async def stub() -> AsyncIterator[OpenAIStub]:
    server = OpenAIStub(LAW)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_profile_finds_the_rate_the_latency_law_predicts(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    req = ProfileRequest(
        base_url=stub.url,
        model="stub",
        gpu="H100",
        gpu_count=1,
        ttft_p95_ms=TTFT_SLO_MS,
        tpot_p95_ms=None,
        mix=Mix(prompt_median=64, output_median=OUTPUT),
        start_rate=4.0,
        growth=2.0,
        max_rate=64.0,
        step_seconds=2.0,
        refinements=2,
        arrivals="uniform",
        timeout=20.0,
    )
    console = Console(file=(tmp_path / "out.txt").open("w"), width=100)
    result, steps, passed = await asyncio.wait_for(profile(req, console), timeout=120)
    assert stub.requests == req.warmup + sum(len(s.results) for s in steps)
    assert result is not None, [(s.rate, s.ttft_ms(0.95)) for s in steps]
    expected = LAW.capacity(TTFT_SLO_MS / 1000.0, OUTPUT)
    assert 0.35 * expected <= result.requests_per_second <= 1.15 * expected, (
        result.requests_per_second,
        expected,
        [(s.rate, s.ttft_ms(0.95), ok) for s, ok in zip(steps, passed, strict=True)],
    )
    # Latency grows with load: the lowest step is fastest; the search stopped at a failing
    # rate above the one it reports.
    by_rate = sorted(zip(steps, passed, strict=True), key=lambda x: x[0].rate)
    assert (by_rate[0][0].ttft_ms(0.95) or 0) < (by_rate[-1][0].ttft_ms(0.95) or 0)
    failing = [s.rate for s, ok in by_rate if not ok]
    assert failing and min(failing) > result.requests_per_second
    # The table was printed with every step.
    console.file.close()
    printed = (tmp_path / "out.txt").read_text()
    assert "breaks SLO" in printed and "within SLO" in printed

    # The profile is what the operator reads: it merges into a ModelDeployment and predicts
    # the measured rate at the measured mix.
    fragment = profile_manifest(req, result, steps=steps)
    manifest = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m", "namespace": "default"},
        "spec": {
            "model": {"name": "stub"},
            "replicas": {"min": 1, "max": 4},
            "resources": {"gpu": {"count": 1, "types": ["H100"]}},
            **fragment["spec"],
        },
    }
    md = ModelDeployment.model_validate(yaml.safe_load(yaml.safe_dump(manifest)))
    spec = deployment_from_api(md)
    assert spec.profiles[0].source == "Measured"
    predicted = capacity_for(spec.profiles, spec.workload, "H100", 1)
    assert predicted == pytest.approx(result.requests_per_second, rel=0.01)

    # The sweep is written too: one point per step that completed requests, lowest rate
    # first, each the step's own achieved rate and TTFT/TPOT p95; it survives the API and
    # reaches the core as loads relative to the capacity point, with the capacity point
    # itself at load 1 and the stub's law (latency grows with load) visible in it.
    written = fragment["spec"]["capacityProfiles"][0]["measurement"]["curve"]
    measured = sorted((s for s in steps if s.ok), key=lambda s: s.rate)
    assert [p["requestsPerSecond"] for p in written] == [round(s.achieved, 3) for s in measured]
    assert [p["ttftP95Ms"] for p in written] == [round(s.ttft_ms(0.95) or 0.0, 1) for s in measured]
    # TPOT p95 is written where it does not fall below one written at a lower rate (the
    # writer leaves out noise on the curve's flat part, so a loaded machine may drop some
    # points' TPOT): the lowest-rate point always has one, every one written is positive
    # and they never fall as the rate rises; every point keeps at least one latency.
    tpots = [p["tpotP95Ms"] for p in written if "tpotP95Ms" in p]
    assert "tpotP95Ms" in written[0] and all(t > 0 for t in tpots)
    assert tpots == sorted(tpots)
    assert all("ttftP95Ms" in p or "tpotP95Ms" in p for p in written)
    assert written[0]["ttftP95Ms"] < written[-1]["ttftP95Ms"]
    curve = spec.profiles[0].curve
    assert len(curve) == len(written) >= 3
    assert [c.load for c in curve] == sorted(c.load for c in curve)
    assert any(c.load == pytest.approx(1.0, abs=1e-3) for c in curve)
    assert curve[-1].load > 1.0  # the failing step above the capacity point


async def test_no_rate_within_the_slo_gives_no_profile(stub: OpenAIStub, tmp_path: Path) -> None:
    req = ProfileRequest(
        base_url=stub.url,
        model="stub",
        gpu="H100",
        gpu_count=1,
        ttft_p95_ms=10.0,  # below the stub's 50 ms floor
        tpot_p95_ms=None,
        mix=Mix(prompt_median=16, output_median=4),
        start_rate=2.0,
        step_seconds=1.0,
        arrivals="uniform",
    )
    console = Console(file=(tmp_path / "out.txt").open("w"), width=100)
    result, steps, passed = await profile(req, console)
    assert result is None and passed == [False] and len(steps) == 1
