"""Microsoft.ContainerRegistry: registries, only as far as skyrig looks at them (it makes none): a registry
exists, is found by name through the generic resource list, and is a scope a role assignment (AcrPull) may
name. azure-mgmt-containerregistry is not installed here: a registry's body is checked as a generic
resource (azure-mgmt-resource's ``GenericResource``), with ``sku.name`` one of Azure's tiers; ``loginServer``
is filled in as Azure does."""

from __future__ import annotations

from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register

REGISTRIES = "Microsoft.ContainerRegistry/registries"


def _registry_on_write(ctx: Context, registry: dict[str, Any]) -> None:
    sku = str((registry.get("sku") or {}).get("name") or "")
    if sku.lower() not in ("basic", "standard", "premium"):
        raise ArmError(
            400, "InvalidSku", f"The SKU '{sku}' of registry {ctx.name} is not Basic, Standard or Premium."
        )
    properties = registry.setdefault("properties", {})
    properties["loginServer"] = f"{ctx.name.lower()}.azurecr.io"
    properties.setdefault("adminUserEnabled", False)


register(
    ResourceType(
        type=REGISTRIES,
        api_versions=("2023-07-01", "2025-04-01"),
        put_model="azure.mgmt.resource.resources.models:GenericResource",
        name_pattern=r"[a-zA-Z0-9]{5,50}",
        on_write=_registry_on_write,
    ),
)
