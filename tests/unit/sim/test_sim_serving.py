"""The replica serving model: calibrated to published figures, monotone in load, and
ordered by GPU the way the hardware is."""

from __future__ import annotations

import pytest

from modelfleet.sim.serving import Workload, replica_model, waiting_time
from modelfleet.sim.world import ModelProfile, World

CHAT = Workload(prompt_mean=600, output_mean=250)

# NVIDIA NIM LLM benchmarking, Llama-3.1-8B-Instruct, NIM 1.8.0 on one H100: inter-token
# latency (ms) by concurrency (docs/simulation.md cites the page).
NIM_ITL_MS = {1: 4.63, 5: 4.58, 25: 5.19, 50: 5.91, 100: 7.57, 150: 9.81, 200: 12.65}


def test_decode_step_matches_published_h100_itl_within_15_percent() -> None:
    # NIM's H100 profile runs the model in FP8: 1 byte per weight, FP8 KV cache.
    world = World(model=ModelProfile(bytes_per_param=1, kv_bytes_per_token=65536))
    model = replica_model(world, "H100", Workload(prompt_mean=1000, output_mean=1000))
    for concurrency, published in NIM_ITL_MS.items():
        assert model.itl_ms(concurrency) == pytest.approx(published, rel=0.15), concurrency


def test_bf16_default_is_slower_than_fp8_as_bytes_moved_say() -> None:
    bf16 = replica_model(World(), "H100", CHAT)
    fp8 = replica_model(
        World(model=ModelProfile(bytes_per_param=1, kv_bytes_per_token=65536)), "H100", CHAT
    )
    assert 1.5 < bf16.a / fp8.a < 2.0  # weights read per step double; overhead does not
    assert bf16.mu_max < fp8.mu_max


@pytest.mark.parametrize("gpu", ["H100", "A100-80GB", "L40S", "L4"])
def test_step_time_batch_and_ttft_grow_with_load(gpu: str) -> None:
    model = replica_model(World(), gpu, CHAT)
    loads = [model.mu_max * f for f in (0.0, 0.2, 0.5, 0.8, 0.95, 1.0)]
    steps = [model.step_time(x) for x in loads]
    batches = [model.batch(x) for x in loads]
    ttfts = [model.ttft_s(x, 600) for x in loads]
    assert steps == sorted(steps) and steps[-1] > 2 * steps[0]
    assert batches == sorted(batches) and batches[-1] == pytest.approx(model.concurrency)
    assert ttfts == sorted(ttfts)


def test_faster_gpus_serve_more_and_answer_sooner() -> None:
    world = World()
    models = [replica_model(world, g, CHAT) for g in ("H100", "A100-80GB", "L40S", "L4")]
    throughput = [m.mu_max for m in models]
    first_token = [m.ttft_s(0.5 * m.mu_max, 600) for m in models]
    assert throughput == sorted(throughput, reverse=True)
    assert first_token == sorted(first_token)


def test_long_prompts_on_a_small_gpu_are_capped_by_the_kv_cache() -> None:
    long_context = Workload(prompt_mean=2300, output_mean=340)
    l4 = replica_model(World(), "L4", long_context)
    assert l4.concurrency < 40  # 24 GiB minus 16 GB of weights holds few 2.4k-token contexts
    assert replica_model(World(), "H100", long_context).concurrency > 150


def test_prefill_in_chunks_adds_steps_for_long_prompts() -> None:
    model = replica_model(World(), "H100", CHAT)
    lam = 0.5 * model.mu_max
    short, long = model.ttft_s(lam, 2000), model.ttft_s(lam, 2100)
    assert long - short > model.step_time(lam)  # 2,100 tokens need a second 2,048 chunk


def test_queue_wait_is_negligible_at_moderate_load_and_explodes_near_saturation() -> None:
    assert waiting_time(0.5, 500, 5.0) < 1e-6
    assert waiting_time(0.999, 500, 5.0) > waiting_time(0.99, 500, 5.0) > 0
    assert waiting_time(0.0, 500, 5.0) == 0.0


def test_unknown_gpu_names_the_fix() -> None:
    with pytest.raises(KeyError, match=r"world\.gpus"):
        replica_model(World(), "B200", CHAT)
