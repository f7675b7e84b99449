"""Errors of the ingress contract the sender is told about. Each maps to one status with a JSON `{"error": ...}`
body: 4xx for the sender's own mistakes, 503 when the sender should retry."""

from __future__ import annotations


class IngressError(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(IngressError):
    status = 400


class Unauthorized(IngressError):
    status = 401


class PayloadTooLarge(IngressError):
    status = 413


class UnsupportedMediaType(IngressError):
    status = 415


class InProgress(IngressError):
    """The same delivery is being queued by an earlier request that may still be running: retry later."""

    status = 503
