"""Microsoft.Network: virtual networks and their subnets (PUT and DELETE long-running, etags; a virtual
network's ``properties.subnets`` and the subnets child type are one set: a PUT of the network replaces its
subnets, as Azure does)."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register

_MODELS = "azure.mgmt.network.models"
_VERSIONS = ("2024-05-01", "2025-01-01", "2025-05-01", "2026-03-01")


def _networks(prefixes: Any, where: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    found = []
    for prefix in prefixes or []:
        try:
            found.append(ipaddress.ip_network(prefix, strict=True))
        except ValueError:
            raise ArmError(
                400,
                "InvalidAddressPrefixFormat",
                f"Address prefix {prefix} of {where} is not "
                "valid: it must be a CIDR block with no bits set beyond its prefix length.",
            ) from None
    return found


def _vnet_on_write(ctx: Context, vnet: dict[str, Any]) -> None:
    properties = vnet.setdefault("properties", {})
    space = (properties.get("addressSpace") or {}).get("addressPrefixes")
    if not _networks(space, ctx.id):
        raise ArmError(
            400,
            "InvalidAddressSpace",
            "A virtual network needs at least one address prefix in properties.addressSpace.addressPrefixes.",
        )
    previous = (ctx.previous or {}).get("properties") or {}
    properties["resourceGuid"] = previous.get("resourceGuid") or str(uuid.uuid4())
    properties.setdefault("enableDdosProtection", False)
    properties.setdefault("virtualNetworkPeerings", [])


def _subnet_on_write(ctx: Context, subnet: dict[str, Any]) -> None:
    parent = ctx.fake.store.get(ctx.parent_id.lower())
    if parent is None:
        return
    properties = subnet.setdefault("properties", {})
    prefixes = properties.get("addressPrefixes") or (
        [properties["addressPrefix"]] if properties.get("addressPrefix") else []
    )
    mine = _networks(prefixes, ctx.id)
    if not mine:
        raise ArmError(400, "NoAddressPrefixOrPoolProvided", f"Subnet {ctx.name} needs an addressPrefix.")
    space = _networks(
        ((parent.resource.get("properties") or {}).get("addressSpace") or {}).get("addressPrefixes"),
        ctx.parent_id,
    )
    for net in mine:
        if not any(net.version == outer.version and net.subnet_of(outer) for outer in space):  # type: ignore[arg-type]
            raise ArmError(
                400,
                "NetcfgSubnetRangeOutsideVnet",
                f"Subnet '{ctx.name}' is not valid because its IP "
                f"address range {net} is outside the IP address range of virtual network "
                f"'{parent.resource['name']}'.",
            )
    prefix = ctx.parent_id.lower() + "/subnets/"
    for key, sibling in ctx.fake.store.items():
        if not key.startswith(prefix) or key == ctx.id.lower():
            continue
        other = sibling.resource.get("properties") or {}
        theirs = _networks(other.get("addressPrefixes") or [other.get("addressPrefix")], key)
        for net in mine:
            for their in theirs:
                if net.overlaps(their):
                    raise ArmError(
                        400,
                        "NetcfgSubnetRangesOverlap",
                        f"Subnet '{ctx.name}' is not valid because its "
                        f"IP address range overlaps with that of an existing subnet in virtual network "
                        f"'{parent.resource['name']}'.",
                    )


register(
    ResourceType(
        type="Microsoft.Network/virtualNetworks",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:VirtualNetwork",
        patch_model=f"{_MODELS}:TagsObject",
        async_put=True,
        async_delete=True,
        etag=True,
        creating_state="Updating",
        inline_children={"subnets": "Microsoft.Network/virtualNetworks/subnets"},
        name_pattern=r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9_]|[a-zA-Z0-9]",
        on_write=_vnet_on_write,
    ),
)


# -- subnets: delegations and references -------------------------------------------------------------------

DELEGABLE = {
    "microsoft.web/serverfarms": (
        "Microsoft.Web/serverFarms",
        ["Microsoft.Network/virtualNetworks/subnets/action"],
    ),
    "microsoft.dbforpostgresql/flexibleservers": (
        "Microsoft.DBforPostgreSQL/flexibleServers",
        ["Microsoft.Network/virtualNetworks/subnets/join/action"],
    ),
    "microsoft.app/environments": (
        "Microsoft.App/environments",
        ["Microsoft.Network/virtualNetworks/subnets/join/action"],
    ),
}
"""The services a subnet may be delegated to (those skyrig uses), with the actions Azure grants them."""


def referenced(ctx: Context, reference: Any, where: str) -> dict[str, Any]:
    """The stored resource a ``{"id": ...}`` member names; ARM's 400 ``InvalidResourceReference`` if none."""
    target = str((reference or {}).get("id") or "")
    entry = ctx.fake.store.get(target.lower().rstrip("/"))
    if entry is None:
        raise ArmError(
            400,
            "InvalidResourceReference",
            f"Resource {target} referenced by resource {ctx.id} was not found. Please make sure that the "
            f"referenced resource exists, and that both resources are in the same region ({where}).",
        )
    return entry.resource


