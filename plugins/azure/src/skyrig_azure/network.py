"""The environment's resource group and network: the resource group (made per environment, or the
configured one), a virtual network from ``vnet_cidr``, dedicated subnets (app integration delegated to
Microsoft.Web/serverFarms, the database's delegated to Microsoft.DBforPostgreSQL/flexibleServers, the
private endpoints'), a network security group per subnet that admits only what the subnet needs, and the
private DNS zones the database and the caches publish their private addresses in, each linked to the
virtual network. Only what the app uses: no database subnet without a database, no network at all
without a service, a database or a cache.

Every other Azure node depends on the resource group; the sql, cache and compute families depend on the
subnets and DNS zones by the ids in :mod:`skyrig_azure.names`. The group and the network hold or carry the
environment's data (a kept database needs its subnet, NSG and DNS zone): ``skyrig destroy`` keeps them
unless ``--include-data``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, Scope, UserError, join_name
from skyrig_azure import names
from skyrig_azure.nodes import AzureNodeType

APP, DATABASE, ENDPOINTS, JOBS = "app", "database", "endpoints", "jobs"
SUBNET_IDS = {
    APP: names.APP_SUBNET_ID,
    DATABASE: names.DATABASE_SUBNET_ID,
    ENDPOINTS: names.ENDPOINTS_SUBNET_ID,
    JOBS: names.JOBS_SUBNET_ID,
}
SUBNET_INDEX = {APP: 0, DATABASE: 1, ENDPOINTS: 2, JOBS: 3}
"""Each subnet's block among the VNet's equal blocks: fixed, so that adding a database later moves no
other subnet."""
DELEGATIONS = {
    APP: "Microsoft.Web/serverFarms",
    DATABASE: "Microsoft.DBforPostgreSQL/flexibleServers",
    ENDPOINTS: None,
    JOBS: "Microsoft.App/environments",
}
POSTGRES_PORT = 5432
POSTGRES_HA_PORT = 6432
"""The port a zone-redundant standby replicates on, besides 5432 (within the database subnet)."""
REDIS_TLS_PORT = 6380
DENY_VNET_PRIORITY = 4000
"""Below (after) every allow rule skyrig writes, above Azure's default rules (65000 allows the VNet)."""


def nsg_id(subnet: str) -> str:
    """The node id of the network security group of ``subnet`` (``network.nsg/SUBNET``)."""
    return f"network.nsg/{subnet}"


def dns_zone_id(purpose: str) -> str:
    return {"postgres": names.POSTGRES_DNS_ID, "redis": names.REDIS_DNS_ID}[purpose]


def resource_group(context: Context) -> str:
    """The environment's resource group (made, or the configured one)."""
    return str(context.client.resource_group)


def owned_by_node(context: Context, tags: Mapping[str, Any] | None, node: Node) -> bool:
    """Whether an Azure resource's tags say it is ``node``'s in this app and environment."""
    found = dict(tags or {})
    wanted = names.tags(context.app, context.environment.name, node.id)
    return all(found.get(key) == value for key, value in wanted.items())


