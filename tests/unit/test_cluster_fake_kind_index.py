"""The in-memory member cluster lists one kind from its own index (``_by_kind``) instead
of scanning every stored object: after any sequence of writes (creates, re-applies, label
changes, status writes, merge patches, removals, deletions by selector, re-creations) each
list is the scan it replaced (kept here as the reference), the same objects in the same
order, for every kind and namespace, through the public reads."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest

from modelfleet import labels
from modelfleet.clusters.fake import InMemoryClusterClient
from modelfleet.clusters.objects import (
    DEPLOYMENT,
    KINDS,
    NODE,
    POD,
    SERVICE,
    JsonObject,
    ResourceKind,
    matches_selector,
)

NAMESPACES = ("team-a", "team-b")
NAMES = ("m0", "m1", "m2", "m3")
TEAMS = ("x", "y")


def _scan(fake: InMemoryClusterClient, kind: ResourceKind, namespace: str | None) -> list[Any]:
    """``InMemoryClusterClient._live`` as it was: a scan of every stored object."""
    return [
        obj
        for (api_version, k, ns, _), obj in fake._objects.items()
        if (api_version, k) == (kind.api_version, kind.kind)
        and (namespace is None or ns == namespace)
    ]


def _manifest(kind: ResourceKind, name: str, namespace: str, team: str, n: int) -> JsonObject:
    meta: dict[str, Any] = {
        "name": name,
        "labels": {labels.MANAGED: "true", "team": team},
    }
    if kind.namespaced:
        meta["namespace"] = namespace
    body: JsonObject = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta}
    if kind in (DEPLOYMENT, SERVICE):
        body["spec"] = {"replicas": n}
    return body


async def _step(fake: InMemoryClusterClient, rng: random.Random) -> None:
    kind = rng.choice((DEPLOYMENT, SERVICE, POD, NODE))
    name, namespace = rng.choice(NAMES), rng.choice(NAMESPACES)
    team, n = rng.choice(TEAMS), rng.randrange(4)
    op = rng.randrange(7)
    if op == 0:
        fake.put(_manifest(kind, name, namespace, team, n))
    elif op == 1:  # create or re-apply, possibly with other labels
        await fake.apply([_manifest(kind, name, namespace, team, n)])
    elif op == 2:
        fake.remove(kind, name, namespace if kind.namespaced else None)
    elif op == 3:
        await fake.delete_owned(kind, {"team": team}, namespace=namespace, keep=(name,))
    elif op == 4:
        with contextlib.suppress(KeyError):  # no such Deployment
            fake.set_deployment_status(namespace, name, ready=n)
    elif op == 5 and fake.get(kind, name, namespace if kind.namespaced else None):
        patch = {"metadata": {"labels": {"team": team}}}
        await fake.merge_patch(kind, name, patch, namespace=namespace if kind.namespaced else None)
    else:
        fake.add_node(f"node-{name}", instance_type="p5.48xlarge", extra_labels={"team": team})


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("share", [True, False])
async def test_lists_by_kind_equal_the_scan_of_every_object(seed: int, share: bool) -> None:
    rng = random.Random(seed)
    fake = InMemoryClusterClient("c1", share_reads=share)
    seen_deleted = False
    for _ in range(300):
        before = {k: [id(o) for o in _scan(fake, k, None)] for k in (DEPLOYMENT, NODE)}
        await _step(fake, rng)
        for kind in KINDS.values():
            for namespace in (None, *NAMESPACES):
                want = _scan(fake, kind, namespace)
                got = fake.objects(kind, namespace)
                assert got == want, (kind.kind, namespace)
                if share:  # the stored objects themselves, in the same order
                    assert [id(o) for o in got] == [id(o) for o in want]
                for team in TEAMS:
                    owned = await fake.list_owned(kind, {"team": team}, namespace=namespace)
                    assert owned == [o for o in want if matches_selector(o, {"team": team})]
        for k in (DEPLOYMENT, NODE):
            after = [id(o) for o in _scan(fake, k, None)]
            seen_deleted |= len(after) < len(before[k])
        readied = fake.complete_rollouts()
        assert sorted(readied) == sorted(
            str(o["metadata"]["name"]) for o in _scan(fake, DEPLOYMENT, None)
        )
    # The sequence covered deletions and the re-creation of objects deleted before.
    assert seen_deleted
    assert fake.objects(DEPLOYMENT) and fake.objects(NODE)
