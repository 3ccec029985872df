"""Names and labels of GKE node pools modelfleet owns, within GCP's rules.

GKE node pool names are at most 40 characters (``mf-<pool_id>`` is 15). GCP resource labels
(the ``resourceLabels`` GKE copies onto the pool's VMs and disks, which is where ownership
is recorded) allow only lowercase letters, digits, ``_`` and ``-``, keys starting with a
letter, 63 characters each, so modelfleet's tag keys are mapped:
``modelfleet.io/managed`` -> ``modelfleet-io-managed`` (lowercase; every other character
becomes ``-``). ``canonical_tags`` maps them back so callers see the same keys on every
cloud. Node labels are Kubernetes labels (GKE applies Kubernetes' rules to them, not GCP's),
and workloads select on their exact values, so they are validated, never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from modelfleet import labels

POOL_PREFIX = "mf-"
GKE_POOL_NAME_MAX = 40

_NOT_LABEL_CHAR = re.compile(r"[^a-z0-9_-]")
_K8S_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_K8S_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def pool_name(pool_id: str) -> str:
    """GKE node pool name for a modelfleet pool id: ``mf-<pool_id>`` (<= 40 chars)."""
    name = f"{POOL_PREFIX}{pool_id}"
    if len(name) > GKE_POOL_NAME_MAX:
        raise ValueError(f"pool name {name!r} is longer than {GKE_POOL_NAME_MAX} characters")
    return name


def instance_of(provider_id: str) -> tuple[str, str, str] | None:
    """(project, zone, instance name) of a GKE Node's ``spec.providerID``
    (``gce://my-project/us-central1-a/gke-prod-mf-1a2b-grp-x7k2``), None when it is not a
    GCE one."""
    if not provider_id.startswith("gce://"):
        return None
    parts = provider_id[len("gce://") :].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def gcp_label_key(key: str) -> str:
    """A tag key as a GCP label key: lowercase, ``[a-z0-9_-]``, starts with a letter, <= 63."""
    mapped = _NOT_LABEL_CHAR.sub("-", key.lower())
    if not mapped[:1].isalpha():
        mapped = f"k-{mapped}"
    return mapped[:63]


def gcp_label_value(value: str) -> str:
    """A tag value as a GCP label value: lowercase, ``.`` -> ``_`` (reversed by
    ``canonical_tags``; DNS names never contain ``_``), other characters outside
    ``[a-z0-9_-]`` -> ``-``, at most 63 characters."""
    return _NOT_LABEL_CHAR.sub("-", value.lower().replace(".", "_"))[:63]


def resource_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """modelfleet's tags as GCP resource labels (see the module docstring for the mapping)."""
    return {gcp_label_key(key): gcp_label_value(value) for key, value in tags.items()}


_CANONICAL = {gcp_label_key(key): key for key in (labels.MANAGED, labels.CLUSTER, labels.OFFERING)}
MANAGED_LABEL = gcp_label_key(labels.MANAGED)


def canonical_tags(resource: Mapping[str, str]) -> dict[str, str]:
    """A pool's GCP resource labels with modelfleet's own keys and values mapped back
    (``modelfleet-io-cluster=gke_usc1`` -> ``modelfleet.io/cluster=gke.usc1``); other labels
    unchanged."""
    tags = {}
    for key, value in resource.items():
        if key in _CANONICAL:
            tags[_CANONICAL[key]] = value.replace("_", ".")
        else:
            tags[key] = value
    return tags


def tags_round_trip(tags: Mapping[str, str]) -> bool:
    """True when ``tags`` survive GCP's label rules unchanged (lowercase DNS-style values of
    at most 63 characters), so that a pool's tags read back name the same pool."""
    return canonical_tags(resource_labels(tags)) == dict(tags)


def is_owned(resource: Mapping[str, str]) -> bool:
    """True when a pool's resource labels mark it as modelfleet's."""
    return resource.get(MANAGED_LABEL) == "true"


def invalid_node_labels(node_labels: Mapping[str, str]) -> list[str]:
    """Node labels Kubernetes would reject (``key=value`` strings); empty when all are valid."""
    bad = []
    for key, value in node_labels.items():
        prefix, _, name = key.rpartition("/")
        valid_key = (
            0 < len(name) <= 63 and _K8S_LABEL_NAME.match(name) is not None and len(prefix) <= 253
        )
        if not valid_key or len(value) > 63 or not _K8S_LABEL_VALUE.match(value):
            bad.append(f"{key}={value}")
    return bad
