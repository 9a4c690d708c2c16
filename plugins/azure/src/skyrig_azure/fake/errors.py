"""ARM's error envelope, for the FAKE Azure Resource Manager (:mod:`skyrig_azure.fake`).

Every error is ``{"error": {"code": ..., "message": ...}}`` with ARM's codes (``ResourceGroupNotFound``,
``ResourceNotFound``, ``ParentResourceNotFound``, ``InvalidRequestContent``, ``MissingApiVersionParameter``,
``NoRegisteredProviderFound``, ``AuthenticationFailed``, ...), as azure-core's ``ARMErrorFormat`` reads it.
"""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An error the fake answers: HTTP ``status``, ARM ``code`` and ``message`` (and extra headers)."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def envelope(self) -> dict[str, Any]:
        """The response body."""
        return {"error": {"code": self.code, "message": self.message}}


def not_found(type_name: str, name: str, group: str | None) -> ArmError:
    """ARM's 404 for a resource that does not exist."""
    where = f" under resource group '{group}'" if group else ""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{type_name}/{name}'{where} was not found. For more details please go to "
        "https://aka.ms/ARMResourceNotFoundFix",
    )


def group_not_found(group: str) -> ArmError:
    """ARM's 404 for a resource group that does not exist."""
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")


def parent_not_found(parent: str) -> ArmError:
    """ARM's 404 for a child or extension resource whose parent does not exist."""
    return ArmError(
        404,
        "ParentResourceNotFound",
        f"Can not perform requested operation on nested resource. Parent resource '{parent}' not found.",
    )
