"""A local OpenAI-compatible streaming chat server whose latency grows with load in a known
way (for ``modelfleet profile`` tests). Importable helper, not a conftest.

With ``n`` requests in flight when a request arrives (itself included), its first token
comes after ``ttft_base + ttft_per_inflight x n`` seconds and each later token after
``tpot_base + tpot_per_inflight x n`` seconds; it streams ``max_tokens`` content chunks in
the OpenAI ``chat.completion.chunk`` SSE format, then ``[DONE]``. At an offered rate
``lam`` with outputs of ``O`` tokens, Little's law gives the mean number in flight
``n = lam (a + O c) / (1 - lam (b + O d))`` (a, b: TTFT base and slope; c, d: TPOT), so
TTFT ``a + b n`` reaches an objective ``T`` at ``lam* = (T - a) / (b (a + O c) / b ... )``
— ``capacity()`` solves it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

PROFILE_CLI = "import sys; from modelfleet.cli import main; sys.argv[0] = 'modelfleet'; main()"


async def run_profile(
    *args: str, columns: str | None = None, timeout: float = 180
) -> tuple[int, str]:
    """``modelfleet profile ARGS`` as a child process (the real CLI): its exit status and
    its stdout and stderr together. ``columns``: the ``COLUMNS`` it sees (None: unset, so a
    pipe's 80). Raises ``TimeoutError`` after ``timeout`` seconds."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PROFILE_CLI,
        "profile",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    raw, _ = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    assert proc.returncode is not None
    return proc.returncode, raw.decode()


@dataclass
class LatencyLaw:
    ttft_base: float = 0.05
    ttft_per_inflight: float = 0.025
    tpot_base: float = 0.005
    tpot_per_inflight: float = 0.002

    def capacity(self, ttft_slo_s: float, output_tokens: int) -> float:
        """Offered requests/s at which the mean TTFT reaches ``ttft_slo_s``."""
        a, b = self.ttft_base, self.ttft_per_inflight
        c, d = self.tpot_base, self.tpot_per_inflight
        n = (ttft_slo_s - a) / b
        o = output_tokens
        # n = lam (a + b n + (o - 1)(c + d n))  (time in system x rate)
        return n / (a + b * n + (o - 1) * (c + d * n))


class OpenAIStub:
    """``await stub.start()`` serves on 127.0.0.1 (ephemeral port); ``url`` is the base URL.

    ``context``: the model's context in tokens (one prompt word is one token); a request
    whose prompt and ``max_tokens`` exceed it is refused as the built-in server and vLLM
    refuse it: HTTP 400 with an OpenAI error body, code ``context_length_exceeded``."""

    def __init__(self, law: LatencyLaw, *, context: int | None = None) -> None:
        self.law = law
        self.context = context
        self.inflight = 0
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        tokens = int(body.get("max_tokens") or 16)
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        if self.context is not None and prompt + tokens > self.context:
            error = {
                "message": f"the prompt is {prompt} tokens; this model's context is "
                f"{self.context} tokens",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
            return web.json_response({"error": error}, status=400)
        self.inflight += 1
        self.requests += 1
        n = self.inflight
        try:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            law = self.law
            await asyncio.sleep(law.ttft_base + law.ttft_per_inflight * n)
            for i in range(tokens):
                if i:
                    await asyncio.sleep(law.tpot_base + law.tpot_per_inflight * self.inflight)
                chunk = {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model", "stub"),
                    "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}],
                }
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            done = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "stub"),
                "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
            }
            await response.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
            await response.write_eof()
            return response
        finally:
            self.inflight -= 1


async def started_stub() -> AsyncIterator[OpenAIStub]:
    """An ``OpenAIStub`` with the default ``LatencyLaw``, started and stopped around its
    user (wrap with ``pytest.fixture`` in a test module)."""
    server = OpenAIStub(LatencyLaw())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
