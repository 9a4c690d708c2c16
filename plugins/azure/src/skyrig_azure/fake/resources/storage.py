"""Microsoft.Storage: storage accounts (PUT long-running, PATCH and DELETE synchronous, as
azure-mgmt-storage calls them), their blob service (``blobServices/default``: versioning), lifecycle
management policy (``managementPolicies/default``) and blob containers (public access).

What Azure does that a client can get wrong, done here too: an account name is unique in all of Azure
(409 ``StorageAccountAlreadyTaken``); a container may be public only in an account that allows public blob
access (409 ``PublicAccessNotPermitted``); redundancy cannot be changed to or from zone-redundant storage by
an update (it is a migration); ``allowSharedKeyAccess`` unset reads as null (allowed); the blob service of
an account exists as soon as the account does (a GET before any PUT answers its defaults); nothing is
changed under an account still being made (409 ``StorageAccountIsNotProvisioned``).

Blob traffic is not ARM's: with :func:`connect_blob` the fake mirrors each container into a real blob
service (Azurite: one account for all), made, opened to anonymous reads (only when the container is
public and its account allows it) and deleted with the ARM resource, and every account reports that
service as its ``primaryEndpoints.blob``. Azurite keeps no blob versions: versioning is recorded here only.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register

_MODELS = "azure.mgmt.storage.models"
_VERSIONS = ("2023-05-01", "2024-01-01", "2025-01-01", "2025-06-01", "2026-09-01")
ACCOUNTS = "Microsoft.Storage/storageAccounts"
SERVICES = f"{ACCOUNTS}/blobServices"
CONTAINERS = f"{SERVICES}/containers"
POLICIES = f"{ACCOUNTS}/managementPolicies"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known account key (public, in Microsoft's documentation): the fake's own way in."""
_ZONE_REDUNDANT = ("ZRS", "GZRS", "RAGZRS")


def connect_blob(fake: Any, endpoint: str, ca_bundle: str | None = None) -> None:
    """Makes ``fake``'s storage accounts report ``endpoint`` (Azurite's
    ``https://127.0.0.1:PORT/devstoreaccount1``) as their blob endpoint, and mirrors their containers
    there; ``ca_bundle``: the PEM of the CA of its certificate."""
    fake.blob_endpoint = endpoint.rstrip("/")
    fake.blob_ca_bundle = ca_bundle
    fake.blob_client = None


def _blob_service(fake: Any) -> Any:
    """The fake's own client of the connected blob service (its account key), or None."""
    endpoint = getattr(fake, "blob_endpoint", None)
    if not endpoint:
        return None
    if getattr(fake, "blob_client", None) is None:
        from azure.storage.blob import BlobServiceClient

        account = endpoint.rstrip("/").rsplit("/", 1)[-1]
        options = {"connection_verify": fake.blob_ca_bundle} if getattr(fake, "blob_ca_bundle", None) else {}
        fake.blob_client = BlobServiceClient(
            endpoint, credential={"account_name": account, "account_key": AZURITE_KEY}, **options
        )
    return fake.blob_client


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _redundancy(sku: str) -> tuple[str, bool]:
    tier, _, kind = sku.partition("_")
    return tier, kind.upper() in _ZONE_REDUNDANT


def _account_of(ctx: Context, container_or_service_id: str) -> dict[str, Any] | None:
    key = container_or_service_id.lower().split("/blobservices/")[0].split("/managementpolicies/")[0]
    entry = ctx.fake.store.get(key)
    return entry.resource if entry is not None else None


def _provisioned(ctx: Context) -> dict[str, Any]:
    """The account ``ctx``'s resource is under, refused (as Azure does) while it is still being made."""
    account = _account_of(ctx, ctx.id)
    if account is None:
        raise ArmError(404, "ParentResourceNotFound", f"The storage account of {ctx.name} does not exist.")
    state = (account.get("properties") or {}).get("provisioningState", "Succeeded")
    if state != "Succeeded":
        raise ArmError(
            409,
            "StorageAccountIsNotProvisioned",
            "The storage account provisioning state must be 'Succeeded' before executing the operation.",
        )
    return account


# -- accounts -------------------------------------------------------------------------------------------


