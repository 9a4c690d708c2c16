"""Microsoft.KeyVault: vaults (PUT long-running, PATCH and DELETE synchronous, as azure-mgmt-keyvault
calls them). Each vault's ``vaultUri`` is its own secrets data plane (:mod:`skyrig_azure.fake.vaults`)."""

from __future__ import annotations

from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register

_MODELS = "azure.mgmt.keyvault.models"


def _on_write(ctx: Context, vault: dict[str, Any]) -> None:
    for key, entry in ctx.fake.store.items():
        if (
            entry.type.type == "Microsoft.KeyVault/vaults"
            and key != ctx.id.lower()
            and (entry.resource["name"].lower() == ctx.name.lower())
        ):
            raise ArmError(
                409,
                "VaultAlreadyExists",
                f"The vault name '{ctx.name}' is already in use. Vault "
                "names are globally unique so it is possible that the name is already taken.",
            )
    properties = vault.setdefault("properties", {})
    before = (ctx.previous or {}).get("properties") or {}
    if before.get("enableSoftDelete") and properties.get("enableSoftDelete") is False:
        raise ArmError(
            400,
            "BadRequest",
            'The property "enableSoftDelete" has been set to true on this vault: it cannot be set to false.',
        )
    properties.setdefault("enableSoftDelete", True)
    properties.setdefault("softDeleteRetentionInDays", 90)
    properties.setdefault("enableRbacAuthorization", False)
    properties.setdefault("publicNetworkAccess", "Enabled")
    properties.setdefault("accessPolicies", [])
    properties.pop("createMode", None)
    properties["vaultUri"] = ctx.fake.open_vault(ctx.name)


def _on_delete(ctx: Context, vault: dict[str, Any]) -> None:
    ctx.fake.close_vault(vault["name"])


register(
    ResourceType(
        type="Microsoft.KeyVault/vaults",
        api_versions=("2023-07-01", "2024-11-01", "2025-05-01", "2026-05-15"),
        put_model=f"{_MODELS}:VaultCreateOrUpdateParameters",
        patch_model=f"{_MODELS}:VaultPatchParameters",
        read_model=f"{_MODELS}:Vault",
        async_put=True,
        immutable=("properties.tenantId",),
        creating_state="RegisteringDns",
        updating_state="RegisteringDns",
        name_pattern=r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]",
        name_error="VaultNameNotValid",
        on_write=_on_write,
        on_delete=_on_delete,
    )
)
