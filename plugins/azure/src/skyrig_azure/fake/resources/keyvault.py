"""Microsoft.KeyVault: vaults (PUT long-running, PATCH and DELETE synchronous, as azure-mgmt-keyvault
calls them). Each vault's ``vaultUri`` is its own secrets data plane (:mod:`skyrig_azure.fake.vaults`).

A vault deleted with soft delete on (the default) becomes a deleted vault
(``/subscriptions/S/providers/Microsoft.KeyVault/locations/L/deletedVaults/NAME``: ``get_deleted``,
``list_deleted``, ``begin_purge_deleted``); its name cannot be used again until it is purged or the vault
is created with ``createMode: recover``. Its secrets are not kept: a recovered vault starts empty.
"""

from __future__ import annotations

import re
import time
from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register
from skyrig_azure.fake.schema import load, validate

_MODELS = "azure.mgmt.keyvault.models"
_VERSIONS = ("2023-07-01", "2024-11-01", "2025-05-01", "2026-05-15")
DELETED = "Microsoft.KeyVault/locations/deletedVaults"
VAULTS = "Microsoft.KeyVault/vaults"
_NAME = r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]"


def _deleted_id(subscription: str, location: str, name: str) -> str:
    provider = f"/subscriptions/{subscription}/providers/Microsoft.KeyVault"
    return f"{provider}/locations/{location}/deletedVaults/{name}"


def _soft_deleted(ctx: Context, name: str) -> str | None:
    """The key of the deleted vault ``name`` in the subscription, if any."""
    for key, entry in ctx.fake.store.items():
        if entry.type.type == DELETED and entry.resource["name"].lower() == name.lower():
            return key
    return None


def _on_write(ctx: Context, vault: dict[str, Any]) -> None:
    if ctx.previous is None:
        deleted = _soft_deleted(ctx, ctx.name)
        recover = str((vault.get("properties") or {}).get("createMode", "")).lower() == "recover"
        if deleted is not None and not recover:
            raise ArmError(
                409,
                "ConflictError",
                f"Exist soft deleted vault with the same name '{ctx.name}': "
                "recover it (createMode recover) or purge it first.",
            )
        if deleted is not None:
            ctx.fake.store.pop(deleted)
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
    properties = vault.get("properties") or {}
    if properties.get("enableSoftDelete", True):
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        days = int(properties.get("softDeleteRetentionInDays") or 90)
        purge = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + days * 86400))
        location = vault.get("location") or "global"
        ctx.fake.put_resource(
            _deleted_id(ctx.subscription, location, vault["name"]),
            {
                "properties": {
                    "vaultId": vault["id"],
                    "location": location,
                    "deletionDate": stamp,
                    "scheduledPurgeDate": purge,
                    "tags": vault.get("tags") or {},
                    "purgeProtectionEnabled": bool(properties.get("enablePurgeProtection")),
                }
            },
        )


def _purge(ctx: Context, deleted: dict[str, Any], body: Any) -> tuple[int, Any]:
    ctx.fake.store.pop(ctx.id.lower(), None)
    return 200, None


def _check_name(ctx: Context, _: dict[str, Any], body: Any) -> tuple[int, Any]:
    validate(body, load(f"{_MODELS}:VaultCheckNameAvailabilityParameters"))
    name = str(body["name"])
    if re.fullmatch(_NAME, name) is None:
        message = f"Vault name '{name}' is invalid: 3-24 letters, digits and dashes, starting with a letter."
        return 200, {"nameAvailable": False, "reason": "AccountNameInvalid", "message": message}
    for entry in ctx.fake.store.values():
        if entry.type.type in (VAULTS, DELETED) and entry.resource["name"].lower() == name.lower():
            deleted = " by a soft-deleted vault" if entry.type.type == DELETED else ""
            message = f"The vault name '{name}' is already in use{deleted}."
            return 200, {"nameAvailable": False, "reason": "AlreadyExists", "message": message}
    return 200, {"nameAvailable": True}


def _list_deleted(ctx: Context, items: list[dict[str, Any]], filter_text: str | None) -> list[dict[str, Any]]:
    prefix = f"/subscriptions/{ctx.subscription}/".lower()
    return [
        ctx.fake.render(entry)
        for key, entry in sorted(ctx.fake.store.items())
        if entry.type.type == DELETED and key.startswith(prefix)
    ]


register(
    ResourceType(
        type="Microsoft.KeyVault/vaults",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:VaultCreateOrUpdateParameters",
        patch_model=f"{_MODELS}:VaultPatchParameters",
        read_model=f"{_MODELS}:Vault",
        async_put=True,
        immutable=("properties.tenantId",),
        creating_state="RegisteringDns",
        updating_state="RegisteringDns",
        name_pattern=_NAME,
        name_error="VaultNameNotValid",
        on_write=_on_write,
        on_delete=_on_delete,
    )
)
register(
    ResourceType(
        type=DELETED,
        api_versions=_VERSIONS,
        scope="subscription",
        tracked=False,
        provisioning_state=False,
        parent_required=False,
        actions={"purge": _purge},
    ),
    ResourceType(
        type="Microsoft.KeyVault/deletedVaults",
        api_versions=_VERSIONS,
        scope="subscription",
        tracked=False,
        provisioning_state=False,
        list_filter=_list_deleted,
    ),
)
register(
    ResourceType(
        type="Microsoft.KeyVault/checkNameAvailability",
        api_versions=_VERSIONS,
        scope="subscription",
        tracked=False,
        provisioning_state=False,
        actions={"": _check_name},
    )
)