class ResourceGroupType(AzureNodeType):
    """The environment's resource group. One skyrig made holds the environment's data (every database,
    bucket and vault is in it): it goes only with ``skyrig destroy --include-data``, as GCP's project; a
    configured one is the user's: skyrig never makes nor deletes it."""

    type = "azure.network.resource_group"
    stateful = True
    identity = frozenset({"name"})
    replace_on = frozenset({"configured", "location"})

    def _observe(self, node: Node, group: Any) -> Observed:
        # a configured group may be in another region than the resources skyrig puts in it (Azure
        # allows it): its location is the user's business
        location = node.properties["location"] if node.properties.get("configured") else group.location
        return self.observed(
            node,
            str(group.id),
            {"name": group.name, "location": location},
            {"id": group.id, "name": group.name, "location": group.location},
        )

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        group = context.client.mgmt("resource").resource_groups.get(provider_id.rsplit("/", 1)[-1])
        return self._observe(node, group)

    def _find(self, context: Context, node: Node) -> Observed | None:
        group = context.client.mgmt("resource").resource_groups.get(node.properties["name"])
        if not node.properties["configured"] and not self.owned(context, group.tags):
            return None  # someone else's group of that name: never adopted, refused at create
        return self._observe(node, group)

    def _create(self, context: Context, node: Node) -> Observed:
        name, env = node.properties["name"], context.environment.name
        if node.properties["configured"]:
            raise UserError(
                f"resource group {name!r} (the azure setting resource_group) does not exist, or the "
                "credentials skyrig runs with cannot see it",
                f"create it (az group create -n {name} -l {node.properties['location']}), or leave "
                f"resource_group unset in [env.{env}.azure] for skyrig to make one",
            )
        groups = context.client.mgmt("resource").resource_groups
        try:
            existing = groups.get(name)
        except NotFound:
            existing = None
        if existing is not None and not self.owned(context, existing.tags):
            raise UserError(
                f"resource group {name!r} exists and is not this environment's (its tags do not say "
                f"skyrig-app={context.app}, skyrig-env={env})",
                f'set resource_group = "{name}" in [env.{env}.azure] to provision in it, or delete it',
            )
        group = groups.create_or_update(
            name, {"location": node.properties["location"], "tags": self.tags(context, node)}
        )
        return self._observe(node, group)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        if node.properties.get("configured"):
            return  # the user's group: skyrig never deletes it
        name = provider_id.rsplit("/", 1)[-1]
        operation = context.client.mgmt("resource").resource_groups.begin_delete(name)
        context.client.wait(context, operation, f"deleting resource group {name}")

    def inventory(self, context: Context) -> list[str]:
        groups = context.client.mgmt("resource").resource_groups.list()
        return sorted(str(g.id) for g in groups if self.owned(context, g.tags))


class GroupResourceType(AzureNodeType):
    """A tagged resource in the environment's resource group, found again by its deterministic name (and
    its ``skyrig-node`` tag), listed by its tags. The network is kept with the group's data (``stateful``):
    a database ``skyrig destroy`` keeps stays in its delegated subnet, behind its NSG, named in its DNS
    zone, and Azure refuses to delete a subnet in use."""

    stateful = True

    group: str
    """The operation group of the management client (``virtual_networks``)."""
    client_name = "network"
    name_property = "name"

    def _operations(self, context: Context) -> Any:
        return getattr(context.client.mgmt(self.client_name), self.group)

    def _get(self, context: Context, name: str) -> Any:
        return self._operations(context).get(resource_group(context), name)

    def _observe(self, context: Context, node: Node, resource: Any) -> Observed:
        raise NotImplementedError

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._observe(context, node, self._get(context, provider_id.rsplit("/", 1)[-1]))

    def _find(self, context: Context, node: Node) -> Observed | None:
        resource = self._get(context, node.properties[self.name_property])
        if not owned_by_node(context, resource.tags, node):
            return None
        return self._observe(context, node, resource)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        if len(nodes) < 2:
            return super()._read_many(context, nodes)
        # one list of the group's resources of this type serves them all (Azure lists them whole)
        listed = {str(r.name).lower(): r for r in self._listed(context)}
        found: dict[str, Observed | None] = {}
        for node, provider_id in nodes:
            resource = listed.get(provider_id.rsplit("/", 1)[-1].lower())
            found[node.id] = None if resource is None else self._observe(context, node, resource)
        return found

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        if len(nodes) < 2:
            return super()._find_many(context, nodes)
        listed = {str(r.name).lower(): r for r in self._listed(context)}
        found: dict[str, Observed | None] = {}
        for node in nodes:
            resource = listed.get(str(node.properties[self.name_property]).lower())
            owned = resource is not None and owned_by_node(context, resource.tags, node)
            found[node.id] = self._observe(context, node, resource) if owned else None
        return found

    def _put(self, context: Context, node: Node, name: str, body: Any) -> Any:
        operations = self._operations(context)
        operation = operations.begin_create_or_update(resource_group(context), name, body)
        return context.client.wait(context, operation, f"{node.id} ({name})")

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        name = provider_id.rsplit("/", 1)[-1]
        operation = self._operations(context).begin_delete(resource_group(context), name)
        context.client.wait(context, operation, f"deleting {node.id} ({name})")

    def _listed(self, context: Context) -> list[Any]:
        try:
            return list(self._operations(context).list(resource_group(context)))
        except NotFound:  # no resource group (yet, or any more): nothing in it
            return []

    def inventory(self, context: Context) -> list[str]:
        return sorted(str(r.id) for r in self._listed(context) if self.owned(context, r.tags))


