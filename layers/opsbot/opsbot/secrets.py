"""Secrets from SSM Parameter Store; `ssm:` references in config resolve here.

Powertools' parameters utility does the fetching and the in-memory cache (max_age from settings).
"""

from __future__ import annotations

from opsbot.settings import settings

SSM_PREFIX = "ssm:"


class SecretError(Exception):
    """A secret is missing, or a literal was given where only `ssm:` references are allowed."""


_provider = None


def get_parameter(name: str) -> str:
    global _provider
    # Powertools' parameters and the SSM client load on the first secret a function reads, not at its cold start.
    from aws_lambda_powertools.utilities import parameters

    if _provider is None:
        from opsbot.aws import client

        # Powertools keeps the cache; the client is ours, so it shares our timeouts and endpoint.
        _provider = parameters.SSMProvider(boto3_client=client("ssm"))
    try:
        return _provider.get(name, decrypt=True, max_age=settings().secret_cache_seconds)
    except parameters.exceptions.GetParameterError as exc:
        raise SecretError(f"SSM parameter {name} could not be read") from exc


def clear_cache() -> None:
    """Forget cached secrets and the provider (tests; a rotated secret is otherwise seen within max_age)."""
    global _provider
    _provider = None


def resolve(value: str) -> str:
    """Turn a config value into the secret it names: `ssm:/path` reads Parameter Store."""
    if value.startswith(SSM_PREFIX):
        return get_parameter(value[len(SSM_PREFIX) :])
    if not settings().allows_literal_secrets:
        raise SecretError("literal secrets are only allowed on the local stack; use ssm:/parameter/name")
    return value
