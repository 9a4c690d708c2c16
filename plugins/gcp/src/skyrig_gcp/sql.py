"""SQL: one Cloud SQL for PostgreSQL instance per environment (the seeds' "cluster": a PostgreSQL server
holding every database of the app), with a private IP in the environment's VPC only (private services
access), mutual TLS required, daily backups kept 7 days with point-in-time recovery, and high availability
(REGIONAL, automatic failover) in production; a database per SQLDatabase, made through the Admin API.

The ``postgres`` user's password is made here, kept only in Secret Manager (:func:`names.sql_password_secret`)
and given to Cloud SQL once, as the instance's ``rootPassword``: it is never in state, plans or logs, and the
runtime config names only the secret's version.

Migrations run as a Cloud Run job before the services roll out (:mod:`skyrig_gcp.runtime.migrate`, its
job named :func:`names.migrate_job_name`): the compute family makes and runs that job from
:func:`migration_job`, after the database node.
"""

from __future__ import annotations

import contextlib
import json
import secrets as random
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, ProviderError, Scope, plan_of, wait_for
from skyrig_gcp import names
from skyrig_gcp.api import Conflict, wait_operation
from skyrig_gcp.nodes import GcpNodeType, NamedNodeType

USER = "postgres"
"""The instance's built-in superuser, whose password skyrig keeps in Secret Manager."""
EDITION = "ENTERPRISE"
"""Custom machine types (the smallest autoscaling-capable one) need the Enterprise edition (PostgreSQL 16+
defaults to Enterprise Plus, which takes only ``db-perf-optimized`` tiers)."""
RETAINED_BACKUPS = 7
LOG_RETENTION_DAYS = 7
"""Point-in-time recovery reaches back this many days (Enterprise's longest)."""
SSL_MODE = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
"""Mutual TLS: a connection needs a client certificate Cloud SQL signed."""


def _network(context: Context) -> str:
    return f"projects/{context.client.project}/global/networks/" + names.network_name(
        context.app, context.environment.name
    )


