"""``modelfleet profile`` when the endpoint refuses requests as invalid (a breaker's find,
brk15a): the built-in server with its tiny 2,048-token model, profiled with the real Azure
code trace (prompts up to ~8k tokens), answered 38% of the requests ``400
context_length_exceeded``. The command said only "3 of 9 requests failed ... Try a lower
--start-rate, e.g. 0.5": the endpoint's message was never shown, and no lower rate could
ever help. Now the cause is said (HTTP status and the endpoint's message) and, for a
refusal, what to check instead.

The real CLI runs as a child process against ``profile_stub.py``'s endpoint, given a
context of 1,000 tokens here: it refuses longer requests the way the built-in server and
vLLM do (HTTP 400, an OpenAI error body).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

try:
    from profile_stub import LatencyLaw, OpenAIStub, run_profile
except ImportError:  # tests as a package
    from tests.integration.profile_stub import LatencyLaw, OpenAIStub, run_profile

pytestmark = pytest.mark.integration

REFUSAL = "HTTP 400: the prompt is 2000 tokens; this model's context is 1000 tokens"


@pytest.fixture
async def stub() -> AsyncIterator[OpenAIStub]:
    server = OpenAIStub(LatencyLaw(), context=1000)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _said(out: str) -> str:
    return " ".join(out.split())


async def test_refused_trace_rows_are_named_and_never_read_as_load(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    """Before, the 2 req/s step drew only short rows and passed, the 4 req/s step drew 3
    long ones and "broke the SLO": a profile of 1.5 req/s, the refusals read as load."""
    trace = tmp_path / "trace.csv"
    rows = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for i in range(30):  # one row in three is longer than the model's context
        prompt = 2000 if i % 3 == 0 else 40
        rows.append(f"2023-11-16 18:00:{i:02d}.0000000,{prompt},4")
    trace.write_text("\n".join(rows) + "\n")
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "2", "--start-rate", "2"),
        *("--max-rate", "8", "--arrivals", "uniform", "--refine", "0"),
        *("--ttft-p95-ms", "5000", "--trace", str(trace)),
    )
    assert code == 0, out
    said = _said(out)
    for rate in ("2.00", "4.00", "8.00"):  # the objectives are loose: every rate is within
        assert f"{rate} req/s: " in said, out
    assert "breaks SLO" not in said, out
    assert "Failed requests, by cause:" in said, out  # below the table: the count, the cause
    assert f"requests: HTTP 400 context_length_exceeded, e.g. {REFUSAL}" in said, out
    assert "were refused and left out of the measurement" in said, out
    assert "--trace rows" in said and "no lower rate cures" in said, out
    profile = yaml.safe_load(out[out.index("# modelfleet profile of") :])
    entry = profile["spec"]["capacityProfiles"][0]
    assert entry["promptTokens"] == 40.0  # the accepted requests' mix
    assert entry["measurement"]["requestsPerSecond"] > 2.0, out  # not capped by refusals
    assert max(len(line) for line in out.splitlines() if "─" not in line) <= 80, out


async def test_a_mix_refused_at_warm_up_names_the_refusal(stub: OpenAIStub) -> None:
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "2", "--start-rate", "2"),
        *("--prompt-tokens", "2000", "--output-tokens", "4"),
    )
    assert code == 2, out
    said = _said(out)
    assert "every warm-up request to" in said, out
    assert f"failed ({REFUSAL})" in said, out
    assert "no lower rate cures" in said, out
