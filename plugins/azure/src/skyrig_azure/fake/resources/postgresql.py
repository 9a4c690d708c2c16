"""Microsoft.DBforPostgreSQL: flexible servers, their databases and their server parameters
(configurations), as Azure answers them (PUT, PATCH and DELETE long-running, as azure-mgmt-
postgresqlflexibleservers' ``begin_*`` calls them: every write answers 202, the only status its SDK
accepts).

What Azure enforces and the fake does too: a server name unique in all of Azure (a DNS name); a major
version Azure offers; a SKU of its tier (Burstable ``Standard_B*``, GeneralPurpose ``Standard_D*``,
MemoryOptimized ``Standard_E*``); zone-redundant high availability not on Burstable; backups kept 7 to 35
days; storage among Azure's sizes and never shrunk; an administrator login Azure allows when password
authentication is on, never changed; a VNet-integrated server (private access) needs a subnet delegated to
``Microsoft.DBforPostgreSQL/flexibleServers`` and a private DNS zone named ``*.postgres.database.azure.com``,
has public network access disabled, and keeps both for life; geo-redundant backup is fixed at creation.
The administrator's password is never stored nor answered. What Azure fills in: the FQDN, state
``Ready``, the minor version, the earliest restore point (backups start at creation: point-in-time
recovery is Azure's for every server), the high availability state and zones.

Databases: ``postgres``, ``azure_maintenance`` and ``azure_sys`` exist on every server; charset and
collation are fixed at creation. Server parameters: each exists with Azure's default (a GET or list answers
it without a PUT); a PUT sets a value among the parameter's allowed values.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, lookup, register

_MODELS = "azure.mgmt.postgresqlflexibleservers.models"
_VERSIONS = ("2024-08-01", "2025-08-01", "2026-10-01")
SERVER = "Microsoft.DBforPostgreSQL/flexibleServers"
MAJOR_VERSIONS = ("13", "14", "15", "16", "17", "18")
"""The major versions Azure offers new servers."""
STORAGE_SIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32767)
SKU_PREFIX = {"Burstable": "Standard_B", "GeneralPurpose": "Standard_D", "MemoryOptimized": "Standard_E"}
RESERVED_LOGINS = frozenset(
    {"azure_superuser", "azure_pg_admin", "admin", "administrator", "root", "guest", "public"}
)
SYSTEM_DATABASES = ("azure_maintenance", "azure_sys", "postgres")
DELEGATION = "Microsoft.DBforPostgreSQL/flexibleServers"

PARAMETERS: dict[str, dict[str, Any]] = {
    "require_secure_transport": {"value": "on", "dataType": "Boolean", "allowedValues": "on,off"},
    "ssl_min_protocol_version": {
        "value": "TLSv1.2",
        "dataType": "Enumeration",
        "allowedValues": "TLSv1.2,TLSv1.3",
    },
    "azure.extensions": {
        "value": "",
        "dataType": "Set",
        "allowedValues": "pgcrypto,uuid-ossp,citext,pg_trgm",
    },
    "max_connections": {"value": "859", "dataType": "Integer", "allowedValues": "25-5000"},
}
"""The server parameters the fake knows, with Azure's defaults (D2s_v3's for ``max_connections``)."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _bad(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