class InstanceType(NamedNodeType):
    """The Cloud SQL for PostgreSQL instance, with its ``postgres`` password secret. The instance is the
    node's main resource: until it exists the node is not found (by its name), and the create adopts the
    password secret an earlier one made."""

    type = "gcp.sql.instance"
    stateful = True
    tunable = frozenset({"tier", "disk_gb"})
    invariant = frozenset(
        {
            "backups",
            "retained_backups",
            "point_in_time_recovery",
            "log_retention_days",
            "public_ip",
            "private_network",
            "ssl_mode",
            "availability",
            "disk_autoresize",
            "deletion_protection",
        }
    )
    replace_on = frozenset({"version", "region"})
    identity = frozenset({"name"})

    # -- reading ------------------------------------------------------------------------------------

    def _observe(self, context: Context, node: Node, db: Mapping[str, Any]) -> Observed:
        settings = db.get("settings") or {}
        backup = settings.get("backupConfiguration") or {}
        ip = settings.get("ipConfiguration") or {}
        private = ip.get("privateNetwork") or ""
        properties = {
            "name": db["name"],
            "version": db.get("databaseVersion"),
            "region": db.get("region"),
            "tier": settings.get("tier"),
            "disk_gb": int(settings.get("dataDiskSizeGb") or 0),
            "disk_autoresize": bool(settings.get("storageAutoResize")),
            "availability": settings.get("availabilityType"),
            "backups": bool(backup.get("enabled")),
            "retained_backups": int(
                (backup.get("backupRetentionSettings") or {}).get("retainedBackups") or 0
            ),
            "point_in_time_recovery": bool(backup.get("pointInTimeRecoveryEnabled")),
            "log_retention_days": int(backup.get("transactionLogRetentionDays") or 0),
            "public_ip": bool(ip.get("ipv4Enabled", True)),
            "private_network": private.rpartition("/")[2] or None,
            "ssl_mode": ip.get("sslMode"),
            "deletion_protection": bool(settings.get("deletionProtectionEnabled")),
        }
        addresses = {a.get("type"): a.get("ipAddress") for a in db.get("ipAddresses") or []}
        outputs = {
            "host": addresses.get("PRIVATE"),
            "port": 5432,
            "user": USER,
            "connection_name": db.get("connectionName"),
            "password_secret": node.properties["password_secret"],
            "state": db.get("state"),
            "project": context.client.project,
        }
        return self.observed(node, db["name"], properties, outputs)

    def _get(self, context: Context, name: str) -> dict[str, Any]:
        client = context.client
        return client.execute(client.api("sqladmin").instances().get(project=client.project, instance=name))

    def _list(self, context: Context) -> list[dict[str, Any]]:
        client = context.client
        return client.pages(client.api("sqladmin").instances(), "list", "items", project=client.project)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        db = self._get(context, provider_id)
        return None if db.get("state") == "PENDING_DELETE" else self._observe(context, node, db)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found = {db["name"]: db for db in self._list(context) if db.get("state") != "PENDING_DELETE"}
        return {n.id: self._observe(context, n, found[pid]) if pid in found else None for n, pid in nodes}

    def inventory(self, context: Context) -> list[str]:
        """The instances whose labels say they are this app's and environment's."""
        return [
            db["name"]
            for db in self._list(context)
            if db.get("state") != "PENDING_DELETE"
            and self.owned(context, (db.get("settings") or {}).get("userLabels"))
        ]

    # -- creating -----------------------------------------------------------------------------------

    def _password(self, context: Context, node: Node) -> str:
        """The ``postgres`` password: the secret's latest version, made (random) where there is none."""
        client = context.client
        manager = client.library("secretmanager")
        secret = f"projects/{client.project}/secrets/{node.properties['password_secret']}"
        try:
            manager.create_secret(
                parent=f"projects/{client.project}",
                secret_id=node.properties["password_secret"],
                secret={"replication": {"automatic": {}}, "labels": self.labels(context, node)},
            )
        except Conflict:
            try:  # made by an earlier create: its password may already be the instance's
                payload = manager.access_secret_version(name=f"{secret}/versions/latest").payload
                return bytes(payload.data).decode()
            except ProviderError:
                pass
        password = random.token_urlsafe(32)
        manager.add_secret_version(parent=secret, payload={"data": password.encode()})
        return password

    def _settings(self, context: Context, node: Node) -> dict[str, Any]:
        p = node.properties
        return {
            "tier": p["tier"],
            "edition": EDITION,
            "availabilityType": p["availability"],
            "dataDiskType": "PD_SSD",
            "dataDiskSizeGb": str(p["disk_gb"]),
            "storageAutoResize": p["disk_autoresize"],
            "deletionProtectionEnabled": p["deletion_protection"],
            "userLabels": self.labels(context, node),
            "backupConfiguration": self._backups(node),
            "ipConfiguration": self._ip(context, node),
        }

    @staticmethod
    def _backups(node: Node) -> dict[str, Any]:
        p = node.properties
        return {
            "enabled": p["backups"],
            "startTime": "03:00",
            "pointInTimeRecoveryEnabled": p["point_in_time_recovery"],
            "transactionLogRetentionDays": p["log_retention_days"],
            "backupRetentionSettings": {"retentionUnit": "COUNT", "retainedBackups": p["retained_backups"]},
        }

    @staticmethod
    def _ip(context: Context, node: Node) -> dict[str, Any]:
        return {
            "ipv4Enabled": node.properties["public_ip"],
            "privateNetwork": _network(context),
            "sslMode": node.properties["ssl_mode"],
        }

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        client = context.client
        body = {
            "name": p["name"],
            "databaseVersion": p["version"],
            "region": p["region"],
            "rootPassword": self._password(context, node),
            "settings": self._settings(context, node),
        }
        try:
            operation = client.execute(
                client.api("sqladmin").instances().insert(project=client.project, body=body)
            )
        except Conflict as error:
            found = self._find(context, node)
            if found is not None:  # an earlier create's, its response lost: adopted
                return self._ready(context, node, p["name"])
            raise ProviderError(
                f"{node.id}: Cloud SQL refuses the name {p['name']!r} ({error}); a deleted instance's name "
                "cannot be used again for a week: wait, or use another environment name"
            ) from None
        wait_operation(context, f"Cloud SQL instance {p['name']}", operation)
        return self._ready(context, node, p["name"])

    def _ready(self, context: Context, node: Node, name: str) -> Observed:
        seen: dict[str, Any] = {}

        def runnable() -> tuple[bool, str]:
            seen["db"] = self._get(context, name)
            state = seen["db"].get("state", "PENDING_CREATE")
            return state == "RUNNABLE", state.lower()

        wait_for(context, f"Cloud SQL instance {name}", runnable)
        return self._observe(context, node, seen["db"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        client = context.client
        settings: dict[str, Any] = {}
        fields = {
            "tier": "tier",
            "availability": "availabilityType",
            "disk_autoresize": "storageAutoResize",
            "deletion_protection": "deletionProtectionEnabled",
        }
        for key, field in fields.items():
            if key in changes:
                settings[field] = node.properties[key]
        if "disk_gb" in changes:
            settings["dataDiskSizeGb"] = str(node.properties["disk_gb"])
        if {"backups", "retained_backups", "point_in_time_recovery", "log_retention_days"} & set(changes):
            settings["backupConfiguration"] = self._backups(node)
        if {"public_ip", "private_network", "ssl_mode"} & set(changes):
            settings["ipConfiguration"] = self._ip(context, node)
        if settings:
            request = (
                client.api("sqladmin")
                .instances()
                .patch(project=client.project, instance=provider_id, body={"settings": settings})
            )
            wait_operation(context, f"Cloud SQL instance {provider_id}", client.execute(request))
        return self._ready(context, node, provider_id)

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        client = context.client
        sql = client.api("sqladmin").instances()
        db = self._get(context, provider_id)
        if (db.get("settings") or {}).get("deletionProtectionEnabled"):
            # destroy --include-data was asked for: the protection goes first
            body = {"settings": {"deletionProtectionEnabled": False}}
            request = sql.patch(project=client.project, instance=provider_id, body=body)
            wait_operation(context, f"Cloud SQL instance {provider_id}", client.execute(request))
        arguments: dict[str, Any] = {}
        if context.environment.type == "production":
            arguments = {"enableFinalBackup": True, "finalBackupTtlDays": "30"}
        request = sql.delete(project=client.project, instance=provider_id, **arguments)
        wait_operation(context, f"deleting Cloud SQL instance {provider_id}", client.execute(request))
        secret = f"projects/{client.project}/secrets/{node.properties['password_secret']}"
        with contextlib.suppress(NotFound):
            client.library("secretmanager").delete_secret(name=secret)


class DatabaseType(GcpNodeType):
    """A database in the instance (``databases.insert``). Its migrations run in the Cloud Run job the
    compute family makes from :func:`migration_job`."""

    type = "gcp.sql.database"
    stateful = True
    replace_on = frozenset({"name", "instance"})
    identity = frozenset({"name"})

    def _instance_name(self, context: Context, node: Node) -> str:
        return context.recorded.get(names.SQL_INSTANCE_ID) or node.properties["instance"]  # imported: its own

    def _instance(self, context: Context, name: str) -> dict[str, Any]:
        client = context.client
        try:
            return client.execute(
                client.api("sqladmin").instances().get(project=client.project, instance=name)
            )
        except NotFound:
            return {}

    def _observe(
        self, context: Context, node: Node, database: Mapping[str, Any], db: Mapping[str, Any]
    ) -> Observed:
        instance = database.get("instance") or self._instance_name(context, node)
        addresses = {a.get("type"): a.get("ipAddress") for a in db.get("ipAddresses") or []}
        outputs = {
            **connection(context.app, context.environment.name, context.settings),
            "host": addresses.get("PRIVATE"),
            "database": database["name"],
        }
        return self.observed(
            node, f"{instance}/{database['name']}", {"name": database["name"], "instance": instance}, outputs
        )

    def _list(self, context: Context, instance: str) -> list[dict[str, Any]]:
        client = context.client
        request = client.api("sqladmin").databases().list(project=client.project, instance=instance)
        return client.execute(request).get("items", [])  # one page: databases.list does not page

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        instance, _, name = provider_id.partition("/")
        client = context.client
        database = client.execute(
            client.api("sqladmin").databases().get(project=client.project, instance=instance, database=name)
        )
        return self._observe(context, node, database, self._instance(context, instance))

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        found: dict[str, Observed | None] = {}
        for instance in sorted({pid.partition("/")[0] for _, pid in nodes}):
            db = self._instance(context, instance)
            listed = {f"{instance}/{d['name']}": d for d in self._list(context, instance)} if db else {}
            for node, provider_id in nodes:
                if provider_id.partition("/")[0] == instance:
                    database = listed.get(provider_id)
                    found[node.id] = self._observe(context, node, database, db) if database else None
        return found

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, f"{self._instance_name(context, node)}/{node.properties['name']}")

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(
            context,
            [(node, f"{self._instance_name(context, node)}/{node.properties['name']}") for node in nodes],
        )

    def _create(self, context: Context, node: Node) -> Observed:
        client = context.client
        instance = self._instance_name(context, node)
        body = {"name": node.properties["name"], "charset": "UTF8", "collation": "en_US.UTF8"}
        request = (
            client.api("sqladmin").databases().insert(project=client.project, instance=instance, body=body)
        )
        # a conflict: made by an earlier create whose answer was lost, or another operation on the instance
        # runs; the read tells (not there yet: NotFound, which the engine retries)
        with contextlib.suppress(Conflict):
            wait_operation(context, f"database {body['name']}", client.execute(request))
        return self._read(context, node, f"{instance}/{body['name']}")  # type: ignore[return-value]

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        instance, _, name = provider_id.partition("/")
        client = context.client
        request = (
            client.api("sqladmin")
            .databases()
            .delete(project=client.project, instance=instance, database=name)
        )
        wait_operation(context, f"deleting database {name}", client.execute(request))

    def inventory(self, context: Context) -> list[str]:
        """The databases of this environment's instance (the ``postgres`` database is Cloud SQL's)."""
        instance = names.sql_instance_name(context.app, context.environment.name)
        if not self._instance(context, instance):
            return []
        return [f"{instance}/{d['name']}" for d in self._list(context, instance) if d["name"] != "postgres"]

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}


