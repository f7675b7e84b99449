"""boto3 clients, one per service per process.

Endpoints come from boto3 itself: the local stack sets AWS_ENDPOINT_URL to moto's server, so the code here
is the same on a laptop and on Lambda.
"""

from __future__ import annotations

import os
from functools import cache

import boto3
from botocore.config import Config

# Short timeouts and one retry: the worst case (2 attempts x 4 s) ends well inside the ingress Lambda's 15 s,
# so a failed enqueue still gets to release its idempotency claim before Lambda stops the function.
_CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=3, retries={"mode": "standard", "max_attempts": 2})


def default_region() -> str | None:
    """AWS_REGION, as the AWS CLI and Lambda read it (boto3 itself reads only AWS_DEFAULT_REGION and the profile)."""
    return os.environ.get("AWS_REGION") or None


@cache
def client(service: str, region: str | None = None):
    """The service's client, in the function's own region unless `region` names another (an EKS cluster's, an
    e-mail robot's SES)."""
    return boto3.client(service, region_name=region or default_region(), config=_CLIENT_CONFIG)