def _server_on_write(ctx: Context, server: dict[str, Any]) -> None:
    previous = ctx.previous
    creating = previous is None
    for key, entry in ctx.fake.store.items():
        if entry.type.type == SERVER and key != ctx.id.lower() and entry.resource["name"] == ctx.name:
            raise ArmError(
                409, "ServerNameAlreadyExists", f"Specified server name '{ctx.name}' is already used."
            )
    p = server.setdefault("properties", {})
    before = (previous or {}).get("properties") or {}
    sku = server.get("sku") or (previous or {}).get("sku")
    if not sku:
        raise _bad("SkuRequired", "The sku of a server is required.")
    server["sku"] = sku
    prefix = SKU_PREFIX.get(sku.get("tier", ""))
    if prefix is None or not str(sku.get("name", "")).startswith(prefix):
        raise _bad(
            "InvalidSkuForTier",
            f"The sku '{sku.get('name')}' is not offered in tier '{sku.get('tier')}'.",
        )
    version = p.get("version") or before.get("version")
    if str(version) not in MAJOR_VERSIONS:
        raise _bad(
            "InvalidServerVersion",
            f"PostgreSQL version '{version}' is not offered (offered: {MAJOR_VERSIONS}).",
        )
    if not creating and int(version) < int(before.get("version") or 0):
        raise _bad("InvalidParameterValue", "A server's major version cannot go down.")
    p["version"] = str(version)
    p["minorVersion"] = {"13": "20", "14": "17", "15": "12", "16": "8", "17": "4", "18": "0"}[str(version)]
    _auth(ctx, p, before, creating)
    _storage(p, before)
    _backup(p, before, creating)
    _network(ctx, p, before, creating)
    _high_availability(p, sku)
    p.pop("administratorLoginPassword", None)  # write-only: never stored nor answered
    p.pop("createMode", None)
    p["fullyQualifiedDomainName"] = f"{ctx.name}.postgres.database.azure.com"
    p["state"] = "Ready"
    p.setdefault("availabilityZone", "1")
    p.setdefault("replicationRole", "Primary")
    p["replicaCapacity"] = 5


def _auth(ctx: Context, p: dict[str, Any], before: dict[str, Any], creating: bool) -> None:
    auth = {**(before.get("authConfig") or {}), **(p.get("authConfig") or {})}
    auth.setdefault("passwordAuth", "Enabled")
    auth.setdefault("activeDirectoryAuth", "Disabled")
    p["authConfig"] = auth
    login = p.get("administratorLogin")
    if not creating:
        if login is not None and login != before.get("administratorLogin"):
            raise _bad("PropertyChangeNotAllowed", "The administrator login of a server cannot change.")
        if before.get("administratorLogin"):
            p["administratorLogin"] = before["administratorLogin"]
        return
    if auth["passwordAuth"] == "Enabled":
        if not login or not p.get("administratorLoginPassword"):
            raise _bad(
                "AdminCredentialsRequired",
                "Password authentication is enabled: administratorLogin and administratorLoginPassword "
                "are required.",
            )
        if (
            login.lower() in RESERVED_LOGINS
            or login.lower().startswith("pg_")
            or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]{0,62}", login)
        ):
            raise _bad("InvalidAdministratorLogin", f"The administrator login '{login}' is not allowed.")
        password = str(p["administratorLoginPassword"])
        classes = sum(bool(re.search(c, password)) for c in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]"))
        if not 8 <= len(password) <= 128 or classes < 3:
            raise _bad(
                "PasswordNotComplex",
                "The password must be 8 to 128 characters of at least three of: lower case, upper case, "
                "digits, other characters.",
            )


def _storage(p: dict[str, Any], before: dict[str, Any]) -> None:
    storage = {**(before.get("storage") or {}), **(p.get("storage") or {})}
    size = int(storage.get("storageSizeGB") or 128)
    if size not in STORAGE_SIZES:
        raise _bad("InvalidStorageSize", f"Storage size {size} GB is not offered: {STORAGE_SIZES}.")
    old = int((before.get("storage") or {}).get("storageSizeGB") or 0)
    if size < old:
        raise _bad("StorageSizeCannotShrink", f"Storage cannot shrink from {old} GB to {size} GB.")
    storage["storageSizeGB"] = size
    storage.setdefault("autoGrow", "Disabled")
    storage.setdefault("type", "Premium_LRS")
    storage.setdefault("tier", "P10" if size <= 128 else "P20")
    storage.setdefault("iops", 500)
    p["storage"] = storage


