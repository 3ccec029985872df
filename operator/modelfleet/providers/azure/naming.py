"""Names and tags of AKS agent pools modelfleet owns, within ARM's rules.

AKS agent pool names are 1-12 lowercase alphanumerics starting with a letter (Linux pools),
so a pool is ``mf`` + the first 10 hex chars of its pool id. ARM tag names may not contain
``< > % & \\ ? /``, so modelfleet's tag keys keep their dots and lose the slash:
``modelfleet.io/managed`` -> ``modelfleet.io-managed``. ``canonical_tags`` maps them back so
callers see the same keys on every cloud. Node labels and taints are Kubernetes', passed as
they are: workloads select on their exact values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from modelfleet import labels

POOL_PREFIX = "mf"
AKS_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_FORBIDDEN = re.compile(r"[<>%&\\?/]")


def pool_name(pool_id: str) -> str:
    """AKS agent pool name for a pool id: ``mf`` + its first 10 characters (12 in all)."""
    name = f"{POOL_PREFIX}{pool_id[:10]}".lower()
    if not AKS_POOL_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid AKS agent pool name")
    return name


def scale_set_of(provider_id: str) -> str | None:
    """The VM scale set of an AKS Node's ``spec.providerID`` (``azure:///subscriptions/<s>/
    resourceGroups/<mc_rg>/providers/Microsoft.Compute/virtualMachineScaleSets/
    aks-<pool>-<hash>-vmss/virtualMachines/<n>``), lowercased; None for any other."""
    parts = provider_id.lower().split("/")
    if not provider_id.lower().startswith("azure://") or "virtualmachinescalesets" not in parts:
        return None
    at = parts.index("virtualmachinescalesets")
    return parts[at + 1] if at + 1 < len(parts) and parts[at + 1] else None


def tag_key(key: str) -> str:
    """A tag key with the characters ARM forbids in tag names replaced by ``-``."""
    return _FORBIDDEN.sub("-", key)[:512]


def arm_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """modelfleet's tags as ARM tags (values up to 256 characters)."""
    return {tag_key(key): value[:256] for key, value in tags.items()}


_CANONICAL = {tag_key(key): key for key in (labels.MANAGED, labels.CLUSTER, labels.OFFERING)}
MANAGED_TAG = tag_key(labels.MANAGED)


def canonical_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """A pool's ARM tags with modelfleet's keys mapped back (``modelfleet.io-managed`` ->
    ``modelfleet.io/managed``); other tags unchanged."""
    return {_CANONICAL.get(key, key): value for key, value in (tags or {}).items()}


def is_owned(tags: Mapping[str, str] | None) -> bool:
    """True when a pool's tags mark it as modelfleet's."""
    return (tags or {}).get(MANAGED_TAG) == "true"