class VnetType(GroupResourceType):
    """The environment's virtual network. Its subnets are nodes of their own: the VNet is written only
    when made (a PUT without its subnets would take them away)."""

    type = "azure.network.vnet"
    group = "virtual_networks"
    identity = frozenset({"name"})
    replace_on = frozenset({"cidr"})

    def _observe(self, context: Context, node: Node, vnet: Any) -> Observed:
        prefixes = list(vnet.address_space.address_prefixes or []) if vnet.address_space else []
        return self.observed(
            node,
            str(vnet.id),
            {"name": vnet.name, "cidr": prefixes[0] if len(prefixes) == 1 else prefixes},
            {"id": vnet.id, "name": vnet.name},
        )

    def _create(self, context: Context, node: Node) -> Observed:
        from azure.mgmt.network import models

        body = models.VirtualNetwork(
            location=context.client.location,
            tags=self.tags(context, node),
            address_space=models.AddressSpace(address_prefixes=[node.properties["cidr"]]),
        )
        return self._observe(context, node, self._put(context, node, node.properties["name"], body))

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]


def _rule_key(rule: Mapping[str, Any]) -> tuple[int, str]:
    return (int(rule["priority"]), str(rule["name"]))


class NsgType(GroupResourceType):
    """A subnet's network security group. Its rules are an invariant: a rule opened in the portal is
    closed by the next apply, one taken away is put back (the whole NSG is written with its rules)."""

    type = "azure.network.nsg"
    group = "network_security_groups"
    identity = frozenset({"name"})
    invariant = frozenset({"rules"})

    def _observe(self, context: Context, node: Node, nsg: Any) -> Observed:
        rules = [_rule_of(rule) for rule in nsg.security_rules or []]
        return self.observed(
            node,
            str(nsg.id),
            {"name": nsg.name, "rules": sorted(rules, key=_rule_key)},
            {"id": nsg.id, "name": nsg.name},
        )

    def _write(self, context: Context, node: Node) -> Observed:
        from azure.mgmt.network import models

        rules = [
            models.SecurityRule(
                name=rule["name"],
                description=rule.get("description"),
                protocol=rule["protocol"],
                source_address_prefix=rule["source"],
                source_port_range="*",
                destination_address_prefix=rule["destination"],
                destination_port_ranges=None if rule["ports"] == ["*"] else list(rule["ports"]),
                destination_port_range="*" if rule["ports"] == ["*"] else None,
                access=rule["access"],
                priority=rule["priority"],
                direction=rule["direction"],
            )
            for rule in node.properties["rules"]
        ]
        body = models.NetworkSecurityGroup(
            location=context.client.location, tags=self.tags(context, node), security_rules=rules
        )
        return self._observe(context, node, self._put(context, node, node.properties["name"], body))

    def _create(self, context: Context, node: Node) -> Observed:
        return self._write(context, node)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._write(context, node)


def text(value: Any) -> str:
    """An SDK value as Azure says it (an enum member as its value: ``Allow``)."""
    return str(getattr(value, "value", value))


def _rule_of(rule: Any) -> dict[str, Any]:
    """A security rule in the node's terms."""
    ports = list(rule.destination_port_ranges or []) or [rule.destination_port_range or "*"]
    found = {
        "name": rule.name,
        "priority": rule.priority,
        "direction": text(rule.direction),
        "access": text(rule.access),
        "protocol": text(rule.protocol),
        "source": rule.source_address_prefix,
        "destination": rule.destination_address_prefix,
        "ports": sorted(str(p) for p in ports),
    }
    if rule.description:
        found["description"] = rule.description
    return found


