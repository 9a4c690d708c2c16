"""The host's own state, in its PostgreSQL (database ``skyrig_host``).

Apps, tokens (their SHA-256 only), environments (with the short id that prefixes all they own on the
servers), their logins on each server and their secret values (both encrypted with the host key), and
resources (kind, name, properties, outputs). Every change is one transaction; the checks that must hold
under concurrent requests (quotas, one login per environment and family) take a row lock first: the
app's row for its environments, the environment's row for what it holds.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from skyrig_hosted.host.crypto import HostKey
from skyrig_hosted.host.quotas import QuotaExceeded
from skyrig_hosted.host.tokens import ADMIN, APP, RUNTIME, Principal, digest, new_token

DATABASE = "skyrig_host"

SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (
    name text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS environments (
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{8}$'),
    app text NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
    name text NOT NULL,
    type text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (app, name)
);
CREATE TABLE IF NOT EXISTS tokens (
    sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    kind text NOT NULL CHECK (kind IN ('admin', 'app', 'runtime')),
    app text REFERENCES apps (name) ON DELETE CASCADE,
    environment text REFERENCES environments (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS logins (
    environment text NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    family text NOT NULL,
    username text NOT NULL,
    password_encrypted text NOT NULL,
    PRIMARY KEY (environment, family)
);
CREATE TABLE IF NOT EXISTS resources (
    environment text NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    kind text NOT NULL,
    name text NOT NULL,
    properties jsonb NOT NULL,
    outputs jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment, kind, name)
);
CREATE TABLE IF NOT EXISTS secrets (
    environment text NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    name text NOT NULL,
    value_encrypted text NOT NULL,
    PRIMARY KEY (environment, name)
);
ALTER TABLE environments ADD COLUMN IF NOT EXISTS runtime_token_encrypted text;
ALTER TABLE environments ADD COLUMN IF NOT EXISTS template text;
ALTER TABLE apps ADD COLUMN IF NOT EXISTS job_uid integer UNIQUE;
"""

_ID_ALPHABET = string.ascii_lowercase + string.digits


def env_label(name: str) -> str:
    """The environment's name as one DNS label of its services' host names: ``pr:72`` -> ``pr-72``."""
    return name.replace(":", "-").replace("_", "-")


class Conflict(Exception):
    """The request contradicts what exists (an app of that name; an environment of another type)."""


class NotFound(Exception):
    """What the request names does not exist."""


@dataclass(frozen=True)
class Environment:
    """One environment of one app; ``id`` prefixes every name it owns on the shared servers."""

    app: str
    name: str
    type: str
    id: str


@dataclass(frozen=True)
class Resource:
    """One resource of an environment, as the host made it (outputs: None while it is being made)."""

    kind: str
    name: str
    properties: dict[str, Any]
    outputs: dict[str, Any] | None = field(default=None)


def database_dsn(admin_dsn: str) -> str:
    """The host's database on the server ``admin_dsn`` reaches (the same login)."""
    return make_conninfo(admin_dsn, dbname=DATABASE)


def create_database(admin_dsn: str) -> None:
    """Makes the database ``skyrig_host`` if the server has none (``admin_dsn``: a superuser's)."""
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not found:
            with suppress(psycopg.errors.DuplicateDatabase):
                connection.execute(f'CREATE DATABASE "{DATABASE}"')


