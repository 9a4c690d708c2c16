"""Networking: a VPC per environment, public and private subnets in two zones, an internet gateway, NAT,
route tables and security groups; and the subnet groups (of the private subnets) RDS and ElastiCache
place their servers in, one node type for both: :class:`SubnetGroupType`.

Databases and caches live in the private subnets and accept connections only from the services'
security group; the load balancer is the only thing in the public subnets besides the NAT gateways.
Production gets a NAT gateway per zone; development one, shared by both private subnets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, ClassVar

from skyrig.provider import Context, Node, Observed, Scope, resolve, wait_for
from skyrig_aws.api import env_filters, tag_dict, tag_list
from skyrig_aws.nodes import AwsNodeType

VPC_ID = "network.vpc"
GATEWAY_ID = "network.gateway"
ZONES = ("a", "b")
SG_APP = "network.sg/app"
SG_LB = "network.sg/lb"
SG_SQL = "network.sg/sql"
SG_CACHE = "network.sg/cache"

_DESCRIBE = {
    "vpc": ("describe_vpcs", "Vpcs", "VpcId", "Filters"),
    "subnet": ("describe_subnets", "Subnets", "SubnetId", "Filters"),
    "internet-gateway": ("describe_internet_gateways", "InternetGateways", "InternetGatewayId", "Filters"),
    "natgateway": ("describe_nat_gateways", "NatGateways", "NatGatewayId", "Filter"),
    "route-table": ("describe_route_tables", "RouteTables", "RouteTableId", "Filters"),
    "security-group": ("describe_security_groups", "SecurityGroups", "GroupId", "Filters"),
}


def subnet_id(zone: str, public: bool) -> str:
    return f"network.subnet/{'public' if public else 'private'}-{zone}"


def private_subnets() -> list[str]:
    return [subnet_id(zone, False) for zone in ZONES]


def public_subnets() -> list[str]:
    return [subnet_id(zone, True) for zone in ZONES]


def describe(context: Context, kind: str, node_id: str | None = None) -> list[dict[str, Any]]:
    """The EC2 resources of ``kind`` tagged for this environment (and node): one describe of the
    environment's resources of that kind, shared by every node type of the command that asks
    (:meth:`~skyrig_aws.api.AwsClient.shared`), until the command writes to EC2."""
    operation, key, _, filter_name = _DESCRIBE[kind]

    def read() -> list[dict[str, Any]]:
        items = context.client.ec2.pages(operation, key, **{filter_name: env_filters(context)})
        if kind == "natgateway":
            items = [i for i in items if i["State"] not in ("deleted", "deleting", "failed")]
        # the tags checked here too: an emulator may ignore a filter (moto's NAT gateways do), and
        # another environment's resource must never be taken for this one's
        wanted = {"skyrig:app": context.app, "skyrig:env": context.environment.name}
        return [i for i in items if wanted.items() <= tag_dict(i.get("Tags")).items()]

    items = context.client.shared(("ec2", operation), read)
    if node_id is None:
        return list(items)
    return [i for i in items if tag_dict(i.get("Tags")).get("skyrig:node") == node_id]


def ec2_id(context: Context, kind: str, node_id: str) -> str:
    """The EC2 id of dependency ``node_id`` (of ``kind``)."""

    def find() -> str | None:
        found = describe(context, kind, node_id)
        return found[0][_DESCRIBE[kind][2]] if found else None

    return resolve(context, node_id, find)


def ec2_ids(context: Context, kind: str, node_ids: list[str]) -> list[str]:
    return [ec2_id(context, kind, node_id) for node_id in node_ids]


def tag_spec(context: Context, node: Node, kind: str) -> list[dict[str, Any]]:
    tags = {**context.tags(node), "Name": f"{context.app}-{context.environment.name}-{node.id}"}
    return [{"ResourceType": kind, "Tags": tag_list(tags)}]


class Ec2Type(AwsNodeType):
    """An EC2 networking resource, found by its ownership tags."""

    kind: ClassVar[str]

    def _id(self, item: dict[str, Any]) -> str:
        return item[_DESCRIBE[self.kind][2]]

    def _properties(self, context: Context, item: dict[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
        """The node's properties as read from ``item``; ``ids`` maps EC2 ids to node ids."""
        return {}

    def _outputs(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"id": self._id(item)}

    def _ids(self, context: Context) -> dict[str, str]:
        return {}

    def _observe(
        self, context: Context, node: Node, item: dict[str, Any], ids: Mapping[str, str]
    ) -> Observed:
        return self.observed(node, self._id(item), self._properties(context, item, ids), self._outputs(item))

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._read_many(context, [(node, provider_id)])[node.id]

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        # the environment's resources of this kind (one describe the command shares), then by id those
        # it does not tag (imported under an id of their own)
        operation, key, id_key, _ = _DESCRIBE[self.kind]
        wanted = [provider_id for _, provider_id in nodes]
        by_id = {self._id(item): item for item in describe(context, self.kind) if self._id(item) in wanted}
        missing = [provider_id for provider_id in wanted if provider_id not in by_id]
        if missing:
            argument = {"NatGatewayIds" if self.kind == "natgateway" else f"{id_key}s": missing}
            if self.kind == "security-group":
                argument = {"GroupIds": missing}
            try:
                items = context.client.ec2.pages(operation, key, **argument)
            except Exception:  # one of them is gone (AWS refuses the whole call)
                items = []
            if self.kind == "natgateway":
                items = [i for i in items if i["State"] not in ("deleted", "deleting", "failed")]
            by_id.update({self._id(item): item for item in items})
        ids = self._ids(context) if by_id else {}
        return {
            node.id: self._observe(context, node, by_id[pid], ids) if pid in by_id else None
            for node, pid in nodes
        }

    def _find(self, context: Context, node: Node) -> Observed | None:
        found = describe(context, self.kind, node.id)
        return self._found(context, node, found[0], self._ids(context)) if found else None

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        # one describe of the environment's resources of this kind, matched to nodes by their tag
        by_node: dict[str, dict[str, Any]] = {}
        for item in describe(context, self.kind):
            by_node.setdefault(tag_dict(item.get("Tags")).get("skyrig:node", ""), item)
        ids = self._ids(context) if any(node.id in by_node for node in nodes) else {}
        return {
            node.id: self._found(context, node, by_node[node.id], ids) if node.id in by_node else None
            for node in nodes
        }

    def _found(self, context: Context, node: Node, item: dict[str, Any], ids: Mapping[str, str]) -> Observed:
        """What a lookup says of ``item``: what a read says, and what a read takes as asked but an
        interrupted create may have left undone."""
        return self._observe(context, node, item, ids)


