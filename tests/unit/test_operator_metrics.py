"""The operator's own metrics, read back the way Prometheus reads them: the text exposition,
over HTTP for the server."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelfleet.metrics.operator_metrics import OperatorMetrics, start_metrics_server


def samples(text: bytes | str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by (sample name, labels)."""
    if isinstance(text, bytes):
        text = text.decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: bytes | str, metric: str, /, **labels: str) -> float | None:
    return samples(text).get((metric, frozenset(labels.items())))


@pytest.fixture
def metrics() -> OperatorMetrics:
    return OperatorMetrics(process_metrics=False)


def test_reconcile_durations_land_in_the_histogram_by_kind(metrics: OperatorMetrics) -> None:
    metrics.observe_reconcile("ModelDeployment", 0.03)
    metrics.observe_reconcile("ModelDeployment", 0.7)
    metrics.observe_reconcile("FleetCluster", 0.004)
    text = metrics.exposition()
    name = "modelfleet_operator_reconcile_duration_seconds"
    assert value(text, f"{name}_count", kind="ModelDeployment") == 2
    assert value(text, f"{name}_sum", kind="ModelDeployment") == pytest.approx(0.73)
    assert value(text, f"{name}_bucket", kind="ModelDeployment", le="0.05") == 1
    assert value(text, f"{name}_bucket", kind="ModelDeployment", le="1.0") == 2
    assert value(text, f"{name}_count", kind="FleetCluster") == 1


def test_an_exception_in_a_timed_reconcile_counts_as_an_error(metrics: OperatorMetrics) -> None:
    with metrics.time_reconcile("ModelDeployment"):
        pass
    with pytest.raises(TimeoutError), metrics.time_reconcile("ModelDeployment"):
        raise TimeoutError
    metrics.count_reconcile_error("FleetCluster", "Unreachable")
    text = metrics.exposition()
    assert (
        value(text, "modelfleet_operator_reconcile_duration_seconds_count", kind="ModelDeployment")
        == 2
    )
    errors = "modelfleet_operator_reconcile_errors_total"
    assert value(text, errors, kind="ModelDeployment", reason="TimeoutError") == 1
    assert value(text, errors, kind="FleetCluster", reason="Unreachable") == 1


def test_failovers_and_stockouts_are_counted_by_their_labels(metrics: OperatorMetrics) -> None:
    metrics.count_failover("aws-use1", reason="ClusterFailed")
    metrics.count_failover("aws-use1", reason="ClusterFailed")
    for _ in range(3):
        metrics.count_stockout("gcp-usc1", "H100", capacity_type="Spot")
    text = metrics.exposition()
    assert (
        value(
            text, "modelfleet_operator_failovers_total", cluster="aws-use1", reason="ClusterFailed"
        )
        == 2
    )
    assert (
        value(
            text,
            "modelfleet_operator_stockouts_total",
            cluster="gcp-usc1",
            gpu="H100",
            capacity_type="Spot",
        )
        == 3
    )


def test_deployment_gauges_follow_the_latest_state_and_vanish_on_delete(
    metrics: OperatorMetrics,
) -> None:
    metrics.set_deployment("team-a", "llama", desired=4, ready=2, cost_per_hour=61.4)
    metrics.set_deployment("team-a", "llama", desired=4, ready=4, cost_per_hour=61.4)
    metrics.set_deployment("team-b", "qwen", desired=1, ready=0, cost_per_hour=None)
    text = metrics.exposition()
    llama = {"namespace": "team-a", "name": "llama"}
    qwen = {"namespace": "team-b", "name": "qwen"}
    assert value(text, "modelfleet_deployment_desired_replicas", **llama) == 4
    assert value(text, "modelfleet_deployment_ready_replicas", **llama) == 4
    assert value(text, "modelfleet_deployment_cost_per_hour_usd", **llama) == 61.4
    # Unknown cost is absent, not zero.
    assert value(text, "modelfleet_deployment_cost_per_hour_usd", **qwen) is None
    assert value(text, "modelfleet_deployment_ready_replicas", **qwen) == 0

    metrics.forget_deployment("team-a", "llama")
    metrics.forget_deployment("team-a", "llama")  # idempotent
    remaining = samples(metrics.exposition())
    assert not [key for key in remaining if ("name", "llama") in key[1]]
    assert value(metrics.exposition(), "modelfleet_deployment_desired_replicas", **qwen) == 1


def test_each_instance_has_its_own_registry() -> None:
    first = OperatorMetrics(process_metrics=False)
    second = OperatorMetrics(process_metrics=False)  # would raise on a shared registry
    first.count_failover("a", reason="ClusterFailed")
    assert (
        value(
            second.exposition(),
            "modelfleet_operator_failovers_total",
            cluster="a",
            reason="ClusterFailed",
        )
        is None
    )


def test_the_http_server_serves_the_registry_with_process_metrics() -> None:
    metrics = OperatorMetrics()
    metrics.set_deployment("team-a", "llama", desired=2, ready=1, cost_per_hour=10.0)
    server = start_metrics_server(metrics, 0, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as reply:
            assert reply.status == 200
            text = reply.read().decode()
    finally:
        server.stop()
    assert (
        value(text, "modelfleet_deployment_ready_replicas", namespace="team-a", name="llama") == 1
    )
    assert any(name == "process_resident_memory_bytes" for name, _ in samples(text))
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=2)


def test_member_watch_state_is_published_and_dropped_with_its_namespace(
    metrics: OperatorMetrics,
) -> None:
    metrics.set_member_watches("m1", [("team-a", True, 1), ("team-b", False, 3)])
    text = metrics.exposition()
    assert value(text, "modelfleet_member_watch_serving", cluster="m1", namespace="team-a") == 1
    assert value(text, "modelfleet_member_watch_serving", cluster="m1", namespace="team-b") == 0
    assert value(text, "modelfleet_member_watch_lists", cluster="m1", namespace="team-b") == 3

    metrics.set_member_watches("m1", [("team-a", False, 2)])  # team-b's informer stopped
    text = metrics.exposition()
    assert value(text, "modelfleet_member_watch_serving", cluster="m1", namespace="team-a") == 0
    assert value(text, "modelfleet_member_watch_serving", cluster="m1", namespace="team-b") is None

    metrics.set_member_watches("m1", [])  # the FleetCluster was deleted
    assert "modelfleet_member_watch_serving{" not in metrics.exposition().decode()