def _subnet_references(ctx: Context, subnet: dict[str, Any]) -> None:
    properties = subnet.setdefault("properties", {})
    if properties.get("networkSecurityGroup"):
        referenced(ctx, properties["networkSecurityGroup"], "properties.networkSecurityGroup")
    delegations = properties.get("delegations") or []
    if len(delegations) > 1:
        raise ArmError(
            400,
            "SubnetMultipleDelegations",
            f"Subnet {ctx.name} may be delegated to one service only.",
        )
    for delegation in delegations:
        service = str((delegation.get("properties") or {}).get("serviceName") or "")
        known = DELEGABLE.get(service.lower())
        if known is None:
            raise ArmError(
                400,
                "InvalidServiceNameOnDelegation",
                f"Delegation {delegation.get('name')} of subnet {ctx.id} names service '{service}', which "
                "cannot be delegated a subnet.",
            )
        delegation["id"] = f"{ctx.id}/delegations/{delegation.get('name')}"
        delegation["type"] = "Microsoft.Network/virtualNetworks/subnets/delegations"
        delegation["properties"]["serviceName"] = known[0]
        delegation["properties"]["actions"] = list(known[1])
        delegation["properties"]["provisioningState"] = "Succeeded"
    endpoints = [
        e
        for e in ctx.fake.store.values()
        if e.type.type == "Microsoft.Network/privateEndpoints"
        and str(((e.resource.get("properties") or {}).get("subnet") or {}).get("id", "")).lower()
        == ctx.id.lower()
    ]
    if delegations and endpoints:
        raise ArmError(
            400,
            "SubnetHasPrivateEndpointsCannotBeDelegated",
            f"Subnet {ctx.id} holds private endpoints and cannot be delegated.",
        )


def _subnet_write(ctx: Context, subnet: dict[str, Any]) -> None:
    _subnet_on_write(ctx, subnet)
    _subnet_references(ctx, subnet)


# -- network security groups ---------------------------------------------------------------------------------

