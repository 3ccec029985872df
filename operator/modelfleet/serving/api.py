"""The HTTP routes: OpenAI's chat and text completions (streamed or not), the model list,
health, readiness and metrics. Thin: parsing and validation are ``protocol``'s, token
generation the ``Engine``'s, text assembly ``TextStream``'s; this module maps between
them and HTTP, and frees a request's slot as soon as its client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from modelfleet.serving.detokenize import TextStream
from modelfleet.serving.engine import (
    Engine,
    EngineClosed,
    GenerationRequest,
    QueueFull,
    SamplingParams,
    SequenceHandle,
)
from modelfleet.serving.errors import InvalidRequest, ModelNotFound, NotReady, Overloaded
from modelfleet.serving.loading import LoadedModel
from modelfleet.serving.metrics import ServerMetrics
from modelfleet.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    SamplingRequest,
    UnsupportedField,
)
from modelfleet.serving.settings import ServerSettings

Kind = Literal["chat", "text"]


@dataclass
class ModelService:
    """What the routes share. ``loaded`` and ``engine`` are None until the model is loaded."""

    settings: ServerSettings
    metrics: ServerMetrics
    loaded: LoadedModel | None = None
    engine: Engine | None = None
    load_error: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    def ready(self) -> tuple[LoadedModel, Engine]:
        """The model and engine; raises ``NotReady`` (503) while loading."""
        if self.loaded is None or self.engine is None:
            self.metrics.request_finished("rejected")
            reason = self.load_error or "the model is loading"
            raise NotReady(reason, retry_after=5)
        return self.loaded, self.engine


@dataclass
class _Prepared:
    handle: SequenceHandle
    stream: TextStream
    model: str
    kind: Kind
    include_usage: bool
    id: str
    created: int = field(default_factory=lambda: int(time.time()))


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def _tokenize(loaded: LoadedModel, body: SamplingRequest, kind: Kind) -> list[int]:
    tokenizer = loaded.tokenizer
    if isinstance(body, ChatCompletionRequest):
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidRequest(
                "this model has no chat template; use /v1/completions", param="messages"
            )
        messages = [{"role": m.role, "content": m.text(i)} for i, m in enumerate(body.messages)]

        def render() -> list[int]:
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
            return ids

        return await asyncio.to_thread(render)
    assert isinstance(body, CompletionRequest)
    prompt = body.prompt
    if isinstance(prompt, list) and isinstance(prompt[0], int):
        vocab = loaded.model.config.vocab_size
        if any(not 0 <= int(t) < vocab for t in prompt):
            raise InvalidRequest(f"token ids must be in [0, {vocab})", param="prompt")
        return [int(t) for t in prompt]
    text = prompt if isinstance(prompt, str) else str(prompt[0])

    def encode() -> list[int]:
        ids: list[int] = tokenizer(text)["input_ids"]
        return ids

    return await asyncio.to_thread(encode)


async def _prepare(service: ModelService, body: SamplingRequest, kind: Kind) -> _Prepared:
    loaded, engine = service.ready()
    if body.model not in service.settings.names:
        raise ModelNotFound(body.model)
    try:
        body.check_supported()
        prompt = await _tokenize(loaded, body, kind)
    except UnsupportedField as exc:
        raise InvalidRequest(str(exc), param=exc.param) from exc
    prompt_param = "messages" if kind == "chat" else "prompt"
    if not prompt:
        raise InvalidRequest("the prompt is empty", param=prompt_param)
    room = loaded.max_context - len(prompt)
    if room < 1:
        raise InvalidRequest(
            f"the prompt is {len(prompt)} tokens; this model's context is "
            f"{loaded.max_context} tokens",
            param=prompt_param,
            code="context_length_exceeded",
        )
    limit, param = body.token_limit, body.token_limit_param
    if limit is None:
        limit = min(service.settings.default_max_tokens, room)
    elif limit > room:
        raise InvalidRequest(
            f"{param}={limit} plus the prompt's {len(prompt)} tokens exceed this model's "
            f"context of {loaded.max_context} tokens",
            param=param,
            code="context_length_exceeded",
        )
    temperature = 1.0 if body.temperature is None else body.temperature
    request = GenerationRequest(
        prompt_ids=tuple(prompt),
        max_tokens=limit,
        sampling=SamplingParams(
            temperature=temperature,
            top_p=1.0 if body.top_p is None else body.top_p,
            seed=body.seed,
        ),
        stop_token_ids=frozenset() if body.ignore_eos else loaded.eos_token_ids,
    )
    try:
        handle = engine.submit(request)
    except QueueFull as exc:
        raise Overloaded(
            f"the server is at capacity ({exc}); retry later",
            retry_after=service.settings.retry_after_seconds,
        ) from exc
    except EngineClosed as exc:
        raise NotReady(str(exc), retry_after=service.settings.retry_after_seconds) from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc), param=param) from exc
    prefix = "chatcmpl" if kind == "chat" else "cmpl"
    return _Prepared(
        handle=handle,
        stream=TextStream(loaded.tokenizer, body.stop_strings),
        model=body.model,
        kind=kind,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        id=f"{prefix}-{uuid.uuid4().hex}",
    )


async def _pieces(job: _Prepared) -> AsyncIterator[tuple[str, str | None, int]]:
    """(new text, finish reason or None, completion tokens so far) per generated token."""
    count = 0
    async for event in job.handle.tokens():
        if event.finish_reason == "error":
            yield "", "error", count
            return
        count += 1
        text = job.stream.push(event.token_id)
        if job.stream.stopped:
            job.handle.cancel("stop")
            yield text, "stop", count
            return
        if event.finish_reason is not None:
            yield text + job.stream.flush(), event.finish_reason, count
            return
        yield text, None, count


def _chunk(
    job: _Prepared, *, text: str | None = None, role: bool = False, finish: str | None = None
) -> dict[str, Any]:
    choice: dict[str, Any]
    if job.kind == "chat":
        delta: dict[str, Any] = {}
        if role:
            delta = {"role": "assistant", "content": ""}
        elif text:
            delta = {"content": text}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        kind = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        kind = "text_completion"
    chunk: dict[str, Any] = {
        "id": job.id,
        "object": kind,
        "created": job.created,
        "model": job.model,
        "choices": [choice],
    }
    if job.include_usage:
        chunk["usage"] = None
    return chunk


async def _sse(job: _Prepared) -> AsyncIterator[str]:
    prompt = job.handle.prompt_tokens
    try:
        if job.kind == "chat":
            yield f"data: {_dumps(_chunk(job, role=True))}\n\n"
        count, finish = 0, None
        async for text, reason, so_far in _pieces(job):
            finish, count = reason, so_far
            if finish == "error":
                error = {
                    "message": "generation failed",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
                yield f"data: {_dumps({'error': error})}\n\n"
                return
            if text:
                yield f"data: {_dumps(_chunk(job, text=text))}\n\n"
        yield f"data: {_dumps(_chunk(job, finish=finish))}\n\n"
        if job.include_usage:
            usage = {
                "id": job.id,
                "object": _chunk(job)["object"],
                "created": job.created,
                "model": job.model,
                "choices": [],
                "usage": _usage(prompt, count),
            }
            yield f"data: {_dumps(usage)}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        # A client that went away cancels this generator: free the slot now. No-op when
        # the request finished.
        job.handle.cancel()


async def _until_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _complete(request: Request, job: _Prepared) -> Response:
    async def collect() -> tuple[str, str | None, int]:
        parts: list[str] = []
        finish, count = None, 0
        async for text, reason, so_far in _pieces(job):
            parts.append(text)
            finish, count = reason, so_far
        return "".join(parts), finish, count

    collector = asyncio.ensure_future(collect())
    watcher = asyncio.ensure_future(_until_disconnect(request))
    try:
        await asyncio.wait({collector, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not collector.done():  # the client went away (or we are being cancelled)
            job.handle.cancel()
            collector.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    # cancel() only asks: the task is cancelled once it has run again, and reading its
    # result before that raises InvalidStateError (a 500 with a logged traceback).
    await asyncio.wait({collector})
    if collector.cancelled():
        return Response(status_code=499)  # nobody reads it
    text, finish, count = collector.result()
    if finish == "error":
        return JSONResponse(
            {
                "error": {
                    "message": "generation failed",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
            status_code=500,
        )
    if job.kind == "chat":
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": finish,
        }
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        kind = "text_completion"
    return JSONResponse(
        {
            "id": job.id,
            "object": kind,
            "created": job.created,
            "model": job.model,
            "choices": [choice],
            "usage": _usage(job.handle.prompt_tokens, count),
        }
    )


def build_router(service: ModelService) -> APIRouter:
    """The routes, bound to ``service``."""
    router = APIRouter()

    @router.get("/health")
    async def health() -> JSONResponse:
        """200 while the process serves HTTP (liveness), even while the model loads; 500
        once the engine thread has died, so that the liveness probe restarts the replica."""
        if service.engine is not None and not service.engine.alive:
            return JSONResponse({"status": "engine stopped"}, status_code=500)
        return JSONResponse({"status": "ok"})

    @router.get("/ready")
    async def ready() -> JSONResponse:
        """200 once the model is loaded and the engine runs; 503 before (readiness)."""
        if service.engine is None or not service.engine.alive:
            status = "failed" if service.load_error else "loading"
            if service.engine is not None:
                status = "stopped"
            return JSONResponse(
                {"status": status, "error": service.load_error},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return JSONResponse({"status": "ready"})

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @router.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [
            {"id": name, "object": "model", "created": service.created, "owned_by": "modelfleet"}
            for name in service.settings.names
        ]
        return {"object": "list", "data": data}

    async def serve(request: Request, body: SamplingRequest, kind: Kind) -> Response:
        job = await _prepare(service, body, kind)
        if body.stream:
            return StreamingResponse(
                _sse(job),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await _complete(request, job)

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request, body: ChatCompletionRequest) -> Response:
        return await serve(request, body, "chat")

    @router.post("/v1/completions")
    async def completions(request: Request, body: CompletionRequest) -> Response:
        return await serve(request, body, "text")

    return router
