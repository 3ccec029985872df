"""Continuous batching: outputs independent of batching, chunked prefill, bounded admission.

Greedy outputs of requests served together must equal those served one at a time (the
padded batch masks other sequences out; prefill runs per sequence). The admission queue is
bounded: past it, requests get 429 with Retry-After, and a client that leaves hands its
slot to the next waiting request at once. Engine-level checks drive ``Engine`` directly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import torch

from modelfleet.serving.engine import Engine, GenerationRequest, SamplingParams
from modelfleet.serving.loading import load_model
from modelfleet.serving.metrics import ServerMetrics
from modelfleet.serving.settings import EngineSettings
from modelfleet.serving.tiny import write_tiny_model

try:  # tests/integration on sys.path (pytest's default rootdir-less import)
    from serving_harness import MODEL_NAME, RunningServer, running_server, settings_for
except ImportError:  # tests as a package
    from tests.integration.serving_harness import (
        MODEL_NAME,
        RunningServer,
        running_server,
        settings_for,
    )

pytestmark = pytest.mark.integration

LONG = {"ignore_eos": True}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("serving-batching") / "tiny")


def prompts(count: int) -> list[str]:
    # Different lengths, so rows of the batch carry different amounts of padding.
    return [
        " ".join(f"w{(7 * i + j) % 400}" for j in range(1 + (5 * i) % 23)) for i in range(count)
    ]


def test_greedy_outputs_of_16_concurrent_requests_equal_one_at_a_time(model_dir: Path) -> None:
    with running_server(settings_for(model_dir, max_running_sequences=16)) as server:
        client = openai.AsyncOpenAI(base_url=server.api, api_key="unused", max_retries=0)

        async def one(prompt: str) -> tuple[str, str | None]:
            reply = await client.chat.completions.create(
                model=MODEL_NAME,
                messages=[{"role": "user", "content": prompt}],
                temperature=0,
                max_tokens=24,
                extra_body=LONG,
            )
            return reply.choices[0].message.content or "", reply.choices[0].finish_reason

        async def run() -> tuple[list[Any], list[Any]]:
            alone = [await one(p) for p in prompts(16)]
            peak_alone = server.service.engine.peak_batch if server.service.engine else -1
            assert peak_alone == 1
            together = await asyncio.gather(*(one(p) for p in prompts(16)))
            await client.close()
            return alone, list(together)

        alone, together = asyncio.run(run())
        assert server.service.engine is not None
        assert server.service.engine.peak_batch >= 4, "the requests were not batched"
    assert together == alone
    assert all(finish == "length" and text for text, finish in alone)
    assert len({text for text, _ in alone}) > 8  # different prompts, different answers


def test_chunked_prefill_gives_the_same_tokens_as_one_pass(model_dir: Path) -> None:
    loaded = load_model(str(model_dir), cache_dir=model_dir.parent / "cache")
    prompt = tuple(5 + (i * 37) % 500 for i in range(300))

    async def generate(chunk: int) -> list[int]:
        engine = Engine(
            loaded.model,
            settings=EngineSettings(prefill_chunk_tokens=chunk),
            metrics=ServerMetrics(model="m"),
            kv_cache_tokens=4096,
        )
        engine.start()
        try:
            handle = engine.submit(
                GenerationRequest(prompt, max_tokens=16, sampling=SamplingParams(temperature=0))
            )
            return [event.token_id async for event in handle.tokens()]
        finally:
            engine.close()

    whole = asyncio.run(generate(4096))
    assert len(whole) == 16
    assert asyncio.run(generate(64)) == whole  # 5 chunks
    assert asyncio.run(generate(7)) == whole  # 43 chunks


def test_qwen2_greedy_outputs_equal_generate_alone_and_batched(tmp_path: Path) -> None:
    """The GPU benchmark's architecture (Qwen2: biased q/k/v, tied embeddings), tiny, on
    the engine directly: served alone, served 8 at a time (prefilled together, decoded
    together), and transformers' generate all give the same tokens."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only cost (see --cpu-threads)
    try:
        _check_qwen2(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _check_qwen2(tmp_path: Path) -> None:
    import torch

    model_dir = write_tiny_model(tmp_path / "qwen2", preset="tiny-qwen2")
    loaded = load_model(str(model_dir), cache_dir=tmp_path / "cache")
    assert loaded.model.config.model_type == "qwen2"
    prompts = [tuple(5 + (i * 31 + j * 7) % 500 for j in range(3 + 4 * i)) for i in range(8)]

    async def serve(together: bool) -> list[list[int]]:
        engine = Engine(loaded.model, settings=EngineSettings(), metrics=ServerMetrics(model="m"),
                        kv_cache_tokens=8192)  # fmt: skip
        engine.check_model()
        engine.start()
        try:

            async def one(prompt: tuple[int, ...]) -> list[int]:
                handle = engine.submit(GenerationRequest(prompt, max_tokens=12,
                                                         sampling=SamplingParams(temperature=0)))  # fmt: skip
                return [e.token_id async for e in handle.tokens()]

            if together:
                result = list(await asyncio.gather(*(one(p) for p in prompts)))
                assert engine.peak_prefill_group >= 2  # prompts were prefilled together
                return result
            return [await one(p) for p in prompts]
        finally:
            engine.close()

    alone = asyncio.run(serve(False))
    assert asyncio.run(serve(True)) == alone
    for prompt, tokens in zip(prompts, alone, strict=True):
        with torch.inference_mode():
            out = loaded.model.generate(torch.tensor([prompt]), max_new_tokens=12,
                                        min_new_tokens=12, do_sample=False)  # fmt: skip
        assert out[0, len(prompt) :].tolist() == tokens


def test_the_kv_cache_budget_bounds_the_batch(model_dir: Path) -> None:
    loaded = load_model(str(model_dir), cache_dir=model_dir.parent / "cache")
    # Each request reserves 10 + 40 = 50 positions: a 120-position budget runs 2 at once,
    # however many slots there are.
    engine = Engine(
        loaded.model,
        settings=EngineSettings(max_running_sequences=16, max_queue=8),
        metrics=ServerMetrics(model="m"),
        kv_cache_tokens=120,
    )
    request = GenerationRequest(tuple(range(5, 15)), max_tokens=40,
                                sampling=SamplingParams(temperature=0))  # fmt: skip

    async def run() -> list[int]:
        handles = [engine.submit(request) for _ in range(5)]
        return [len([e async for e in h.tokens()]) for h in handles]

    engine.start()
    try:
        assert asyncio.run(run()) == [40] * 5
        assert engine.peak_batch == 2
        with pytest.raises(ValueError, match="KV-cache budget"):
            asyncio.run(_submit(engine, GenerationRequest(tuple(range(5, 15)), max_tokens=111)))
    finally:
        engine.close()


async def _submit(engine: Engine, request: GenerationRequest) -> None:
    engine.submit(request)


@pytest.fixture(scope="module")
def narrow_server(model_dir: Path) -> Iterator[RunningServer]:
    with running_server(settings_for(model_dir, max_running_sequences=1, max_queue=1)) as s:
        yield s


def test_a_full_queue_answers_429_and_a_leaving_client_hands_over_its_slot(
    narrow_server: RunningServer,
) -> None:
    server = narrow_server
    client = openai.OpenAI(base_url=server.api, api_key="unused", max_retries=0, timeout=30)

    def long_stream() -> Any:
        return client.chat.completions.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": "w1"}], temperature=0,
            max_tokens=1900, stream=True, extra_body=LONG,
        )  # fmt: skip

    first = long_stream()
    next(iter(first))  # running: the only slot is taken
    server.wait_metric("modelfleet_running_sequences", 1)

    second_started = threading.Event()
    second_result: list[Any] = []

    def second() -> None:
        stream = long_stream()  # waits in the queue: no byte until it runs
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                second_started.set()
                break
        stream.close()
        second_result.append(True)

    waiter = threading.Thread(target=second, daemon=True)
    waiter.start()
    server.wait_metric("modelfleet_queue_depth", 1)

    rejected = server.sample("modelfleet_requests_total", finish_reason="rejected")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": "w2"}], max_tokens=2
        )
    assert caught.value.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    assert caught.value.code == "queue_full"
    assert server.sample("modelfleet_requests_total", finish_reason="rejected") == rejected + 1
    assert not second_started.is_set()

    finished = server.sample("modelfleet_requests_total", finish_reason="length")
    cancelled = server.sample("modelfleet_requests_total", finish_reason="cancelled")
    first.close()  # the first client leaves: the waiting request takes the slot
    assert second_started.wait(60), "the queued request never started"
    # It took the slot the close freed, not one the first stream's 1,900 tokens ending
    # freed (this was "within 5 s of the close": a busy machine's close took longer).
    assert server.sample("modelfleet_requests_total", finish_reason="length") == finished
    waiter.join(60)
    assert second_result == [True]
    server.wait_metric("modelfleet_requests_total", cancelled + 2, finish_reason="cancelled")
    server.wait_metric("modelfleet_running_sequences", 0)
    server.wait_metric("modelfleet_queue_depth", 0)


