"""Microsoft.Authorization: role assignments on any scope (synchronous, immutable once made, listed with
``$filter``) and the built-in role definitions skyrig uses (read only)."""

from __future__ import annotations

import re
import time
from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register

_MODELS = "azure.mgmt.authorization.v2022_04_01.models"
_VERSIONS = ("2020-04-01-preview", "2022-04-01")
ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ROLE_ID = re.compile(
    rf"^(/subscriptions/[^/]+)?/providers/Microsoft\.Authorization/roleDefinitions/({GUID})$", re.I
)

#: Built-in roles: id -> (name, description, data actions).
BUILT_IN_ROLES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "4633458b-17de-408a-b874-0445c86b69e6": (
        "Key Vault Secrets User",
        "Read secret contents.",
        (
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ),
    ),
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": (
        "Azure Service Bus Data Sender",
        "Allows for send access to Azure Service Bus resources.",
        ("Microsoft.ServiceBus/*/send/action",),
    ),
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": (
        "Azure Service Bus Data Receiver",
        "Allows for receive access to Azure Service Bus resources.",
        ("Microsoft.ServiceBus/*/receive/action",),
    ),
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": (
        "Storage Blob Data Reader",
        "Allows for read access to Azure Storage blob containers and data",
        ("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",),
    ),
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": (
        "Storage Blob Data Contributor",
        "Allows for read, write and delete access to Azure Storage blob containers and data",
        (
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
        ),
    ),
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": (
        "Storage Blob Delegator",
        "Allows for generation of a user delegation key which can be used to sign SAS tokens",
        (),
    ),
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": (
        "AcrPull",
        "acr pull",
        ("Microsoft.ContainerRegistry/registries/pull/read",),
    ),
}


def role_definition(role_id: str, subscription: str | None) -> dict[str, Any]:
    """A built-in role definition as ARM answers it (its id under ``subscription`` when given)."""
    name, description, data_actions = BUILT_IN_ROLES[role_id]
    prefix = f"/subscriptions/{subscription}" if subscription else ""
    return {
        "id": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{role_id}",
        "name": role_id,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": name,
            "type": "BuiltInRole",
            "description": description,
            "assignableScopes": ["/"],
            "permissions": [
                {"actions": [], "notActions": [], "dataActions": list(data_actions), "notDataActions": []}
            ],
            "createdOn": "2021-01-01T00:00:00.0000000Z",
            "updatedOn": "2021-01-01T00:00:00.0000000Z",
        },
    }


def _definitions(ctx: Context, items: list[dict[str, Any]], filter_text: str | None) -> list[dict[str, Any]]:
    found = [role_definition(role_id, ctx.subscription or None) for role_id in BUILT_IN_ROLES]
    match = re.search(r"roleName\s+eq\s+'([^']*)'", filter_text or "", re.I)
    if match:
        found = [d for d in found if d["properties"]["roleName"].lower() == match.group(1).lower()]
    return found


def _assignment_on_write(ctx: Context, assignment: dict[str, Any]) -> None:
    properties = assignment.setdefault("properties", {})
    role = str(properties.get("roleDefinitionId", ""))
    match = _ROLE_ID.match(role)
    if match is None:
        raise ArmError(
            400,
            "LinkedInvalidPropertyId",
            f"Property id '{role}' at path 'properties.roleDefinitionId' "
            "is invalid. Expect fully qualified resource Id that start with '/subscriptions/"
            "{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.",
        )
    if match.group(2).lower() not in BUILT_IN_ROLES:
        raise ArmError(
            400,
            "RoleDefinitionDoesNotExist",
            f"The specified role definition with ID '{match.group(2)}' does not exist.",
        )
    principal = str(properties.get("principalId", ""))
    if re.fullmatch(GUID, principal) is None:
        raise ArmError(
            400, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment."
        )
    scope = ctx.scope or "/"
    previous = (ctx.previous or {}).get("properties")
    if previous is not None:
        for member in ("roleDefinitionId", "principalId"):
            if str(previous.get(member, "")).lower() != str(properties.get(member, "")).lower():
                raise ArmError(
                    409,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                )
    for key, entry in ctx.fake.store.items():
        if entry.type.type != ROLE_ASSIGNMENTS or key == ctx.id.lower():
            continue
        other = entry.resource["properties"]
        if (
            other["scope"].lower() == scope.lower()
            and other["principalId"].lower() == str(properties.get("principalId", "")).lower()
            and other["roleDefinitionId"].rsplit("/", 1)[-1].lower() == match.group(2).lower()
        ):
            raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
    now = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
    properties["scope"] = scope
    properties.setdefault("principalType", "User")
    properties["createdOn"] = (previous or {}).get("createdOn", now)
    properties["updatedOn"] = (previous or {}).get("updatedOn", now)
    properties["createdBy"] = properties["updatedBy"] = "00000000-0000-0000-0000-0000000000fa"


def _assignments(ctx: Context, items: list[dict[str, Any]], filter_text: str | None) -> list[dict[str, Any]]:
    """Role assignments at, above and below the scope (``atScope()``: at and above only), for a principal
    (``principalId eq '...'`` or ``assignedTo('...')``)."""
    scope = (ctx.scope or "/").lower().rstrip("/") or "/"
    text = filter_text or ""
    at_scope = "atscope()" in text.lower()
    principal = re.search(r"(?:principalId\s+eq\s+|assignedTo\()'([^']*)'", text, re.I)
    found = []
    for entry in ctx.fake.store.values():
        if entry.type.type != ROLE_ASSIGNMENTS:
            continue
        theirs = entry.resource["properties"]["scope"].lower().rstrip("/") or "/"
        above = theirs == "/" or scope == theirs or scope.startswith(theirs + "/")
        below = theirs.startswith(scope + "/") or scope == "/"
        if not (above or (below and not at_scope)):
            continue
        if principal and entry.resource["properties"]["principalId"].lower() != principal.group(1).lower():
            continue
        found.append(ctx.fake.render(entry))
    return sorted(found, key=lambda r: r["id"].lower())


register(
    ResourceType(
        type=ROLE_ASSIGNMENTS,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:RoleAssignmentCreateParameters",
        read_model=f"{_MODELS}:RoleAssignment",
        scope="extension",
        tracked=False,
        provisioning_state=False,
        name_pattern=GUID,
        name_error="InvalidRoleAssignmentId",
        on_write=_assignment_on_write,
        list_filter=_assignments,
    ),
    ResourceType(
        type="Microsoft.Authorization/roleDefinitions",
        api_versions=_VERSIONS,
        scope="extension",
        tracked=False,
        provisioning_state=False,
        list_filter=_definitions,
    ),
)