INSTANCE = InstanceType()
DATABASE = DatabaseType()
TYPES = (INSTANCE, DATABASE)


def migration_job(scope: Scope, database: Any) -> dict[str, Any]:
    """What the compute family needs to make and run ``database``'s migration job (a Cloud Run job that
    runs ``python -m skyrig_gcp.runtime.migrate`` with the service's image, before the services roll
    out): its name, the node it depends on, and its environment (no secret: the password is read from
    Secret Manager in the job)."""
    app, env = scope.app, scope.environment.name
    migrations, files = plan_of(database)
    environment = {
        "SKYRIG_DATABASE": database.name,
        "SKYRIG_DB_CONNECTION": json.dumps(
            connection(app, env, scope.settings), separators=(",", ":"), sort_keys=True
        ),
        "SKYRIG_MIGRATIONS": json.dumps(migrations, separators=(",", ":")),
        "SKYRIG_MIGRATION_FILES": json.dumps(files, separators=(",", ":"), sort_keys=True),
    }
    return {
        "name": names.migrate_job_name(app, env, database.name),
        "after": f"sql.database/{database.name}",
        "service": database.service,
        "command": ["python", "-m", "skyrig_gcp.runtime.migrate"],
        "environment": environment,
        "migrations": migrations,
    }


def connection(app: str, env: str, settings: Any) -> dict[str, Any]:
    """How a service reaches the environment's instance (a runtime entry of :mod:`skyrig.runtime.servers`'
    shape, with what the mutual TLS handshake needs), but its private IP: no secret, only where the
    password is."""
    project = settings.project or names.project_id(app, env)
    instance = names.sql_instance_name(app, env)
    return {
        "port": 5432,
        "user": USER,
        "sslmode": "verify-ca",
        "password": f"projects/{project}/secrets/{names.sql_password_secret(app, env)}/versions/latest",
        "project": project,
        "instance": instance,
        "connection_name": f"{project}:{settings.region}:{instance}",
        "endpoints": {
            api: settings.endpoint(api) for api in ("sqladmin", "secretmanager") if settings.endpoint(api)
        },
        "emulator": settings.emulator,
    }


