"""The gateway end to end: the official openai client -> `serve_gateway` -> stub engines,
all real HTTP on loopback. Each test sets the stubs' latency and failures and checks what a
caller would notice: which engine answered, what arrived, which status and message."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import openai
import pytest
from gateway_harness import Dep, Harness, gateway_for, route
from openai_stub import Behaviour, StubEngine

from modelfleet.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration

MSG = [{"role": "user", "content": "hello"}]


async def chat_text(client: openai.AsyncOpenAI, model: str, **kw: object) -> str:
    reply = await client.chat.completions.create(model=model, messages=MSG, **kw)  # type: ignore[call-overload]
    return str(reply.choices[0].message.content)


async def stream_text(client: openai.AsyncOpenAI, model: str, **kw: object) -> str:
    stream = await client.chat.completions.create(model=model, messages=MSG, stream=True, **kw)  # type: ignore[call-overload]
    parts = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts)


async def metrics_text(h: Harness) -> str:
    assert h.running.management_url is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(h.running.management_url + "/metrics") as response,
    ):
        return await response.text()


# -- routing by model and rules ------------------------------------------------------------


async def test_routes_by_served_model_name_and_streams_through(tmp_path: Path) -> None:
    async with StubEngine("a") as a, StubEngine("b") as b:
        deps = [Dep("small", "qwen-small", [a]), Dep("big", "llama-70b", [b])]
        async with gateway_for(tmp_path, deps) as h:
            assert await chat_text(h.client, "qwen-small") == "a:qwen-small"
            assert await chat_text(h.client, "llama-70b") == "b:llama-70b"
            assert await stream_text(h.client, "llama-70b") == "b:llama-70b 1 2"
            done = await h.client.completions.create(model="qwen-small", prompt="x")
            assert done.choices[0].text == "a:qwen-small"
            models = await h.client.models.list()
            assert sorted(m.id for m in models.data) == ["llama-70b", "qwen-small"]
    assert (a.served(), b.served()) == (1, 2)


async def test_streaming_passes_chunks_as_they_arrive(tmp_path: Path) -> None:
    behaviour = Behaviour(chunks=4, chunk_delay=0.3)
    async with StubEngine("slow", behaviour=behaviour) as slow:
        async with gateway_for(tmp_path, [Dep("d", "m", [slow])]) as h:
            loop = asyncio.get_running_loop()
            started = loop.time()
            stream = await h.client.chat.completions.create(model="m", messages=MSG, stream=True)  # type: ignore[call-overload]
            arrivals = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    arrivals.append(loop.time() - started)
    # The first chunk arrives long before the last: nothing was buffered to the end.
    assert len(arrivals) == 4
    assert arrivals[0] < 0.25, arrivals
    assert arrivals[-1] - arrivals[0] > 0.6, arrivals


async def test_route_aliases_headers_prompt_size_and_model_rewrite(tmp_path: Path) -> None:
    async with StubEngine("fast") as fast, StubEngine("reasoner") as reasoner:
        deps = [Dep("executor", "qwen-1.5b", [fast]), Dep("planner", "llama-70b", [reasoner])]
        assistant = route(
            "assistant",
            {
                "model": "assistant",
                "aliases": ["gpt-4o-mini"],
                "rules": [
                    {
                        "name": "plan",
                        "match": {"headers": [{"name": "X-Role", "value": "planner"}]},
                        "backends": [{"deployment": "planner"}],
                    },
                    {
                        "name": "long",
                        "match": {"minPromptChars": 200},
                        "backends": [{"deployment": "planner"}],
                    },
                    {"name": "rest", "backends": [{"deployment": "executor"}]},
                ],
            },
        )
        async with gateway_for(tmp_path, deps, [assistant]) as h:
            # The engine is sent its own served name, whatever the client called the model.
            assert await chat_text(h.client, "assistant") == "fast:qwen-1.5b"
            assert await chat_text(h.client, "gpt-4o-mini") == "fast:qwen-1.5b"
            planned = await chat_text(h.client, "assistant", extra_headers={"x-role": "planner"})
            assert planned == "reasoner:llama-70b"
            other = await chat_text(h.client, "assistant", extra_headers={"x-role": "executor"})
            assert other == "fast:qwen-1.5b"
            long = [{"role": "user", "content": "x" * 250}]
            reply = await h.client.chat.completions.create(model="assistant", messages=long)  # type: ignore[arg-type]
            assert reply.choices[0].message.content == "reasoner:llama-70b"
            models = {m.id for m in (await h.client.models.list()).data}
            assert {"assistant", "gpt-4o-mini", "qwen-1.5b", "llama-70b"} <= models
    assert {k.lower(): v for k, v in reasoner.seen[0].headers.items()}["x-role"] == "planner"
    assert all("Authorization" not in s.headers for s in fast.seen + reasoner.seen)


async def test_weighted_split_sends_the_canary_its_share(tmp_path: Path) -> None:
    async with StubEngine("stable") as stable, StubEngine("canary") as canary:
        deps = [Dep("v1", "m-v1", [stable]), Dep("v2", "m-v2", [canary])]
        split = route(
            "m",
            {
                "model": "m",
                "rules": [
                    {
                        "backends": [
                            {"deployment": "v1", "weight": 80},
                            {"deployment": "v2", "weight": 20},
                        ]
                    }
                ],
            },
        )
        async with gateway_for(tmp_path, deps, [split]) as h:
            await asyncio.gather(*(chat_text(h.client, "m") for _ in range(200)))
    # 20% of 200 is 40; a binomial draw stays within 20..60 with overwhelming probability.
    assert 20 <= canary.served() <= 60, (stable.served(), canary.served())
    assert stable.served() + canary.served() == 200


async def test_fallback_model_when_the_deployment_has_no_ready_endpoint(tmp_path: Path) -> None:
    async with StubEngine("main") as main, StubEngine("backup") as backup:
        deps = [
            Dep("main", "big", [main], not_ready=frozenset({"main"})),
            Dep("backup", "small", [backup]),
        ]
        r = route(
            "chat",
            {"model": "chat", "rules": [{"backends": [{"deployment": "main"}]}], "fallback": ["backup"]},
        )
        async with gateway_for(tmp_path, deps, [r]) as h:
            assert await chat_text(h.client, "chat") == "backup:small"
            text = await metrics_text(h)
    assert main.served() == 0
    assert (
        'modelfleet_gateway_fallback_requests_total{deployment="main",namespace="team",to="backup"} 1.0'
        in text
    )
