"""SQL on the host: a database per ``SQLDatabase`` on the host's shared PostgreSQL, owned by the
environment's own role (which may reach nothing else on the server), migrated from the applying machine.

The role's password stays on the host: the runtime config names it by reference
(``hosted:APP/ENV/database/NAME``), the data plane reads it from the host's credentials endpoint when it
connects, and a migration reads it for the applying machine's connection, in memory only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, ProviderError, Scope, TransientError, migrate, plan_of
from skyrig_hosted import names
from skyrig_hosted.nodes import ResourceType, client, where

SSLMODE = "prefer"
"""The host's PostgreSQL answers TLS where it was given a certificate; on loopback it has none."""


def _server(outputs: Mapping[str, Any], name: str) -> tuple[str, int, str]:
    """(host, port, database on the server) of a database's outputs."""
    return str(outputs["host"]), int(outputs["port"]), str(outputs.get("database") or name)


def _authentication_failed(error: Exception) -> bool:
    state = getattr(error, "sqlstate", None)
    return state in ("28P01", "28000") or "password authentication failed" in str(error)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def connect(context: Context, name: str, outputs: Mapping[str, Any]) -> Any:
    """A psycopg connection (autocommit) to database ``name`` as the environment's role, its password read
    from the host for this command only."""
    import psycopg

    app, env = where(context)
    host, port, database = _server(outputs, name)
    login = client(context).credentials(app, env, DATABASE.kind, name)
    try:
        return psycopg.connect(
            host=host,
            port=port,
            dbname=database,
            user=login["username"],
            password=login["password"],
            sslmode=outputs.get("sslmode") or SSLMODE,
            autocommit=True,
            connect_timeout=15,
        )
    except psycopg.OperationalError as error:
        raise TransientError(f"cannot connect to database {name} on the host: {_first_line(error)}") from None


def _ledger(context: Context, name: str, outputs: Mapping[str, Any]) -> list[list[Any]]:
    """The migrations applied to database ``name`` (``[number, name, sha256]``)."""
    with connect(context, name, outputs) as connection:
        exists = connection.execute("SELECT to_regclass('skyrig_migrations') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return []
        rows = connection.execute("SELECT number, name, sha256 FROM skyrig_migrations ORDER BY number")
        return [list(row) for row in rows]


class DatabaseType(ResourceType):
    """A database of the environment on the host's PostgreSQL, with its migrations applied from the
    applying machine (in create and update, as the local provider does)."""

    type = "hosted.database"
    kind = "database"
    stateful = True

    def _observe(self, context: Context, node: Node, resource: dict[str, Any]) -> Observed:
        found = super()._observe(context, node, resource)
        properties = {
            **found.properties,
            "migrations": _ledger(context, found.provider_id, found.outputs),
            "files": node.properties.get("files", {}),  # where each migration is read from: the app's
        }
        return Observed(found.provider_id, properties, found.outputs)

    def _migrate(self, context: Context, node: Node, observed: Observed) -> Observed:
        p = node.properties
        with connect(context, observed.provider_id, observed.outputs) as connection:
            files, root = p.get("files", {}), client(context).root
            migrate(connection, observed.provider_id, p["migrations"], files, root)
        return self._read(context, node, observed.provider_id)  # type: ignore[return-value]

    def _create(self, context: Context, node: Node) -> Observed:
        return self._migrate(context, node, super()._create(context, node))

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self._migrate(context, node, super()._update(context, node, provider_id, changes))

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        outputs = observed.outputs
        try:
            host, port, database = _server(outputs, observed.provider_id)
        except (KeyError, ValueError):
            raise ProviderError(f"the host gave database {observed.provider_id!r} no host and port") from None
        return {
            "type": self.type,
            "host": host,
            "port": port,
            "database": database,
            "user": outputs.get("username") or outputs.get("user"),
            "sslmode": outputs.get("sslmode") or SSLMODE,
            "password": outputs["credentials"],
            "api": outputs["api"],
        }


DATABASE = DatabaseType()
TYPES = (DATABASE,)


def expand(scope: Scope) -> list[Node]:
    """A database per ``sql_database``, in the environment."""
    nodes = []
    for database in scope.of_kind("sql_database"):
        migrations, files = plan_of(database)
        nodes.append(
            scope.node(
                names.node_id(DATABASE.kind, database.name),
                DATABASE.type,
                {"name": database.name, "migrations": migrations, "files": files},
                (names.ENVIRONMENT_ID,),
                resource=database,
            )
        )
    return nodes