def expand(scope: Scope) -> list[Node]:
    """The instance and a database per ``sql_database``."""
    databases = scope.of_kind("sql_database")
    if not databases:
        return []
    settings = scope.settings
    production = scope.environment.type == "production"
    app, env = scope.app, scope.environment.name
    instance = names.sql_instance_name(app, env)
    nodes = [
        scope.node(
            names.SQL_INSTANCE_ID,
            INSTANCE.type,
            {
                "name": instance,
                "version": settings.sql_version,
                "region": settings.region,
                "tier": settings.sql_tier,
                "disk_gb": settings.sql_disk_gb,
                "disk_autoresize": True,
                "availability": "REGIONAL" if production else "ZONAL",
                "backups": True,
                "retained_backups": RETAINED_BACKUPS,
                "point_in_time_recovery": True,
                "log_retention_days": LOG_RETENTION_DAYS,
                "public_ip": False,
                "private_network": names.network_name(app, env),
                "ssl_mode": SSL_MODE,
                "deletion_protection": production,
                "password_secret": names.sql_password_secret(app, env),
            },
            (names.PROJECT_ID, names.PRIVATE_ACCESS_ID),
        )
    ]
    for database in databases:
        nodes.append(
            scope.node(
                f"sql.database/{database.name}",
                DATABASE.type,
                {"name": database.name, "instance": instance},
                (names.SQL_INSTANCE_ID,),
                resource=database,
            )
        )
    return nodes