def _account_on_write(ctx: Context, account: dict[str, Any]) -> None:
    name = ctx.name
    for key, entry in ctx.fake.store.items():
        if entry.type.type == ACCOUNTS and key != ctx.id.lower() and entry.resource["name"].lower() == name:
            raise ArmError(
                409, "StorageAccountAlreadyTaken", f"The storage account named {name} is already taken."
            )
    previous = ctx.previous or {}
    sku = account.get("sku") or previous.get("sku") or {}
    if previous.get("sku") and sku.get("name") != previous["sku"].get("name"):
        (tier, zoned), (was_tier, was_zoned) = _redundancy(sku["name"]), _redundancy(previous["sku"]["name"])
        if tier != was_tier or zoned != was_zoned:
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"The redundancy of storage account {name} cannot be changed from "
                f"{previous['sku']['name']} to "
                f"{sku['name']} by an update: a conversion to or from zone-redundant storage is a "
                "customer-initiated migration.",
            )
    account["sku"] = {**sku, "tier": "Premium" if sku.get("name", "").startswith("Premium") else "Standard"}
    kind = account.get("kind") or previous.get("kind")
    if (
        previous.get("kind")
        and kind != previous["kind"]
        and (previous["kind"], kind) != ("Storage", "StorageV2")
    ):
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"The kind of storage account {name} cannot change from {previous['kind']}.",
        )
    account["kind"] = kind
    properties = account.setdefault("properties", {})
    before = previous.get("properties") or {}
    for member in ("isHnsEnabled",):
        if member in before and properties.get(member, before[member]) != before[member]:
            raise ArmError(409, "OperationNotAllowed", f"{member} cannot be changed on an existing account.")
    properties.setdefault("supportsHttpsTrafficOnly", True)
    properties.setdefault("minimumTlsVersion", "TLS1_2")  # the only choice left after TLS 1.0/1.1 retired
    properties.setdefault("allowBlobPublicAccess", False)
    properties.setdefault("isHnsEnabled", False)
    if kind in ("StorageV2", "BlobStorage"):
        properties.setdefault("accessTier", "Hot")
    properties.setdefault(
        "encryption",
        {
            "services": {
                "blob": {"enabled": True, "keyType": "Account"},
                "file": {"enabled": True, "keyType": "Account"},
            },
            "keySource": "Microsoft.Storage",
        },
    )
    properties.setdefault(
        "networkAcls",
        {"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [], "virtualNetworkRules": []},
    )
    properties["creationTime"] = before.get("creationTime") or _now()
    properties["primaryLocation"] = account.get("location") or previous.get("location")
    properties["statusOfPrimary"] = "available"
    blob = getattr(ctx.fake, "blob_endpoint", None)
    properties["primaryEndpoints"] = {
        "blob": f"{blob}/" if blob else f"https://{name}.blob.core.windows.net/",
        "queue": f"https://{name}.queue.core.windows.net/",
        "table": f"https://{name}.table.core.windows.net/",
        "file": f"https://{name}.file.core.windows.net/",
        "dfs": f"https://{name}.dfs.core.windows.net/",
        "web": f"https://{name}.z13.web.core.windows.net/",
    }
    allowed = bool(properties.get("allowBlobPublicAccess"))
    if allowed != bool(before.get("allowBlobPublicAccess")):
        prefix = ctx.id.lower() + "/blobservices/default/containers/"
        for key, entry in list(ctx.fake.store.items()):
            if key.startswith(prefix):
                _mirror(ctx.fake, entry.resource, allowed)


# -- the blob service -----------------------------------------------------------------------------------


def _service_defaults(ctx: Context, service: dict[str, Any]) -> None:
    account = _account_of(ctx, ctx.id) or {}
    service["sku"] = account.get("sku")
    properties = service.setdefault("properties", {})
    properties.setdefault("isVersioningEnabled", False)
    properties.setdefault("deleteRetentionPolicy", {"enabled": False, "allowPermanentDelete": False})
    properties.setdefault("cors", {"corsRules": []})


def _service_on_write(ctx: Context, service: dict[str, Any]) -> None:
    _provisioned(ctx)
    _service_defaults(ctx, service)


def _services(ctx: Context, found: list[dict[str, Any]], _filter: str | None) -> list[dict[str, Any]]:
    """An account's blob service exists with the account: its defaults until one was set."""
    if found:
        return found
    service: dict[str, Any] = {
        "id": f"{ctx.parent_id}/blobServices/default",
        "name": "default",
        "type": SERVICES,
    }
    _service_defaults(
        Context(
            ctx.fake,
            service["id"],
            ctx.type,
            ctx.subscription,
            ctx.group,
            ("default",),
            ctx.parent_id,
            ctx.scope,
        ),
        service,
    )
    return [service]


# -- containers -----------------------------------------------------------------------------------------


def _mirror(fake: Any, container: dict[str, Any], allowed: bool) -> None:
    """Makes the container in the connected blob service (if any), anonymous reads as its settings say."""
    blob = _blob_service(fake)
    if blob is None:
        return
    from azure.core.exceptions import ResourceExistsError

    client = blob.get_container_client(container["name"])
    with contextlib.suppress(ResourceExistsError):
        client.create_container()
    access = (container.get("properties") or {}).get("publicAccess") or "None"
    public = {"Blob": "blob", "Container": "container"}.get(access) if allowed else None
    client.set_container_access_policy(signed_identifiers={}, public_access=public)


def _container_on_write(ctx: Context, container: dict[str, Any]) -> None:
    account = _provisioned(ctx)
    properties = container.setdefault("properties", {})
    access = properties.get("publicAccess") or "None"
    properties["publicAccess"] = access
    allowed = bool((account.get("properties") or {}).get("allowBlobPublicAccess"))
    if access != "None" and not allowed:
        raise ArmError(
            409, "PublicAccessNotPermitted", "Public access is not permitted on this storage account."
        )
    before = (ctx.previous or {}).get("properties") or {}
    properties.setdefault("metadata", before.get("metadata") or {})
    properties.update(
        {
            "defaultEncryptionScope": before.get("defaultEncryptionScope", "$account-encryption-key"),
            "denyEncryptionScopeOverride": before.get("denyEncryptionScopeOverride", False),
            "lastModifiedTime": _now(),
            "leaseStatus": "Unlocked",
            "leaseState": "Available",
            "hasImmutabilityPolicy": False,
            "hasLegalHold": False,
            "deleted": False,
            "remainingRetentionDays": 0,
        }
    )
    container["etag"] = f'"0x{datetime.datetime.now(datetime.UTC).strftime("%Y%m%d%H%M%S%f").upper()}"'
    _mirror(ctx.fake, container, allowed)


def _container_on_delete(ctx: Context, container: dict[str, Any]) -> None:
    blob = _blob_service(ctx.fake)
    if blob is None:
        return
    from azure.core.exceptions import ResourceNotFoundError

    with contextlib.suppress(ResourceNotFoundError):
        blob.delete_container(container["name"])


# -- lifecycle management ---------------------------------------------------------------------------------


def _policy_on_write(ctx: Context, policy: dict[str, Any]) -> None:
    _provisioned(ctx)
    rules = ((policy.get("properties") or {}).get("policy") or {}).get("rules") or []
    seen: set[str] = set()
    for rule in rules:
        name = str(rule.get("name", ""))
        if name.lower() in seen:
            raise ArmError(400, "InvalidManagementPolicyRules", f"The rule name {name} is used twice.")
        seen.add(name.lower())
        prefixes = ((rule.get("definition") or {}).get("filters") or {}).get("prefixMatch") or []
        if len(prefixes) > 10:
            raise ArmError(
                400, "InvalidManagementPolicyRules", f"Rule {name} has {len(prefixes)} prefixes: at most 10."
            )
        for prefix in prefixes:
            if not str(prefix)[:1].isalnum():
                raise ArmError(
                    400,
                    "InvalidManagementPolicyRules",
                    f"The prefix {prefix!r} must start with a container name.",
                )
    policy.setdefault("properties", {})["lastModifiedTime"] = _now()


register(
    ResourceType(
        type=ACCOUNTS,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:StorageAccountCreateParameters",
        patch_model=f"{_MODELS}:StorageAccountUpdateParameters",
        read_model=f"{_MODELS}:StorageAccount",
        async_put=True,
        created_status=202,
        creating_state="Creating",
        updating_state="Succeeded",
        name_pattern=r"[a-z0-9]{3,24}",
        name_error="AccountNameInvalid",
        on_write=_account_on_write,
    ),
    ResourceType(
        type=SERVICES,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:BlobServiceProperties",
        created_status=200,
        read_model=f"{_MODELS}:BlobServiceProperties",
        tracked=False,
        provisioning_state=False,
        name_pattern="default",
        on_write=_service_on_write,
        list_filter=_services,
    ),
    ResourceType(
        type=POLICIES,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:ManagementPolicy",
        read_model=f"{_MODELS}:ManagementPolicy",
        created_status=200,
        tracked=False,
        provisioning_state=False,
        name_pattern="default",
        on_write=_policy_on_write,
    ),
    ResourceType(
        type=CONTAINERS,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:BlobContainer",
        patch_model=f"{_MODELS}:BlobContainer",
        read_model=f"{_MODELS}:BlobContainer",
        tracked=False,
        provisioning_state=False,
        name_pattern=r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]",
        name_error="ContainerOperationFailure",
        on_write=_container_on_write,
        on_delete=_container_on_delete,
    ),
)
