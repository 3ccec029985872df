"""AWS provider: GPU node pools as EKS managed node groups (``modelfleet[aws]`` extra).

Importing this package does not import boto3; constructing the provider does, and a missing
extra raises ``ProviderUnavailable`` naming ``modelfleet[aws]``. Layout, one responsibility
each: ``provider`` (the NodePoolProvider), ``calls`` (threads, retry on throttling, classification),
``errors`` (the one AWS -> typed error translation), ``nodegroups`` (EKS shapes, pure),
``discovery`` (EC2 answers -> offerings, pure), ``prices`` (the bundled on-demand price
table), ``sdk`` (the lazy boto3 adaptor and session).
"""

from modelfleet.providers.aws.discovery import merge_offerings
from modelfleet.providers.aws.errors import capacity_issue, classify
from modelfleet.providers.aws.nodegroups import nodegroup_name
from modelfleet.providers.aws.prices import PriceTable, load_price_table
from modelfleet.providers.aws.provider import AwsNodePoolProvider

__all__ = [
    "AwsNodePoolProvider",
    "PriceTable",
    "capacity_issue",
    "classify",
    "load_price_table",
    "merge_offerings",
    "nodegroup_name",
]
