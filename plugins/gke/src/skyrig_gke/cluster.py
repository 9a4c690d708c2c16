"""The control plane: the environment's GKE cluster in the GCP provider's VPC and subnet, regional,
VPC-native, with private nodes and Workload Identity (pool ``PROJECT.svc.id.goog``). Autopilot by default
(GKE manages the nodes); Standard with one autoscaled node pool (``gke.node_pool``, its nodes on the GKE
metadata server, which Workload Identity needs) when ``autopilot = false``; none at all when settings name
an existing cluster.

Workload Identity and private nodes are invariants: Workload Identity turned off in the console is turned
on again; private nodes cannot change on a cluster, so a cluster without them is reported. A Standard
pool's autoscaling limits are tunable (adopted when changed in the console); its machine type replaces the
pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, Scope
from skyrig_gke import names
from skyrig_gke.api import Conflict
from skyrig_gke.nodes import GkeNodeType


def _to_dict(message: Any) -> dict[str, Any]:
    """A proto-plus message as JSON (snake_case fields, enums by name)."""
    return type(message).to_dict(message, use_integers_for_enums=False, preserving_proto_field_name=True)


class ClusterType(GkeNodeType):
    """The environment's GKE cluster."""

    type = "gke.cluster"
    identity = frozenset({"name"})
    replace_on = frozenset({"name", "autopilot", "network", "subnetwork"})
    invariant = frozenset({"workload_pool", "private_nodes"})

    def _full_name(self, context: Context, name: str) -> str:
        return f"{context.client.location()}/clusters/{name}"

    def _observe(self, node: Node, cluster: Any) -> Observed:
        found = _to_dict(cluster)
        properties = {
            "name": found["name"],
            "autopilot": bool((found.get("autopilot") or {}).get("enabled")),
            "network": found.get("network"),
            "subnetwork": found.get("subnetwork"),
            "private_nodes": bool((found.get("private_cluster_config") or {}).get("enable_private_nodes")),
            "workload_pool": (found.get("workload_identity_config") or {}).get("workload_pool") or None,
            "release_channel": ((found.get("release_channel") or {}).get("channel")),
        }
        outputs = {"endpoint": found.get("endpoint"), "status": found.get("status")}
        return self.observed(node, found["name"], properties, outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        cluster = context.client.container("get_cluster", name=self._full_name(context, provider_id))
        return self._observe(node, cluster)

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _body(self, context: Context, node: Node) -> dict[str, Any]:
        p = node.properties
        body: dict[str, Any] = {
            "name": p["name"],
            "description": f"skyrig {context.app}/{context.environment.name}: the services' cluster",
            "network": p["network"],
            "subnetwork": p["subnetwork"],
            "ip_allocation_policy": {"use_ip_aliases": True},
            "private_cluster_config": {"enable_private_nodes": True},
            "workload_identity_config": {"workload_pool": p["workload_pool"]},
            "release_channel": {"channel": p["release_channel"]},
            "resource_labels": self.labels(context, node),
        }
        if p["autopilot"]:
            body["autopilot"] = {"enabled": True}
        else:
            body["private_cluster_config"]["master_ipv4_cidr_block"] = p["master_cidr"]
            body["node_pools"] = [pool_body(p["pool"])]
        return body

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        operation = client.container(
            "create_cluster", parent=client.location(), cluster=self._body(context, node)
        )
        client.wait(context, f"GKE cluster {node.properties['name']}", operation)
        return self._read(context, node, node.properties["name"])  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client = context.client
        if "workload_pool" in changes:
            operation = client.container(
                "update_cluster",
                name=self._full_name(context, provider_id),
                update={
                    "desired_workload_identity_config": {"workload_pool": node.properties["workload_pool"]}
                },
            )
            client.wait(context, f"Workload Identity on GKE cluster {provider_id}", operation)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        operation = client.container("delete_cluster", name=self._full_name(context, provider_id))
        client.wait(context, f"deleting GKE cluster {provider_id}", operation)

    def inventory(self, context: Context) -> list[str]:
        client = context.client
        listed = client.container("list_clusters", parent=client.location())
        return sorted(c.name for c in listed.clusters if self.owned(context, dict(c.resource_labels)))


def pool_body(pool: Mapping[str, Any]) -> dict[str, Any]:
    """A Standard cluster's node pool as GKE takes it: autoscaled, its nodes on the GKE metadata server."""
    return {
        "name": pool["name"],
        "initial_node_count": pool["min_nodes"] or 1,
        "config": {
            "machine_type": pool["machine_type"],
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "shielded_instance_config": {"enable_secure_boot": True},
        },
        "autoscaling": {
            "enabled": True,
            "min_node_count": pool["min_nodes"],
            "max_node_count": pool["max_nodes"],
        },
        "management": {"auto_repair": True, "auto_upgrade": True},
    }


class NodePoolType(GkeNodeType):
    """A Standard cluster's node pool (made with the cluster, adopted here; made again if deleted)."""

    type = "gke.node_pool"
    identity = frozenset({"name"})
    replace_on = frozenset({"name", "machine_type"})
    tunable = frozenset({"min_nodes", "max_nodes"})
    invariant = frozenset({"metadata"})

    def _full_name(self, context: Context, name: str) -> str:
        return f"{context.client.location()}/clusters/{context.client.cluster_name()}/nodePools/{name}"

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        found = _to_dict(
            context.client.container("get_node_pool", name=self._full_name(context, provider_id))
        )
        config = found.get("config") or {}
        scaling = found.get("autoscaling") or {}
        properties = {
            "name": found["name"],
            "machine_type": config.get("machine_type"),
            "metadata": (config.get("workload_metadata_config") or {}).get("mode"),
            "min_nodes": scaling.get("min_node_count", 0),
            "max_nodes": scaling.get("max_node_count", 0),
        }
        return self.observed(node, found["name"], properties, {"status": found.get("status")})

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        name = node.properties["name"]
        try:
            operation = client.container(
                "create_node_pool",
                parent=f"{client.location()}/clusters/{client.cluster_name()}",
                node_pool=pool_body(node.properties),
            )
        except Conflict:  # the pool the cluster was made with: adopted, brought to what is asked
            found: Observed = self._read(context, node, name)  # type: ignore[assignment]
            changes = {k: v for k, v in node.properties.items() if found.properties.get(k) != v}
            return self._update(context, node, name, changes) if changes else found
        client.wait(context, f"node pool {name}", operation)
        return self._read(context, node, name)  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client = context.client
        p = node.properties
        name = self._full_name(context, provider_id)
        if "metadata" in changes:
            operation = client.container(
                "update_node_pool",
                name=name,
                workload_metadata_config={"mode": p["metadata"]},
            )
            client.wait(context, f"the metadata server of node pool {provider_id}", operation)
        if {"min_nodes", "max_nodes"} & set(changes):
            operation = client.container(
                "set_node_pool_autoscaling",
                name=name,
                autoscaling={
                    "enabled": True,
                    "min_node_count": p["min_nodes"],
                    "max_node_count": p["max_nodes"],
                },
            )
            client.wait(context, f"the autoscaling of node pool {provider_id}", operation)
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        operation = client.container("delete_node_pool", name=self._full_name(context, provider_id))
        client.wait(context, f"deleting node pool {provider_id}", operation)


CLUSTER = ClusterType()
POOL = NodePoolType()
TYPES = (CLUSTER, POOL)


def control_plane(scope: Scope) -> list[str]:
    """The nodes a service's objects need in place: the cluster (and its pool), none for an existing one."""
    if scope.settings.cluster:
        return []
    return [names.CLUSTER_ID] if scope.settings.autopilot else [names.CLUSTER_ID, names.POOL_ID]


def expand(scope: Scope) -> list[Node]:
    """The cluster, and a Standard cluster's node pool; nothing when settings name an existing cluster or
    there is no service."""
    settings = scope.settings
    if settings.cluster or not scope.of_kind("service"):
        return []
    app, env = scope.app, scope.environment.name
    project = names.project(app, scope.environment, settings)
    network = names.network(app, env)
    pool = {
        "name": names.POOL,
        "machine_type": settings.machine_type,
        "metadata": "GKE_METADATA",
        "min_nodes": settings.min_nodes,
        "max_nodes": settings.max_nodes,
    }
    properties: dict[str, Any] = {
        "name": names.cluster(app, env),
        "autopilot": settings.autopilot,
        "network": network,
        "subnetwork": network,
        "private_nodes": True,
        "workload_pool": f"{project}.svc.id.goog",
        "release_channel": settings.release_channel,
    }
    if not settings.autopilot:
        properties["master_cidr"] = settings.master_cidr
        properties["pool"] = pool
    nodes = [
        scope.node(
            names.CLUSTER_ID,
            CLUSTER.type,
            properties,
            (names.PROJECT_NODE, names.NETWORK_NODE, names.SUBNET_NODE),
        )
    ]
    if not settings.autopilot:
        nodes.append(scope.node(names.POOL_ID, POOL.type, pool, (names.CLUSTER_ID,)))
    return nodes
