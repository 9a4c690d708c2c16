"""SQL: one embedded PostgreSQL cluster per environment, a database per SQLDatabase, migrations in order.

Each migration runs in its own transaction and is recorded in ``skyrig_migrations``; a failing one is
rolled back, so the database stays as it was before it, and the error names the file and the server's
message. A migration changed after it was applied is refused (the runner is
:mod:`skyrig.runtime.migrations`, shared by every provider).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skyrig.provider import (
    MIGRATIONS_LEDGER,
    Context,
    Node,
    NodeType,
    Observed,
    ProviderError,
    Scope,
    migrate,
    plan_of,
)
from skyrig_local import postgres

CLUSTER_ID = "sql.cluster"


def _data(context: Context) -> Path:
    return (
        context.client.root / context.settings.data / context.environment.name.replace(":", "-") / "postgres"
    )


class ClusterType(NodeType):
    """The cluster's data folder: initialised on create, removed on delete."""

    type = "local.sql.cluster"
    replace_on = frozenset({"engine", "version"})

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        data = Path(provider_id)
        if not postgres.initialised(data):
            return None
        return Observed(
            provider_id,
            {"engine": "postgres", "version": (data / "PG_VERSION").read_text().strip()},
            {"data": provider_id},
        )

    def find(self, context: Context, node: Node) -> Observed | None:
        return self.read(context, node, str(_data(context)))

    def create(self, context: Context, node: Node) -> Observed:
        data = _data(context)
        postgres.discard_partial(data)
        postgres.server(data)
        return self.read(context, node, str(data))  # type: ignore[return-value]

    def update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        raise ProviderError(f"the local PostgreSQL cluster cannot change {sorted(changes)} in place")

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        postgres.remove(Path(provider_id))


class DatabaseType(NodeType):
    """A database in the cluster, with its migrations applied."""

    type = "local.sql.database"
    replace_on = frozenset({"name"})
    stateful = True

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        import psycopg

        data = _data(context)
        if not postgres.initialised(data):
            return None
        with psycopg.connect(postgres.uri(data, "postgres"), autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (provider_id,)
            ).fetchone()
        if not exists:
            return None
        with psycopg.connect(postgres.uri(data, provider_id), autocommit=True) as connection:
            connection.execute(MIGRATIONS_LEDGER)
            applied = connection.execute("SELECT number, name, sha256 FROM skyrig_migrations ORDER BY number")
            migrations = [list(row) for row in applied]
        # "files" says where each migration is read from: the app's business, not the server's, so echoed
        properties = {
            "name": provider_id,
            "migrations": migrations,
            "files": node.properties.get("files", {}),
        }
        return Observed(provider_id, properties, {"database": provider_id, "data": str(data)})

    def find(self, context: Context, node: Node) -> Observed | None:
        return self.read(context, node, node.properties["name"])

    def create(self, context: Context, node: Node) -> Observed:
        import psycopg
        from psycopg import sql

        data = _data(context)
        name = node.properties["name"]
        with psycopg.connect(postgres.uri(data, "postgres"), autocommit=True) as connection:
            if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.update(context, node, name, {"migrations": node.properties["migrations"]})

    def update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        import psycopg

        data = _data(context)
        with psycopg.connect(postgres.uri(data, provider_id), autocommit=True) as connection:
            migrate(
                connection,
                provider_id,
                node.properties["migrations"],
                node.properties.get("files", {}),
                context.client.root,
            )
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        import psycopg
        from psycopg import sql

        data = _data(context)
        if not postgres.initialised(data):
            return
        with psycopg.connect(postgres.uri(data, "postgres"), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(provider_id))
            )

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.outputs}


CLUSTER = ClusterType()
DATABASE = DatabaseType()


TYPES = (CLUSTER, DATABASE)


def expand(scope: Scope) -> list[Node]:
    databases = scope.of_kind("sql_database")
    if not databases:
        return []
    nodes = [scope.node(CLUSTER_ID, CLUSTER.type, {"engine": "postgres", "version": "18"})]
    for database in databases:
        migrations, files = plan_of(database)
        properties = {"name": database.name, "migrations": migrations, "files": files}
        nodes.append(
            scope.node(
                f"sql.database/{database.name}",
                DATABASE.type,
                properties,
                (CLUSTER_ID,),
                resource=database,
            )
        )
    return nodes
