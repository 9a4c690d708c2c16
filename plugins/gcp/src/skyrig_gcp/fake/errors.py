"""Google's JSON error envelope, for the FAKE Google APIs (:mod:`skyrig_gcp.fake`).

Every error the fake answers is ``{"error": {"code", "message", "status", "errors", "details"}}``, as
Google's front end answers it: ``code`` the HTTP status, ``status`` the canonical gRPC code's name,
``errors`` the legacy list (``reason`` is what google-api-python-client's ``HttpError.reason`` reads) and,
for bad requests, a ``google.rpc.BadRequest`` with one field violation per problem.
"""

from __future__ import annotations

from typing import Any

#: The HTTP status Google maps each canonical code to.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}

#: The canonical code an HTTP status stands for, when a test names only the status.
STATUS_FOR_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: gRPC's numeric codes, for ``google.rpc.Status`` inside a failed long-running operation.
GRPC_CODE = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}

_REASON = {
    "INVALID_ARGUMENT": "invalid",
    "FAILED_PRECONDITION": "failedPrecondition",
    "NOT_FOUND": "notFound",
    "ALREADY_EXISTS": "alreadyExists",
    "ABORTED": "aborted",
    "PERMISSION_DENIED": "forbidden",
    "RESOURCE_EXHAUSTED": "rateLimitExceeded",
    "UNAVAILABLE": "backendError",
    "INTERNAL": "backendError",
    "UNIMPLEMENTED": "notImplemented",
}


class ApiError(Exception):
    """An error the fake answers in Google's envelope.

    ``status`` is the canonical code's name (``NOT_FOUND``); ``http`` overrides the HTTP status it maps to
    (Cloud SQL answers a stale ``settingsVersion`` with 412, for one); ``violations`` are
    ``(field, description)`` pairs for a ``google.rpc.BadRequest`` detail.
    """

    def __init__(
        self,
        status: str,
        message: str,
        *,
        http: int | None = None,
        reason: str | None = None,
        violations: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.http = http or HTTP_STATUS.get(status, 500)
        self.reason = reason or _REASON.get(status, "error")
        self.violations = violations or []

    def envelope(self) -> dict[str, Any]:
        """The response body: ``{"error": {...}}``."""
        error: dict[str, Any] = {
            "code": self.http,
            "message": self.message,
            "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
            "status": self.status,
        }
        if self.violations:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": field, "description": description}
                        if field
                        else {"description": description}
                        for field, description in self.violations
                    ],
                }
            ]
        return {"error": error}

    def rpc_status(self) -> dict[str, Any]:
        """The error as a ``google.rpc.Status`` (a failed long-running operation's ``error``)."""
        return {"code": GRPC_CODE.get(self.status, 2), "message": self.message}


def invalid(message: str, field: str | None = None, *, reason: str = "invalid") -> ApiError:
    """A 400 INVALID_ARGUMENT, with a field violation when ``field`` is given."""
    return ApiError("INVALID_ARGUMENT", message, reason=reason, violations=[(field or "", message)])


def not_found(message: str) -> ApiError:
    """A 404 NOT_FOUND."""
    return ApiError("NOT_FOUND", message)


def already_exists(message: str) -> ApiError:
    """A 409 ALREADY_EXISTS."""
    return ApiError("ALREADY_EXISTS", message)


def failed_precondition(message: str) -> ApiError:
    """A 400 FAILED_PRECONDITION."""
    return ApiError("FAILED_PRECONDITION", message)