class VpcType(Ec2Type):
    """The environment's VPC, with DNS names for the services."""

    type = "aws.network.vpc"
    kind = "vpc"
    arn_types = ("ec2:vpc",)
    replace_on = frozenset({"cidr"})

    def _properties(self, context: Context, item: dict[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
        return {"cidr": item["CidrBlock"]}

    def _found(self, context: Context, node: Node, item: dict[str, Any], ids: Mapping[str, str]) -> Observed:
        # a create cut short after CreateVpc leaves DNS host names off: reported, so that adopting it
        # turns them on (a refresh takes them as asked: one call less per refresh)
        found = super()._found(context, node, item, ids)
        if "dns" not in node.properties:
            return found
        answer = context.client.ec2.describe_vpc_attribute(
            VpcId=found.provider_id, Attribute="enableDnsHostnames"
        )
        dns = bool(answer.get("EnableDnsHostnames", {}).get("Value"))
        return Observed(found.provider_id, {**found.properties, "dns": dns}, found.outputs)

    def _create(self, context: Context, node: Node) -> Observed:
        ec2 = context.client.ec2
        vpc = ec2.create_vpc(
            CidrBlock=node.properties["cidr"], TagSpecifications=tag_spec(context, node, "vpc")
        )["Vpc"]
        # a new VPC has DNS resolution on already (EnableDnsSupport); host names are off
        ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": True})
        return self._observe(context, node, vpc, {})

    def _dns(self, context: Context, vpc: str) -> None:
        ec2 = context.client.ec2
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        if changes.get("dns"):
            self._dns(context, provider_id)
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.ec2.delete_vpc(VpcId=provider_id)


class GatewayType(Ec2Type):
    """The internet gateway of the public subnets."""

    type = "aws.network.internet_gateway"
    kind = "internet-gateway"
    arn_types = ("ec2:internet-gateway",)
    invariant = frozenset({"attached"})

    def _properties(self, context: Context, item: dict[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
        attached = [a for a in item.get("Attachments", []) if a.get("State") in ("available", "attached")]
        return {"attached": bool(attached)}

    def _create(self, context: Context, node: Node) -> Observed:
        ec2 = context.client.ec2
        gateway = ec2.create_internet_gateway(TagSpecifications=tag_spec(context, node, "internet-gateway"))[
            "InternetGateway"
        ]
        self._attach(context, gateway["InternetGatewayId"])
        return self.observed(node, gateway["InternetGatewayId"], {"attached": True}, self._outputs(gateway))

    def _attach(self, context: Context, gateway: str) -> None:
        vpc = ec2_id(context, "vpc", VPC_ID)
        context.client.ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        if changes.get("attached"):
            self._attach(context, provider_id)
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        ec2 = context.client.ec2
        for gateway in ec2.describe_internet_gateways(InternetGatewayIds=[provider_id])["InternetGateways"]:
            for attachment in gateway.get("Attachments", []):
                ec2.detach_internet_gateway(InternetGatewayId=provider_id, VpcId=attachment["VpcId"])
        ec2.delete_internet_gateway(InternetGatewayId=provider_id)


class SubnetType(Ec2Type):
    """A /20 in one zone: public (the load balancer, NAT) or private (services, databases, caches)."""

    type = "aws.network.subnet"
    kind = "subnet"
    arn_types = ("ec2:subnet",)
    replace_on = frozenset({"cidr", "zone"})
    invariant = frozenset({"public"})

    def _properties(self, context: Context, item: dict[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
        return {
            "cidr": item["CidrBlock"],
            "zone": item["AvailabilityZone"],
            "public": bool(item.get("MapPublicIpOnLaunch")),
        }

    def _outputs(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"id": item["SubnetId"], "zone": item["AvailabilityZone"]}

    def _create(self, context: Context, node: Node) -> Observed:
        ec2 = context.client.ec2
        subnet = ec2.create_subnet(
            VpcId=ec2_id(context, "vpc", VPC_ID),
            CidrBlock=node.properties["cidr"],
            AvailabilityZone=node.properties["zone"],
            TagSpecifications=tag_spec(context, node, "subnet"),
        )["Subnet"]
        if node.properties["public"]:
            ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True})
            subnet["MapPublicIpOnLaunch"] = True
        return self._observe(context, node, subnet, {})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        if "public" in changes:
            context.client.ec2.modify_subnet_attribute(
                SubnetId=provider_id, MapPublicIpOnLaunch={"Value": bool(changes["public"])}
            )
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.ec2.delete_subnet(SubnetId=provider_id)


class NatType(Ec2Type):
    """A NAT gateway with its elastic IP, in a public subnet: the private subnets' way out."""

    type = "aws.network.nat_gateway"
    kind = "natgateway"
    arn_types = ("ec2:natgateway",)
    replace_on = frozenset({"subnet"})

    def exists(self, context: Context, provider_id: str) -> bool:
        found = context.client.ec2.describe_nat_gateways(NatGatewayIds=[provider_id])["NatGateways"]
        return bool(found) and found[0]["State"] not in ("deleted", "deleting", "failed")

    def _create(self, context: Context, node: Node) -> Observed:
        ec2 = context.client.ec2
        # the elastic IP a create cut short after allocating it left, if any: adopted
        wanted = {**context.tags(node)}
        addresses = [
            a
            for a in ec2.describe_addresses(
                Filters=[*env_filters(context), {"Name": "tag:skyrig:node", "Values": [node.id]}]
            )["Addresses"]
            if wanted.items() <= tag_dict(a.get("Tags")).items() and not a.get("AssociationId")
        ]
        allocation = (
            addresses[0]["AllocationId"]
            if addresses
            else ec2.allocate_address(Domain="vpc", TagSpecifications=tag_spec(context, node, "elastic-ip"))[
                "AllocationId"
            ]
        )
        nat = ec2.create_nat_gateway(
            SubnetId=ec2_id(context, "subnet", node.properties["subnet"]),
            AllocationId=allocation,
            TagSpecifications=tag_spec(context, node, "natgateway"),
        )["NatGateway"]
        nat_id = nat["NatGatewayId"]

        def ready() -> tuple[bool, str]:
            found = ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
            state = found[0]["State"] if found else "pending"
            return state == "available", state

        wait_for(context, f"NAT gateway {nat_id}", ready)
        return self.observed(node, nat_id, {}, {"id": nat_id})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        ec2 = context.client.ec2
        found = ec2.describe_nat_gateways(NatGatewayIds=[provider_id])["NatGateways"]
        ec2.delete_nat_gateway(NatGatewayId=provider_id)

        def gone() -> tuple[bool, str]:
            now = ec2.describe_nat_gateways(NatGatewayIds=[provider_id])["NatGateways"]
            state = now[0]["State"] if now else "deleted"
            return state == "deleted", state

        wait_for(context, f"NAT gateway {provider_id} to be deleted", gone)
        for nat in found:
            for address in nat.get("NatGatewayAddresses", []):
                if address.get("AllocationId"):
                    ec2.release_address(AllocationId=address["AllocationId"])


class RouteTableType(Ec2Type):
    """A route table: the default route (to the internet gateway or a NAT) and its subnets."""

    type = "aws.network.route_table"
    kind = "route-table"
    arn_types = ("ec2:route-table",)
    invariant = frozenset({"default_route", "subnets"})

    def _ids(self, context: Context) -> dict[str, str]:
        ids: dict[str, str] = {}
        for kind in ("subnet", "internet-gateway", "natgateway"):
            for item in describe(context, kind):
                ids[item[_DESCRIBE[kind][2]]] = tag_dict(item.get("Tags")).get("skyrig:node", "")
        return ids

    def _properties(self, context: Context, item: dict[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
        target = None
        for route in item.get("Routes", []):
            if route.get("DestinationCidrBlock") == "0.0.0.0/0":
                found = route.get("GatewayId") or route.get("NatGatewayId")
                target = ids.get(found, found)
        subnets = sorted(
            ids.get(a["SubnetId"], a["SubnetId"]) for a in item.get("Associations", []) if a.get("SubnetId")
        )
        return {"default_route": target, "subnets": subnets}

    def _create(self, context: Context, node: Node) -> Observed:
        ec2 = context.client.ec2
        table = ec2.create_route_table(
            VpcId=ec2_id(context, "vpc", VPC_ID), TagSpecifications=tag_spec(context, node, "route-table")
        )["RouteTable"]
        table_id = table["RouteTableId"]
        self._route(context, table_id, node.properties["default_route"], replace=False)
        for subnet in node.properties["subnets"]:
            ec2.associate_route_table(RouteTableId=table_id, SubnetId=ec2_id(context, "subnet", subnet))
        return self.observed(node, table_id, {}, {"id": table_id})

    def _route(self, context: Context, table_id: str, target: str, *, replace: bool) -> None:
        if target.startswith("network.nat/"):
            via = {"NatGatewayId": ec2_id(context, "natgateway", target)}
        else:
            via = {"GatewayId": ec2_id(context, "internet-gateway", target)}
        call = context.client.ec2.replace_route if replace else context.client.ec2.create_route
        call(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", **via)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        ec2 = context.client.ec2
        table = ec2.describe_route_tables(RouteTableIds=[provider_id])["RouteTables"][0]
        if "default_route" in changes:
            has = any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in table.get("Routes", []))
            self._route(context, provider_id, node.properties["default_route"], replace=has)
        if "subnets" in changes:
            wanted = {ec2_id(context, "subnet", s) for s in node.properties["subnets"]}
            for association in table.get("Associations", []):
                if association.get("SubnetId") and association["SubnetId"] not in wanted:
                    ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
            present = {a.get("SubnetId") for a in table.get("Associations", [])}
            for subnet in sorted(wanted - present):
                ec2.associate_route_table(RouteTableId=provider_id, SubnetId=subnet)
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        ec2 = context.client.ec2
        for table in ec2.describe_route_tables(RouteTableIds=[provider_id])["RouteTables"]:
            for association in table.get("Associations", []):
                if not association.get("Main") and association.get("RouteTableAssociationId"):
                    ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=provider_id)


class SecurityGroupType(Ec2Type):
    """A security group; its ingress rules (from a CIDR or from another of the environment's groups) are an
    invariant: a rule opened in the console is closed again by the next apply."""

    type = "aws.network.security_group"
    kind = "security-group"
    arn_types = ("ec2:security-group",)
    invariant = frozenset({"ingress"})
    replace_on = frozenset({"description"})

    def _ids(self, context: Context) -> dict[str, str]:
        return {
            item["GroupId"]: tag_dict(item.get("Tags")).get("skyrig:node", "")
            for item in describe(context, "security-group")
        }

    def _properties(self, context: Context, item: dict[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
        rules = []
        for permission in item.get("IpPermissions", []):
            port = permission.get("FromPort")
            for source in permission.get("IpRanges", []):
                rules.append({"port": port, "cidr": source["CidrIp"]})
            for pair in permission.get("UserIdGroupPairs", []):
                rules.append({"port": port, "group": ids.get(pair["GroupId"], pair["GroupId"])})
        return {"description": item.get("Description"), "ingress": sorted(rules, key=_rule_key)}

    def _create(self, context: Context, node: Node) -> Observed:
        ec2 = context.client.ec2
        group = ec2.create_security_group(
            GroupName=f"{context.app}-{context.environment.name}-{node.id}".replace("/", "-"),
            Description=node.properties["description"],
            VpcId=ec2_id(context, "vpc", VPC_ID),
            TagSpecifications=tag_spec(context, node, "security-group"),
        )
        group_id = group["GroupId"]
        context.client.remember(node.id, group_id)
        if node.properties["ingress"]:
            ec2.authorize_security_group_ingress(
                GroupId=group_id, IpPermissions=self._permissions(context, node.properties["ingress"])
            )
        return self.observed(node, group_id, {}, {"id": group_id})

    def _permissions(self, context: Context, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        permissions = []
        for rule in rules:
            permission: dict[str, Any] = {
                "IpProtocol": "tcp",
                "FromPort": rule["port"],
                "ToPort": rule["port"],
            }
            if "cidr" in rule:
                permission["IpRanges"] = [{"CidrIp": rule["cidr"]}]
            else:
                group = ec2_id(context, "security-group", rule["group"])
                permission["UserIdGroupPairs"] = [{"GroupId": group}]
            permissions.append(permission)
        return permissions

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        ec2 = context.client.ec2
        if "ingress" in changes:
            current = ec2.describe_security_groups(GroupIds=[provider_id])["SecurityGroups"][0]
            if current.get("IpPermissions"):
                ec2.revoke_security_group_ingress(GroupId=provider_id, IpPermissions=current["IpPermissions"])
            if node.properties["ingress"]:
                ec2.authorize_security_group_ingress(
                    GroupId=provider_id, IpPermissions=self._permissions(context, node.properties["ingress"])
                )
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        ec2 = context.client.ec2
        current = ec2.describe_security_groups(GroupIds=[provider_id])["SecurityGroups"]
        if current and current[0].get("IpPermissions"):  # rules naming other groups block their deletion
            ec2.revoke_security_group_ingress(GroupId=provider_id, IpPermissions=current[0]["IpPermissions"])
        ec2.delete_security_group(GroupId=provider_id)


class SubnetGroupType(AwsNodeType):
    """A subnet group of the private subnets of both zones, where RDS or ElastiCache places its servers.

    One class serves both services: a subclass gives its service's calls as class data, and the group
    is made, read and deleted alike (same description, same tags).
    """

    replace_on = frozenset({"name"})
    service: ClassVar[str]
    """The client: ``rds``, ``elasticache``."""
    describe_call: ClassVar[str]
    create_call: ClassVar[str]
    delete_call: ClassVar[str]
    field: ClassVar[str]
    """The calls' field prefix: ``DBSubnetGroup`` (``DBSubnetGroupName``, ``DBSubnetGroups``)."""
    listed: ClassVar[bool] = False
    """Whether reading several lists every group in one paginated call (else one describe each)."""
    undeletable: ClassVar[str | None] = None
    """The emulator gap (:meth:`~skyrig_aws.api.AwsClient.lacks`) under which deleting only untags."""

    def inventory_id(self, arn: str) -> str:
        return arn.rpartition(":")[2]

    def _describe(self, context: Context, name: str) -> dict[str, Any]:
        client = getattr(context.client, self.service)
        return getattr(client, self.describe_call)(**{f"{self.field}Name": name})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        self._describe(context, provider_id)
        return self.observed(node, provider_id, {"name": provider_id}, {"name": provider_id})

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        if not self.listed:
            return super()._read_many(context, nodes)
        groups = getattr(context.client, self.service).pages(self.describe_call, f"{self.field}s")
        found = {g[f"{self.field}Name"] for g in groups}
        return {
            n.id: self.observed(n, pid, {"name": pid}, {"name": pid}) if pid in found else None
            for n, pid in nodes
        }

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        groups = getattr(context.client, self.service).pages(self.describe_call, f"{self.field}s")
        names = {g[f"{self.field}Name"] for g in groups}
        return {
            n.id: self.observed(
                n, n.properties["name"], {"name": n.properties["name"]}, {"name": n.properties["name"]}
            )
            if n.properties["name"] in names
            else None
            for n in nodes
        }

    def _create(self, context: Context, node: Node) -> Observed:
        name = node.properties["name"]
        description = f"skyrig {context.app}/{context.environment.name}: private subnets"
        getattr(getattr(context.client, self.service), self.create_call)(
            **{f"{self.field}Name": name, f"{self.field}Description": description},
            SubnetIds=ec2_ids(context, "subnet", node.properties["subnets"]),
            Tags=tag_list(context.tags(node)),
        )
        return self.observed(node, name, {}, {"name": name})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = getattr(context.client, self.service)
        if self.undeletable and context.client.lacks(self.undeletable):  # the emulator cannot: untag it
            group = self._describe(context, provider_id)[f"{self.field}s"][0]
            client.remove_tags_from_resource(ResourceName=group["ARN"], TagKeys=list(context.tags(node)))
            return
        getattr(client, self.delete_call)(**{f"{self.field}Name": provider_id})


def _rule_key(rule: dict[str, Any]) -> tuple[Any, ...]:
    return (rule["port"], rule.get("cidr") or "", rule.get("group") or "")


VPC = VpcType()
GATEWAY = GatewayType()
SUBNET = SubnetType()
NAT = NatType()
ROUTE_TABLE = RouteTableType()
SECURITY_GROUP = SecurityGroupType()
TYPES = (VPC, GATEWAY, SUBNET, NAT, ROUTE_TABLE, SECURITY_GROUP)


def zones(scope: Scope) -> list[str]:
    settings = scope.settings
    return list(settings.availability_zones or [f"{settings.region}{z}" for z in ZONES])[: len(ZONES)]


def expand(scope: Scope) -> list[Node]:
    """The network of the environment, if anything of it runs inside one (services, databases, caches,
    or the services another compute provider runs in it, such as EKS's cluster): every other AWS node of
    it depends on some of these."""
    inside = ("service", "sql_database", "cache_cluster")
    if not any(scope.of_kind(kind) for kind in inside) and not scope.model.services:
        return []
    settings = scope.settings
    production = scope.environment.type == "production"
    network = ipaddress.ip_network(settings.vpc_cidr)
    blocks = list(network.subnets(new_prefix=20))
    nodes = [
        scope.node(VPC_ID, VPC.type, {"cidr": settings.vpc_cidr, "dns": True}),
        scope.node(GATEWAY_ID, GATEWAY.type, {"attached": True}, (VPC_ID,)),
    ]
    for index, (zone, name) in enumerate(zip(zones(scope), ZONES, strict=False)):
        for public, block in ((True, blocks[index]), (False, blocks[8 + index])):
            properties = {"cidr": str(block), "zone": zone, "public": public}
            nodes.append(scope.node(subnet_id(name, public), SUBNET.type, properties, (VPC_ID,)))
    nats = ZONES if production else ZONES[:1]
    for name in nats:
        subnet = subnet_id(name, True)
        nodes.append(scope.node(f"network.nat/{name}", NAT.type, {"subnet": subnet}, (subnet, GATEWAY_ID)))
    public = {"default_route": GATEWAY_ID, "subnets": sorted(public_subnets())}
    nodes.append(
        scope.node("network.routes/public", ROUTE_TABLE.type, public, (GATEWAY_ID, *public_subnets()))
    )
    for name in ZONES:
        nat = f"network.nat/{name if name in nats else nats[0]}"
        private = {"default_route": nat, "subnets": [subnet_id(name, False)]}
        nodes.append(
            scope.node(
                f"network.routes/private-{name}",
                ROUTE_TABLE.type,
                private,
                (nat, subnet_id(name, False)),
            )
        )
    port = settings.service_port
    web = [80, 443] if settings.https else [80]  # with HTTPS, port 80 redirects to it
    groups = {
        SG_LB: ("the load balancer: HTTP(S) from anywhere", [{"port": w, "cidr": "0.0.0.0/0"} for w in web]),
        SG_APP: ("the services: from the load balancer", [{"port": port, "group": SG_LB}]),
    }
    if scope.of_kind("sql_database"):
        groups[SG_SQL] = ("PostgreSQL: from the services only", [{"port": 5432, "group": SG_APP}])
    if scope.of_kind("cache_cluster"):
        groups[SG_CACHE] = ("Redis: from the services only", [{"port": 6379, "group": SG_APP}])
    for node_id, (description, ingress) in groups.items():
        depends = tuple(sorted({VPC_ID, *(r["group"] for r in ingress if "group" in r)}))
        properties = {"description": description, "ingress": sorted(ingress, key=_rule_key)}
        nodes.append(scope.node(node_id, SECURITY_GROUP.type, properties, depends))
    return nodes