_DEFAULT_RULES = (
    ("AllowVnetInBound", 65000, "Inbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "AzureLoadBalancer", "*"),
    ("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
    ("AllowVnetOutBound", 65000, "Outbound", "Allow", "VirtualNetwork", "VirtualNetwork"),
    ("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", "Internet"),
    ("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*"),
)


def _rule_error(
    ctx: Context, rule: dict[str, Any], message: str, code: str = "SecurityRuleInvalid"
) -> ArmError:
    return ArmError(400, code, f"Security rule {rule.get('name')} of {ctx.id}: {message}")


def _nsg_on_write(ctx: Context, nsg: dict[str, Any]) -> None:
    properties = nsg.setdefault("properties", {})
    previous = (ctx.previous or {}).get("properties") or {}
    seen_names: set[str] = set()
    seen_priorities: set[tuple[str, int]] = set()
    for rule in properties.get("securityRules") or []:
        rp = rule.setdefault("properties", {})
        name = str(rule.get("name") or "")
        if not name:
            raise _rule_error(ctx, rule, "a security rule needs a name.", "InvalidRequestFormat")
        if name.lower() in seen_names:
            raise _rule_error(ctx, rule, "two rules have this name.", "SecurityRuleNameNotUnique")
        seen_names.add(name.lower())
        for required in ("protocol", "access", "direction", "priority"):
            if rp.get(required) in (None, ""):
                raise _rule_error(ctx, rule, f"properties.{required} is required.", "InvalidRequestFormat")
        priority = int(rp["priority"])
        if not 100 <= priority <= 4096:
            raise _rule_error(
                ctx, rule, f"priority {priority} is not between 100 and 4096.", "SecurityRuleInvalidPriority"
            )
        if (str(rp["direction"]).lower(), priority) in seen_priorities:
            raise _rule_error(
                ctx,
                rule,
                f"another {rp['direction']} rule has priority {priority}.",
                "SecurityRulesOverlapOrHaveSamePriority",
            )
        seen_priorities.add((str(rp["direction"]).lower(), priority))
        for one, many in (
            ("sourceAddressPrefix", "sourceAddressPrefixes"),
            ("destinationAddressPrefix", "destinationAddressPrefixes"),
            ("sourcePortRange", "sourcePortRanges"),
            ("destinationPortRange", "destinationPortRanges"),
        ):
            if rp.get(one) and rp.get(many):
                raise _rule_error(
                    ctx,
                    rule,
                    f"{one} and {many} may not both be given.",
                    "SecurityRuleParameterContainsUnsupportedValue",
                )
            if not rp.get(one) and not rp.get(many):
                raise _rule_error(ctx, rule, f"{one} or {many} is required.", "SecurityRuleParameterMissing")
        for port in [rp.get("destinationPortRange"), *(rp.get("destinationPortRanges") or [])]:
            if port and port != "*":
                low, _, high = str(port).partition("-")
                if not all(p.isdigit() and 0 <= int(p) <= 65535 for p in (low, high or low)):
                    raise _rule_error(
                        ctx, rule, f"port range {port} is invalid.", "SecurityRuleInvalidPortRange"
                    )
        rule["id"] = f"{ctx.id}/securityRules/{name}"
        rule["type"] = "Microsoft.Network/networkSecurityGroups/securityRules"
        rp["provisioningState"] = "Succeeded"
    properties["defaultSecurityRules"] = [
        {
            "name": name,
            "id": f"{ctx.id}/defaultSecurityRules/{name}",
            "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
            "properties": {
                "description": name,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": source,
                "destinationAddressPrefix": destination,
                "access": access,
                "priority": priority,
                "direction": direction,
                "provisioningState": "Succeeded",
            },
        }
        for name, priority, direction, access, source, destination in _DEFAULT_RULES
    ]
    properties["resourceGuid"] = previous.get("resourceGuid") or str(uuid.uuid4())


# -- private endpoints and their DNS zone groups ----------------------------------------------------------


_LINK_DOMAINS = {
    "rediscache": "redis.cache.windows.net",
    "blob": "blob.core.windows.net",
    "vault": "vault.azure.net",
    "namespace": "servicebus.windows.net",
}
"""A private link group id -> the public domain its resources' names are in."""


def _endpoint_on_write(ctx: Context, endpoint: dict[str, Any]) -> None:
    properties = endpoint.setdefault("properties", {})
    subnet = referenced(ctx, properties.get("subnet"), "properties.subnet")
    if (subnet.get("properties") or {}).get("delegations"):
        raise ArmError(
            400,
            "PrivateEndpointCreationNotAllowedAsSubnetIsDelegated",
            f"Private endpoint {ctx.id} cannot be created in subnet {subnet['id']}: the subnet is delegated.",
        )
    connections = properties.get("privateLinkServiceConnections") or []
    if not connections and not properties.get("manualPrivateLinkServiceConnections"):
        raise ArmError(
            400,
            "PrivateEndpointMissingPrivateLinkServiceConnection",
            f"Private endpoint {ctx.id} names no private link service connection.",
        )
    for connection in connections:
        cp = connection.setdefault("properties", {})
        target = str(cp.get("privateLinkServiceId") or "")
        if target.lower().rstrip("/") not in ctx.fake.store:
            raise ArmError(
                400,
                "PrivateLinkServiceNotFound",
                f"The private link resource {target} of private endpoint {ctx.id} was not found.",
            )
        if not cp.get("groupIds"):
            raise ArmError(
                400,
                "PrivateEndpointGroupIdsMissing",
                f"Connection {connection.get('name')} of private endpoint {ctx.id} names no group id.",
            )
        connection["id"] = f"{ctx.id}/privateLinkServiceConnections/{connection.get('name')}"
        connection["type"] = "Microsoft.Network/privateEndpoints/privateLinkServiceConnections"
        cp["privateLinkServiceConnectionState"] = {
            "status": "Approved",
            "description": "Auto-Approved",
            "actionsRequired": "None",
        }
        cp["provisioningState"] = "Succeeded"
    previous = (ctx.previous or {}).get("properties") or {}
    block = ipaddress.ip_network((subnet.get("properties") or {}).get("addressPrefix") or "10.0.0.0/24")
    taken = {
        address
        for e in ctx.fake.store.values()
        if e.type.type == "Microsoft.Network/privateEndpoints" and e.resource["id"].lower() != ctx.id.lower()
        for config in (e.resource.get("properties") or {}).get("customDnsConfigs") or []
        for address in config.get("ipAddresses") or []
    }
    address = (previous.get("customDnsConfigs") or [{}])[0].get("ipAddresses", [None])[0]
    if address is None:
        address = next(str(a) for a in list(block.hosts())[3:] if str(a) not in taken)  # Azure keeps .1-.3
    target_name, group_id = "", ""
    if connections:
        target_name = str(connections[0]["properties"]["privateLinkServiceId"]).rsplit("/", 1)[-1]
        group_id = str(connections[0]["properties"]["groupIds"][0])
    suffix = _LINK_DOMAINS.get(group_id.lower(), f"{group_id.lower()}.privatelink.azure.com")
    properties["customDnsConfigs"] = [{"fqdn": f"{target_name}.{suffix}", "ipAddresses": [address]}]
    properties["networkInterfaces"] = [
        {
            "id": f"/subscriptions/{ctx.subscription}/resourceGroups/{ctx.group}/providers/Microsoft.Network/"
            f"networkInterfaces/{ctx.name}.nic.{uuid.uuid5(uuid.NAMESPACE_URL, ctx.id)}"
        }
    ]


def _zone_group_on_write(ctx: Context, group: dict[str, Any]) -> None:
    properties = group.setdefault("properties", {})
    endpoint = ctx.fake.store.get(ctx.parent_id.lower())
    configs = properties.get("privateDnsZoneConfigs") or []
    if not configs:
        raise ArmError(400, "InvalidPrivateDnsZoneGroup", f"{ctx.id} names no private DNS zone.")
    dns = ((endpoint.resource.get("properties") or {}).get("customDnsConfigs") or [{}]) if endpoint else [{}]
    for config in configs:
        cp = config.setdefault("properties", {})
        zone = referenced(ctx, {"id": cp.get("privateDnsZoneId")}, "properties.privateDnsZoneConfigs")
        host = str(dns[0].get("fqdn", "")).split(".", 1)[0]
        cp["recordSets"] = [
            {
                "recordType": "A",
                "recordSetName": host,
                "fqdn": f"{host}.{zone['name']}",
                "ttl": 10,
                "ipAddresses": list(dns[0].get("ipAddresses") or []),
                "provisioningState": "Succeeded",
            }
        ]


# -- private DNS zones and their virtual network links ------------------------------------------------------

_DNS_MODELS = "azure.mgmt.privatedns.models"
_DNS_VERSIONS = ("2020-06-01", "2024-06-01")


def _global(ctx: Context, resource: dict[str, Any]) -> None:
    if str(resource.get("location") or "").lower() != "global":
        raise ArmError(
            400,
            "InvalidLocation",
            f"The location '{resource.get('location')}' of {ctx.id} is invalid: private DNS resources are "
            "in location 'global'.",
        )
    resource["location"] = "global"


def _zone_on_write(ctx: Context, zone: dict[str, Any]) -> None:
    _global(ctx, zone)
    if ctx.name.count(".") < 1:
        raise ArmError(
            400, "InvalidResourceName", f"Private DNS zone name '{ctx.name}' needs two labels at least."
        )
    properties = zone.setdefault("properties", {})
    prefix = ctx.id.lower() + "/virtualnetworklinks/"
    links = [e for key, e in ctx.fake.store.items() if key.startswith(prefix)]
    properties.update(
        {
            "maxNumberOfRecordSets": 25000,
            "numberOfRecordSets": 1,
            "maxNumberOfVirtualNetworkLinks": 1000,
            "numberOfVirtualNetworkLinks": len(links),
            "maxNumberOfVirtualNetworkLinksWithRegistration": 100,
            "numberOfVirtualNetworkLinksWithRegistration": 0,
            "internalId": ((ctx.previous or {}).get("properties") or {}).get("internalId")
            or f"Microsoft.Network/privateDnsZones/{uuid.uuid4()}",
        }
    )


def _link_on_write(ctx: Context, link: dict[str, Any]) -> None:
    _global(ctx, link)
    properties = link.setdefault("properties", {})
    vnet = referenced(ctx, properties.get("virtualNetwork"), "properties.virtualNetwork")
    for key, entry in ctx.fake.store.items():
        if not key.startswith(ctx.parent_id.lower() + "/virtualnetworklinks/") or key == ctx.id.lower():
            continue
        theirs = str(((entry.resource.get("properties") or {}).get("virtualNetwork") or {}).get("id", ""))
        if theirs.lower() == vnet["id"].lower():
            raise ArmError(
                409,
                "Conflict",
                f"A virtual network cannot be linked to the same private DNS zone twice: {vnet['id']} is "
                f"already linked by {entry.resource['name']}.",
            )
    properties.setdefault("registrationEnabled", False)
    properties["virtualNetworkLinkState"] = "Completed"
    zone = ctx.fake.store.get(ctx.parent_id.lower())
    if zone is not None and ctx.previous is None:
        zp = zone.resource.setdefault("properties", {})
        zp["numberOfVirtualNetworkLinks"] = int(zp.get("numberOfVirtualNetworkLinks", 0)) + 1


def _link_on_delete(ctx: Context, link: dict[str, Any]) -> None:
    zone = ctx.fake.store.get(ctx.parent_id.lower())
    if zone is not None:
        zp = zone.resource.setdefault("properties", {})
        zp["numberOfVirtualNetworkLinks"] = max(0, int(zp.get("numberOfVirtualNetworkLinks", 1)) - 1)


register(
    ResourceType(
        type="Microsoft.Network/virtualNetworks/subnets",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:Subnet",
        async_put=True,
        async_delete=True,
        etag=True,
        creating_state="Updating",
        tracked=False,
        name_pattern=r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,78}[a-zA-Z0-9_]|[a-zA-Z0-9]",
        on_write=_subnet_write,
    ),
    ResourceType(
        type="Microsoft.Network/networkSecurityGroups",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:NetworkSecurityGroup",
        patch_model=f"{_MODELS}:TagsObject",
        async_put=True,
        async_delete=True,
        etag=True,
        creating_state="Updating",
        name_pattern=r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,78}[a-zA-Z0-9_]|[a-zA-Z0-9]",
        on_write=_nsg_on_write,
    ),
    ResourceType(
        type="Microsoft.Network/privateEndpoints",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:PrivateEndpoint",
        async_put=True,
        async_delete=True,
        etag=True,
        immutable=("properties.subnet.id",),
        on_write=_endpoint_on_write,
    ),
    ResourceType(
        type="Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:PrivateDnsZoneGroup",
        async_put=True,
        async_delete=True,
        etag=True,
        tracked=False,
        on_write=_zone_group_on_write,
    ),
    ResourceType(
        type="Microsoft.Network/privateDnsZones",
        api_versions=_DNS_VERSIONS,
        put_model=f"{_DNS_MODELS}:PrivateZone",
        patch_model=f"{_DNS_MODELS}:PrivateZone",
        async_put=True,
        async_patch=True,
        async_delete=True,
        etag=True,
        on_write=_zone_on_write,
    ),
    ResourceType(
        type="Microsoft.Network/privateDnsZones/virtualNetworkLinks",
        api_versions=_DNS_VERSIONS,
        put_model=f"{_DNS_MODELS}:VirtualNetworkLink",
        patch_model=f"{_DNS_MODELS}:VirtualNetworkLink",
        async_put=True,
        async_patch=True,
        async_delete=True,
        etag=True,
        immutable=("properties.virtualNetwork.id",),
        on_write=_link_on_write,
        on_delete=_link_on_delete,
    ),
)
