"""The saturation signals through the reconciler: read from the metrics source, folded into
``Plan.signals``, shown in ``status.slo`` and acted on (docs/decisions.md "Saturation")."""

from __future__ import annotations

from reconciler_world import World, fleet_cluster, model_deployment


async def test_kv_cache_use_shows_in_status_and_scales_up_before_latency_breaks() -> None:
    world = World([fleet_cluster("east", region="us-east-1", price=10.0, max_nodes=64)])
    await world.start()
    world.add(model_deployment("llama", replicas={"min": 2, "max": 8}))
    await world.reconcile("llama")
    world.mark_ready("east")
    await world.reconcile("llama")
    assert world.replicas("east", "llama") == 2

    # Latency well inside the 200 ms objective, but both replicas' KV caches 95% full.
    world.metrics.set(
        "default",
        "llama",
        cluster="east",
        ttft_p95_ms=120.0,
        queue_depth=0.0,
        request_rate=8.0,
        kv_cache_usage=1.9,
        requests_running=120.0,
    )
    world.clock.advance(15)
    outcome = await world.reconcile("llama")
    slo = outcome.status.slo
    assert slo is not None
    assert slo.kv_cache_per_replica == 0.95 and slo.running_per_replica == 60.0
    assert slo.met is True
    # ceil(2 x 0.95 / 0.75) = 3: scaled up while the SLO is still met.
    assert outcome.status.replicas.desired == 3
    assert world.replicas("east", "llama") == 3

    # Without KV data (an engine without the gauge): nothing changes, nothing breaks.
    world.metrics.set(
        "default", "llama", cluster="east", ttft_p95_ms=120.0, queue_depth=0.0, request_rate=8.0
    )
    world.clock.advance(15)
    outcome = await world.reconcile("llama")
    assert outcome.status.slo is not None and outcome.status.slo.kv_cache_per_replica is None
    assert outcome.status.replicas.desired == 3
