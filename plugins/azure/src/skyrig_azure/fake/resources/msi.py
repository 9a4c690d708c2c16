"""Microsoft.ManagedIdentity: user-assigned managed identities (synchronous PUT and DELETE). Azure gives each
a service principal: ``principalId`` (what role assignments name), ``clientId`` and ``tenantId``, kept for
the identity's life and new when it is made again."""

from __future__ import annotations

import uuid
from typing import Any

from skyrig_azure.fake.registry import Context, ResourceType, register

_MODELS = "azure.mgmt.msi.v2024_11_30.models"
IDENTITIES = "Microsoft.ManagedIdentity/userAssignedIdentities"


def _identity_on_write(ctx: Context, identity: dict[str, Any]) -> None:
    properties = identity.setdefault("properties", {})
    previous = (ctx.previous or {}).get("properties") or {}
    properties["tenantId"] = ctx.fake.tenant
    properties["principalId"] = previous.get("principalId") or str(uuid.uuid4())
    properties["clientId"] = previous.get("clientId") or str(uuid.uuid4())
    properties.setdefault("isolationScope", previous.get("isolationScope", "None"))


def principal_of(fake: Any, principal_id: str) -> dict[str, Any] | None:
    """The stored identity whose service principal is ``principal_id``, if any."""
    for entry in fake.store.values():
        if entry.type.type == IDENTITIES and entry.resource["properties"]["principalId"] == principal_id:
            return dict(entry.resource)
    return None


register(
    ResourceType(
        type=IDENTITIES,
        api_versions=("2023-01-31", "2024-11-30"),
        put_model=f"{_MODELS}:Identity",
        patch_model=f"{_MODELS}:IdentityUpdate",
        provisioning_state=False,
        name_pattern=r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}",
        on_write=_identity_on_write,
    ),
)
