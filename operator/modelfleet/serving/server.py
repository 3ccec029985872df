"""Assemble and run the server: FastAPI app, model loading in the background, uvicorn.

The HTTP server starts first, so ``/health`` answers while weights download and load;
``/ready`` and the API answer 503 until the engine runs. A model that fails to load stops
the process with exit status 1 (Kubernetes restarts it and shows the log).

``create_app(settings)`` gives the ASGI app (tests run it in a thread); ``main(argv)`` is
``modelfleet serve`` and ``python -m modelfleet.serving``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from fastapi import FastAPI

from modelfleet.serving.api import ModelService, build_router
from modelfleet.serving.engine import Engine
from modelfleet.serving.errors import install_error_handlers
from modelfleet.serving.loading import ModelLoadError, default_kv_cache_tokens, load_model
from modelfleet.serving.metrics import ServerMetrics
from modelfleet.serving.settings import EngineSettings, ServerSettings

log = logging.getLogger("modelfleet.serving")


def _load(service: ModelService, on_failure: Callable[[], None]) -> None:
    settings = service.settings
    if settings.cpu_threads:
        import torch

        torch.set_num_threads(settings.cpu_threads)
    try:
        loaded = load_model(
            settings.model,
            cache_dir=settings.cache_dir,
            device=settings.device,
            dtype=settings.dtype,
        )
        tokens = settings.engine.kv_cache_tokens or default_kv_cache_tokens(
            loaded, memory_fraction=settings.engine.kv_cache_memory_fraction
        )
        engine = Engine(
            loaded.model, settings=settings.engine, metrics=service.metrics, kv_cache_tokens=tokens
        )
        engine.check_model()
        if getattr(loaded.tokenizer, "chat_template", None):
            # Compile the chat template now, not on the first request's clock.
            loaded.tokenizer.apply_chat_template(
                [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
            )
        engine.start()
    except Exception as exc:  # any failure to load ends the process with the reason
        if not isinstance(exc, ModelLoadError | OSError | ValueError | TypeError):
            log.exception("unexpected error while loading %s", settings.model)
        service.load_error = f"{type(exc).__name__}: {exc}"
        log.error("model %s failed to load: %s", settings.model, service.load_error)
        on_failure()
        return
    service.loaded, service.engine = loaded, engine
    log.info("ready: serving %s (KV-cache budget %d tokens)", ", ".join(settings.names), tokens)


def create_app(
    settings: ServerSettings, *, on_load_failure: Callable[[], None] = lambda: None
) -> FastAPI:
    """The ASGI app. Loading starts on a thread at startup; ``app.state.service`` holds the
    ``ModelService``; ``on_load_failure`` runs when the model cannot be loaded."""
    service = ModelService(settings=settings, metrics=ServerMetrics(model=settings.names[0]))

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        loader = threading.Thread(
            target=_load, args=(service, on_load_failure), name="modelfleet-load", daemon=True
        )
        loader.start()
        try:
            yield
        finally:
            await asyncio.to_thread(loader.join, 1.0)
            if service.engine is not None:
                await asyncio.to_thread(service.engine.close)

    app = FastAPI(
        title="modelfleet inference server", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.service = service
    install_error_handlers(app)
    app.include_router(build_router(service))
    return app


def parse_args(argv: Sequence[str] | None = None) -> ServerSettings:
    """Command-line flags -> ``ServerSettings`` (argparse exits 2 on a bad flag)."""
    defaults, engine = ServerSettings(model=""), EngineSettings()
    parser = argparse.ArgumentParser(
        prog="modelfleet serve",
        description="OpenAI-compatible, continuously batching PyTorch inference server.",
    )
    add = parser.add_argument
    add(
        "--model",
        metavar="<uri>",
        required=True,
        help="model directory, s3://, gs://, http(s):// or file:// URI, or Hub id",
    )
    add(
        "--served-model-name",
        metavar="<name>",
        nargs="+",
        default=[],
        help="names clients use (default: --model)",
    )
    add("--host", metavar="<address>", default=defaults.host)
    add("--port", metavar="<port>", type=int, default=defaults.port)
    add(
        "--cache-dir",
        metavar="<dir>",
        type=Path,
        default=defaults.cache_dir,
        help="where fetched models are kept",
    )
    add("--device", metavar="<device>", default=defaults.device, help="auto, cpu, cuda or cuda:N")
    add("--dtype", default=defaults.dtype, choices=["auto", "float32", "bfloat16", "float16"])
    add("--max-running-sequences", metavar="<n>", type=int, default=engine.max_running_sequences)
    add(
        "--max-queue",
        metavar="<n>",
        type=int,
        default=engine.max_queue,
        help="waiting requests at most; more get 429",
    )
    add("--prefill-chunk-tokens", metavar="<tokens>", type=int, default=engine.prefill_chunk_tokens)
    add(
        "--kv-cache-tokens",
        metavar="<tokens>",
        type=int,
        default=None,
        help="KV-cache budget in tokens (default: from free GPU memory; 65536 on CPU)",
    )
    add(
        "--kv-cache-memory-fraction",
        metavar="<fraction>",
        type=float,
        default=engine.kv_cache_memory_fraction,
    )
    add(
        "--max-consecutive-step-failures",
        metavar="<n>",
        type=int,
        default=engine.max_consecutive_step_failures,
        help="engine steps that may fail in a row (each fails only its own requests) "
        "before the engine stops and /health answers 500",
    )
    add(
        "--cpu-threads",
        metavar="<n>",
        type=int,
        default=None,
        help="torch threads (default: one per core; 1 suits small models and busy machines)",
    )
    add("--default-max-tokens", metavar="<tokens>", type=int, default=defaults.default_max_tokens)
    add("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return ServerSettings(
            model=args.model,
            served_model_name=tuple(args.served_model_name),
            host=args.host,
            port=args.port,
            cache_dir=args.cache_dir,
            device=args.device,
            dtype=args.dtype,
            cpu_threads=args.cpu_threads,
            default_max_tokens=args.default_max_tokens,
            engine=EngineSettings(
                max_running_sequences=args.max_running_sequences,
                max_queue=args.max_queue,
                prefill_chunk_tokens=args.prefill_chunk_tokens,
                kv_cache_tokens=args.kv_cache_tokens,
                kv_cache_memory_fraction=args.kv_cache_memory_fraction,
                max_consecutive_step_failures=args.max_consecutive_step_failures,
            ),
        )
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGINT/SIGTERM. Returns the exit status (1: model failed)."""
    import uvicorn

    settings = parse_args(argv)
    failed = threading.Event()
    server: uvicorn.Server | None = None

    def stop_on_failure() -> None:
        failed.set()
        if server is not None:
            server.should_exit = True

    app = create_app(settings, on_load_failure=stop_on_failure)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=110,  # within the pods' 120 s termination grace
    )
    server = uvicorn.Server(config)
    # Bind before logging, so the log names the port actually bound: with --port 0 the
    # kernel picks a free one (tests and local runs read it back from this line instead
    # of picking a port that another process could take before the bind).
    sock = config.bind_socket()
    log.info("listening on http://%s:%d", settings.host, sock.getsockname()[1])
    server.run(sockets=[sock])
    return 1 if failed.is_set() else 0
