"""The API server's error shape, for the FAKE Kubernetes API server (:mod:`skyrig_kubernetes.fake`).

Every error is answered as the real API server answers it: a ``v1 Status`` with ``status: Failure``, a
``reason`` (``Invalid``, ``NotFound``, ``AlreadyExists``, ``Conflict``, ``BadRequest``, ``Forbidden``,
``MethodNotAllowed``, ``Unauthorized``), the HTTP ``code`` and ``details`` (name, group, kind, causes).
"""

from __future__ import annotations

import json
from typing import Any


class ApiError(Exception):
    """An error the fake answers as a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = {}
        if name is not None:
            self.details["name"] = name
        if group:
            self.details["group"] = group
        if kind is not None:
            self.details["kind"] = kind
        if causes:
            self.details["causes"] = causes

    def status(self) -> dict[str, Any]:
        """The response body: a ``v1 Status``."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def qualified(resource: str, group: str) -> str:
    """``deployments.apps`` (``configmaps`` for the core group), as the server names a resource."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    """404 NotFound: ``deployments.apps "web" not found``."""
    return ApiError(
        404,
        "NotFound",
        f'{qualified(resource, group)} "{name}" not found',
        name=name,
        group=group,
        kind=resource,
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    """409 AlreadyExists."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified(resource, group)} "{name}" already exists',
        name=name,
        group=group,
        kind=resource,
    )


def stale(resource: str, group: str, name: str) -> ApiError:
    """409 Conflict: a write carried a resourceVersion older than the stored one."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        name=name,
        group=group,
        kind=resource,
    )


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid, one cause (``reason``, ``message``, ``field``) per problem."""
    summary = ", ".join(f"{cause['field']}: {cause['message']}" for cause in causes)
    qualified_kind = f"{kind}.{group}" if group else kind
    return ApiError(
        422,
        "Invalid",
        f'{qualified_kind} "{name}" is invalid: [{summary}]'
        if len(causes) > 1
        else f'{qualified_kind} "{name}" is invalid: {summary}',
        name=name,
        group=group,
        kind=kind,
        causes=causes,
    )


def cause(field: str, message: str, reason: str = "FieldValueInvalid") -> dict[str, str]:
    """One ``details.causes`` entry."""
    return {"reason": reason, "message": message, "field": field}


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, "BadRequest", message)


def forbidden(resource: str, group: str, name: str, message: str) -> ApiError:
    """403 Forbidden."""
    return ApiError(
        403,
        "Forbidden",
        f'{qualified(resource, group)} "{name}" is forbidden: {message}',
        name=name,
        group=group,
        kind=resource,
    )


def method_not_allowed(method: str) -> ApiError:
    """405 MethodNotAllowed."""
    return ApiError(
        405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})"
    )


def unauthorized() -> ApiError:
    """401 Unauthorized: no bearer token, or the wrong one."""
    return ApiError(401, "Unauthorized", "Unauthorized")


def path_not_found() -> ApiError:
    """404 NotFound for a path the server does not serve."""
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def _invalid(value: Any, message: str) -> str:
    return f"Invalid value: {json.dumps(value)}: {message}"


class Causes:
    """The problems one write has, collected into one 422 Invalid (:func:`invalid`)."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def invalid(self, field: str, value: Any, message: str) -> None:
        """``Invalid value: <value>: <message>``."""
        self.items.append(cause(field, _invalid(value, message)))

    def required(self, field: str, message: str = "") -> None:
        """``Required value``."""
        self.items.append(
            cause(field, "Required value" + (f": {message}" if message else ""), "FieldValueRequired")
        )

    def unsupported(self, field: str, value: Any, allowed: list[str]) -> None:
        """``Unsupported value`` among the supported ones."""
        supported = ", ".join(f'"{item}"' for item in allowed)
        self.items.append(
            cause(
                field,
                f"Unsupported value: {json.dumps(value)}: supported values: {supported}",
                "FieldValueNotSupported",
            )
        )

    def forbidden(self, field: str, message: str) -> None:
        """``Forbidden: <message>``."""
        self.items.append(cause(field, f"Forbidden: {message}", "FieldValueForbidden"))

    def duplicate(self, field: str, value: Any) -> None:
        """``Duplicate value``."""
        self.items.append(cause(field, f"Duplicate value: {json.dumps(value)}", "FieldValueDuplicate"))

    def immutable(self, field: str, value: Any) -> None:
        """``field is immutable``."""
        self.invalid(field, value, "field is immutable")
