"""GKE node pools as modelfleet GPU pools (``provider: gcp``).

Split by responsibility: ``sdk`` (lazy google-cloud imports, credentials, endpoints),
``catalog`` (accelerator types, quota metrics, bundled prices -> offerings; pure),
``naming`` (pool names and GCP label rules; pure), ``classify`` (the one place Google errors
become modelfleet's typed errors) and ``provider`` (the NodePoolProvider itself). Importing
this package does not import the Google SDK.
"""

from modelfleet.providers.gcp.provider import GcpNodePoolProvider

__all__ = ["GcpNodePoolProvider"]
