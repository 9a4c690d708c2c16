"""Microsoft.Web: App Service Plans (``serverfarms``), web apps (``sites``), their configuration
(``sites/config``: ``web`` and ``appsettings``) and their regional VNet integration
(``sites/networkConfig/virtualNetwork``), as App Service answers them.

What App Service does that a client could get wrong, and the fake does too:

- A site's full configuration lives at ``sites/NAME/config/web``: a GET or a list of sites shows only a few
  members of ``properties.siteConfig`` (``linuxFxVersion``, ``numberOfWorkers``, ...), the rest null
  (``minTlsVersion`` among them), and never the app settings; those are read with ``POST
  .../config/appsettings/list``. A ``siteConfig`` sent in a site's PUT is applied to the configuration
  (its ``appSettings`` replace the app settings; absent, they are kept).
- A plan is Linux when ``properties.reserved`` is true (``kind: linux`` alone is not enough); a container
  (``linuxFxVersion: DOCKER|IMAGE``) runs only on a Linux plan. The plan's workers are ``sku.capacity``
  (``numberOfWorkers`` is read-only); its PATCH model has no ``sku``, so scaling is a PUT.
- A site's ``virtualNetworkSubnetId`` must name an existing subnet delegated to
  ``Microsoft.Web/serverFarms``, on a plan of tier Basic or above; its user-assigned identities must exist
  (their ``principalId`` / ``clientId`` are filled in); its ``keyVaultReferenceIdentity`` is
  ``SystemAssigned`` or one of its user-assigned identities.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, lookup, register
from skyrig_azure.fake.schema import load, validate

_MODELS = "azure.mgmt.web.models"
_VERSIONS = ("2023-12-01", "2024-04-01", "2024-11-01", "2025-03-01", "2025-05-01")
_SITE_CONFIG_SHOWN = (
    "numberOfWorkers",
    "linuxFxVersion",
    "acrUseManagedIdentityCreds",
    "alwaysOn",
    "http20Enabled",
    "functionAppScaleLimit",
    "minimumElasticInstanceCount",
)
"""The members of ``siteConfig`` a GET of a site fills in (App Service leaves the others null there)."""
_CONFIG_DEFAULTS: dict[str, Any] = {
    "numberOfWorkers": 1,
    "linuxFxVersion": "",
    "alwaysOn": False,
    "http20Enabled": False,
    "minTlsVersion": "1.2",
    "scmMinTlsVersion": "1.2",
    "ftpsState": "AllAllowed",
    "vnetRouteAllEnabled": False,
    "acrUseManagedIdentityCreds": False,
    "functionAppScaleLimit": 0,
    "minimumElasticInstanceCount": 0,
    "remoteDebuggingEnabled": False,
    "webSocketsEnabled": False,
    "keyVaultReferenceIdentity": "SystemAssigned",
}
_FREE_TIERS = frozenset({"free", "shared", "dynamic"})
_MAX_WORKERS = {
    "premium0v3": 30,
    "basic": 3,
    "standard": 10,
    "premiumv2": 30,
    "premiumv3": 30,
    "premiummv3": 30,
    "isolatedv2": 100,
}
_WEB_DELEGATION = "microsoft.web/serverfarms"


class ConfigBody:
    """What a PUT of ``sites/NAME/config/NAME`` may hold before its name is known (``kind`` and
    ``properties``): the configuration's own model is checked by name in :func:`_config_on_write` (``web``:
    SiteConfigResource, ``appsettings``: StringDictionary)."""

    _attribute_map = {
        "kind": {"key": "kind", "type": "str"},
        "properties": {"key": "properties", "type": "object"},
    }


_CONFIG_MODELS = {"web": f"{_MODELS}:SiteConfigResource", "appsettings": f"{_MODELS}:StringDictionary"}


def stored(ctx: Context, resource_id: str) -> Any:
    """The fake's entry of ``resource_id``, or None."""
    return ctx.fake.store.get(resource_id.lower().rstrip("/"))


def _tier(plan: dict[str, Any]) -> str:
    return str((plan.get("sku") or {}).get("tier") or "").replace(" ", "").lower()


# -- plans ------------------------------------------------------------------------------------------------


