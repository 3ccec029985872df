"""modelfleet: serve models on GPUs across clouds and regions within an SLO and a budget.

The package is layered (see docs/architecture.md):

- ``modelfleet.api``: the ``ModelDeployment`` and ``FleetCluster`` types (pydantic), and the
  CRDs generated from them.
- ``modelfleet.core``: pure decisions (autoscaling, placement, failover, node pools).
- the imperative shell (reconciler, kopf handlers, adapters) built on top.
"""

__version__ = "0.1.0"

GROUP = "modelfleet.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
