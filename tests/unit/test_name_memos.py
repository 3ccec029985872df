"""Names derived from strings (pool ids, DNS labels) are memoised: the memo must give
exactly the function's own answer, first call or repeated, for names that pass through
unchanged and for names that need cleaning, cutting and a digest."""

from __future__ import annotations

import pytest

from modelfleet.clusters.workloads import dns_label
from modelfleet.labels import pool_id

NAMES = [
    "llama-chat",
    "Llama_Chat.v2",
    "9lives",
    "-",
    "",
    "x" * 80,
    "model-" + "a" * 70 + "-end",
    "ümlaut-name",
]


@pytest.mark.parametrize("text", NAMES)
@pytest.mark.parametrize("max_length", [63, 40, 12])
def test_dns_label_memo_is_the_function(text: str, max_length: int) -> None:
    direct = dns_label.__wrapped__(text, max_length=max_length)
    assert dns_label(text, max_length=max_length) == direct
    assert dns_label(text, max_length=max_length) == direct  # answered from memory
    assert len(direct) <= max_length


@pytest.mark.parametrize(
    "pool",
    [
        ("aws-use1", "p5.48xlarge", "Spot"),
        ("aws-use1", "p5.48xlarge", "OnDemand"),
        ("gcp-euw4", "a3-highgpu-8g", "OnDemand"),
        ("a", "b\x00c", "Spot"),  # the separator inside a field
        ("a\x00b", "c", "Spot"),
    ],
)
def test_pool_id_memo_is_the_function(pool: tuple[str, str, str]) -> None:
    direct = pool_id.__wrapped__(*pool)
    assert pool_id(*pool) == direct
    assert pool_id(*pool) == direct
    assert len(direct) == 12
    assert pool_id.cache_info().hits > 0
