"""Settings of the built-in server, as frozen dataclasses (the command line fills them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class EngineSettings:
    """Bounds of the continuous-batching engine."""

    max_running_sequences: int = 32
    """Sequences decoded together at most (the running batch)."""
    max_queue: int = 256
    """Requests waiting for a slot at most; past it requests get 429 with Retry-After."""
    prefill_chunk_tokens: int = 512
    """Prompt tokens prefilled per engine iteration at most; longer prompts take several
    iterations, interleaved with decode steps of the running batch."""
    kv_cache_tokens: int | None = None
    """KV-cache budget in token positions (padding included). None: on CUDA, what fits in
    ``kv_cache_memory_fraction`` of the GPU memory left after loading; on CPU, 65,536."""
    kv_cache_memory_fraction: float = 0.8
    """Share of the free GPU memory (after loading the weights) the KV cache may use."""
    max_consecutive_step_failures: int = 3
    """An engine step that raises fails only the requests in that step (their streams end
    with an error) and the engine goes on. This many failing steps in a row mean the model
    or the device is broken, not one request: the engine stops, ``/health`` answers 500 and
    Kubernetes restarts the pod."""

    def __post_init__(self) -> None:
        for name in (
            "max_running_sequences",
            "max_queue",
            "prefill_chunk_tokens",
            "max_consecutive_step_failures",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.kv_cache_tokens is not None and self.kv_cache_tokens < 1:
            raise ValueError("kv_cache_tokens must be >= 1")
        if not 0 < self.kv_cache_memory_fraction <= 1:
            raise ValueError("kv_cache_memory_fraction must be in (0, 1]")


@dataclass(frozen=True)
class ServerSettings:
    """Everything ``modelfleet serve`` takes."""

    model: str
    """Hugging Face-format model: a local directory, an ``s3://``, ``gs://``, ``http(s)://``
    or ``file://`` URI fetched into ``cache_dir`` first, or a Hub id (``org/name``)."""
    served_model_name: tuple[str, ...] = ()
    """Names clients may put in ``model`` (the first is listed by /v1/models). Empty: the
    ``model`` argument itself."""
    host: str = "127.0.0.1"
    port: int = 8000
    cache_dir: Path = field(
        default_factory=lambda: Path.home() / ".cache" / "modelfleet" / "models"
    )
    """Where fetched models are kept (one folder per URI)."""
    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    dtype: str = "auto"
    """``auto`` (bfloat16 on a GPU that supports it, else float16 on GPU; float32 on CPU),
    ``float32``, ``bfloat16`` or ``float16``."""
    cpu_threads: int | None = None
    """torch intra-op threads (None: torch's default, one per core). On a busy or shared
    machine, or for a small model, 1 is much faster: small matrix products gain nothing
    from threads, and OpenMP threads that must wait for a core stall every step."""
    default_max_tokens: int = 512
    """``max_tokens`` of a request that sets none (capped by the context length)."""
    retry_after_seconds: int = 1
    """``Retry-After`` of 429 answers (queue full)."""
    engine: EngineSettings = field(default_factory=EngineSettings)

    def __post_init__(self) -> None:
        # A port outside 0-65535 reached the socket (an OverflowError traceback);
        # torch.set_num_threads(0) raises; max_tokens 0 answered every request that sets
        # none with an empty completion.
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be from 0 to 65535, got {self.port}")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ValueError(f"cpu_threads must be >= 1, got {self.cpu_threads}")
        for name in ("default_max_tokens", "retry_after_seconds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def names(self) -> tuple[str, ...]:
        """The model names the server answers to."""
        return self.served_model_name or (self.model,)
