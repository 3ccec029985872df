"""The gateway's pure decisions, table-driven: which deployment a request goes to (rules,
weights, fallbacks) and which endpoint (headroom, locality, prefix affinity, cost)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from modelfleet.api.modelroute import ModelRoute
from modelfleet.gateway.catalog import DeploymentInfo, DeploymentKey, EndpointInfo, build_catalog
from modelfleet.gateway.routing import (
    EndpointLoad,
    NoRuleMatched,
    RequestFacts,
    UnknownModel,
    decide_route,
    pick_endpoint,
    prefix_key,
)
from modelfleet.gateway.settings import GatewaySettings


def dep(name: str, model: str, namespace: str = "team") -> DeploymentInfo:
    url = f"http://{name}:8000"
    return DeploymentInfo(
        DeploymentKey(namespace, name), model, (EndpointInfo(name, url, None, True),)
    )


def mr(name: str, spec: dict[str, Any], namespace: str = "team") -> ModelRoute:
    return ModelRoute.model_validate(
        {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
    )


ASSISTANT = mr(
    "assistant",
    {
        "model": "assistant",
        "aliases": ["chat"],
        "rules": [
            {
                "name": "plan",
                "match": {"headers": [{"name": "X-Role", "value": "planner"}]},
                "backends": [{"deployment": "big"}],
            },
            {
                "name": "any-tier",
                "match": {"headers": [{"name": "x-tier"}]},
                "backends": [{"deployment": "big"}],
            },
            {
                "name": "long",
                "match": {"minPromptChars": 1000},
                "backends": [{"deployment": "big"}],
            },
            {
                "name": "short",
                "match": {"maxPromptChars": 10},
                "backends": [{"deployment": "tiny"}],
            },
            {"name": "rest", "backends": [{"deployment": "small"}]},
        ],
        "fallback": ["tiny"],
    },
)
CATALOG = build_catalog(
    [dep("big", "llama-70b"), dep("small", "qwen-7b"), dep("tiny", "qwen-0.5b")], [ASSISTANT]
)


def facts(model: str = "assistant", chars: int = 100, **headers: str) -> RequestFacts:
    return RequestFacts(model, {k.replace("_", "-"): v for k, v in headers.items()}, chars)


@pytest.mark.parametrize(
    ("request_facts", "rule", "candidates"),
    [
        (facts(), "rest", ["small", "tiny"]),
        (facts("chat"), "rest", ["small", "tiny"]),
        (facts(x_role="planner"), "plan", ["big", "tiny"]),
        (facts(x_role="Planner"), "rest", ["small", "tiny"]),  # values compare exactly
        (facts(x_tier="anything"), "any-tier", ["big", "tiny"]),  # presence only
        (facts(chars=1000), "long", ["big", "tiny"]),
        (facts(chars=999), "rest", ["small", "tiny"]),
        (facts(chars=10), "short", ["tiny"]),
        (facts(chars=0), "short", ["tiny"]),
    ],
)
def test_rules_in_order_first_match_wins(
    request_facts: RequestFacts, rule: str, candidates: list[str]
) -> None:
    decision = decide_route(CATALOG, request_facts, random.Random(0))
    assert decision.rule == rule
    assert [k.name for k in decision.candidates] == candidates
    assert decision.route == "team/assistant"


def test_served_model_names_resolve_straight_to_their_deployment() -> None:
    decision = decide_route(CATALOG, facts("qwen-7b"), random.Random(0))
    assert decision.candidates == (DeploymentKey("team", "small"),)
    assert decision.route is None


def test_unknown_model_and_no_matching_rule_are_errors() -> None:
    with pytest.raises(UnknownModel):
        decide_route(CATALOG, facts("gpt-5"), random.Random(0))
    strict = mr(
        "strict",
        {
            "model": "strict",
            "rules": [{"match": {"minPromptChars": 5}, "backends": [{"deployment": "big"}]}],
        },
    )
    catalog = build_catalog([dep("big", "m")], [strict])
    with pytest.raises(NoRuleMatched, match="team/strict"):
        decide_route(catalog, facts("strict", chars=1), random.Random(0))


def test_on_no_match_fallback_sends_to_the_fallbacks() -> None:
    lenient = mr(
        "lenient",
        {
            "model": "lenient",
            "rules": [{"match": {"minPromptChars": 5}, "backends": [{"deployment": "big"}]}],
            "fallback": ["small"],
            "onNoMatch": "Fallback",
        },
    )
    catalog = build_catalog([dep("big", "m"), dep("small", "n")], [lenient])
    decision = decide_route(catalog, facts("lenient", chars=1), random.Random(0))
    assert [k.name for k in decision.candidates] == ["small"]


def test_weights_split_traffic_and_the_rest_follow_as_spares() -> None:
    canary = mr(
        "m",
        {
            "model": "m",
            "rules": [
                {
                    "backends": [
                        {"deployment": "stable", "weight": 9},
                        {"deployment": "canary", "weight": 1},
                        {"deployment": "dark", "weight": 0},
                    ]
                }
            ],
        },
    )
    catalog = build_catalog([dep("stable", "a"), dep("canary", "b"), dep("dark", "c")], [canary])
    rng = random.Random(42)
    firsts = Counter(decide_route(catalog, facts("m"), rng).primary.name for _ in range(10_000))
    assert firsts["dark"] == 0
    assert 850 <= firsts["canary"] <= 1150, firsts
    decision = decide_route(catalog, facts("m"), random.Random(1))
    assert {k.name for k in decision.candidates} == {"stable", "canary", "dark"}
    assert decision.candidates[-1].name == "dark"  # weight 0: only as a last resort


def test_route_names_win_over_served_names_and_clashes_are_reported() -> None:
    clash = mr("qwen", {"model": "qwen-7b", "rules": [{"backends": [{"deployment": "big"}]}]})
    catalog = build_catalog([dep("small", "qwen-7b"), dep("big", "llama")], [clash])
    assert decide_route(catalog, facts("qwen-7b"), random.Random(0)).primary.name == "big"
    assert catalog.conflicts == (
        "model 'qwen-7b': ModelDeployment team/small ignored, ModelRoute team/qwen serves it "
        "(a ModelRoute comes before a ModelDeployment of its own namespace)",
    )


# -- endpoint choice -------------------------------------------------------------------------

S = GatewaySettings(region="us-east-1", queue_headroom=4, kv_cache_headroom=0.9)


def ep(url: str, region: str | None = "us-east-1", **kw: Any) -> EndpointLoad:
    return EndpointLoad(url=url, region=region, outstanding=kw.pop("outstanding", 0), **kw)


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        ([], None),
        ([ep("a")], "a"),
        # Own region first while it has headroom, however busy the remote one is not.
        ([ep("far", "eu-west-4"), ep("near", outstanding=3)], "near"),
        # No headroom at home (queue, KV cache, in-flight cap): the remote one takes it.
        ([ep("far", "eu-west-4"), ep("near", queue=5)], "far"),
        ([ep("far", "eu-west-4"), ep("near", kv_cache=0.95)], "far"),
        ([ep("far", "eu-west-4", outstanding=1), ep("near", outstanding=256)], "far"),
        # Nobody has headroom: still the cheapest of all.
        ([ep("far", "eu-west-4", queue=9), ep("near", queue=5)], "near"),
        # Same region: least (load + 1) x TTFT.
        ([ep("a", outstanding=2, ttft=0.1), ep("b", outstanding=0, ttft=0.1)], "b"),
        ([ep("a", outstanding=1, ttft=0.1), ep("b", outstanding=0, ttft=0.5)], "a"),
        # Unknown TTFT counts as the mean of the known ones.
        ([ep("a", outstanding=1, ttft=0.2), ep("b", outstanding=0)], "b"),
    ],
)
def test_endpoint_choice(endpoints: list[EndpointLoad], expected: str | None) -> None:
    chosen = pick_endpoint(endpoints, settings=S, rng=random.Random(0))
    assert (chosen.url if chosen else None) == expected


def test_prefix_affinity_is_consistent_and_moves_little_when_endpoints_change() -> None:
    settings = GatewaySettings(affinity_prefix_chars=32)
    pool = [ep(f"http://e{i}") for i in range(5)]
    keys = [prefix_key(f"system prompt number {i:04d} " * 3, settings) for i in range(400)]
    assert prefix_key("short", settings) is None

    def owner(endpoints: list[EndpointLoad], key: bytes | None) -> str:
        chosen = pick_endpoint(endpoints, settings=settings, rng=random.Random(0), affinity=key)
        assert chosen is not None
        return chosen.url

    before = [owner(pool, k) for k in keys]
    assert before == [owner(pool, k) for k in keys]  # deterministic
    assert min(Counter(before).values()) >= 40  # spread over all five
    after = [owner(pool[:4], k) for k in keys]  # e4 removed
    moved = [b for b, a in zip(before, after, strict=True) if a != b]
    assert set(moved) == {"http://e4"}  # only the removed endpoint's keys moved


def test_bounded_load_spills_to_the_next_endpoint_in_hash_order() -> None:
    settings = GatewaySettings(affinity_prefix_chars=8, affinity_load_factor=1.25)
    key = prefix_key("the same prefix", settings)
    idle = [ep("http://a"), ep("http://b"), ep("http://c")]
    home = pick_endpoint(idle, settings=settings, rng=random.Random(0), affinity=key)
    assert home is not None
    # Home holds 5 of 6 in flight: cap = ceil(1.25 * 7 / 3) = 3, so it must spill.
    busy = [ep(e.url, outstanding=5 if e.url == home.url else 0) for e in idle]
    spill = pick_endpoint(busy, settings=settings, rng=random.Random(0), affinity=key)
    assert spill is not None and spill.url != home.url
    # Within the bound it keeps the prefix at home.
    warm = [ep(e.url, outstanding=1) for e in idle]
    again = pick_endpoint(warm, settings=settings, rng=random.Random(0), affinity=key)
    assert again is not None and again.url == home.url


def test_retry_budget_allows_a_share_of_recent_requests_and_forgets_old_ones() -> None:
    from modelfleet.gateway.proxy import RetryBudget

    now = [0.0]
    settings = GatewaySettings(
        retry_budget_ratio=0.2, retry_budget_min_per_second=0.1, retry_budget_window=10
    )
    budget = RetryBudget(settings, lambda: now[0])
    for _ in range(50):
        budget.request()
    assert [budget.try_retry() for _ in range(11)] == [True] * 10 + [False]  # 20% of 50
    now[0] = 11.0  # the window moved on: old requests and retries are forgotten
    for _ in range(5):
        budget.request()
    assert len(budget._requests) == 5
    assert budget.try_retry()  # the floor: 0.1/s x 10 s = 1 retry
    assert not budget.try_retry()
