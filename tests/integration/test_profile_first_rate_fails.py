"""``modelfleet profile`` when the first rate already breaks the objectives (a breaker's
find): it ended with "no offered rate met the objectives: no profile written", without
saying that the very first rate failed, how, or that ``--start-rate`` is the way down.

The real CLI runs as a child process against the stub endpoint of ``profile_stub.py``,
whose TTFT is at least 50 ms: an objective of 10 ms breaks at any rate.
"""

from __future__ import annotations

import re

import pytest
import yaml

try:
    from profile_stub import OpenAIStub, run_profile, started_stub
except ImportError:  # tests as a package
    from tests.integration.profile_stub import OpenAIStub, run_profile, started_stub

pytestmark = pytest.mark.integration

stub = pytest.fixture(started_stub)


async def test_the_first_rate_failing_is_said_with_how_and_start_rate_suggested(
    stub: OpenAIStub,
) -> None:
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "2", "--start-rate", "2"),
        *("--arrivals", "uniform", "--refine", "0", "--ttft-p95-ms", "10"),
        *("--prompt-tokens", "16", "--output-tokens", "4"),
    )
    assert code == 1, out
    said = " ".join(out.split())
    assert "the first, 2.00 req/s (--start-rate), already broke them" in said, out
    assert "ms > 10 ms" in said, out  # how: the TTFT p95 against the objective
    assert "Try a lower --start-rate, e.g. 0.5" in said, out
    assert "no profile written" in said
    assert max(len(line) for line in out.splitlines()) <= 80, out  # a pipe: 80 columns


async def test_the_step_table_never_cuts_a_figure_on_a_narrow_output(stub: OpenAIStub) -> None:
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "2", "--start-rate", "2"),
        *("--max-rate", "2", "--arrivals", "uniform", "--refine", "0", "--ttft-p95-ms", "5000"),
        *("--prompt-tokens", "16", "--output-tokens", "4"),
        columns="40",
    )
    assert code == 0, out
    assert "…" not in out, out
    row = next(line for line in out.splitlines() if line.lstrip().startswith("2.00/s"))
    assert "within SLO" in row and " ms " in row, out  # one row, every figure whole


async def test_a_found_profile_is_said_within_80_columns(stub: OpenAIStub) -> None:
    """Found on main 8be971f (br11): piped, a profile that was found ended with a
    103-column "highest rate within the SLO: ..." sentence and an 86-column "# Apply:"
    comment; each is now wrapped (the comment as two comments: the YAML stays valid)."""
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "1", "--start-rate", "2"),
        *("--max-rate", "4", "--arrivals", "uniform", "--refine", "0", "--ttft-p95-ms", "5000"),
        *("--prompt-tokens", "16", "--output-tokens", "4"),
    )
    assert code == 0, out
    table = False
    for line in out.splitlines():
        table = table or line.startswith("modelfleet profile")  # the step table: whole
        if table and line.startswith(("─", "  rate", "2.00/s", "4.00/s")):
            continue
        assert len(line) <= 80, out
    said = " ".join(out.split())
    assert re.search(r"highest rate within the SLO: [\d.]+ req/s \(16 prompt / 4 output", said)
    assert re.search(r"prefill [\d,]+ tok/s, decode [\d,]+ tok/s", said), out
    profile = yaml.safe_load(out[out.index("# modelfleet profile of") :])
    assert profile["spec"]["capacityProfiles"][0]["gpu"] == "H100"


async def test_a_search_that_reached_max_rate_says_the_capacity_is_a_lower_bound(
    stub: OpenAIStub,
) -> None:
    """Found by brk15a: the built-in server passed every step up to --max-rate 16 and the
    profile said "highest rate within the SLO: 8.50 req/s" as if it were the capacity; the
    search never found where the objectives break. A profile below the capacity sizes
    fleets too large, so the command now says it is a lower bound."""
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "1", "--start-rate", "2"),
        *("--max-rate", "4", "--arrivals", "uniform", "--refine", "0", "--ttft-p95-ms", "5000"),
        *("--prompt-tokens", "16", "--output-tokens", "4"),
    )
    assert code == 0, out
    said = " ".join(out.split())
    assert "every rate up to --max-rate 4 met the objectives" in said, out
    assert "raise --max-rate to find it" in said, out


async def test_a_search_that_found_a_breaking_rate_says_no_lower_bound(stub: OpenAIStub) -> None:
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "1", "--start-rate", "1"),
        *("--max-rate", "64", "--arrivals", "uniform", "--refine", "0", "--ttft-p95-ms", "120"),
        *("--prompt-tokens", "16", "--output-tokens", "4"),
    )
    assert code == 0, out
    assert "breaks SLO" in out, out
    assert "raise --max-rate" not in out, out


async def test_uniform_arrivals_send_rate_times_step_requests(stub: OpenAIStub) -> None:
    """Found by brk15a: uniform arrivals began one gap after the step's start, so a step
    sent rate x step - 1 requests; at ``--start-rate 1 --step-seconds 1`` (which the bounds
    accept as sending one request) it sent none and "broke the SLO (0 of 0 requests
    failed)". Arrivals are now at 0, 1/rate, 2/rate, ..."""
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "3", "--start-rate", "2"),
        *("--max-rate", "2", "--arrivals", "uniform", "--refine", "0", "--ttft-p95-ms", "5000"),
        *("--prompt-tokens", "16", "--output-tokens", "4"),
    )
    assert code == 0, out
    assert stub.requests == 4 + 6, out  # 4 warm-up requests, then 2 req/s for 3 s
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "1", "--start-rate", "1"),
        *("--max-rate", "1", "--arrivals", "uniform", "--refine", "0", "--ttft-p95-ms", "5000"),
        *("--prompt-tokens", "16", "--output-tokens", "4"),
    )
    assert code == 0, out
    assert "0 of 0" not in out, out


async def test_uniform_arrivals_send_no_request_more_than_the_rate(stub: OpenAIStub) -> None:
    """Found by br15d: uniform arrivals added 1/rate up from the step's start, and 0.1
    added ten times is 0.9999999999999999, below the step's end: 10 req/s for 1 s sent 11
    requests, and the achieved rate, hence the profile, read one request per step more."""
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "1", "--start-rate", "10"),
        *("--max-rate", "10", "--arrivals", "uniform", "--refine", "0", "--ttft-p95-ms", "5000"),
        *("--prompt-tokens", "16", "--output-tokens", "4"),
    )
    assert code == 0, out
    assert stub.requests == 4 + 10, out  # 4 warm-up requests, then 10 req/s for 1 s


async def test_a_step_that_drew_no_request_says_so(stub: OpenAIStub) -> None:
    """Poisson at 1 req/s for 1 s draws no request with seed 0 (first gap 1.86 s): the
    verdict was "(0 of 0 requests failed)"; it now says what happened and what to raise."""
    code, out = await run_profile(
        stub.url,
        *("--model", "stub", "--gpu", "H100", "--step-seconds", "1", "--start-rate", "1"),
        *("--refine", "0", "--prompt-tokens", "16", "--output-tokens", "4"),
    )
    assert code == 1, out
    said = " ".join(out.split())
    assert "no request was sent (a Poisson draw of none: raise --step-seconds)" in said, out
    assert "0 of 0" not in said, out
