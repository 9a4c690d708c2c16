"""Caches: an ElastiCache for Redis replication group per cache cluster, in a cache subnet group of the
private subnets, reachable only from the services' security group.

Each group has transit encryption (TLS), at-rest encryption, Redis ACL authentication (a user group with
skyrig's user, whose password RDS-style lives only in Secrets Manager, and the ``default`` user switched
off), and a parameter group with the declared ``maxmemory-policy``, 10% reserved memory and active
defragmentation. Production gets one replica, multi-AZ and automatic failover; development a single node.
"""

from __future__ import annotations

import contextlib
import secrets as random
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, ProviderError, Scope, wait_for
from skyrig_aws import network
from skyrig_aws.api import tag_list
from skyrig_aws.names import (
    cache_parameter_group_name,
    cache_password_secret,
    cache_subnet_group_name,
    cache_user_group_id,
    cache_user_id,
    replication_group_id,
)
from skyrig_aws.nodes import AwsNodeType

SUBNETS_ID = "cache.subnets"
USER = "skyrig"


class CacheSubnetGroupType(network.SubnetGroupType):
    """The cache subnet group: the private subnets of both zones."""

    type = "aws.cache.subnet_group"
    arn_types = ("elasticache:subnetgroup",)
    service = "elasticache"
    describe_call = "describe_cache_subnet_groups"
    create_call = "create_cache_subnet_group"
    delete_call = "delete_cache_subnet_group"
    field = "CacheSubnetGroup"
    undeletable = "elasticache.deletion"  # moto cannot delete subnet groups


