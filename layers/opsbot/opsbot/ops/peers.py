"""How the ops peers fail, in opsbot's three ways (peers.py): not configured, refused (shown with the peer's own
message), unavailable (a RetryLater: the queue tries again). AWS calls go through `aws_call`, which sorts botocore's
errors the same way."""

from __future__ import annotations

from collections.abc import Callable

from opsbot.peers import errors

KubernetesNotConfigured, KubernetesRefused, KubernetesUnavailable = errors("Kubernetes", "ops.clusters", __name__)
RunCommandNotConfigured, RunCommandRefused, RunCommandUnavailable = errors("SSM Run Command", "ops.vm_groups", __name__)
Route53NotConfigured, Route53Refused, Route53Unavailable = errors("Route 53", "ops.dns_zones", __name__)
EksNotConfigured, EksRefused, EksUnavailable = errors("EKS", "ops.clusters", __name__)
StorageNotConfigured, StorageRefused, StorageUnavailable = errors("S3", "OPS_OUTPUT_BUCKET", __name__)

# Codes that mean "not now" rather than "no": AWS's throttling and its own trouble.
_TRY_AGAIN = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "InternalError",
    "RequestTimeout",
}


def aws_call(peer: tuple[type, type, type], call: Callable, *args, **kwargs):
    """`call(*args, **kwargs)`, with botocore's failures as the peer's Refused or Unavailable."""
    from botocore.exceptions import BotoCoreError, ClientError

    _not_configured, refused, unavailable = peer
    try:
        return call(*args, **kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code, message = str(error.get("Code") or "error"), str(error.get("Message") or "")
        if status >= 500 or status == 429 or code in _TRY_AGAIN:
            raise unavailable(f"{code} ({status})") from None
        raise refused(status or 400, f"{code}: {message}"[:300]) from None
    except BotoCoreError as exc:  # no connection, a read timeout: the peer did not answer
        raise unavailable(type(exc).__name__) from None


KUBERNETES = (KubernetesNotConfigured, KubernetesRefused, KubernetesUnavailable)
RUN_COMMAND = (RunCommandNotConfigured, RunCommandRefused, RunCommandUnavailable)
ROUTE53 = (Route53NotConfigured, Route53Refused, Route53Unavailable)
EKS = (EksNotConfigured, EksRefused, EksUnavailable)
STORAGE = (StorageNotConfigured, StorageRefused, StorageUnavailable)