def test_requests_before_the_model_is_loaded_get_503_with_retry_after(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "no-such-model")
    with running_server(settings, wait_ready=False) as server:
        deadline = time.monotonic() + 30
        while server.service.load_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.service.load_error is not None
        client = openai.OpenAI(base_url=server.api, api_key="unused", max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.completions.create(model=MODEL_NAME, prompt="w1", max_tokens=2)
        assert caught.value.status_code == 503
        assert caught.value.response.headers["Retry-After"] == "5"
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as ready:
            urllib.request.urlopen(f"{server.url}/ready", timeout=5)
        assert ready.value.code == 503
        with urllib.request.urlopen(f"{server.url}/health", timeout=5) as health:
            assert health.status == 200


def test_a_dead_engine_fails_liveness_readiness_and_requests(model_dir: Path) -> None:
    import urllib.error
    import urllib.request

    with running_server(settings_for(model_dir)) as server:
        assert server.service.engine is not None
        server.service.engine.close()  # as if the engine thread had died
        for path, status in (("/health", 500), ("/ready", 503)):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(server.url + path, timeout=5)
            assert caught.value.code == status
        client = openai.OpenAI(base_url=server.api, api_key="unused", max_retries=0)
        with pytest.raises(openai.InternalServerError) as answer:
            client.completions.create(model=MODEL_NAME, prompt="w1", max_tokens=2)
        assert answer.value.status_code == 503


class _FaultyModel(torch.nn.Module):
    """The served model behind a switch: ``fail_next`` forward passes raise (a model step
    that fails for one request's input), ``fail_always`` makes every pass raise (a broken
    device). A stand-in for the torch module, not for our engine."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner
        self.fail_next = 0
        self.fail_always = False

    def forward(self, **kwargs: Any) -> Any:
        if self.fail_always or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            raise RuntimeError("simulated kernel failure")
        return self.inner(**kwargs)


def test_a_failing_step_fails_only_its_requests_and_a_repeating_fault_stops_the_engine(
    model_dir: Path,
) -> None:
    import urllib.error
    import urllib.request

    with running_server(settings_for(model_dir)) as server:
        engine = server.service.engine
        assert engine is not None
        faulty = _FaultyModel(engine.model)
        engine.model = faulty
        client = openai.OpenAI(base_url=server.api, api_key="unused", max_retries=0)

        faulty.fail_next = 1
        with pytest.raises(openai.APIStatusError) as failed:
            client.completions.create(model=MODEL_NAME, prompt="w1 w2", max_tokens=2)
        assert failed.value.status_code >= 500
        # The engine went on: the next request is served and the server stays healthy.
        served = client.completions.create(model=MODEL_NAME, prompt="w1 w2", max_tokens=2)
        assert served.choices[0].text
        with urllib.request.urlopen(f"{server.url}/health", timeout=5) as health:
            assert health.status == 200
        assert engine.alive

        faulty.fail_always = True  # every step fails: the model or device is broken
        limit = EngineSettings().max_consecutive_step_failures
        for _ in range(limit):
            with pytest.raises(openai.APIStatusError):
                client.completions.create(model=MODEL_NAME, prompt="w3", max_tokens=2)
            if not engine.alive:
                break
        deadline = time.monotonic() + 10
        while engine.alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not engine.alive
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{server.url}/health", timeout=5)
        assert caught.value.code == 500