class Store:
    """The host's state: every method is one transaction on a pool of connections."""

    def __init__(self, dsn: str, key: HostKey, *, pool_size: int = 8) -> None:
        self.key = key
        self._pool = ConnectionPool(
            dsn, min_size=1, max_size=pool_size, kwargs={"row_factory": dict_row}, open=False
        )

    @classmethod
    def open(cls, admin_dsn: str, key: HostKey, *, pool_size: int = 8) -> Store:
        """The store on the server ``admin_dsn`` reaches, its database and schema made if missing."""
        create_database(admin_dsn)
        store = cls(database_dsn(admin_dsn), key, pool_size=pool_size)
        store._pool.open(wait=True, timeout=30)
        with store._transaction() as connection:
            connection.execute("SELECT pg_advisory_xact_lock(17017)")  # one schema change at a time
            connection.execute(SCHEMA)
        return store

    def close(self) -> None:
        """Closes the pool's connections."""
        self._pool.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as connection, connection.transaction():
            yield connection

    # -- tokens ------------------------------------------------------------------------------------------

    def keep_admin_token(self, token: str) -> None:
        """Records ``token`` (its SHA-256) as the admin token, the only one: any other is revoked (a new
        ``DATA/admin-token`` at a start replaces the old)."""
        with self._transaction() as connection:
            connection.execute("DELETE FROM tokens WHERE kind = 'admin' AND sha256 <> %s", (digest(token),))
            connection.execute(
                "INSERT INTO tokens (sha256, kind) VALUES (%s, 'admin') ON CONFLICT (sha256) DO NOTHING",
                (digest(token),),
            )

    def principal(self, token: str) -> Principal | None:
        """Whose ``token`` is, or None for a token the host never made (or that was deleted)."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT t.kind, t.app, e.name AS env FROM tokens t "
                "LEFT JOIN environments e ON e.id = t.environment WHERE t.sha256 = %s",
                (digest(token),),
            ).fetchone()
        if row is None:
            return None
        return Principal(row["kind"], row["app"], row["env"])

    # -- apps --------------------------------------------------------------------------------------------

    def create_app(self, name: str) -> str:
        """Makes the app ``name``; answers its token (shown once: the store keeps its hash)."""
        token = new_token(APP)
        with self._transaction() as connection:
            inserted = connection.execute(
                "INSERT INTO apps (name) VALUES (%s) ON CONFLICT (name) DO NOTHING RETURNING name", (name,)
            ).fetchone()
            if inserted is None:
                raise Conflict(f"app {name!r} exists")
            connection.execute(
                "INSERT INTO tokens (sha256, kind, app) VALUES (%s, %s, %s)", (digest(token), APP, name)
            )
        return token

    def app_exists(self, name: str) -> bool:
        """Whether the app ``name`` exists."""
        with self._transaction() as connection:
            return connection.execute("SELECT 1 FROM apps WHERE name = %s", (name,)).fetchone() is not None

    def delete_app(self, name: str) -> None:
        """Deletes the app's rows (its environments, tokens, logins, resources and secrets go with it)."""
        with self._transaction() as connection:
            connection.execute("DELETE FROM apps WHERE name = %s", (name,))

    # -- environments ------------------------------------------------------------------------------------

    def put_environment(
        self, app: str, name: str, type_: str, limit: int, template: str | None = None
    ) -> tuple[Environment, str | None]:
        """The environment ``name`` of ``app``, made if missing: answers it and its runtime token when it
        was made now (None when it existed). The quota ``limit`` of environments per app is checked and
        the row inserted in one transaction under the app's row lock. ``template``: the environment of the
        app a preview was derived from, whose secret values it reads where it has none of its own."""
        token = new_token(RUNTIME)
        with self._transaction() as connection:
            if not connection.execute("SELECT 1 FROM apps WHERE name = %s FOR UPDATE", (app,)).fetchone():
                raise NotFound(f"no app {app!r}")
            row = connection.execute(
                "SELECT id, type, template FROM environments WHERE app = %s AND name = %s", (app, name)
            ).fetchone()
            if row is not None:
                if row["type"] != type_:
                    raise Conflict(f"environment {name!r} of app {app!r} exists with type {row['type']!r}")
                if row["template"] != template:
                    connection.execute(
                        "UPDATE environments SET template = %s WHERE id = %s", (template, row["id"])
                    )
                return Environment(app, name, type_, row["id"]), None
            label = env_label(name)
            for other in connection.execute("SELECT name FROM environments WHERE app = %s", (app,)):
                if env_label(other["name"]) == label:
                    raise Conflict(
                        f"environment {name!r} of app {app!r} would share its services' addresses with "
                        f"environment {other['name']!r} (both are {label!r} in a host name): "
                        "choose another name"
                    )
            count = connection.execute("SELECT count(*) AS n FROM environments WHERE app = %s", (app,))
            if count.fetchone()["n"] >= limit:  # type: ignore[index]
                raise QuotaExceeded("environments per app", limit)
            while True:
                id_ = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
                made = connection.execute(
                    "INSERT INTO environments (id, app, name, type, runtime_token_encrypted, template) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
                    (id_, app, name, type_, self.key.encrypt(token), template),
                ).fetchone()
                if made is not None:
                    break
            connection.execute(
                "INSERT INTO tokens (sha256, kind, app, environment) VALUES (%s, %s, %s, %s)",
                (digest(token), RUNTIME, app, id_),
            )
        return Environment(app, name, type_, id_), token

    def runtime_token(self, environment: Environment) -> str:
        """The environment's runtime token (kept encrypted for its services); an environment made before
        the host kept it gets a new one now (the one given at its creation stays valid)."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT runtime_token_encrypted FROM environments WHERE id = %s FOR UPDATE", (environment.id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no environment {environment.name!r} of app {environment.app!r}")
            if row["runtime_token_encrypted"]:
                return self.key.decrypt(row["runtime_token_encrypted"])
            token = new_token(RUNTIME)
            connection.execute(
                "INSERT INTO tokens (sha256, kind, app, environment) VALUES (%s, %s, %s, %s)",
                (digest(token), RUNTIME, environment.app, environment.id),
            )
            connection.execute(
                "UPDATE environments SET runtime_token_encrypted = %s WHERE id = %s",
                (self.key.encrypt(token), environment.id),
            )
        return token

    def environment(self, app: str, name: str) -> Environment | None:
        """The environment ``name`` of ``app``, or None."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT id, type FROM environments WHERE app = %s AND name = %s", (app, name)
            ).fetchone()
        return None if row is None else Environment(app, name, row["type"], row["id"])

    def environments(self, app: str | None = None) -> list[Environment]:
        """The environments of ``app`` (of every app when None), by app and name."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT app, name, type, id FROM environments WHERE %(app)s::text IS NULL OR app = %(app)s "
                "ORDER BY app, name",
                {"app": app},
            ).fetchall()
        return [Environment(row["app"], row["name"], row["type"], row["id"]) for row in rows]

    def delete_environment(self, environment: Environment) -> None:
        """Deletes the environment's rows (its token, logins, resources and secrets go with it)."""
        with self._transaction() as connection:
            connection.execute("DELETE FROM environments WHERE id = %s", (environment.id,))

    # -- logins ------------------------------------------------------------------------------------------

    def login(self, environment: Environment, family: str, make: Any = None) -> dict[str, str] | None:
        """The environment's login on ``family``'s server. When it has none and ``make`` is given, calls
        ``make()`` (which makes it on the server) and keeps its answer, all under the environment's row
        lock: concurrent requests make it once."""
        with self._transaction() as connection:
            if make is not None:
                locked = connection.execute(
                    "SELECT 1 FROM environments WHERE id = %s FOR UPDATE", (environment.id,)
                ).fetchone()
                if locked is None:
                    raise NotFound(f"no environment {environment.name!r} of app {environment.app!r}")
            row = connection.execute(
                "SELECT username, password_encrypted FROM logins WHERE environment = %s AND family = %s",
                (environment.id, family),
            ).fetchone()
            if row is not None:
                return {"username": row["username"], "password": self.key.decrypt(row["password_encrypted"])}
            if make is None:
                return None
            login = dict(make())
            connection.execute(
                "INSERT INTO logins (environment, family, username, password_encrypted) "
                "VALUES (%s, %s, %s, %s)",
                (environment.id, family, login["username"], self.key.encrypt(login["password"])),
            )
            return {"username": login["username"], "password": login["password"]}

    # -- resources ---------------------------------------------------------------------------------------

    def begin_resource(
        self,
        environment: Environment,
        kind: str,
        name: str,
        properties: dict[str, Any],
        limit: int | None = None,
    ) -> bool:
        """Records the resource's desired properties before it is made on its server; answers whether it
        is new. With ``limit``, no more than that many resources of ``kind`` (a quota) are allowed: the
        count and the insert are one transaction under the environment's row lock."""
        with self._transaction() as connection:
            locked = connection.execute(
                "SELECT 1 FROM environments WHERE id = %s FOR UPDATE", (environment.id,)
            ).fetchone()
            if locked is None:
                raise NotFound(f"no environment {environment.name!r} of app {environment.app!r}")
            exists = connection.execute(
                "SELECT 1 FROM resources WHERE environment = %s AND kind = %s AND name = %s",
                (environment.id, kind, name),
            ).fetchone()
            if exists is None and limit is not None:
                count = connection.execute(
                    "SELECT count(*) AS n FROM resources WHERE environment = %s AND kind = %s",
                    (environment.id, kind),
                ).fetchone()
                if count["n"] >= limit:  # type: ignore[index]
                    raise QuotaExceeded(f"{kind}s per environment", limit)
            connection.execute(
                "INSERT INTO resources (environment, kind, name, properties) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (environment, kind, name) DO UPDATE "
                "SET properties = EXCLUDED.properties, updated_at = now()",
                (environment.id, kind, name, Jsonb(properties)),
            )
        return exists is None

    def finish_resource(
        self, environment: Environment, kind: str, name: str, outputs: dict[str, Any]
    ) -> Resource:
        """Records the outputs of a resource made on its server."""
        with self._transaction() as connection:
            row = connection.execute(
                "UPDATE resources SET outputs = %s, updated_at = now() "
                "WHERE environment = %s AND kind = %s AND name = %s RETURNING properties",
                (Jsonb(outputs), environment.id, kind, name),
            ).fetchone()
        if row is None:
            raise NotFound(f"no {kind} {name!r} in environment {environment.name!r}")
        return Resource(kind, name, row["properties"], outputs)

    def resource(self, environment: Environment, kind: str, name: str) -> Resource | None:
        """One resource of the environment, or None."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT properties, outputs FROM resources "
                "WHERE environment = %s AND kind = %s AND name = %s",
                (environment.id, kind, name),
            ).fetchone()
        return None if row is None else Resource(kind, name, row["properties"], row["outputs"])

    def public_bucket(self, bucket: str) -> bool:
        """Whether ``bucket`` (its name on the objects server) is a bucket some environment made public."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT 1 FROM resources WHERE kind = 'bucket' AND outputs ->> 'bucket' = %s "
                "AND properties -> 'public' = 'true'::jsonb LIMIT 1",
                (bucket,),
            ).fetchone()
        return row is not None

    def resources(self, environment: Environment) -> list[Resource]:
        """The environment's resources, by kind and name."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT kind, name, properties, outputs FROM resources WHERE environment = %s "
                "ORDER BY kind, name",
                (environment.id,),
            ).fetchall()
        return [Resource(row["kind"], row["name"], row["properties"], row["outputs"]) for row in rows]

    def delete_resource(self, environment: Environment, kind: str, name: str) -> None:
        """Forgets one resource (absent: nothing to do)."""
        with self._transaction() as connection:
            connection.execute(
                "DELETE FROM resources WHERE environment = %s AND kind = %s AND name = %s",
                (environment.id, kind, name),
            )

    # -- secrets -----------------------------------------------------------------------------------------

    def put_secret(self, environment: Environment, name: str, value: str) -> None:
        """Keeps the secret's value, encrypted with the host key."""
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO secrets (environment, name, value_encrypted) VALUES (%s, %s, %s) "
                "ON CONFLICT (environment, name) DO UPDATE SET value_encrypted = EXCLUDED.value_encrypted",
                (environment.id, name, self.key.encrypt(value)),
            )

    def template(self, environment: Environment) -> str | None:
        """The environment ``environment`` was derived from (a preview's template), if any."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT template FROM environments WHERE id = %s", (environment.id,)
            ).fetchone()
        return None if row is None else row["template"]

    def secret(self, environment: Environment, name: str) -> str | None:
        """The secret's value, or None when it has none: the environment's own, else its template's (a
        preview reads the values set on the app's preview template)."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT s.value_encrypted FROM environments e "
                "LEFT JOIN environments t ON t.app = e.app AND t.name = e.template "
                "JOIN secrets s ON s.name = %s AND (s.environment = e.id OR s.environment = t.id) "
                "WHERE e.id = %s ORDER BY s.environment = e.id DESC LIMIT 1",
                (name, environment.id),
            ).fetchone()
        return None if row is None else self.key.decrypt(row["value_encrypted"])

    def delete_secret(self, environment: Environment, name: str) -> None:
        """Forgets the secret's value."""
        with self._transaction() as connection:
            connection.execute(
                "DELETE FROM secrets WHERE environment = %s AND name = %s", (environment.id, name)
            )


__all__ = ["ADMIN", "DATABASE", "Conflict", "Environment", "NotFound", "Resource", "Store"]
