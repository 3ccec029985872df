"""Shrink a node pool without taking a node that serves: choose the empty nodes to remove.

A resize by count lets the cloud pick which instance goes (an EKS managed node group's Auto
Scaling group by its termination policy, a GKE or AKS resize by the instance group's
choice). On a pool shared by several replicas or deployments that can be a node holding
another serving pod: a production outage. So when a pool must shrink and one of its nodes
serves, the pools stage asks this module which nodes may go:

- the pool's Nodes (``PoolSpec.node_labels``: modelfleet's instance-type, capacity-type and
  pool labels) and the pods bound to each (``fieldSelector=spec.nodeName=<node>``) are read;
- a node is *empty* when no pod other than a DaemonSet's or a static (mirror) pod, and not
  finished (Succeeded/Failed), is bound to it: what ``kubectl drain`` would have to evict;
- a node *serves* when a pod bound to it is Ready (any workload: ours or another's);
- empty nodes with a providerID are chosen, those the operator cordoned for a removal
  before first (a restart may leave one going but still listed Ready), then those not
  Ready (they carry nothing and may never come up), then by name; each is cordoned before the provider removes exactly
  it (``RemovesNodes.remove_nodes``), so nothing lands there in between. An empty node has
  nothing to evict: cordoning is its whole drain.
- a node the operator cordons carries ``CORDON_ANNOTATION``. When the removal does not
  happen (the provider call failed, the operator restarted in between) and a later pass
  keeps the node, that pass uncordons it (``uncordon``): left cordoned, a Ready node counts
  as the pool's capacity but takes no pod. A node cordoned by someone else (no annotation)
  is never uncordoned, and is cordoned again by nobody (it already is).

When no node of the pool serves, a resize by count cannot hurt a serving pod and is kept
(it also releases instances that never registered as Nodes). When some node serves and
too few empty nodes can be named (none registered yet, no providerID, or a provider
without ``RemovesNodes``), the rest of the shrink waits, said in a ``PoolShrinkWaiting``
Event; the pool stays dirty, so a later pass tries again once a node has emptied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

from modelfleet.clusters.errors import (
    ClusterError,
    ClusterForbidden,
    ClusterNotFound,
    ClusterThrottled,
    ClusterUnreachable,
)
from modelfleet.clusters.objects import NODE, POD, JsonObject, node_info, pod_ready
from modelfleet.providers import NodeRef, PermissionDenied, ProviderError, Throttled, Unreachable

MIRROR_ANNOTATION: Final = "kubernetes.io/config.mirror"
"""A static pod's mirror: the kubelet runs it whatever the API says; drain ignores it."""

CORDON_ANNOTATION: Final = "modelfleet.io/cordoned-for-removal"
"""On a Node the operator cordoned to remove it ("true"): only such a node is uncordoned."""


