"""provider_for: the NodePoolProvider a FleetCluster's ``spec.provider`` names.

The cloud providers import their SDKs (boto3, google-cloud-*, azure-mgmt-*) at module level,
and those are optional extras; so they are imported here lazily, only for a FleetCluster
that uses them, and a missing extra becomes ``ProviderUnavailable`` naming the package
that fixes it (SkyPilot's adaptor habit; no local path: cluster users read it in Events)
instead of an ImportError at operator start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

from modelfleet.api.fleetcluster import FleetCluster
from modelfleet.extras import missing_extra_in_operator
from modelfleet.providers.base import NodePoolProvider
from modelfleet.providers.errors import InvalidConfiguration, ProviderUnavailable
from modelfleet.providers.simulated import SimulatedNodePoolProvider
from modelfleet.providers.static import NodeSource, StaticNodePoolProvider

CLOUD_PROVIDERS: Final[Mapping[str, tuple[str, str]]] = {
    "aws": ("modelfleet.providers.aws", "AwsNodePoolProvider"),
    "gcp": ("modelfleet.providers.gcp", "GcpNodePoolProvider"),
    "azure": ("modelfleet.providers.azure", "AzureNodePoolProvider"),
}
"""Provider name -> (module, class) of the cloud providers, imported on first use."""


def provider_for(
    cluster: FleetCluster,
    *,
    nodes: NodeSource,
    clock: Callable[[], datetime],
    credentials: Mapping[str, str] | None = None,
) -> NodePoolProvider:
    """Build the NodePoolProvider for ``cluster``.

    ``nodes`` lists the member cluster's Nodes (the static provider reads them;
    ``reconciler.node_source`` adapts a member-cluster client);
    ``clock`` drives the simulated provider's delays; ``credentials`` (the decoded
    ``credentialsSecretRef`` Secret, or None for the SDK's default chain) go to the cloud
    providers only. Raises ``ProviderUnavailable`` when a cloud provider's extra is not
    installed, and ``InvalidConfiguration`` for an unknown provider.

    Providers hold no state worth keeping except the simulated one, whose simulated cloud
    lives in the instance: callers keep one provider per FleetCluster.
    """
    provider = cluster.spec.provider
    if provider == "simulated":
        return SimulatedNodePoolProvider(cluster, clock=clock)
    if provider == "static":
        return StaticNodePoolProvider(cluster, nodes=nodes)
    if provider not in CLOUD_PROVIDERS:
        raise InvalidConfiguration(
            f"unknown provider {provider!r} for cluster {cluster.metadata.name}"
        )
    module_name, class_name = CLOUD_PROVIDERS[provider]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        missing = error.name or module_name
        raise ProviderUnavailable(
            missing_extra_in_operator(f"the {provider} provider", provider, missing)
        ) from error
    cls = getattr(module, class_name)
    result: NodePoolProvider = cls(cluster, credentials=credentials)
    return result
