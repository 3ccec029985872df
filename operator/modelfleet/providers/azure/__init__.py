"""AKS agent pools as modelfleet GPU pools (``provider: azure``).

Split by responsibility: ``sdk`` (lazy azure-* imports, credentials, base URL), ``catalog``
(resource SKUs and vCPU quota -> offerings; pure), ``prices`` (Azure Retail Prices API client
with the bundled table as fallback), ``naming`` (pool names and ARM tag rules; pure),
``classify`` (the one place ARM errors become modelfleet's typed errors) and ``provider``
(the NodePoolProvider itself). Importing this package does not import the Azure SDK.
"""

from modelfleet.providers.azure.provider import AzureNodePoolProvider

__all__ = ["AzureNodePoolProvider"]
