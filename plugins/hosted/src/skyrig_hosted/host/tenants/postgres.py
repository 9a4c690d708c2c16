"""A tenant on the shared PostgreSQL: role ``e_<id>`` (LOGIN, random scram password, nothing else), a
database ``e_<id>_<name>`` per SQLDatabase owned by it, CONNECT and TEMPORARY revoked from PUBLIC, so no
other role but the superuser can connect to it (the server refuses: "permission denied for database").
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from skyrig_hosted.host.servers import Servers, Tenant
from skyrig_hosted.host.tenants import check_kind, login_name, new_password, resource_name

KINDS = ("database",)


def database_name(tenant: Tenant, name: str) -> str:
    """The server's name of the tenant's database ``name``."""
    return f"{login_name(tenant)}_{resource_name(name)}"


def ensure(servers: Servers, tenant: Tenant) -> dict[str, str]:
    """The role, made or given a new password (and, before any tenant can log in, every database of the
    superuser's closed to PUBLIC: a database the host made since the servers started included)."""
    role, password = login_name(tenant), new_password()
    servers.postgres.lock_down()
    with servers.postgres.connect() as connection:
        exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        connection.execute(
            sql.SQL(
                verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {}"
            ).format(sql.Identifier(role), sql.Literal(password))
        )
    return {"username": role, "password": password}


def put(
    servers: Servers, tenant: Tenant, login: dict[str, str], kind: str, name: str, properties: dict[str, Any]
) -> dict[str, Any]:
    """The database, made if absent (owned by the tenant's role, no PUBLIC access)."""
    check_kind("postgres", kind, KINDS)
    role, database = login_name(tenant), database_name(tenant, name)
    with servers.postgres.connect() as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            connection.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role))
            )
        connection.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
    return {
        "host": servers.postgres.host,
        "port": servers.postgres.port,
        "database": database,
        "username": role,
    }


def delete(servers: Servers, tenant: Tenant, kind: str, name: str) -> None:
    """The database, dropped (its connections ended)."""
    check_kind("postgres", kind, KINDS)
    with servers.postgres.connect() as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(database_name(tenant, name))
            )
        )


def _databases(connection: Any, tenant: Tenant) -> list[str]:
    prefix = login_name(tenant) + "_"
    rows = connection.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,))
    return [row[0] for row in rows]


def remove(servers: Servers, tenant: Tenant) -> None:
    """Every database of the tenant, then its role."""
    role = login_name(tenant)
    with servers.postgres.connect() as connection:
        for database in _databases(connection, tenant):
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
        connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def usage(servers: Servers, tenant: Tenant) -> int:
    """The size of the tenant's databases."""
    with servers.postgres.connect() as connection:
        return sum(
            int(connection.execute("SELECT pg_database_size(%s)", (database,)).fetchone()[0])
            for database in _databases(connection, tenant)
        )