def _backup(p: dict[str, Any], before: dict[str, Any], creating: bool) -> None:
    old = before.get("backup") or {}
    backup = {**old, **(p.get("backup") or {})}
    days = int(backup.get("backupRetentionDays") or 7)
    if not 7 <= days <= 35:
        raise _bad("InvalidBackupRetentionDays", f"Backups are kept 7 to 35 days, not {days}.")
    backup["backupRetentionDays"] = days
    if not creating and backup.get("geoRedundantBackup", old.get("geoRedundantBackup")) != old.get(
        "geoRedundantBackup"
    ):
        raise _bad("PropertyChangeNotAllowed", "Geo-redundant backup is chosen when a server is created.")
    backup.setdefault("geoRedundantBackup", "Disabled")
    backup["earliestRestoreDate"] = old.get("earliestRestoreDate") or _now()
    p["backup"] = backup


def _network(ctx: Context, p: dict[str, Any], before: dict[str, Any], creating: bool) -> None:
    old = before.get("network") or {}
    network = {**old, **(p.get("network") or {})}
    subnet = network.get("delegatedSubnetResourceId")
    zone = network.get("privateDnsZoneArmResourceId")
    if not creating:
        for key in ("delegatedSubnetResourceId", "privateDnsZoneArmResourceId"):
            if (network.get(key) or "").lower() != (old.get(key) or "").lower():
                raise _bad("PropertyChangeNotAllowed", f"network.{key} of a server cannot change.")
        if old.get("delegatedSubnetResourceId") and network.get("publicNetworkAccess") != old.get(
            "publicNetworkAccess"
        ):
            raise _bad(
                "PublicNetworkAccessNotSupportedForVnetServer",
                "Public network access of a server with private access (VNet integration) cannot change.",
            )
    if subnet:
        found = ctx.fake.store.get(subnet.lower().rstrip("/"))
        if found is None:
            raise _bad("SubnetNotFound", f"The subnet '{subnet}' was not found.")
        delegations = [
            (d.get("properties") or {}).get("serviceName")
            for d in (found.resource.get("properties") or {}).get("delegations") or []
        ]
        if DELEGATION not in delegations:
            raise _bad(
                "SubnetNotDelegated",
                f"The subnet '{subnet}' must be delegated to {DELEGATION} for a server with private access.",
            )
        if not zone:
            raise _bad("PrivateDnsZoneRequired", "A server with private access needs a private DNS zone.")
        if not zone.lower().endswith(".postgres.database.azure.com"):
            raise _bad(
                "InvalidPrivateDnsZone",
                f"The private DNS zone '{zone}' must end with .postgres.database.azure.com.",
            )
        if (
            lookup("Microsoft.Network/privateDnsZones") is not None
            and ctx.fake.store.get(zone.lower()) is None
        ):
            raise _bad("PrivateDnsZoneNotFound", f"The private DNS zone '{zone}' was not found.")
        if network.get("publicNetworkAccess", "Disabled") != "Disabled":
            raise _bad(
                "PublicNetworkAccessNotSupportedForVnetServer",
                "A server with private access (VNet integration) cannot have public network access.",
            )
        network["publicNetworkAccess"] = "Disabled"
    else:
        network.setdefault("publicNetworkAccess", "Enabled")
    p["network"] = network


def _high_availability(p: dict[str, Any], sku: dict[str, Any]) -> None:
    ha = p.get("highAvailability") or {}
    mode = ha.get("mode") or "Disabled"
    if mode != "Disabled" and sku.get("tier") == "Burstable":
        raise _bad("HighAvailabilityNotSupported", "High availability is not offered in the Burstable tier.")
    p["highAvailability"] = {"mode": mode, "state": "NotEnabled" if mode == "Disabled" else "Healthy"}
    if mode == "ZoneRedundant":
        p["highAvailability"]["standbyAvailabilityZone"] = ha.get("standbyAvailabilityZone") or "2"


def _database_on_write(ctx: Context, database: dict[str, Any]) -> None:
    p = database.setdefault("properties", {})
    before = (ctx.previous or {}).get("properties") or {}
    p.setdefault("charset", before.get("charset") or "UTF8")
    p.setdefault("collation", before.get("collation") or "en_US.utf8")
    if ctx.previous is not None and (p["charset"], p["collation"]) != (
        before.get("charset"),
        before.get("collation"),
    ):
        raise _bad("PropertyChangeNotAllowed", "A database's charset and collation are fixed at creation.")


