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
        on_write=_subnet_on_write,
    ),
)
