"""SQL: one RDS for PostgreSQL instance per environment (the seeds' "cluster": a PostgreSQL server holding
every database of the app), in a DB subnet group of the private subnets, reachable only from the
services' security group; a database per SQLDatabase, created with its migrations by a one-off ECS task.
Where another provider runs the services (``compute = "eks"``), the task definition is registered and not
run: that provider runs its command and environment before the owning service rolls out (the
``compute.aws_vpc`` trait), see docs/providers/aws.md.

The master password is managed by RDS in Secrets Manager (``ManageMasterUserPassword``): skyrig never
sees it, and the runtime config names only the secret's ARN.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, ProviderError, Scope, common_prefix, plan_of, wait_for
from skyrig_aws import compute, iam, network
from skyrig_aws.api import tag_dict, tag_list
from skyrig_aws.names import (
    COMPUTE_CLUSTER_ID,
    EXECUTION_ROLE,
    SQL_INSTANCE_ID,
    cluster_name,
    db_subnet_group_name,
    instance_name,
    migration_family,
    role_id,
)
from skyrig_aws.nodes import AwsNodeType

SUBNETS_ID = "sql.subnets"
MASTER_USER = "skyrig"
FALLBACK_VERSION = "17.4"
"""The engine version when the endpoint cannot list them (an emulator) and none is configured."""


def _where(context: Context) -> dict[str, Any]:
    return {"region": context.settings.region, "endpoint_url": context.settings.endpoint_url}


_SETTLED = frozenset({"available", "stopped", "storage-full", "incompatible-parameters"})


def instances(context: Context) -> dict[str, dict[str, Any]]:
    """The region's RDS instances by identifier (but those being deleted): one ``DescribeDBInstances``
    that the node types of a command share (the instance, its databases, the roles naming its password's
    secret), kept only while no instance is on its way to a new state."""

    def read() -> dict[str, dict[str, Any]]:
        return {
            db["DBInstanceIdentifier"]: db
            for db in context.client.rds.pages("describe_db_instances", "DBInstances")
            if db.get("DBInstanceStatus") != "deleting"
        }

    def settled(found: dict[str, dict[str, Any]]) -> bool:
        return all(db.get("DBInstanceStatus") in _SETTLED for db in found.values())

    return context.client.shared(("rds", "DescribeDBInstances"), read, settled)


class SubnetGroupType(network.SubnetGroupType):
    """The DB subnet group: the private subnets of both zones."""

    type = "aws.sql.subnet_group"
    arn_types = ("rds:subgrp",)
    service = "rds"
    describe_call = "describe_db_subnet_groups"
    create_call = "create_db_subnet_group"
    delete_call = "delete_db_subnet_group"
    field = "DBSubnetGroup"
    listed = True


class InstanceType(AwsNodeType):
    """The RDS for PostgreSQL instance."""

    type = "aws.sql.instance"
    arn_types = ("rds:db",)
    stateful = True
    tunable = frozenset({"instance_class", "storage_gb"})
    invariant = frozenset(
        {
            "backup_retention_days",
            "point_in_time_recovery",
            "encrypted",
            "public",
            "deletion_protection",
            "multi_az",
            "managed_password",
        }
    )
    replace_on = frozenset({"engine"})
    identity = frozenset({"identifier"})  # an imported instance keeps its own name

    def inventory_id(self, arn: str) -> str:
        return arn.rpartition(":")[2]

    def _observe(self, context: Context, node: Node, db: Mapping[str, Any]) -> Observed:
        retention = int(db.get("BackupRetentionPeriod", 0))
        properties = {
            "identifier": db["DBInstanceIdentifier"],
            "engine": db["Engine"],
            "instance_class": db["DBInstanceClass"],
            "storage_gb": int(db.get("AllocatedStorage", 0)),
            "multi_az": bool(db.get("MultiAZ")),
            "backup_retention_days": retention,
            "point_in_time_recovery": retention > 0,
            "encrypted": bool(db.get("StorageEncrypted")),
            "public": bool(db.get("PubliclyAccessible")),
            "deletion_protection": bool(db.get("DeletionProtection")),
            "managed_password": bool(db.get("MasterUserSecret")),
        }
        endpoint = db.get("Endpoint") or {}
        outputs = {
            "host": endpoint.get("Address"),
            "port": endpoint.get("Port", 5432),
            "user": db.get("MasterUsername", MASTER_USER),
            "password_secret": (db.get("MasterUserSecret") or {}).get("SecretArn"),
            "engine_version": db.get("EngineVersion"),
            "status": db.get("DBInstanceStatus"),
            **_where(context),
        }
        return self.observed(node, db["DBInstanceIdentifier"], properties, outputs)

    def _describe(self, context: Context, identifier: str) -> dict[str, Any]:
        return context.client.rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        db = self._describe(context, provider_id)
        return None if db.get("DBInstanceStatus") == "deleting" else self._observe(context, node, db)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = instances(context)
        return {n.id: self._observe(context, n, found[pid]) if pid in found else None for n, pid in nodes}

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["identifier"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(context, [(node, node.properties["identifier"]) for node in nodes])

    def _version(self, context: Context) -> str:
        if context.settings.sql_engine_version:
            return context.settings.sql_engine_version
        if context.client.lacks("rds.engine_versions"):
            return FALLBACK_VERSION
        versions = context.client.rds.pages(
            "describe_db_engine_versions", "DBEngineVersions", Engine="postgres"
        )
        numbers = [v["EngineVersion"] for v in versions if v.get("Status", "available") == "available"]
        if not numbers:
            return FALLBACK_VERSION
        return max(numbers, key=lambda v: tuple(int(p) if p.isdigit() else 0 for p in v.split(".")))

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        identifier = p["identifier"]
        context.client.rds.create_db_instance(
            DBInstanceIdentifier=identifier,
            Engine="postgres",
            EngineVersion=self._version(context),
            DBInstanceClass=p["instance_class"],
            AllocatedStorage=p["storage_gb"],
            MaxAllocatedStorage=p["storage_gb"] * 10,
            StorageType="gp3",
            MasterUsername=MASTER_USER,
            ManageMasterUserPassword=True,
            BackupRetentionPeriod=p["backup_retention_days"],
            StorageEncrypted=p["encrypted"],
            PubliclyAccessible=p["public"],
            MultiAZ=p["multi_az"],
            DeletionProtection=p["deletion_protection"],
            DBSubnetGroupName=p["subnet_group"],
            VpcSecurityGroupIds=[network.ec2_id(context, "security-group", network.SG_SQL)],
            AutoMinorVersionUpgrade=True,
            CopyTagsToSnapshot=True,
            Tags=tag_list(context.tags(node)),
        )
        return self._wait(context, node, identifier)

    def _wait(self, context: Context, node: Node, identifier: str) -> Observed:
        seen: dict[str, Any] = {}

        def available() -> tuple[bool, str]:
            seen["db"] = self._describe(context, identifier)
            status = seen["db"].get("DBInstanceStatus", "creating")
            return status == "available", status

        wait_for(context, f"RDS instance {identifier}", available)
        return self._observe(context, node, seen["db"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        if "encrypted" in changes:
            raise ProviderError(
                f"{node.id}: storage encryption of RDS instance {provider_id} was turned off, which RDS "
                "cannot undo in place: restore a snapshot into an encrypted instance and import it "
                "(skyrig import)"
            )
        names = {
            "instance_class": "DBInstanceClass",
            "storage_gb": "AllocatedStorage",
            "multi_az": "MultiAZ",
            "backup_retention_days": "BackupRetentionPeriod",
            "point_in_time_recovery": "BackupRetentionPeriod",
            "deletion_protection": "DeletionProtection",
            "public": "PubliclyAccessible",
            "managed_password": "ManageMasterUserPassword",
        }
        arguments: dict[str, Any] = {}
        for key in changes:
            if key in names:
                value = (
                    node.properties["backup_retention_days"]
                    if key == "point_in_time_recovery"
                    else changes[key]
                )
                arguments[names[key]] = value
        if arguments:
            context.client.rds.modify_db_instance(
                DBInstanceIdentifier=provider_id, ApplyImmediately=True, **arguments
            )
        return self._wait(context, node, provider_id)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        rds = context.client.rds
        db = self._describe(context, provider_id)
        if db.get("DeletionProtection"):  # destroy --include-data was asked for: the protection goes first
            rds.modify_db_instance(
                DBInstanceIdentifier=provider_id, DeletionProtection=False, ApplyImmediately=True
            )
        production = context.environment.type == "production"
        arguments: dict[str, Any] = {
            "SkipFinalSnapshot": not production,
            "DeleteAutomatedBackups": not production,
        }
        if production:
            arguments["FinalDBSnapshotIdentifier"] = f"{provider_id}-final"
        rds.delete_db_instance(DBInstanceIdentifier=provider_id, **arguments)

        def gone() -> tuple[bool, str]:
            try:
                return False, self._describe(context, provider_id).get("DBInstanceStatus", "deleting")
            except ProviderError:
                return True, "deleted"

        wait_for(context, f"RDS instance {provider_id} to be deleted", gone)


MIGRATED = "skyrig:migrated"
"""The tag a migration task definition's revision gets once its task was started: a revision without it
was registered by a create or update cut short before the run, whose migrations are not applied."""


class DatabaseType(AwsNodeType):
    """A database in the instance, with its migrations: an ECS task definition that creates the database and
    applies the migrations (:mod:`skyrig_aws.runtime.migrate`), run once per change of the migrations.

    Each revision whose task was started is tagged :data:`MIGRATED`; one that is not (a crash between
    registering it and running it) reads back with no migrations, so the next apply registers and runs
    them again (the migration runner skips what the database has already)."""

    type = "aws.sql.database"
    arn_types = ("ecs:task-definition",)
    stateful = True
    replace_on = frozenset({"name"})

    def inventory_id(self, arn: str) -> str:
        return arn.rpartition("/")[2].partition(":")[0]

    def _instance(self, context: Context, node: Node) -> dict[str, Any]:
        identifier = context.recorded.get(SQL_INSTANCE_ID) or node.properties["instance"]  # imported: its own
        return instances(context).get(identifier, {})

    def _observe(
        self,
        context: Context,
        node: Node,
        family: str,
        task: Mapping[str, Any],
        db: Mapping[str, Any],
        tags: list[dict[str, str]] | None = None,
    ) -> Observed:
        environment = {e["name"]: e["value"] for e in task["containerDefinitions"][0].get("environment", [])}
        migrations = json.loads(environment.get("SKYRIG_MIGRATIONS", "[]"))
        if node.properties.get("run") and tags is not None and MIGRATED not in tag_dict(tags, "key", "value"):
            migrations = []  # registered, never run: its migrations are not applied
        endpoint = db.get("Endpoint") or {}
        outputs = {
            "database": node.properties["name"],
            "host": endpoint.get("Address"),
            "port": endpoint.get("Port", 5432),
            "user": db.get("MasterUsername", MASTER_USER),
            "password_secret": (db.get("MasterUserSecret") or {}).get("SecretArn"),
            "task_definition": task.get("taskDefinitionArn"),
            **_where(context),
        }
        return self.observed(node, family, {"migrations": migrations}, outputs)

    def _describe(self, context: Context, family: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
        """The family's latest revision and its tags (ECS answers a missing family with a ClientException,
        which :mod:`skyrig_aws.api` makes a :class:`~skyrig_aws.api.NotFound`)."""
        answer = context.client.ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
        return answer["taskDefinition"], answer.get("tags") or []

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        task, tags = self._describe(context, provider_id)
        if task.get("status") != "ACTIVE":
            return None
        return self._observe(context, node, provider_id, task, self._instance(context, node), tags)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        if not nodes:
            return {}
        db = self._instance(context, nodes[0][0])
        found: dict[str, Observed | None] = {}
        for node, provider_id in nodes:
            try:
                task, tags = self._describe(context, provider_id)
            except ProviderError:
                found[node.id] = None
                continue
            active = task.get("status") == "ACTIVE"
            found[node.id] = self._observe(context, node, provider_id, task, db, tags) if active else None
        return found

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["family"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        # one listing of the environment's migration families; only those that exist are described
        prefix = common_prefix([node.properties["family"] for node in nodes])
        families = set(
            context.client.ecs.pages(
                "list_task_definition_families", "families", familyPrefix=prefix, status="ACTIVE"
            )
        )
        present = [
            (node, node.properties["family"]) for node in nodes if node.properties["family"] in families
        ]
        found = self._read_many(context, present)
        return {node.id: found.get(node.id) for node in nodes}

    def _register(self, context: Context, node: Node, db: Mapping[str, Any]) -> dict[str, Any]:
        p = node.properties
        secret = (db.get("MasterUserSecret") or {}).get("SecretArn") or ""
        endpoint = db.get("Endpoint") or {}
        environment = {
            "SKYRIG_DATABASE": p["name"],
            "SKYRIG_DB_HOST": endpoint.get("Address") or "",
            "SKYRIG_DB_PORT": str(endpoint.get("Port", 5432)),
            "SKYRIG_DB_USER": db.get("MasterUsername", MASTER_USER),
            "SKYRIG_DB_SECRET": secret,
            "SKYRIG_MIGRATIONS": json.dumps(p["migrations"], separators=(",", ":")),
            "SKYRIG_MIGRATION_FILES": json.dumps(p["files"], separators=(",", ":"), sort_keys=True),
            "AWS_REGION": context.settings.region,
        }
        roles = {}
        if p["role"]:  # AWS runs the services: the task runs under the owning service's role
            roles = {
                "taskRoleArn": iam.role_arn(context, p["role"]),
                "executionRoleArn": iam.role_arn(context, EXECUTION_ROLE),
            }
        task = context.client.ecs.register_task_definition(
            family=p["family"],
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            **roles,
            containerDefinitions=[
                {
                    "name": "migrate",
                    "image": compute.image(context),
                    "essential": True,
                    "memory": 512,  # the task's whole memory (emulators sum containers' memory to place it)
                    "command": ["python", "-m", "skyrig_aws.runtime.migrate"],
                    "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                }
            ],
            tags=tag_list(context.tags(node), "key", "value"),
        )["taskDefinition"]
        if p["run"]:
            context.client.ecs.run_task(
                cluster=cluster_name(context.app, context.environment.name),
                taskDefinition=task["taskDefinitionArn"],
                launchType="FARGATE",
                count=1,
                networkConfiguration=compute.network_configuration(context),
                startedBy="skyrig-migrate",
            )
            context.client.ecs.tag_resource(
                resourceArn=task["taskDefinitionArn"], tags=[{"key": MIGRATED, "value": "true"}]
            )
        return task

    def _create(self, context: Context, node: Node) -> Observed:
        db = self._instance(context, node)
        task = self._register(context, node, db)
        return self._observe(context, node, node.properties["family"], task, db)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        db = self._instance(context, node)
        task = self._register(context, node, db)
        return self._observe(context, node, provider_id, task, db)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        ecs = context.client.ecs
        arns = [
            *ecs.pages(
                "list_task_definitions", "taskDefinitionArns", familyPrefix=provider_id, status="ACTIVE"
            ),
            *ecs.pages(
                "list_task_definitions", "taskDefinitionArns", familyPrefix=provider_id, status="INACTIVE"
            ),
        ]
        arns = [a for a in arns if a.rpartition("/")[2].partition(":")[0] == provider_id]
        for arn in arns:
            with contextlib.suppress(ProviderError):
                ecs.deregister_task_definition(taskDefinition=arn)
        for start in range(0, len(arns), 10):
            ecs.delete_task_definitions(taskDefinitions=arns[start : start + 10])

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        outputs = observed.outputs
        return {
            "type": self.type,
            "host": outputs.get("host"),
            "port": outputs.get("port"),
            "database": node.properties["name"],
            "user": outputs.get("user"),
            "sslmode": "require",
            "password": outputs.get("password_secret"),
            "region": outputs.get("region"),
            "endpoint_url": outputs.get("endpoint_url"),
        }


SUBNET_GROUP = SubnetGroupType()
INSTANCE = InstanceType()
DATABASE = DatabaseType()
TYPES = (SUBNET_GROUP, INSTANCE, DATABASE)


def owned_tags(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return tag_dict(tags)


def expand(scope: Scope) -> list[Node]:
    databases = scope.of_kind("sql_database")
    if not databases:
        return []
    settings = scope.settings
    production = scope.environment.type == "production"
    app, env = scope.app, scope.environment.name
    group = db_subnet_group_name(app, env)
    nodes = [
        scope.node(
            SUBNETS_ID,
            SUBNET_GROUP.type,
            {"name": group, "subnets": network.private_subnets()},
            tuple(network.private_subnets()),
        ),
        scope.node(
            SQL_INSTANCE_ID,
            INSTANCE.type,
            {
                "identifier": instance_name(app, env),
                "engine": "postgres",
                "instance_class": settings.sql_instance_class,
                "storage_gb": settings.sql_storage_gb,
                "multi_az": production,
                "backup_retention_days": 7,
                "point_in_time_recovery": True,
                "encrypted": True,
                "public": False,
                "deletion_protection": production,
                "managed_password": True,
                "subnet_group": group,
            },
            (SUBNETS_ID, network.SG_SQL),
        ),
    ]
    compute_here = "service" in scope.kinds
    for database in databases:
        migrations, files = plan_of(database)
        depends = [SQL_INSTANCE_ID]
        if compute_here:
            depends += [
                role_id(database.service),
                EXECUTION_ROLE,
                COMPUTE_CLUSTER_ID,
                *network.private_subnets(),
                network.SG_APP,
            ]
        properties = {
            "name": database.name,
            "instance": instance_name(app, env),
            "family": migration_family(app, env, database.name),
            # elsewhere, the compute provider runs the task definition's command under its own identity
            # of the owning service (compute.aws_vpc)
            "role": role_id(database.service) if compute_here else None,
            "migrations": migrations,
            "files": files,
            "run": compute_here,
        }
        nodes.append(
            scope.node(
                f"sql.database/{database.name}",
                DATABASE.type,
                properties,
                tuple(depends),
                resource=database,
            )
        )
    return nodes
