"""Client errors of the ingress contract. Each maps to one 4xx status with a JSON `{"error": ...}` body."""

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