def _plan_on_write(ctx: Context, plan: dict[str, Any]) -> None:
    sku = plan.get("sku") or {}
    if not sku.get("name"):
        raise ArmError(400, "BadRequest", "The parameter sku.name is required for an App Service Plan.")
    sku.setdefault("tier", _tier_of(sku["name"]))
    capacity = int(sku.get("capacity") or 1)
    most = _MAX_WORKERS.get(_tier(plan), 1)
    if capacity > most:
        raise ArmError(
            400,
            "BadRequest",
            f"The number of workers ({capacity}) exceeds the maximum of the {sku['tier']} tier ({most}).",
        )
    sku["capacity"] = capacity
    sku.setdefault("size", sku["name"])
    sku.setdefault("family", "".join(c for c in sku["name"] if not c.isdigit()))
    properties = plan.setdefault("properties", {})
    previous = (ctx.previous or {}).get("properties") or {}
    if ctx.previous is not None and bool(previous.get("reserved")) != bool(properties.get("reserved")):
        raise ArmError(
            400,
            "BadRequest",
            "An App Service Plan cannot change between Linux and Windows (properties.reserved).",
        )
    properties["reserved"] = bool(properties.get("reserved"))
    plan["kind"] = "linux" if properties["reserved"] else (plan.get("kind") or "app")
    properties["numberOfWorkers"] = capacity
    properties["maximumNumberOfWorkers"] = most
    properties["status"] = "Ready"
    properties["geoRegion"] = plan.get("location")
    properties["resourceGroup"] = ctx.group
    properties["subscription"] = ctx.subscription
    properties["numberOfSites"] = len(_sites_on(ctx, ctx.id))
    properties.setdefault("perSiteScaling", False)
    properties.setdefault("zoneRedundant", False)


def _tier_of(name: str) -> str:
    prefix = name.upper()
    for start, tier in (
        ("P0V3", "Premium0V3"),
        ("P", "PremiumV3" if prefix.endswith("V3") else "PremiumV2"),
        ("B", "Basic"),
        ("S", "Standard"),
        ("F", "Free"),
        ("D", "Shared"),
        ("I", "IsolatedV2"),
    ):
        if prefix.startswith(start):
            return tier
    return "Standard"


def _sites_on(ctx: Context, plan_id: str) -> list[str]:
    return [
        key
        for key, entry in ctx.fake.store.items()
        if entry.type.type == "Microsoft.Web/sites"
        and str((entry.resource.get("properties") or {}).get("serverFarmId") or "").lower() == plan_id.lower()
    ]


# -- sites --------------------------------------------------------------------------------------------------


