"""The environment's project and network: the project (made, or the configured one) with the APIs the app
needs enabled, a custom-mode VPC with one subnet in the region (Private Google Access on), and private
services access (an allocated range peered with Google's services network) where Cloud SQL or Memorystore
need private IPs. Every other GCP node depends on the project, and the databases and caches on private
services access.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, Scope, UserError
from skyrig_gcp import names
from skyrig_gcp.api import wait_operation
from skyrig_gcp.nodes import GcpNodeType

SUBNET_ID = "network.subnet"
PRIVATE_RANGE_ID = "network.private_range"
PEERING_SERVICE = "services/servicenetworking.googleapis.com"

_SERVICES = {
    "service": ("run.googleapis.com", "artifactregistry.googleapis.com", "iam.googleapis.com"),
    "sql_database": (
        "sqladmin.googleapis.com",
        "servicenetworking.googleapis.com",
        "secretmanager.googleapis.com",  # the postgres user's password
    ),
    "topic": ("pubsub.googleapis.com",),
    "cache_cluster": ("redis.googleapis.com", "servicenetworking.googleapis.com"),
    "bucket": ("storage.googleapis.com",),
    "secret": ("secretmanager.googleapis.com",),
    "cron_job": ("cloudscheduler.googleapis.com", "secretmanager.googleapis.com"),
}
"""Kind -> the Google APIs its resources need enabled in the project."""


class ProjectType(GcpNodeType):
    """The environment's project. One skyrig made is deleted with the environment's data (``destroy
    --include-data``); a configured one is the user's: skyrig only enables APIs in it, never deletes it."""

    type = "gcp.network.project"
    stateful = True
    identity = frozenset({"project"})
    replace_on = frozenset({"configured"})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        found = client.execute(
            client.api("cloudresourcemanager").projects().search(query=f"id:{provider_id}")
        ).get("projects", [])
        live = [p for p in found if p.get("state") == "ACTIVE"]
        if not live:
            return None
        enabled = self._enabled(context, provider_id)
        wanted = node.properties.get("services", [])
        return self.observed(
            node,
            provider_id,
            {"project": provider_id, "services": sorted(s for s in wanted if s in enabled)},
            {"project": provider_id, "number": live[0]["name"].rpartition("/")[2]},
        )

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["project"])

    def _enabled(self, context: Context, project: str) -> set[str]:
        client = context.client
        services = client.api("serviceusage").services()
        listed = client.pages(
            services, "list", "services", parent=f"projects/{project}", filter="state:ENABLED"
        )
        return {s["config"]["name"] if "config" in s else s["name"].rpartition("/")[2] for s in listed}

    def _enable(self, context: Context, project: str, services: list[str]) -> None:
        if not services:
            return
        client = context.client
        request = (
            client.api("serviceusage")
            .services()
            .batchEnable(parent=f"projects/{project}", body={"serviceIds": services})
        )
        wait_operation(context, f"enabling {', '.join(services)}", client.execute(request), "serviceusage")

    def _create(self, context: Context, node: Node) -> Observed:
        project, settings = node.properties["project"], context.settings
        if node.properties["configured"]:
            raise UserError(
                f"project {project!r} (the gcp setting project) does not exist, or the credentials skyrig "
                "runs with cannot see it",
                f"create it, or grant access to it; or leave project unset in [env.{context.environment.name}"
                ".gcp] for skyrig to make one",
            )
        if settings.parent is None:
            raise UserError(
                f"skyrig makes a project per environment, and needs where to make {project!r}",
                f'set parent = "organizations/ID" (or folders/ID) in [env.{context.environment.name}.gcp], '
                "or set project to an existing one",
            )
        client = context.client
        body = {
            "projectId": project,
            "parent": settings.parent,
            "displayName": project,
            "labels": self.labels(context, node),
        }
        request = client.api("cloudresourcemanager").projects().create(body=body)
        wait_operation(context, f"project {project}", client.execute(request), "cloudresourcemanager")
        self._enable(context, project, list(node.properties["services"]))
        return self._read(context, node, project) or self.observed(node, project, {})

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        if "services" in changes:
            enabled = self._enabled(context, provider_id)
            self._enable(context, provider_id, [s for s in node.properties["services"] if s not in enabled])
        return self._read(context, node, provider_id) or self.observed(node, provider_id, {})

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        if node.properties.get("configured"):
            return  # the user's project: skyrig never deletes it
        client = context.client
        request = client.api("cloudresourcemanager").projects().delete(name=f"projects/{provider_id}")
        wait_operation(
            context, f"deleting project {provider_id}", client.execute(request), "cloudresourcemanager"
        )


