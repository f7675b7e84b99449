"""boto3 clients, one per service per process.

Endpoints come from boto3 itself: the local stack sets AWS_ENDPOINT_URL to moto's server, so the code here
is the same on a laptop and on Lambda.
"""
from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

# Short timeouts and standard retries: an ingress request must not hang on a slow backend.
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})


@cache
def client(service: str):
    return boto3.client(service, config=_CLIENT_CONFIG)
