"""One typed error hierarchy, shared by the server, the SDK and the CLI.

Each error carries the HTTP status of its type and a JSON-serialisable ``details`` mapping; the
REST error shape is ``{"error": {"type": ..., "message": ..., "details": {...}}}`` and the SDK
turns that shape back into the same class, so callers catch types rather than compare strings.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CharterError(Exception):
    """Base of every error Charter raises on purpose."""

    status: ClassVar[int] = 500
    type_name: ClassVar[str] = "InternalError"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "message": self.message, "details": self.details}

    def __str__(self) -> str:
        return self.message


class ValidationError(CharterError):
    status = 400
    type_name = "ValidationError"


class Unauthenticated(CharterError):
    status = 401
    type_name = "Unauthenticated"


class PermissionDenied(CharterError):
    """A policy decision refused the request; ``details['policy']`` names the deciding policy."""

    status = 403
    type_name = "PermissionDenied"


class NotFound(CharterError):
    status = 404
    type_name = "NotFound"


class MethodNotAllowed(CharterError):
    status = 405
    type_name = "MethodNotAllowed"


class Conflict(CharterError):
    status = 409
    type_name = "Conflict"


class InvalidTransition(Conflict):
    type_name = "InvalidTransition"


class TooLarge(CharterError):
    status = 413
    type_name = "TooLarge"


class IntegrityError(CharterError):
    """Stored bytes no longer match the digest that names them (corruption or tampering)."""

    status = 409
    type_name = "IntegrityError"


class ServerError(CharterError):
    """An unexpected failure on the server, or a response the client could not understand."""

    status = 500
    type_name = "InternalError"


class ServiceUnavailable(CharterError):
    """The server is up but cannot serve this now (an endpoint whose workers are restarting)."""

    status = 503
    type_name = "ServiceUnavailable"


class ConnectionFailed(CharterError):
    """The client could not reach the server."""

    status = 503
    type_name = "ConnectionFailed"


ERROR_TYPES: dict[str, type[CharterError]] = {
    cls.type_name: cls
    for cls in (
        ValidationError,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        MethodNotAllowed,
        Conflict,
        InvalidTransition,
        TooLarge,
        IntegrityError,
        ServerError,
        ServiceUnavailable,
        ConnectionFailed,
    )
}


def error_from_payload(status: int, payload: Any) -> CharterError:
    """Rebuild a typed error from a REST error body (used by the SDK)."""
    body = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(body, dict):
        return ServerError(f"unexpected response from server (HTTP {status})", status=status)
    cls = ERROR_TYPES.get(str(body.get("type")), ServerError)
    raw = body.get("details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    err = cls(str(body.get("message", "")), **details)
    return err