class VpcType(GcpNodeType):
    """A custom-mode VPC network (subnets made by skyrig, regional routing)."""

    type = "gcp.network.vpc"
    identity = frozenset({"name"})

    def _observe(self, node: Node, network: Mapping[str, Any]) -> Observed:
        return self.observed(
            node,
            network["name"],
            {"name": network["name"], "routing": network.get("routingConfig", {}).get("routingMode")},
            {"network": network["selfLink"]},
        )

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        network = client.execute(
            client.api("compute").networks().get(project=client.project, network=provider_id)
        )
        return self._observe(node, network)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        body = {
            "name": node.properties["name"],
            "description": f"skyrig {context.app}/{context.environment.name}",
            "autoCreateSubnetworks": False,
            "routingConfig": {"routingMode": node.properties["routing"]},
        }
        operation = client.execute(client.api("compute").networks().insert(project=client.project, body=body))
        wait_operation(context, f"VPC network {body['name']}", operation)
        return self._read(context, node, body["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client = context.client
        body = {"routingConfig": {"routingMode": node.properties["routing"]}}
        operation = client.execute(
            client.api("compute").networks().patch(project=client.project, network=provider_id, body=body)
        )
        wait_operation(context, f"VPC network {provider_id}", operation)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        operation = client.execute(
            client.api("compute").networks().delete(project=client.project, network=provider_id)
        )
        wait_operation(context, f"deleting VPC network {provider_id}", operation)

    def inventory(self, context: Context) -> list[str]:
        client = context.client
        prefix = f"skyrig {context.app}/{context.environment.name}"
        networks = client.pages(client.api("compute").networks(), "list", "items", project=client.project)
        return [n["name"] for n in networks if n.get("description") == prefix]


class SubnetType(GcpNodeType):
    """The environment's subnet in its region, with Private Google Access (reaching Google's APIs without
    public addresses): an invariant, restored if turned off."""

    type = "gcp.network.subnet"
    identity = frozenset({"name"})
    replace_on = frozenset({"cidr", "region"})
    invariant = frozenset({"private_google_access"})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        subnet = client.execute(
            client.api("compute")
            .subnetworks()
            .get(project=client.project, region=node.properties["region"], subnetwork=provider_id)
        )
        return self.observed(
            node,
            subnet["name"],
            {
                "name": subnet["name"],
                "cidr": subnet["ipCidrRange"],
                "region": subnet["region"].rpartition("/")[2],
                "private_google_access": bool(subnet.get("privateIpGoogleAccess")),
            },
            {"subnet": subnet["selfLink"]},
        )

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        network = names.network_name(context.app, context.environment.name)
        body = {
            "name": node.properties["name"],
            "network": f"projects/{client.project}/global/networks/{network}",
            "ipCidrRange": node.properties["cidr"],
            "privateIpGoogleAccess": node.properties["private_google_access"],
        }
        operation = client.execute(
            client.api("compute")
            .subnetworks()
            .insert(project=client.project, region=node.properties["region"], body=body)
        )
        wait_operation(context, f"subnet {body['name']}", operation)
        return self._read(context, node, body["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client = context.client
        body = {"privateIpGoogleAccess": node.properties["private_google_access"]}
        operation = client.execute(
            client.api("compute")
            .subnetworks()
            .setPrivateIpGoogleAccess(
                project=client.project, region=node.properties["region"], subnetwork=provider_id, body=body
            )
        )
        wait_operation(context, f"subnet {provider_id}", operation)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        operation = client.execute(
            client.api("compute")
            .subnetworks()
            .delete(project=client.project, region=node.properties["region"], subnetwork=provider_id)
        )
        wait_operation(context, f"deleting subnet {provider_id}", operation)


class PrivateRangeType(GcpNodeType):
    """The internal address range allocated to Google's services network (private services access)."""

    type = "gcp.network.private_range"
    identity = frozenset({"name"})
    replace_on = frozenset({"prefix_length"})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        client = context.client
        address = client.execute(
            client.api("compute").globalAddresses().get(project=client.project, address=provider_id)
        )
        return self.observed(
            node,
            address["name"],
            {"name": address["name"], "prefix_length": address.get("prefixLength")},
            {"range": address["name"], "address": address.get("address")},
        )

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        network = names.network_name(context.app, context.environment.name)
        body = {
            "name": node.properties["name"],
            "purpose": "VPC_PEERING",
            "addressType": "INTERNAL",
            "prefixLength": node.properties["prefix_length"],
            "network": f"projects/{client.project}/global/networks/{network}",
            "description": f"skyrig {context.app}/{context.environment.name}: private services access",
        }
        operation = client.execute(
            client.api("compute").globalAddresses().insert(project=client.project, body=body)
        )
        wait_operation(context, f"address range {body['name']}", operation)
        return self._read(context, node, body["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        operation = client.execute(
            client.api("compute").globalAddresses().delete(project=client.project, address=provider_id)
        )
        wait_operation(context, f"deleting address range {provider_id}", operation)


class PrivateAccessType(GcpNodeType):
    """The private services access connection: the VPC peered with Google's services network over the
    allocated range, so that Cloud SQL and Memorystore get private IPs in it."""

    type = "gcp.network.private_access"
    identity = frozenset({"network"})

    def _connection(self, context: Context, network: str) -> Mapping[str, Any] | None:
        client = context.client
        connections = client.execute(
            client.api("servicenetworking")
            .services()
            .connections()
            .list(
                parent=PEERING_SERVICE, network=f"projects/{self._number(context)}/global/networks/{network}"
            )
        ).get("connections", [])
        return connections[0] if connections else None

    def _number(self, context: Context) -> str:
        """The project's number (what the peering's network name takes), read once per command."""
        client = context.client
        number = client.__dict__.get("_project_number")
        if number is None:
            found = client.execute(
                client.api("cloudresourcemanager").projects().get(name=f"projects/{client.project}")
            )
            number = client.__dict__["_project_number"] = str(found["name"]).rpartition("/")[2]
        return str(number)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        connection = self._connection(context, provider_id)
        if connection is None:
            return None
        return self.observed(
            node,
            provider_id,
            {"network": provider_id, "ranges": sorted(connection.get("reservedPeeringRanges", []))},
            {"peering": connection.get("peering")},
        )

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["network"])

    def _create(self, context: Context, node: Node) -> Observed:
        self._connect(context, node, "create")
        return self._read(context, node, node.properties["network"]) or self.observed(
            node, node.properties["network"], {}
        )

    def _connect(self, context: Context, node: Node, how: str) -> None:
        client = context.client
        network = node.properties["network"]
        body = {
            "network": f"projects/{self._number(context)}/global/networks/{network}",
            "reservedPeeringRanges": list(node.properties["ranges"]),
        }
        connections = client.api("servicenetworking").services().connections()
        if how == "create":
            request = connections.create(parent=PEERING_SERVICE, body=body)
        else:
            request = connections.patch(
                name=f"{PEERING_SERVICE}/connections/-",
                body=body,
                updateMask="reservedPeeringRanges",
                force=True,
            )
        wait_operation(
            context, f"private services access of {network}", client.execute(request), "servicenetworking"
        )

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        self._connect(context, node, "patch")
        return self._read(context, node, provider_id) or self.observed(node, provider_id, {})

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        connection = self._connection(context, provider_id)
        if connection is None:
            return
        body = {"consumerNetwork": f"projects/{self._number(context)}/global/networks/{provider_id}"}
        request = (
            client.api("servicenetworking")
            .services()
            .connections()
            .deleteConnection(
                name=f"{PEERING_SERVICE}/connections/{connection.get('peering', '-')}", body=body
            )
        )
        wait_operation(
            context,
            f"deleting private services access of {provider_id}",
            client.execute(request),
            "servicenetworking",
        )


PROJECT = ProjectType()
VPC = VpcType()
SUBNET = SubnetType()
PRIVATE_RANGE = PrivateRangeType()
PRIVATE_ACCESS = PrivateAccessType()
TYPES = (PROJECT, VPC, SUBNET, PRIVATE_RANGE, PRIVATE_ACCESS)


def services_needed(scope: Scope) -> list[str]:
    """The Google APIs the environment's resources need enabled (Compute always: the VPC)."""
    from skyrig_gcp.iam import handed_over

    needed = {"compute.googleapis.com"}
    for kind, services in _SERVICES.items():
        if scope.of_kind(kind):
            needed.update(services)
    if handed_over(scope):  # the services' accounts, their images' repository and the migration jobs
        needed.update(_SERVICES["service"])
    return sorted(needed)


def expand(scope: Scope) -> list[Node]:
    """The project and the network: every other GCP node depends on the project."""
    app, env, settings = scope.app, scope.environment.name, scope.settings
    project = settings.project or names.project_id(app, env)
    nodes = [
        scope.node(
            names.PROJECT_ID,
            PROJECT.type,
            {
                "project": project,
                "configured": settings.project is not None,
                "services": services_needed(scope),
            },
        ),
        scope.node(
            names.NETWORK_ID,
            VPC.type,
            {"name": names.network_name(app, env), "routing": "REGIONAL"},
            (names.PROJECT_ID,),
        ),
        scope.node(
            SUBNET_ID,
            SUBNET.type,
            {
                "name": names.subnet_name(app, env),
                "cidr": settings.subnet_cidr,
                "region": settings.region,
                "private_google_access": True,
            },
            (names.NETWORK_ID,),
        ),
    ]
    if scope.of_kind("sql_database") or scope.of_kind("cache_cluster"):
        private_range = names.private_range_name(app, env)
        nodes += [
            scope.node(
                PRIVATE_RANGE_ID,
                PRIVATE_RANGE.type,
                {"name": private_range, "prefix_length": 16},
                (names.NETWORK_ID,),
            ),
            scope.node(
                names.PRIVATE_ACCESS_ID,
                PRIVATE_ACCESS.type,
                {"network": names.network_name(app, env), "ranges": [private_range]},
                (PRIVATE_RANGE_ID,),
            ),
        ]
    return nodes
