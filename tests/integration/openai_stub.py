"""OpenAI-compatible stub engines on loopback, with latency and failures the test controls.

Each ``StubEngine`` is a real aiohttp server speaking the shapes of /v1/chat/completions,
/v1/completions (streaming as server-sent events, or whole), /v1/models and a Prometheus
/metrics with vLLM's queue and KV-cache gauges. Its answers name the stub and the model it
was sent (``"<stub>:<model>"``), so a test sees which endpoint served a request and what
the gateway rewrote. ``kill()`` stops it abruptly (listening socket closed, open streams cut),
``start()`` brings it back on the same port.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Behaviour:
    """What the stub does with the next requests (mutable during a test)."""

    latency: float = 0.0
    """Seconds before the answer's headers."""
    chunks: int = 3
    """Content chunks of an answer."""
    chunk_delay: float = 0.0
    """Seconds between chunks."""
    fail_next: list[int] = field(default_factory=list)
    """Statuses to answer the next requests with (popped one per request)."""
    break_after_chunks: int | None = None
    """Cut the connection after this many chunks (a crash mid-stream)."""
    pad: int = 0
    """Characters of padding in every streamed chunk (to push megabytes through)."""
    queue: float = 0.0
    """Value of vllm:num_requests_waiting on /metrics."""
    kv_cache: float = 0.0
    """Value of vllm:kv_cache_usage_perc on /metrics."""
    after_first_chunk: asyncio.Event | None = None
    """When set: a stream writes its first chunk, then waits for this event before the
    rest (a test can then see the first chunk arrive while the rest is not written yet)."""


@dataclass
class Seen:
    """One request the stub received."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


class StubEngine:
    """A stub OpenAI server. Use ``async with StubEngine("a") as stub`` or start/kill."""

    def __init__(self, name: str, *, behaviour: Behaviour | None = None) -> None:
        self.name = name
        self.behaviour = behaviour or Behaviour()
        self.seen: list[Seen] = []
        self.completed = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def served(self, path: str = "/v1/chat/completions") -> int:
        """Requests received on ``path``."""
        return sum(1 for s in self.seen if s.path == path)

    async def __aenter__(self) -> StubEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, shutdown_timeout=0.0, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def kill(self) -> None:
        """Stop at once: refuse new connections and cut every open one."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _answer(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        body = await request.json()
        self.seen.append(Seen(request.path, body, dict(request.headers)))
        b = self.behaviour
        if b.latency:
            await asyncio.sleep(b.latency)
        if b.fail_next:
            status = b.fail_next.pop(0)
            return web.json_response(
                {"error": {"message": f"{self.name} failed with {status}", "type": "stub"}},
                status=status,
            )
        model = body.get("model")
        text = f"{self.name}:{model}"
        if not body.get("stream"):
            for _ in range(b.chunks):
                if b.chunk_delay:
                    await asyncio.sleep(b.chunk_delay)
            self.completed += 1
            return web.json_response(_whole(text, model, chat=chat))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for index in range(b.chunks):
            if b.break_after_chunks is not None and index >= b.break_after_chunks:
                assert request.transport is not None
                request.transport.abort()
                return response
            piece = (text if index == 0 else f" {index}") + "." * b.pad
            await response.write(_event(_chunk(piece, model, chat=chat)))
            if index == 0 and b.after_first_chunk is not None:
                await b.after_first_chunk.wait()
            if b.chunk_delay:
                await asyncio.sleep(b.chunk_delay)
        await response.write(_event(_chunk("", model, chat=chat, finish="stop")))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        self.completed += 1
        return response

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, chat=False)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"object": "list", "data": []})

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        b = self.behaviour
        text = (
            "# TYPE vllm:num_requests_waiting gauge\n"
            f'vllm:num_requests_waiting{{model_name="m"}} {b.queue}\n'
            "# TYPE vllm:kv_cache_usage_perc gauge\n"
            f'vllm:kv_cache_usage_perc{{model_name="m"}} {b.kv_cache}\n'
        )
        return web.Response(text=text, content_type="text/plain")


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _chunk(piece: str, model: Any, *, chat: bool, finish: str | None = None) -> dict[str, Any]:
    if chat:
        delta = {"role": "assistant", "content": piece} if piece else {}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [choice],
        }
    return {
        "id": "cmpl-stub",
        "object": "text_completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "text": piece, "finish_reason": finish, "logprobs": None}],
    }


def _whole(text: str, model: Any, *, chat: bool) -> dict[str, Any]:
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    if chat:
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
    return {
        "id": "cmpl-stub",
        "object": "text_completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
        "usage": usage,
    }
