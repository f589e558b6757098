"""Errors the core raises, each with a message a person can act on.

The HTTP layer maps them to responses in one place: a JSON error on the API routes and a
Kubernetes ``Status`` on the proxy path. ``status`` is the HTTP status code; ``reason`` is the
Kubernetes StatusReason that goes with it.
"""

from __future__ import annotations


class EksgateError(Exception):
    status = 500
    reason = "InternalError"

    def __init__(
        self, message: str, *, details: dict | None = None, nothing_sent: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        # True when the request certainly never reached the cluster (so a once-approval it
        # used can be given back); False when it may have.
        self.nothing_sent = nothing_sent


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


class UnknownCluster(NotFound):
    """A ``/k8s/{cluster}`` path this gateway does not serve. kubectl meets it first in API
    discovery, which prints a fixed "could not find the requested resource" for any 404 and
    drops the Status; the answer repeats its message as a ``Warning``, which kubectl prints."""

    as_warning = True


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


class AnswerWithheld(EksgateError):
    """The request was sent, but its answer could not be recorded, so it is not returned.

    A 500 (not a 503) on purpose: clients retry 503s as "not carried out", and this one may
    have been.
    """

    status = 500
    reason = "InternalError"