def _system_databases(ctx: Context, items: list[dict[str, Any]], _filter: str | None) -> list[dict[str, Any]]:
    made = {item["name"] for item in items}
    system = [
        {
            "id": f"{ctx.parent_id}/databases/{name}",
            "name": name,
            "type": f"{SERVER}/databases",
            "properties": {"charset": "UTF8", "collation": "en_US.utf8"},
        }
        for name in SYSTEM_DATABASES
        if name not in made and ctx.fake.store.get(ctx.parent_id.lower()) is not None
    ]
    return sorted([*items, *system], key=lambda item: item["name"])


def _parameter(
    ctx: Context, name: str, value: str | None = None, source: str = "system-default"
) -> dict[str, Any]:
    known = PARAMETERS[name]
    return {
        "id": f"{ctx.parent_id}/configurations/{name}",
        "name": name,
        "type": f"{SERVER}/configurations",
        "properties": {
            "value": known["value"] if value is None else value,
            "defaultValue": known["value"],
            "dataType": known["dataType"],
            "allowedValues": known["allowedValues"],
            "source": source,
            "isDynamicConfig": True,
            "isReadOnly": False,
            "isConfigPendingRestart": False,
        },
    }


def _configuration_on_write(ctx: Context, configuration: dict[str, Any]) -> None:
    if ctx.name not in PARAMETERS:
        raise ArmError(
            404, "ConfigurationNotExists", f"The configuration '{ctx.name}' does not exist for this server."
        )
    known = PARAMETERS[ctx.name]
    p = configuration.setdefault("properties", {})
    value = str(p.get("value", known["value"]))
    if known["dataType"] in ("Boolean", "Enumeration") and value not in known["allowedValues"].split(","):
        raise _bad(
            "InvalidParameterValue",
            f"Invalid value given for parameter {ctx.name}: '{value}'; allowed values: "
            f"{known['allowedValues']}.",
        )
    configuration["properties"] = _parameter(ctx, ctx.name, value, "user-override")["properties"]


def _default_parameters(
    ctx: Context, items: list[dict[str, Any]], _filter: str | None
) -> list[dict[str, Any]]:
    if ctx.fake.store.get(ctx.parent_id.lower()) is None:
        return items
    made = {item["name"] for item in items}
    defaults = [_parameter(ctx, name) for name in PARAMETERS if name not in made]
    return sorted([*items, *defaults], key=lambda item: item["name"])


register(
    ResourceType(
        type=SERVER,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:Server",
        patch_model=f"{_MODELS}:ServerForPatch",
        read_model=f"{_MODELS}:Server",
        async_put=True,
        created_status=202,
        updated_status=202,
        async_patch=True,
        async_delete=True,
        immutable=("properties.availabilityZone",),
        name_pattern=r"[a-z0-9][-a-z0-9]{1,61}[a-z0-9]",
        name_error="InvalidServerName",
        provisioning_state=False,
        on_write=_server_on_write,
    ),
    ResourceType(
        type=f"{SERVER}/databases",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:Database",
        read_model=f"{_MODELS}:Database",
        async_put=True,
        created_status=202,
        updated_status=202,
        async_delete=True,
        tracked=False,
        provisioning_state=False,
        name_pattern=r"[a-zA-Z_][a-zA-Z0-9_-]{0,62}",
        on_write=_database_on_write,
        list_filter=_system_databases,
    ),
    ResourceType(
        type=f"{SERVER}/configurations",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:ConfigurationForUpdate",
        patch_model=f"{_MODELS}:ConfigurationForUpdate",
        read_model=f"{_MODELS}:Configuration",
        async_put=True,
        created_status=202,
        updated_status=202,
        async_patch=True,
        tracked=False,
        provisioning_state=False,
        on_write=_configuration_on_write,
        list_filter=_default_parameters,
    ),
)
