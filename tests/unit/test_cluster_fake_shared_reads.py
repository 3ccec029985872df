"""The in-memory member cluster with ``share_reads`` (the simulator's setting): reads hand
out the stored objects without copying, and every write replaces an object instead of
editing it, so what a reader holds stays the snapshot it read, as with copied reads."""

from __future__ import annotations

from modelfleet.api import ModelDeployment
from modelfleet.clusters.fake import InMemoryClusterClient
from modelfleet.clusters.objects import DEPLOYMENT, readiness_of
from modelfleet.clusters.workloads import WorkloadPlacement, owner_selector, render_workloads

MD = ModelDeployment.model_validate(
    {
        "metadata": {"name": "llama", "namespace": "team-a", "uid": "u1"},
        "spec": {"model": {"name": "llama"}, "replicas": {"min": 1, "max": 4}},
    }
)


async def _listed(fake: InMemoryClusterClient) -> list[dict[str, object]]:
    selector = owner_selector(name="llama", namespace="team-a")
    return await fake.list_owned(DEPLOYMENT, selector, namespace="team-a")


async def test_a_listed_object_keeps_its_snapshot_through_later_writes() -> None:
    for share in (False, True):
        fake = InMemoryClusterClient("c1", share_reads=share)
        placement = WorkloadPlacement("c1", "p5.48xlarge", "OnDemand", 2)
        await fake.apply(render_workloads(MD, [placement]))
        (before,) = await _listed(fake)
        name = str(before["metadata"]["name"])  # type: ignore[index]
        fake.set_deployment_status("team-a", name, ready=1)
        await fake.apply(
            render_workloads(MD, [WorkloadPlacement("c1", "p5.48xlarge", "OnDemand", 3)])
        )
        (after,) = await _listed(fake)
        # The first read is untouched by the status write and the re-apply ...
        assert readiness_of(before).ready == 0, share
        assert before["spec"]["replicas"] == 2, share  # type: ignore[index]
        # ... and the second read sees both.
        assert readiness_of(after).ready == 1, share
        assert after["spec"]["replicas"] == 3, share  # type: ignore[index]
        assert int(after["metadata"]["resourceVersion"]) > int(  # type: ignore[index]
            before["metadata"]["resourceVersion"]  # type: ignore[index]
        )


async def test_shared_reads_do_not_copy_and_copied_reads_do() -> None:
    shared = InMemoryClusterClient("c1", share_reads=True)
    copied = InMemoryClusterClient("c1")
    placement = WorkloadPlacement("c1", "p5.48xlarge", "OnDemand", 1)
    for fake in (shared, copied):
        await fake.apply(render_workloads(MD, [placement]))
    assert (await _listed(shared))[0] is (await _listed(shared))[0]
    assert (await _listed(copied))[0] is not (await _listed(copied))[0]
    assert (await _listed(copied))[0]["spec"] == (await _listed(shared))[0]["spec"]