def _site_on_write(ctx: Context, site: dict[str, Any]) -> None:
    properties = site.setdefault("properties", {})
    previous = copy.deepcopy((ctx.previous or {}).get("properties") or {})
    farm = properties.get("serverFarmId") or previous.get("serverFarmId")
    if not farm:
        raise ArmError(400, "BadRequest", "The parameter properties.serverFarmId is required.")
    plan_entry = stored(ctx, farm)
    if plan_entry is None:
        raise ArmError(404, "NotFound", f"Cannot find ServerFarm with name {farm.rsplit('/', 1)[-1]}.")
    plan = plan_entry.resource
    properties["serverFarmId"] = plan["id"]
    linux = bool((plan.get("properties") or {}).get("reserved"))
    wanted = properties.pop("siteConfig", None) or {}
    config_id = f"{site['id']}/config/web"
    settings_id = f"{site['id']}/config/appsettings"
    config_entry, settings_entry = stored(ctx, config_id), stored(ctx, settings_id)
    config = copy.deepcopy(config_entry.resource["properties"]) if config_entry else dict(_CONFIG_DEFAULTS)
    settings = copy.deepcopy(settings_entry.resource["properties"]) if settings_entry else {}
    given_settings = wanted.pop("appSettings", None)
    if given_settings is not None:
        settings = {item["name"]: item.get("value") for item in given_settings}
    config.update({key: value for key, value in wanted.items() if value is not None})
    if str(config.get("linuxFxVersion") or "").upper().startswith("DOCKER|") and not linux:
        raise ArmError(
            400,
            "BadRequest",
            "LinuxFxVersion has an invalid value: a container runs only on a "
            "Linux App Service Plan (properties.reserved).",
        )
    assign_identities(ctx, site)
    reference = properties.get("keyVaultReferenceIdentity") or "SystemAssigned"
    users = {key.lower() for key in ((site.get("identity") or {}).get("userAssignedIdentities") or {})}
    if reference != "SystemAssigned" and reference.lower() not in users:
        raise ArmError(
            400,
            "BadRequest",
            f"keyVaultReferenceIdentity '{reference}' is not an identity of the "
            "site: it must be SystemAssigned or one of its user-assigned identities.",
        )
    properties["keyVaultReferenceIdentity"] = reference
    config["keyVaultReferenceIdentity"] = reference
    subnet = properties.get("virtualNetworkSubnetId")
    if subnet:
        _check_subnet(ctx, subnet, plan)
    config["numberOfWorkers"] = int((plan.get("sku") or {}).get("capacity") or 1)
    host = f"{ctx.name}.azurewebsites.net"
    properties.setdefault("httpsOnly", False)
    properties.setdefault("enabled", True)
    properties.setdefault("clientAffinityEnabled", True)
    properties.setdefault("publicNetworkAccess", "Enabled")
    properties.update(
        {
            "state": "Running",
            "hostNames": [host],
            "enabledHostNames": [host, f"{ctx.name}.scm.azurewebsites.net"],
            "defaultHostName": host,
            "usageState": "Normal",
            "availabilityState": "Normal",
            "reserved": linux,
            "resourceGroup": ctx.group,
            "repositorySiteName": ctx.name,
            "outboundIpAddresses": "20.49.104.1,20.49.104.2",
            "possibleOutboundIpAddresses": "20.49.104.1,20.49.104.2,20.49.104.3",
            "customDomainVerificationId": previous.get("customDomainVerificationId")
            or uuid.uuid4().hex.upper(),
            "sku": (plan.get("sku") or {}).get("tier"),
            "siteConfig": {key: config.get(key) for key in _SITE_CONFIG_SHOWN},
        }
    )
    site.setdefault("kind", "app,linux,container" if linux else "app")
    _store_config(ctx, site["id"], "web", config)
    _store_config(ctx, site["id"], "appsettings", settings)


def assign_identities(ctx: Context, resource: dict[str, Any]) -> None:
    """Checks the user-assigned identities of ``resource`` exist and fills in their ``principalId`` and
    ``clientId`` (as Azure answers them)."""
    identity = resource.get("identity")
    if not identity:
        return
    kind = str(identity.get("type") or "None")
    users = identity.get("userAssignedIdentities") or {}
    if users and "userassigned" not in kind.replace(" ", "").lower():
        raise ArmError(
            400, "BadRequest", "userAssignedIdentities are given but the identity type is not UserAssigned."
        )
    known = lookup("Microsoft.ManagedIdentity/userAssignedIdentities") is not None
    for key in list(users):
        found = stored(ctx, key)
        if found is None and known:
            raise ArmError(
                400,
                "FailedIdentityOperation",
                f"Identity '{key}' was not found: a user-assigned identity must exist before it is assigned.",
            )
        outputs = (found.resource.get("properties") or {}) if found is not None else {}
        users[key] = {
            "principalId": outputs.get("principalId") or str(uuid.uuid5(uuid.NAMESPACE_URL, key.lower())),
            "clientId": outputs.get("clientId") or str(uuid.uuid5(uuid.NAMESPACE_DNS, key.lower())),
        }


def _check_subnet(ctx: Context, subnet_id: str, plan: dict[str, Any]) -> None:
    if _tier(plan) in _FREE_TIERS:
        raise ArmError(
            400, "BadRequest", "Virtual network integration needs an App Service Plan of tier Basic or above."
        )
    if lookup("Microsoft.Network/virtualNetworks/subnets") is None:
        return
    found = stored(ctx, subnet_id)
    if found is None:
        raise ArmError(404, "NotFound", f"Subnet '{subnet_id}' was not found.")
    delegations = (found.resource.get("properties") or {}).get("delegations") or []
    services = {str((d.get("properties") or {}).get("serviceName") or "").lower() for d in delegations}
    if _WEB_DELEGATION not in services:
        raise ArmError(
            400,
            "SubnetMissingRequiredDelegation",
            f"Subnet '{subnet_id.rsplit('/', 1)[-1]}' must "
            "be delegated to Microsoft.Web/serverFarms for virtual network integration.",
        )