class SubnetType(AzureNodeType):
    """A subnet of the environment's VNet, with its delegation, its NSG and its private endpoint network
    policies (on in the endpoints subnet: without them an NSG does not apply to private endpoints). The
    three are invariants, restored when changed in the portal; the address block cannot change in place."""

    type = "azure.network.subnet"
    stateful = True  # kept with the network (see GroupResourceType)
    identity = frozenset({"name"})
    replace_on = frozenset({"cidr", "vnet"})
    invariant = frozenset({"delegation", "nsg", "endpoint_policies"})

    def _observe(self, node: Node, subnet: Any) -> Observed:
        delegations = [d.service_name for d in subnet.delegations or []]
        group = subnet.network_security_group
        return self.observed(
            node,
            str(subnet.id),
            {
                "name": subnet.name,
                "cidr": subnet.address_prefix,
                "delegation": delegations[0] if len(delegations) == 1 else (delegations or None),
                "nsg": str(group.id).rsplit("/", 1)[-1] if group is not None and group.id else None,
                "endpoint_policies": text(subnet.private_endpoint_network_policies or "Disabled"),
            },
            {"id": subnet.id, "name": subnet.name, "cidr": subnet.address_prefix},
        )

    def _get(self, context: Context, node: Node, name: str) -> Any:
        subnets = context.client.mgmt("network").subnets
        return subnets.get(resource_group(context), node.properties["vnet"], name)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._observe(node, self._get(context, node, provider_id.rsplit("/", 1)[-1]))

    def _find(self, context: Context, node: Node) -> Observed | None:
        # subnets take no tags: the VNet is the environment's (its own node checks its tags), and the
        # subnet's name is this node's
        return self._observe(node, self._get(context, node, node.properties["name"]))

    def _from_lists(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        """Each of ``(node, subnet name)`` as one list of its VNet's subnets shows it (None: not there)."""
        found: dict[str, Observed | None] = {}
        subnets = context.client.mgmt("network").subnets
        for vnet in sorted({node.properties["vnet"] for node, _ in nodes}):
            try:
                listed = {str(s.name).lower(): s for s in subnets.list(resource_group(context), vnet)}
            except NotFound:  # no VNet (yet, or any more): none of its subnets
                listed = {}
            for node, name in nodes:
                if node.properties["vnet"] == vnet:
                    subnet = listed.get(name.lower())
                    found[node.id] = None if subnet is None else self._observe(node, subnet)
        return found

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        if len(nodes) < 2:
            return super()._read_many(context, nodes)
        return self._from_lists(context, [(node, pid.rsplit("/", 1)[-1]) for node, pid in nodes])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        if len(nodes) < 2:
            return super()._find_many(context, nodes)
        return self._from_lists(context, [(node, node.properties["name"]) for node in nodes])

    def _write(self, context: Context, node: Node) -> Observed:
        from azure.mgmt.network import models

        p, client = node.properties, context.client
        delegations = (
            [models.Delegation(name=p["delegation"].replace("/", "."), service_name=p["delegation"])]
            if p["delegation"]
            else []
        )
        nsg = client.resource_id("Microsoft.Network/networkSecurityGroups", p["nsg"]) if p["nsg"] else None
        body = models.Subnet(
            address_prefix=p["cidr"],
            delegations=delegations,
            network_security_group=models.NetworkSecurityGroup(id=nsg) if nsg else None,
            private_endpoint_network_policies=p["endpoint_policies"],
        )
        subnets = client.mgmt("network").subnets
        operation = subnets.begin_create_or_update(resource_group(context), p["vnet"], p["name"], body)
        return self._observe(node, client.wait(context, operation, f"{node.id} ({p['name']})"))

    def _create(self, context: Context, node: Node) -> Observed:
        return self._write(context, node)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._write(context, node)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        name = provider_id.rsplit("/", 1)[-1]
        subnets = context.client.mgmt("network").subnets
        operation = subnets.begin_delete(resource_group(context), node.properties["vnet"], name)
        context.client.wait(context, operation, f"deleting {node.id} ({name})")

    def inventory(self, context: Context) -> list[str]:
        found: list[str] = []
        for vnet in VNET._listed(context):
            if not VNET.owned(context, vnet.tags):
                continue
            try:
                subnets = context.client.mgmt("network").subnets.list(resource_group(context), vnet.name)
            except NotFound:
                continue
            found += [str(s.id) for s in subnets]
        return sorted(found)


class DnsZoneType(GroupResourceType):
    """A private DNS zone, with its link to the environment's VNet (one node: the zone is of use only
    linked). The link is an invariant: taken away in the portal, it is made again; a zone found without
    it (an interrupted create) is finished by the update."""

    type = "azure.network.dns_zone"
    client_name = "privatedns"
    group = "private_zones"
    identity = frozenset({"zone"})
    invariant = frozenset({"linked"})
    name_property = "zone"

    def _link(self, context: Context, node: Node) -> Any | None:
        links = context.client.mgmt("privatedns").virtual_network_links
        try:
            return links.get(resource_group(context), node.properties["zone"], node.properties["link"])
        except NotFound:
            return None

    def _observe(self, context: Context, node: Node, zone: Any) -> Observed:
        link = self._link(context, node)
        vnet = context.client.resource_id("Microsoft.Network/virtualNetworks", node.properties["vnet"])
        linked = (
            link is not None
            and link.virtual_network is not None
            and str(link.virtual_network.id).lower() == vnet.lower()
            and not link.registration_enabled
        )
        return self.observed(
            node,
            str(zone.id),
            {"zone": zone.name, "linked": linked},
            {"id": zone.id, "zone": zone.name},
        )

    def _put_link(self, context: Context, node: Node) -> None:
        from azure.mgmt.privatedns import models

        client, p = context.client, node.properties
        body = models.VirtualNetworkLink(
            location="global",
            tags=self.tags(context, node),
            virtual_network=models.SubResource(
                id=client.resource_id("Microsoft.Network/virtualNetworks", p["vnet"])
            ),
            registration_enabled=False,
        )
        links = client.mgmt("privatedns").virtual_network_links
        operation = links.begin_create_or_update(resource_group(context), p["zone"], p["link"], body)
        client.wait(context, operation, f"{node.id}: the link of {p['zone']} to the VNet")

    def _create(self, context: Context, node: Node) -> Observed:
        from azure.mgmt.privatedns import models

        zone_name = node.properties["zone"]
        try:
            existing = self._get(context, zone_name)
        except NotFound:
            existing = None
        if existing is not None and not owned_by_node(context, existing.tags, node):
            # a zone of Azure's fixed name (privatelink...) another environment of the group made
            raise UserError(
                f"private DNS zone {zone_name!r} exists in resource group {resource_group(context)!r} and "
                "is not this environment's",
                "give each environment a resource group of its own (leave resource_group unset)",
            )
        body = models.PrivateZone(location="global", tags=self.tags(context, node))
        zone = self._put(context, node, zone_name, body)
        self._put_link(context, node)
        return self._observe(context, node, zone)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        self._put_link(context, node)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        zone = provider_id.rsplit("/", 1)[-1]
        links = client.mgmt("privatedns").virtual_network_links
        for link in links.list(resource_group(context), zone):  # Azure refuses to delete a linked zone
            operation = links.begin_delete(resource_group(context), zone, link.name)
            client.wait(context, operation, f"deleting the link {link.name} of {zone}")
        super()._delete(context, node, provider_id)

    def _listed(self, context: Context) -> list[Any]:
        try:
            return list(self._operations(context).list_by_resource_group(resource_group(context)))
        except NotFound:
            return []


RESOURCE_GROUP = ResourceGroupType()
VNET = VnetType()
NSG = NsgType()
SUBNET = SubnetType()
DNS_ZONE = DnsZoneType()
TYPES = (RESOURCE_GROUP, VNET, NSG, SUBNET, DNS_ZONE)


def subnets_needed(scope: Scope) -> list[str]:
    """The subnets the app uses: the app integration subnet with services, the database's with a
    database, the private endpoints' with a cache, the Container Apps jobs' (migrations reach the private
    database from it, cron triggers the services) with services and a database or a cron job."""
    wanted = []
    services = bool(scope.of_kind("service"))
    if services:
        wanted.append(APP)
    if scope.of_kind("sql_database"):
        wanted.append(DATABASE)
    if scope.of_kind("cache_cluster"):
        wanted.append(ENDPOINTS)
    if services and (scope.of_kind("sql_database") or scope.of_kind("cron_job")):
        wanted.append(JOBS)
    return wanted


def blocks(cidr: str) -> dict[str, str]:
    """Each subnet's address block: the VNet cut into equal blocks (/24s of a /16), at fixed places."""
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError as error:
        raise UserError(
            f"vnet_cidr {cidr!r} is not a network address: {error}",
            'set vnet_cidr to a private network such as "10.20.0.0/16" in [env.NAME.azure]',
        ) from None
    prefix = max(24, network.prefixlen + 2)
    if prefix > 27:
        raise UserError(
            f"vnet_cidr {cidr!r} is too small for the environment's subnets (each needs at least a /27)",
            "give the virtual network a /22 or more (the default is a /16)",
        )
    cut = list(network.subnets(new_prefix=prefix))
    return {purpose: str(cut[index]) for purpose, index in SUBNET_INDEX.items()}


def nsg_rules(purpose: str, cidrs: Mapping[str, str]) -> list[dict[str, Any]]:
    """What the NSG of subnet ``purpose`` admits: the database PostgreSQL from the app subnet (and its
    standby's replication within its own subnet), the private endpoints Redis over TLS from the app subnet;
    the rest of the VNet denied inbound (Azure's own rules, after these, admit the VNet)."""

    def allow(name: str, priority: int, source: str, ports: list[int], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "priority": priority,
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "Tcp",
            "source": source,
            "destination": cidrs[purpose],
            "ports": sorted(str(p) for p in ports),
            "description": description,
        }

    rules = []
    if purpose == DATABASE:
        rules.append(
            allow("postgres-from-app", 100, cidrs[APP], [POSTGRES_PORT], "PostgreSQL from the services")
        )
        rules.append(
            allow("postgres-from-jobs", 105, cidrs[JOBS], [POSTGRES_PORT], "PostgreSQL from the migrations")
        )
        rules.append(
            allow(
                "postgres-within-subnet",
                110,
                cidrs[DATABASE],
                [POSTGRES_PORT, POSTGRES_HA_PORT],
                "the standby's replication",
            )
        )
    elif purpose == ENDPOINTS:
        rules.append(
            allow("redis-from-app", 100, cidrs[APP], [REDIS_TLS_PORT], "Redis over TLS from the services")
        )
    rules.append(
        {
            "name": "deny-vnet-inbound",
            "priority": DENY_VNET_PRIORITY,
            "direction": "Inbound",
            "access": "Deny",
            "protocol": "*",
            "source": "VirtualNetwork",
            "destination": "*",
            "ports": ["*"],
            "description": "nothing else from the virtual network",
        }
    )
    return sorted(rules, key=_rule_key)


def expand(scope: Scope) -> list[Node]:
    """The resource group (always: every other Azure node is in it) and, where the app runs anything in a
    network, the VNet, its subnets with their NSGs and the private DNS zones."""
    app, env, settings = scope.app, scope.environment.name, scope.settings
    group = settings.resource_group or names.resource_group_name(app, env)
    nodes = [
        scope.node(
            names.RESOURCE_GROUP_ID,
            RESOURCE_GROUP.type,
            {"name": group, "location": settings.location, "configured": settings.resource_group is not None},
        )
    ]
    wanted = subnets_needed(scope)
    if not wanted:
        return nodes
    vnet = names.vnet_name(app, env)
    cidrs = blocks(settings.vnet_cidr)
    nodes.append(
        scope.node(
            names.VNET_ID, VNET.type, {"name": vnet, "cidr": settings.vnet_cidr}, (names.RESOURCE_GROUP_ID,)
        )
    )
    for purpose in wanted:
        nsg = names.nsg_name(app, env, purpose)
        nodes.append(
            scope.node(
                nsg_id(purpose),
                NSG.type,
                {"name": nsg, "rules": nsg_rules(purpose, cidrs)},
                (names.RESOURCE_GROUP_ID,),
            )
        )
        nodes.append(
            scope.node(
                SUBNET_IDS[purpose],
                SUBNET.type,
                {
                    "name": purpose,
                    "vnet": vnet,
                    "cidr": cidrs[purpose],
                    "delegation": DELEGATIONS[purpose],
                    "nsg": nsg,
                    "endpoint_policies": "Enabled" if purpose == ENDPOINTS else "Disabled",
                },
                (names.VNET_ID, nsg_id(purpose)),
            )
        )
    zones = []
    if DATABASE in wanted:
        zones.append(("postgres", names.postgres_dns_zone(app, env)))
    if ENDPOINTS in wanted:
        zones.append(("redis", names.REDIS_DNS_ZONE))
    for purpose, zone in zones:
        nodes.append(
            scope.node(
                dns_zone_id(purpose),
                DNS_ZONE.type,
                {"zone": zone, "vnet": vnet, "link": join_name(vnet, "link", limit=80), "linked": True},
                (names.VNET_ID,),
            )
        )
    return nodes