class ClusterType(AwsNodeType):
    """A replication group with its ACL users, user group, parameter group and password secret."""

    type = "aws.cache.cluster"
    arn_types = ("elasticache:replicationgroup",)
    tunable = frozenset({"node_type", "replicas"})
    invariant = frozenset(
        {
            "tls",
            "auth",
            "at_rest_encryption",
            "multi_az",
            "automatic_failover",
            "reserved_memory_percent",
            "active_defrag",
        }
    )
    replace_on = frozenset({"id", "engine"})

    def inventory_id(self, arn: str) -> str:
        return arn.rpartition(":")[2]

    # -- reading ------------------------------------------------------------------------------------

    def _parameters(self, context: Context, node: Node) -> dict[str, Any]:
        p = node.properties
        if context.client.lacks("elasticache.parameter_group"):
            return {}  # the emulator has no parameter groups: taken as asked
        found = context.client.elasticache.pages(
            "describe_cache_parameters",
            "Parameters",
            CacheParameterGroupName=p["parameter_group"],
            Source="user",
        )
        values = {item["ParameterName"]: item.get("ParameterValue") for item in found}
        return {
            "eviction_policy": values.get("maxmemory-policy"),
            "reserved_memory_percent": int(values.get("reserved-memory-percent") or 0),
            "active_defrag": values.get("activedefrag") == "yes",
        }

    def _observe(self, context: Context, node: Node, group: Mapping[str, Any]) -> Observed:
        members = group.get("MemberClusters", [])
        properties = {
            "id": group["ReplicationGroupId"],
            "engine": group.get("Engine", "redis"),
            "node_type": group.get("CacheNodeType"),
            "replicas": max(0, len(members) - 1),
            "multi_az": group.get("MultiAZ") == "enabled",
            "automatic_failover": group.get("AutomaticFailover") in ("enabled", "enabling"),
            "tls": bool(group.get("TransitEncryptionEnabled")),
            "at_rest_encryption": bool(group.get("AtRestEncryptionEnabled")),
            "auth": bool(group.get("UserGroupIds")) or bool(group.get("AuthTokenEnabled")),
            **self._parameters(context, node),
        }
        groups = group.get("NodeGroups") or [{}]
        endpoint = groups[0].get("PrimaryEndpoint") or group.get("ConfigurationEndpoint") or {}
        reader = groups[0].get("ReaderEndpoint") or {}
        outputs = {
            "host": endpoint.get("Address"),
            "port": endpoint.get("Port", 6379),
            "reader_host": reader.get("Address"),
            "username": USER,
            "password_secret": node.properties["password_secret"],
            "status": group.get("Status"),
            "region": context.settings.region,
            "endpoint_url": context.settings.endpoint_url,
        }
        return self.observed(node, group["ReplicationGroupId"], properties, outputs)

    def _describe(self, context: Context, provider_id: str) -> dict[str, Any]:
        found = context.client.elasticache.describe_replication_groups(ReplicationGroupId=provider_id)
        return found["ReplicationGroups"][0]

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        group = self._describe(context, provider_id)
        return None if group.get("Status") == "deleting" else self._observe(context, node, group)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = {
            g["ReplicationGroupId"]: g
            for g in context.client.elasticache.pages("describe_replication_groups", "ReplicationGroups")
            if g.get("Status") != "deleting"
        }
        return {n.id: self._observe(context, n, found[pid]) if pid in found else None for n, pid in nodes}

    def _find(self, context: Context, node: Node) -> Observed | None:
        # the replication group is the node's main resource: until it exists the node is not found, and
        # the create adopts the password secret, users, user group and parameter group an earlier one made
        return self._read(context, node, node.properties["id"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(context, [(node, node.properties["id"]) for node in nodes])

    # -- creating -----------------------------------------------------------------------------------

    def _password_secret(self, context: Context, node: Node) -> str:
        """The skyrig user's password: random, made here, kept only in Secrets Manager (the one an
        earlier, interrupted create made is read back instead)."""
        manager = context.client.secretsmanager
        name = node.properties["password_secret"]
        password = random.token_urlsafe(32)
        try:
            manager.create_secret(
                Name=name,
                Description=f"password of user {USER} of cache cluster {node.id} (made by skyrig, never "
                "shown)",
                SecretString=password,
                Tags=tag_list(context.tags(node)),
            )
            return password
        except ProviderError as error:
            if "ResourceExists" not in str(error):
                raise
        return context.client.secretsmanager.get_secret_value(SecretId=name)["SecretString"]  # type: ignore[no-any-return]

    def _users(self, context: Context, node: Node, password: str | None = None) -> None:
        """skyrig's ACL user and a disabled ``default`` user, in a user group of their own (each made
        unless an earlier create made it)."""
        cache = context.client.elasticache
        p = node.properties
        if password is None:
            password = context.client.secretsmanager.get_secret_value(SecretId=p["password_secret"])[
                "SecretString"
            ]
        tags = tag_list(context.tags(node))
        users = (
            {
                "UserId": p["user_id"],
                "UserName": USER,
                "AccessString": "on ~* &* +@all",
                "AuthenticationMode": {"Type": "password", "Passwords": [password]},
            },
            {
                "UserId": p["default_user_id"],
                "UserName": "default",
                "AccessString": "off -@all",
                "NoPasswordRequired": True,
            },
        )
        for user in users:
            try:
                cache.create_user(Engine="redis", Tags=tags, **user)
            except ProviderError as error:
                if "AlreadyExists" not in str(error):
                    raise
        if context.client.lacks("elasticache.user_group"):
            return
        try:
            cache.describe_user_groups(UserGroupId=p["user_group"])
        except ProviderError:
            cache.create_user_group(
                UserGroupId=p["user_group"],
                Engine="redis",
                UserIds=[p["user_id"], p["default_user_id"]],
                Tags=tags,
            )

    def _parameter_group(self, context: Context, node: Node, *, create: bool) -> None:
        p = node.properties
        if context.client.lacks("elasticache.parameter_group"):
            return
        cache = context.client.elasticache
        if create:
            try:
                cache.describe_cache_parameter_groups(CacheParameterGroupName=p["parameter_group"])
            except ProviderError:
                cache.create_cache_parameter_group(
                    CacheParameterGroupName=p["parameter_group"],
                    CacheParameterGroupFamily=p["parameter_family"],
                    Description=f"skyrig {node.id}",
                    Tags=tag_list(context.tags(node)),
                )
        cache.modify_cache_parameter_group(
            CacheParameterGroupName=p["parameter_group"],
            ParameterNameValues=[
                {"ParameterName": "maxmemory-policy", "ParameterValue": p["eviction_policy"]},
                {
                    "ParameterName": "reserved-memory-percent",
                    "ParameterValue": str(p["reserved_memory_percent"]),
                },
                {"ParameterName": "activedefrag", "ParameterValue": "yes" if p["active_defrag"] else "no"},
            ],
        )

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        self._users(context, node, self._password_secret(context, node))
        self._parameter_group(context, node, create=True)
        context.client.elasticache.create_replication_group(
            ReplicationGroupId=p["id"],
            ReplicationGroupDescription=f"skyrig {context.app}/{context.environment.name} {node.id}",
            Engine="redis",
            EngineVersion=p["engine_version"],
            CacheNodeType=p["node_type"],
            NumCacheClusters=1 + p["replicas"],
            AutomaticFailoverEnabled=p["automatic_failover"],
            MultiAZEnabled=p["multi_az"],
            TransitEncryptionEnabled=p["tls"],
            AtRestEncryptionEnabled=p["at_rest_encryption"],
            UserGroupIds=[p["user_group"]],
            CacheParameterGroupName=p["parameter_group"],
            CacheSubnetGroupName=p["subnet_group"],
            SecurityGroupIds=[network.ec2_id(context, "security-group", network.SG_CACHE)],
            SnapshotRetentionLimit=p["snapshot_retention_days"],
            Tags=tag_list(context.tags(node)),
        )
        return self._wait(context, node, p["id"])

    def _wait(self, context: Context, node: Node, provider_id: str) -> Observed:
        seen: dict[str, Any] = {}

        def available() -> tuple[bool, str]:
            seen["group"] = self._describe(context, provider_id)
            status = seen["group"].get("Status", "creating")
            return status == "available", status

        wait_for(context, f"ElastiCache replication group {provider_id}", available)
        return self._observe(context, node, seen["group"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        p = node.properties
        cache = context.client.elasticache
        if {"eviction_policy", "reserved_memory_percent", "active_defrag"} & set(changes):
            self._parameter_group(context, node, create=False)
        if "replicas" in changes:
            current = self._observe(context, node, self._describe(context, provider_id)).properties[
                "replicas"
            ]
            change = cache.increase_replica_count if p["replicas"] > current else cache.decrease_replica_count
            change(ReplicationGroupId=provider_id, NewReplicaCount=p["replicas"], ApplyImmediately=True)
            self._wait(context, node, provider_id)
        arguments: dict[str, Any] = {}
        if "node_type" in changes:
            arguments["CacheNodeType"] = p["node_type"]
        if "multi_az" in changes:
            arguments["MultiAZEnabled"] = p["multi_az"]
        if "automatic_failover" in changes:
            arguments["AutomaticFailoverEnabled"] = p["automatic_failover"]
        if "tls" in changes:
            arguments["TransitEncryptionEnabled"] = True
            arguments["TransitEncryptionMode"] = "required"
        if "auth" in changes:
            self._users(context, node)
            arguments["UserGroupIdsToAdd"] = [p["user_group"]]
        if "at_rest_encryption" in changes:
            raise ProviderError(
                f"{node.id}: at-rest encryption of {provider_id} was turned off, which ElastiCache cannot "
                "undo in place: delete the replication group (the next apply makes it again)"
            )
        if arguments:
            cache.modify_replication_group(ReplicationGroupId=provider_id, ApplyImmediately=True, **arguments)
        return self._wait(context, node, provider_id)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        p = node.properties
        cache = context.client.elasticache
        try:
            if context.client.lacks("elasticache.deletion"):
                # moto keeps a deleted group "deleting" for ever: untag it so it no longer counts as ours
                arn = self._describe(context, provider_id)["ARN"]
                cache.remove_tags_from_resource(ResourceName=arn, TagKeys=list(context.tags(node)))
                cache.delete_replication_group(ReplicationGroupId=provider_id)
                raise _Gone
            cache.delete_replication_group(ReplicationGroupId=provider_id)

            def gone() -> tuple[bool, str]:
                try:
                    return False, self._describe(context, provider_id).get("Status", "deleting")
                except ProviderError:
                    return True, "deleted"

            wait_for(context, f"ElastiCache replication group {provider_id} to be deleted", gone)
        except _Gone:
            pass
        except ProviderError as error:
            if "NotFound" not in type(error).__name__:
                raise
        if not context.client.lacks("elasticache.user_group"):
            _ignore_missing(lambda: cache.delete_user_group(UserGroupId=p["user_group"]))
        for user in (p["user_id"], p["default_user_id"]):
            if context.client.lacks("elasticache.deletion"):  # moto keeps deleted users: untag them
                for found in cache.pages("describe_users", "Users", Engine="redis"):
                    if found["UserId"] == user:
                        cache.remove_tags_from_resource(
                            ResourceName=found["ARN"], TagKeys=list(context.tags(node))
                        )
            _ignore_missing(lambda user=user: cache.delete_user(UserId=user))
        if not context.client.lacks("elasticache.parameter_group"):
            _ignore_missing(
                lambda: cache.delete_cache_parameter_group(CacheParameterGroupName=p["parameter_group"])
            )
        _ignore_missing(
            lambda: context.client.secretsmanager.delete_secret(
                SecretId=p["password_secret"], ForceDeleteWithoutRecovery=True
            )
        )

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        outputs = observed.outputs
        return {
            "type": self.type,
            "host": outputs.get("host"),
            "port": outputs.get("port"),
            "tls": node.properties["tls"],
            "username": outputs.get("username"),
            "password": outputs.get("password_secret"),
            "eviction_policy": node.properties["eviction_policy"],
            "region": outputs.get("region"),
            "endpoint_url": outputs.get("endpoint_url"),
        }


class _Gone(Exception):
    """The replication group is deleted as far as the emulator can tell."""


def _ignore_missing(call: Any) -> None:
    from skyrig.provider import NotFound

    with contextlib.suppress(NotFound):
        call()


SUBNET_GROUP = CacheSubnetGroupType()
CLUSTER = ClusterType()
TYPES = (SUBNET_GROUP, CLUSTER)


def expand(scope: Scope) -> list[Node]:
    clusters = scope.of_kind("cache_cluster")
    if not clusters:
        return []
    settings = scope.settings
    production = scope.environment.type == "production"
    app, env = scope.app, scope.environment.name
    subnet_group = cache_subnet_group_name(app, env)
    nodes = [
        scope.node(
            SUBNETS_ID,
            SUBNET_GROUP.type,
            {"name": subnet_group, "subnets": network.private_subnets()},
            tuple(network.private_subnets()),
        )
    ]
    major = settings.cache_engine_version.split(".")[0]
    for r in clusters:
        identifier = replication_group_id(app, env, r.name)
        properties = {
            "id": identifier,
            "engine": "redis",
            "engine_version": settings.cache_engine_version,
            "node_type": settings.cache_node_type,
            "replicas": 1 if production else 0,
            "multi_az": production,
            "automatic_failover": production,
            "tls": True,
            "at_rest_encryption": True,
            "auth": True,
            "eviction_policy": r.eviction_policy,
            "reserved_memory_percent": 10,
            "active_defrag": True,
            "snapshot_retention_days": 1 if production else 0,
            "subnet_group": subnet_group,
            "parameter_group": cache_parameter_group_name(app, env, r.name),
            "parameter_family": f"redis{major}",
            "user_id": cache_user_id(app, env, r.name, "user"),
            "default_user_id": cache_user_id(app, env, r.name, "default"),
            "user_group": cache_user_group_id(app, env, r.name),
            "password_secret": cache_password_secret(app, env, r.name),
        }
        nodes.append(
            scope.node(
                f"cache.cluster/{r.name}",
                CLUSTER.type,
                properties,
                (SUBNETS_ID, network.SG_CACHE),
                resource=r,
            )
        )
    return nodes