def _store_config(ctx: Context, site_id: str, name: str, properties: dict[str, Any]) -> None:
    """Keeps the site's configuration ``name`` (``web``, ``appsettings``) as its own resource."""
    ctx.fake.put_resource(f"{site_id}/config/{name}", {"properties": properties})


def _config_on_write(ctx: Context, config: dict[str, Any]) -> None:
    model = _CONFIG_MODELS.get(ctx.name.lower())
    if model is None:
        raise ArmError(
            400,
            "BadRequest",
            f"The fake serves the site configurations web and appsettings, not '{ctx.name}'.",
        )
    body = {key: config[key] for key in ("kind", "properties") if key in config}
    validate(body, load(model))
    site_id = ctx.parent_id
    site_entry = stored(ctx, site_id)
    if site_entry is None:
        raise ArmError(
            404, "ParentResourceNotFound", f"Parent resource '{site_id.rsplit('/', 1)[-1]}' not found."
        )
    previous = (ctx.previous or {}).get("properties") or {}
    if ctx.name.lower() == "web":
        merged = {**(previous or _CONFIG_DEFAULTS)}
        merged.update({k: v for k, v in (config.get("properties") or {}).items() if v is not None})
        merged.pop("appSettings", None)
        config["properties"] = merged
        shown = site_entry.resource.setdefault("properties", {}).setdefault("siteConfig", {})
        for key in _SITE_CONFIG_SHOWN:
            shown[key] = merged.get(key)
    else:
        config["properties"] = {k: str(v) for k, v in (config.get("properties") or {}).items()}
    config.pop("kind", None)
    config["name"] = ctx.name.lower()


def _config_patch_on_write(ctx: Context, config: dict[str, Any]) -> None:
    _config_on_write(ctx, config)


def _list_settings(ctx: Context, config: dict[str, Any], body: Any) -> tuple[int, Any]:
    if ctx.name.lower() != "appsettings":
        raise ArmError(404, "NotFound", f"Configuration '{ctx.name}' has no list action.")
    return 200, {
        "id": config["id"],
        "name": "appsettings",
        "type": config["type"],
        "properties": dict(config.get("properties") or {}),
    }


# -- VNet integration ------------------------------------------------------------------------------------


def _network_on_write(ctx: Context, network: dict[str, Any]) -> None:
    if ctx.name.lower() != "virtualnetwork":
        raise ArmError(404, "NotFound", "A site's network configuration is named virtualNetwork.")
    site_entry = stored(ctx, ctx.parent_id)
    if site_entry is None:
        raise ArmError(404, "ParentResourceNotFound", "The site does not exist.")
    properties = network.setdefault("properties", {})
    subnet = properties.get("subnetResourceId")
    plan_entry = stored(ctx, site_entry.resource["properties"]["serverFarmId"])
    if subnet:
        _check_subnet(ctx, subnet, plan_entry.resource if plan_entry else {})
    properties["swiftSupported"] = True
    site_entry.resource["properties"]["virtualNetworkSubnetId"] = subnet


register(
    ResourceType(
        type="Microsoft.Web/serverfarms",
        created_status=202,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:AppServicePlan",
        patch_model=f"{_MODELS}:AppServicePlanPatchResource",
        read_model=f"{_MODELS}:AppServicePlan",
        async_put=True,
        name_pattern=r"[a-zA-Z0-9-]{1,60}",
        on_write=_plan_on_write,
    ),
    ResourceType(
        type="Microsoft.Web/sites",
        created_status=202,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:Site",
        patch_model=f"{_MODELS}:SitePatchResource",
        read_model=f"{_MODELS}:Site",
        async_put=True,
        name_pattern=r"[a-zA-Z0-9][a-zA-Z0-9-]{0,58}[a-zA-Z0-9]",
        on_write=_site_on_write,
    ),
    ResourceType(
        type="Microsoft.Web/sites/config",
        api_versions=_VERSIONS,
        put_model=f"{__name__}:ConfigBody",
        patch_model=f"{__name__}:ConfigBody",
        tracked=False,
        provisioning_state=False,
        on_write=_config_on_write,
        actions={"list": _list_settings},
    ),
    ResourceType(
        type="Microsoft.Web/sites/networkConfig",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:SwiftVirtualNetwork",
        tracked=False,
        provisioning_state=False,
        on_write=_network_on_write,
    ),
)