@runtime_checkable
class NodeReader(Protocol):
    """What the shrink needs of a member-cluster client (``ClusterClient`` plus a patch)."""

    async def list_owned(
        self,
        kind: Any,
        selector: Mapping[str, str],
        *,
        namespace: str | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> list[JsonObject]: ...

    async def merge_patch(
        self, kind: Any, name: str, body: Mapping[str, Any], *, namespace: str | None = None
    ) -> JsonObject: ...


@dataclass(frozen=True)
class PoolNodes:
    """The registered nodes of one pool, read for a shrink."""

    empty: tuple[NodeRef, ...]
    """Removable nodes (no workload pod, a providerID), in the order they should go."""
    serving: tuple[str, ...]
    """Names of nodes holding a Ready workload pod, sorted."""
    unnamed: tuple[str, ...]
    """Empty nodes without a providerID (a provider cannot name their instance)."""
    registered: int = 0
    """Every Node of the pool, whatever it holds."""
    ours: tuple[str, ...] = ()
    """Names of Ready nodes the operator cordoned for a removal (``CORDON_ANNOTATION``),
    sorted (a NotReady one may be a removed instance whose Node is not deleted yet)."""
    held: frozenset[str] = frozenset()
    """Names of nodes cordoned by someone else (unschedulable, no ``CORDON_ANNOTATION``)."""
    refs: frozenset[NodeRef] = frozenset()
    """Every Node of the pool (providerID "" when it has none)."""


def _workload(pod: Mapping[str, Any]) -> bool:
    """True for a pod a drain would evict: not finished, not a DaemonSet's, not a mirror."""
    meta = pod.get("metadata") or {}
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return False
    owners = meta.get("ownerReferences") or []
    return not any(o.get("kind") == "DaemonSet" for o in owners)


def read_pool_nodes(nodes: Sequence[JsonObject], pods: Sequence[JsonObject]) -> PoolNodes:
    """Sort ``nodes`` (one pool's Node objects) into empty, serving and unnamed, by the
    ``pods`` bound to them (``spec.nodeName``; pods of other nodes are ignored)."""
    names = {str((n.get("metadata") or {}).get("name", "")) for n in nodes}
    busy: set[str] = set()
    serving: set[str] = set()
    for pod in pods:
        where = str((pod.get("spec") or {}).get("nodeName") or "")
        if where in names and _workload(pod):
            busy.add(where)
            if pod_ready(pod):
                serving.add(where)
    empty: list[tuple[bool, bool, str, str]] = []
    unnamed: list[str] = []
    ours: list[str] = []
    held: set[str] = set()
    for node in nodes:
        info = node_info(node)
        annotations = (node.get("metadata") or {}).get("annotations") or {}
        if annotations.get(CORDON_ANNOTATION):
            if info.ready:  # a NotReady one (its instance gone, the Node not yet) stays
                ours.append(info.name)
        elif (node.get("spec") or {}).get("unschedulable"):
            held.add(info.name)
        if info.name in busy:
            continue
        provider_id = str((node.get("spec") or {}).get("providerID") or "")
        if provider_id:
            # Already cordoned for a removal first (maybe going: the cloud skips it), then
            # not Ready, then by name.
            empty.append(
                (not annotations.get(CORDON_ANNOTATION), info.ready, info.name, provider_id)
            )
        else:
            unnamed.append(info.name)
    return PoolNodes(
        empty=tuple(NodeRef(name, pid) for _, _, name, pid in sorted(empty)),
        serving=tuple(sorted(serving)),
        unnamed=tuple(sorted(unnamed)),
        registered=len(names),
        ours=tuple(sorted(ours)),
        held=frozenset(held),
        refs=frozenset(
            NodeRef(node_info(n).name, str((n.get("spec") or {}).get("providerID") or ""))
            for n in nodes
        ),
    )


async def pool_nodes(
    client: NodeReader,
    selector: Mapping[str, str],
    *,
    cluster: str,
    pods_above: int | None = None,
) -> PoolNodes:
    """Read the pool's Nodes (``selector``) and the pods bound to them: one LIST per node
    with ``fieldSelector=spec.nodeName=<node>`` (the API server filters; the cluster's
    other pods are never sent). Cluster errors become provider errors (``Unreachable``,
    ``PermissionDenied`` naming the rule, else ``ProviderError``), so the pools stage
    handles them as it handles a failed pool call. With ``pods_above`` set, the pods are
    read only when the pool has more Nodes than that; otherwise no node reads as serving."""
    try:
        nodes = await client.list_owned(NODE, selector)
        wanted = bool(nodes) and (pods_above is None or len(nodes) > pods_above)
        pods: list[JsonObject] = []
        for name in sorted(node_info(n).name for n in nodes) if wanted else ():
            pods += await client.list_owned(POD, {}, fields={"spec.nodeName": name})
    except ClusterError as error:
        raise _translated(error, cluster, "list nodes and pods") from error
    return read_pool_nodes(nodes, pods)


async def cordon(
    client: NodeReader,
    nodes: Sequence[NodeRef],
    *,
    cluster: str,
    held: frozenset[str] = frozenset(),
) -> None:
    """Mark ``nodes`` unschedulable (``spec.unschedulable: true``), as ``kubectl cordon``,
    with ``CORDON_ANNOTATION``; nodes in ``held`` (cordoned by someone else) are left as
    they are. Raises like ``pool_nodes``; a node already gone is skipped."""
    cordoned = {
        "spec": {"unschedulable": True},
        "metadata": {"annotations": {CORDON_ANNOTATION: "true"}},
    }
    for node in nodes:
        if node.name in held:
            continue
        try:
            await client.merge_patch(NODE, node.name, cordoned)
        except ClusterNotFound:
            continue
        except ClusterError as error:
            raise _translated(error, cluster, f"cordon node {node.name}") from error


async def uncordon(client: NodeReader, names: Sequence[str], *, cluster: str) -> None:
    """Undo ``cordon`` on the nodes named (schedulable again, annotation removed). Raises
    like ``pool_nodes``; a node already gone is skipped."""
    body = {"spec": {"unschedulable": None}, "metadata": {"annotations": {CORDON_ANNOTATION: None}}}
    for name in names:
        try:
            await client.merge_patch(NODE, name, body)
        except ClusterNotFound:
            continue
        except ClusterError as error:
            raise _translated(error, cluster, f"uncordon node {name}") from error


def _translated(error: ClusterError, cluster: str, what: str) -> ProviderError:
    if isinstance(error, ClusterUnreachable):
        return Unreachable(f"cluster {cluster}: {error.message}")
    if isinstance(error, ClusterThrottled):
        return Throttled(f"cluster {cluster}: {error.message}")
    if isinstance(error, ClusterForbidden):
        return PermissionDenied(
            f"cluster {cluster}: cannot {what} ({error.message})",
            permission="nodes: list, patch; pods: list (ClusterRole modelfleet-member)",
        )
    return ProviderError(f"cluster {cluster}: cannot {what}: {error}")
