"""How one model replica serves requests: continuous batching, calibrated from physics.

A replica of an 8B-class model on one GPU runs a vLLM-like engine: every engine step
decodes one token for each of the ``b`` running sequences and fits new prompts' prefill
in (chunked prefill). The step time is

    tau = a + c * b + (prompt tokens prefilled in the step) / R

- ``a``: reading the weights once (memory-bandwidth bound): weight bytes / (bandwidth x
  efficiency), plus a fixed per-step overhead;
- ``c``: reading one sequence's KV cache (mean context x KV bytes per token) at the same
  bandwidth, so the per-token decode time grows with the batch;
- ``R``: prefill throughput, compute bound: dense BF16 FLOPS x MFU / (2 x params).

With requests arriving at ``lam`` per second per replica (mean prompt ``P``, mean output
``O`` tokens), the steady state (Little's law, ``b = lam * O * tau``) has the closed form

    tau = a / (1 - lam * (P / R + c * O)),

valid while ``b`` stays below the concurrency limit ``C`` (max_num_seqs, or the KV cache).
Saturation throughput follows from ``b = C``:
``mu_max = C / (C * P / R + O * (a + c * C))``. Past it, requests wait in the queue.

A request's time to first token is its queue wait, the rest of the step under way
(uniform in ``[0, tau]``), then the steps that carry its prompt in chunks of at most the
prefill budget ``B`` tokens (chunked prefill), each as long as a step at the current load,
plus the compute of its own prompt:
``TTFT = W + U * tau + ceil(prompt / B) * tau + prompt / R``. So TTFT grows with load
through ``tau``, steeply near saturation, as measured TTFT does. TPOT is ``tau``.

``docs/simulation.md`` compares this model with NVIDIA's published NIM figures for
Llama-3.1-8B on H100 (``tests/unit/sim/test_serving.py`` checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelfleet.sim.world import World


@dataclass(frozen=True)
class Workload:
    """Mean token lengths of a deployment's requests (the serving model's inputs)."""

    prompt_mean: float
    """Mean prompt tokens."""
    output_mean: float
    """Mean generated tokens."""

    @property
    def context_mean(self) -> float:
        """Mean KV context over a sequence's life: the prompt plus half the output."""
        return self.prompt_mean + self.output_mean / 2


@dataclass(frozen=True)
class ReplicaModel:
    """Serving characteristics of one replica (one GPU class, one workload). Seconds."""

    gpu: str
    a: float
    """Decode step time at batch 0: weight read, seconds."""
    c: float
    """Extra step time per running sequence (its KV read), seconds."""
    prefill_rate: float
    """Prefill tokens per second."""
    concurrency: int
    """Most running sequences (max_num_seqs, or what the KV cache holds)."""
    prompt_mean: float
    output_mean: float
    chunk_tokens: int = 2048
    """Chunked-prefill budget per step, tokens."""
    kv_tokens: float = 0.0
    """Tokens the KV cache holds (the memory left after the weights); 0: unknown."""

    @property
    def mu_max(self) -> float:
        """Saturation throughput, requests per second."""
        cap = self.concurrency
        return cap / (
            cap * self.prompt_mean / self.prefill_rate + self.output_mean * (self.a + self.c * cap)
        )

    def step_time(self, lam: float) -> float:
        """Steady-state step time (seconds) at ``lam`` requests/s; at or past saturation the
        step time at full batch. Monotone non-decreasing in ``lam``."""
        lam = min(max(lam, 0.0), self.mu_max)
        denom = 1.0 - lam * (self.prompt_mean / self.prefill_rate + self.c * self.output_mean)
        return self.a / max(denom, 1e-9)

    def batch(self, lam: float) -> float:
        """Running sequences at ``lam`` requests/s (Little's law), at most ``concurrency``."""
        lam = min(max(lam, 0.0), self.mu_max)
        return min(float(self.concurrency), lam * self.output_mean * self.step_time(lam))

    def itl_ms(self, batch: float) -> float:
        """Decode-only inter-token latency (ms) at ``batch`` running sequences (the figure
        benchmarks at fixed concurrency report)."""
        return 1000.0 * (self.a + self.c * batch)

    def ttft_s(
        self, lam: float, prompt: float, *, wait: float = 0.0, residual: float = 0.5
    ) -> float:
        """TTFT (seconds) of a ``prompt``-token request at ``lam`` requests/s per replica,
        after ``wait`` seconds in the queue; ``residual`` is the fraction of the current step
        still to run (uniform in [0, 1] per request; 0.5 on average)."""
        tau = self.step_time(lam)
        chunks = max(1, math.ceil(prompt / self.chunk_tokens))
        return wait + residual * tau + chunks * tau + prompt / self.prefill_rate

    def kv_cache_usage(self, batch: float) -> float:
        """KV-cache use (0..1) with ``batch`` running sequences of the mean context, as
        vLLM's ``kv_cache_usage_perc`` reports it; 0 when ``kv_tokens`` is unknown."""
        if self.kv_tokens <= 0.0:
            return 0.0
        context = self.prompt_mean + self.output_mean / 2
        return min(1.0, max(0.0, batch * context / self.kv_tokens))


def replica_model(
    world: World, gpu: str, workload: Workload, *, gpus_per_replica: int = 1
) -> ReplicaModel:
    """The serving model of a replica on ``gpus_per_replica`` GPUs of type ``gpu`` (tensor
    parallel: bandwidth, FLOPS and memory add up). Raises KeyError for an unknown GPU."""
    profile = world.gpu(gpu)
    engine = world.engine
    model = world.model
    n = max(1, gpus_per_replica)
    bandwidth = profile.memory_bandwidth_tbs * 1e12 * n * engine.decode_bandwidth_efficiency
    weight_bytes = model.params_billion * 1e9 * model.bytes_per_param
    a = weight_bytes / bandwidth + engine.step_overhead_ms / 1000.0
    c = model.kv_bytes_per_token * workload.context_mean / bandwidth
    flops = profile.dense_bf16_tflops * 1e12 * n * engine.prefill_mfu
    prefill_rate = flops / (2 * model.params_billion * 1e9)
    memory = profile.memory_gib * 2**30 * n * engine.kv_cache_memory_fraction
    kv_tokens = max(0.0, memory - weight_bytes) / model.kv_bytes_per_token
    by_kv = math.floor(kv_tokens / max(1.0, workload.context_mean))
    concurrency = max(1, min(engine.max_num_seqs, by_kv))
    return ReplicaModel(
        gpu=gpu,
        a=a,
        c=c,
        prefill_rate=prefill_rate,
        concurrency=concurrency,
        prompt_mean=workload.prompt_mean,
        output_mean=workload.output_mean,
        chunk_tokens=engine.prefill_chunk_tokens,
        kv_tokens=kv_tokens,
    )


def waiting_time(rho: float, servers: float, service_time: float) -> float:
    """Mean queue wait (seconds) of an M/M/m-like queue with ``servers`` slots busy at
    utilisation ``rho`` (Sakasegawa's approximation); 0 for an idle queue, large near 1."""
    if rho <= 0.0 or servers <= 0:
        return 0.0
    rho = min(rho, 0.999999)
    exponent = math.sqrt(2.0 * (servers + 1.0)) - 1.0
    return float(service_time * rho**exponent / (servers * (1.0 - rho)))
