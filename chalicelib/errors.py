"""Errors the core raises, each with a message a person can act on.

The HTTP layer maps them to responses in one place: a JSON error on the API routes and a
Kubernetes ``Status`` on the proxy path. ``status`` is the HTTP status code; ``reason`` is the
Kubernetes StatusReason that goes with it.
"""

from __future__ import annotations


class EksgateError(Exception):
    status = 500
    reason = "InternalError"

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadRequest(EksgateError):
    status = 400
    reason = "BadRequest"


class Unauthorized(EksgateError):
    status = 401
    reason = "Unauthorized"


class Forbidden(EksgateError):
    status = 403
    reason = "Forbidden"


class NotFound(EksgateError):
    status = 404
    reason = "NotFound"


class MethodNotAllowed(EksgateError):
    status = 405
    reason = "MethodNotAllowed"


class NotAcceptable(EksgateError):
    status = 406
    reason = "NotAcceptable"


class PayloadTooLarge(EksgateError):
    status = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(EksgateError):
    status = 415
    reason = "UnsupportedMediaType"


class BadGateway(EksgateError):
    status = 502
    reason = "InternalError"


class ServiceUnavailable(EksgateError):
    status = 503
    reason = "ServiceUnavailable"


class GatewayTimeout(EksgateError):
    status = 504
    reason = "Timeout"
