"""SQL: one cluster per environment, a database per SQLDatabase in it."""

from __future__ import annotations

from typing import Any

from skyrig.provider import Node, Observed, Scope
from skyrig_memory.network import NETWORK_ID
from skyrig_memory.nodes import MemoryNodeType, node_type

CLUSTER = node_type(
    "memory.sql.cluster",
    tunable=frozenset({"instance_class", "storage_gb"}),
    invariant=frozenset(
        {
            "backup_retention_days",
            "point_in_time_recovery",
            "encrypted",
            "public",
            "deletion_protection",
            "high_availability",
        }
    ),
    replace_on=frozenset({"engine"}),
    outputs=("endpoint", "port"),
)
USER = "skyrig"
"""The user a service connects as (the memory cloud keeps no credentials: none is needed)."""


class DatabaseType(MemoryNodeType):
    """A database; its runtime entry has the shared PostgreSQL shape (:class:`skyrig.provider.PostgresClient`
    reads it)."""

    type = "memory.sql.database"
    stateful = True
    replace_on = frozenset({"name"})
    outputs = ("database", "endpoint", "port")

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        entry = self.entry(observed)
        # The endpoint is made up: the memory cloud runs no PostgreSQL (see runtime/sql.py).
        return {
            **entry,
            "host": entry.get("endpoint"),
            "user": USER,
            "sslmode": "require",
            "password": None,
        }


DATABASE = DatabaseType()
CLUSTER_ID = "sql.cluster"


TYPES = (CLUSTER, DATABASE)


def expand(scope: Scope) -> list[Node]:
    databases = scope.of_kind("sql_database")
    if not databases:
        return []
    env = scope.environment
    durable = env.type in ("development", "production")
    cluster = {
        "engine": "postgres",
        "version": "18",
        "instance_class": "db.m5.large" if durable else "db.t4g.micro",
        "storage_gb": 20,
        "high_availability": env.type == "production",
        "backup_retention_days": 7 if durable else 0,
        "point_in_time_recovery": durable,
        "encrypted": True,
        "public": False,
        "deletion_protection": env.type == "production",
        "endpoint": f"{scope.app}-{env.name}.sql.memory.internal",
        "port": 5432,
    }
    nodes = [scope.node(CLUSTER_ID, CLUSTER.type, cluster, (NETWORK_ID,))]
    for database in databases:
        properties = {
            "name": database.name,
            "database": database.name,
            "endpoint": cluster["endpoint"],
            "port": cluster["port"],
            **scope.defaults_for(database),
        }
        nodes.append(
            scope.node(
                f"sql.database/{database.name}", DATABASE.type, properties, (CLUSTER_ID,), resource=database
            )
        )
    return nodes
