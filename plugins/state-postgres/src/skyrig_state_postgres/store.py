"""The PostgreSQL state store: one schema per app, one row per node, leases and fencing in transactions.

Every write (:meth:`PostgresStore.add_intent`, ``record``, ``forget``, ``finish``, and ``write_batch``,
the engine's group commit of many nodes' writes) is one SQL statement, hence one transaction and one
round trip: its first part locks the environment's lease row only if the writer's fence is the lease's
and the lease is unexpired by the server's clock (else nothing is written and the writer gets
:class:`~skyrig.state.LeaseLost`); the rest writes the rows of the nodes it is about (a record, an
intent; or the runtime configs) and moves the serial. A write never grows with the size of state.

Lease row locks: writers take ``FOR KEY SHARE`` (writers never wait for each other, nor for the
heartbeat's renewal, a plain ``UPDATE`` of the expiry); :meth:`~PostgresStore.acquire` and
:meth:`~PostgresStore.release` take ``FOR UPDATE``, which waits for writes in flight and makes those
that start afterwards see the new fence. The serial is the sum of per-connection counters
(``serials``: one row per environment and connection slot), so that concurrent writers of one apply never
queue on one row; each committed change adds one, so the sum strictly grows with every change.

What the server or libpq reports (unreachable, authentication refused, no such database, permission
denied on the schema, a newer schema version, a connection lost mid-write) reaches the user as a
:class:`~skyrig.state.StateUnusable` naming the store (user, host, port, database, schema; never a
password) and what to do.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import psycopg
from psycopg import sql

from skyrig.state import LeaseLost, Locked, NodeRecord, StateUnusable

if TYPE_CHECKING:
    from skyrig.state import EnvironmentState

SCHEMA_VERSION = 1

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE {s}.environments (
        env text PRIMARY KEY,
        fence bigint NOT NULL DEFAULT 0,
        issued bigint NOT NULL DEFAULT 0,
        holder text,
        acquired_at timestamptz,
        expires_at timestamptz,
        applied_at double precision
    );
    CREATE TABLE {s}.serials (
        env text NOT NULL, slot integer NOT NULL, count bigint NOT NULL, PRIMARY KEY (env, slot)
    );
    CREATE TABLE {s}.nodes (
        env text NOT NULL, id text NOT NULL, type text NOT NULL, provider text NOT NULL,
        provider_id text NOT NULL, desired text NOT NULL, observed text NOT NULL, outputs text NOT NULL,
        resource text, depends_on text NOT NULL, drift text NOT NULL, updated_at double precision NOT NULL,
        PRIMARY KEY (env, id)
    );
    CREATE TABLE {s}.intents (
        env text NOT NULL, id text NOT NULL, action text NOT NULL, token text NOT NULL,
        created_at double precision NOT NULL, PRIMARY KEY (env, id)
    );
    CREATE TABLE {s}.runtime (
        env text NOT NULL, service text NOT NULL, config text NOT NULL, PRIMARY KEY (env, service)
    );
    """,
}
"""Schema version -> the SQL that upgrades the previous version to it (``{s}``: the schema). Add, never
edit."""

POOL_SIZE = 8
"""Connections one store handle opens at most (on demand): the engine's parallel nodes and the
heartbeat share them."""

KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
"""libpq's TCP settings unless the URL sets them: a server (or a network) that goes away mid-statement
fails the statement within about 30 s instead of blocking a thread for the kernel's 15 minutes."""

LOCK_TIMEOUT_MS = 30_000
"""How long a statement waits for a row lock another session holds before giving up with a message
(no skyrig session holds one for more than a statement)."""

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

T = TypeVar("T")


# -- where the store is -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A parsed state URL: what libpq is given, and how messages name the store."""

    conninfo: str
    """The URL without ``schema`` (libpq's own parameters kept: ``sslmode``, ``connect_timeout``, ...)."""
    schema: str
    user: str
    host: str
    port: str
    database: str

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}" if not self.host.startswith("/") else f"{self.host} (socket)"

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.host.startswith("/") else self.host
        return f"postgresql://{self.user}@{host}:{self.port}/{self.database} (schema {self.schema})"


def masked(url: str) -> str:
    """``url`` with any password replaced by ``****``."""
    url = re.sub(r"(://[^:/@?]*:)[^@/?]*@", r"\1****@", url)
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1****", url)


def locate(url: str, root: Path) -> Location:
    """Parse ``url`` (``postgresql://user@host:port/dbname?schema=NAME``); the schema defaults to
    ``skyrig_<app>``, the app named by ``root/skyrig.toml`` (or ``SKYRIG_APP``)."""
    from psycopg.conninfo import conninfo_to_dict

    base, _, query = url.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    schemas = [value for key, value in pairs if key == "schema"]
    rest = [(key, value) for key, value in pairs if key != "schema"]
    conninfo = base + (f"?{urlencode(rest)}" if rest else "")
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as error:
        raise StateUnusable(
            f"state: {masked(url)} is not a PostgreSQL URL libpq accepts ({_first_line(error)})",
            "write it as postgresql://USER@HOST:PORT/DATABASE?schema=NAME (libpq's parameters, such as "
            "sslmode=require, may follow)",
        ) from None
    env = os.environ
    user = params.get("user") or env.get("PGUSER") or getpass.getuser()
    host = params.get("host") or params.get("hostaddr") or env.get("PGHOST") or "localhost"
    port = params.get("port") or env.get("PGPORT") or "5432"
    database = params.get("dbname") or env.get("PGDATABASE") or user
    schema = schemas[-1] if schemas else _default_schema(root)
    where = f"postgresql://{user}@{host}:{port}/{database}"
    if schema is None:
        raise StateUnusable(
            f"state: {where} names no schema, and no app name was found in {root / 'skyrig.toml'} to name "
            "one after",
            "add ?schema=NAME to the state URL",
        )
    if not _SCHEMA_NAME.match(schema):
        raise StateUnusable(
            f"state: {schema!r} ({where}) is not a schema name skyrig uses: lower-case letters, digits "
            "and _, not starting with a digit, at most 63 characters",
            "name another one with ?schema=NAME in the state URL",
        )
    return Location(conninfo, schema, user, host, port, database)


def _default_schema(root: Path) -> str | None:
    app = next((value for key, value in os.environ.items() if key.upper() == "SKYRIG_APP"), None)
    if app is None:
        try:
            app = tomllib.loads((root / "skyrig.toml").read_text()).get("app")
        except (OSError, ValueError):
            return None
    if not isinstance(app, str) or not app:
        return None
    return "skyrig_" + app.replace("-", "_")


# -- what went wrong ----------------------------------------------------------------------------------


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"^connection failed: ", "", text)
    text = re.sub(r"^connection to server (at|on) .*? failed: ", "", text)
    return re.sub(r"^(FATAL|ERROR):\s+", "", text).strip()


_UNREACHABLE = re.compile(
    r"connection refused|could not translate host name|failed to resolve host|timeout expired|"
    r"no such file or directory|network is unreachable|no route to host|could not connect|"
    r"server closed the connection|the database system is (starting up|shutting down|in recovery mode)|"
    r"connection timed out|host is unreachable|name or service not known",
    re.IGNORECASE,
)
_AUTH = re.compile(
    r"password authentication failed|no password supplied|authentication failed|no pg_hba\.conf entry|"
    r"role .* does not exist|peer authentication|ident authentication|not permitted to log in|"
    r"password is required",
    re.IGNORECASE,
)
_SSL = re.compile(r"\bSSL\b|certificate|GSSAPI", re.IGNORECASE)
_NO_DATABASE = re.compile(r"database .* does not exist", re.IGNORECASE)


def explained(error: psycopg.Error, where: Location, doing: str, connecting: bool = False) -> StateUnusable:
    """What ``error``, raised while ``doing`` something with the store at ``where``, means to a person."""
    detail = _first_line(error)
    code = getattr(error, "sqlstate", None) or ""
    server = where.server
    if (connecting and _AUTH.search(detail)) or code.startswith("28"):
        return StateUnusable(
            f"state: PostgreSQL at {server} refused user {where.user!r} for database {where.database!r} "
            f"({detail})",
            "give the password through PGPASSWORD or ~/.pgpass (never in skyrig.toml), or the whole URL, "
            "password included, through SKYRIG_STATE; if the server has no entry for this user, database and "
            "host (pg_hba.conf), ask its administrator for one",
        )
    if _NO_DATABASE.search(detail) or code == "3D000":
        return StateUnusable(
            f"state: database {where.database!r} does not exist on PostgreSQL at {server} ({where})",
            f"create it (createdb -h {where.host} -p {where.port} -U {where.user} {where.database}), or name "
            "an existing one in the state URL",
        )
    if connecting and _SSL.search(detail):
        return StateUnusable(
            f"state: cannot connect securely to PostgreSQL at {server} for {where} ({detail})",
            "check sslmode and sslrootcert in the state URL (libpq's parameters; or PGSSLMODE and "
            "PGSSLROOTCERT): the server's certificate must be signed by a root you trust and name its host",
        )
    if connecting and (_UNREACHABLE.search(detail) or not code):
        return StateUnusable(
            f"state: cannot reach PostgreSQL at {server} for {where} ({detail})",
            "check that the server runs and that the host and port of the state URL (state in skyrig.toml, "
            "or SKYRIG_STATE) are right; a firewall, a VPN or an SSH tunnel may stand in the way",
        )
    if code == "42501":
        return denied(where, detail)
    if code == "25006":
        return StateUnusable(
            f"state: PostgreSQL at {server} is a read-only replica ({where}): {detail}",
            "point the state URL at the primary server",
        )
    if code == "53300":
        return StateUnusable(
            f"state: PostgreSQL at {server} has no connection left for {where} ({detail})",
            f"run the command again later, or raise the server's max_connections (one skyrig process opens "
            f"at most {POOL_SIZE})",
        )
    if code == "53100":
        return StateUnusable(
            f"state: PostgreSQL at {server} cannot write {where}: its disk is full ({detail})",
            "free space on the server and run the command again: a write that fails changes nothing",
        )
    if code == "55P03":
        return StateUnusable(
            f"state: another session held a lock on the tables of {where} for {LOCK_TIMEOUT_MS // 1000} s "
            f"while {doing} ({detail})",
            "run the command again; if it lasts, find the session in pg_stat_activity (a transaction "
            "left open in psql, say) and end it",
        )
    if isinstance(error, psycopg.OperationalError) or code.startswith(("08", "57")):
        return StateUnusable(
            f"state: lost the connection to PostgreSQL at {server} while {doing} ({where}): {detail}",
            "run the command again: each write is one transaction, so the one cut short happened entirely or "
            "not at all, and what was being created keeps its intent, so the next apply adopts it",
        )
    return StateUnusable(
        f"state: PostgreSQL at {server} failed while {doing} ({where}): {detail}",
        "run the command again; if it fails the same way, the server's log says more",
    )


def denied(where: Location, detail: str) -> StateUnusable:
    """The user of ``where`` lacks a privilege on its schema or database."""
    return StateUnusable(
        f"state: user {where.user!r} may not use schema {where.schema!r} of {where} ({detail})",
        f"as an administrator, create the schema for it (CREATE SCHEMA {where.schema} AUTHORIZATION "
        f"{where.user}) or let it create schemas (GRANT CREATE ON DATABASE {where.database} TO "
        f"{where.user}); a role that only reads state needs USAGE on the schema and SELECT on its tables",
    )


# -- connections --------------------------------------------------------------------------------------


class _Pool:
    """At most ``size`` connections, opened on demand, each with a slot number of its own (its counter
    of the serial), each used by one thread at a time."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], size: int) -> None:
        self._connect = connect
        self._idle: list[tuple[int, psycopg.Connection[Any]]] = []
        self._free = list(range(size - 1, -1, -1))
        self._ready = threading.Condition()
        self._closed = False

    def get(self) -> tuple[int, psycopg.Connection[Any], bool]:
        """A connection, its slot, and whether it was used before (it may have gone stale meanwhile)."""
        with self._ready:
            while not self._idle and not self._free:
                self._ready.wait()
            if self._idle:
                return (*self._idle.pop(), True)
            slot = self._free.pop()
        try:
            return slot, self._connect(), False
        except BaseException:
            self._give_back(slot)
            raise

    def put(self, slot: int, connection: psycopg.Connection[Any]) -> None:
        usable = not connection.closed and not connection.broken
        if usable and connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            usable = False
        if self._closed or not usable:
            with suppress(Exception):
                connection.close()
            self._give_back(slot)
            return
        with self._ready:
            self._idle.append((slot, connection))
            self._ready.notify()

    def discard(self, slot: int, connection: psycopg.Connection[Any]) -> None:
        with suppress(Exception):
            connection.close()
        self._give_back(slot)

    def _give_back(self, slot: int) -> None:
        with self._ready:
            self._free.append(slot)
            self._ready.notify()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            idle, self._idle = self._idle, []
        for slot, connection in idle:
            self.discard(slot, connection)


# -- the store ----------------------------------------------------------------------------------------

_NOW = "extract(epoch FROM clock_timestamp())::float8"
"""The server's time, in seconds since the epoch: when a record was written, an apply finished."""
_LEASE = (
    "SELECT env FROM {s}.environments WHERE env = %(env)s AND fence = %(fence)s AND holder IS NOT NULL "
    "AND expires_at > clock_timestamp() FOR KEY SHARE"
)
_BUMP = (
    "INSERT INTO {s}.serials (env, slot, count) SELECT env, %(slot)s, 1 FROM lease "
    "ON CONFLICT (env, slot) DO UPDATE SET count = serials.count + 1"
)
_WRITES = {
    "add_intent": f"""
        WITH lease AS ({_LEASE}),
        written AS (
            INSERT INTO {{s}}.intents (env, id, action, token, created_at)
            SELECT env, %(id)s, %(action)s, %(token)s, {_NOW} FROM lease
            ON CONFLICT (env, id) DO UPDATE
            SET action = excluded.action, token = excluded.token, created_at = excluded.created_at
        )
        SELECT count(*) FROM lease""",
    "record": f"""
        WITH lease AS ({_LEASE}),
        written AS (
            INSERT INTO {{s}}.nodes (env, id, type, provider, provider_id, desired, observed, outputs,
                resource, depends_on, drift, updated_at)
            SELECT env, %(id)s, %(type)s, %(provider)s, %(provider_id)s, %(desired)s, %(observed)s,
                %(outputs)s, %(resource)s, %(depends_on)s, %(drift)s, {_NOW} FROM lease
            ON CONFLICT (env, id) DO UPDATE SET type = excluded.type, provider = excluded.provider,
                provider_id = excluded.provider_id, desired = excluded.desired, observed = excluded.observed,
                outputs = excluded.outputs, resource = excluded.resource, depends_on = excluded.depends_on,
                drift = excluded.drift, updated_at = excluded.updated_at
        ),
        cleared AS (DELETE FROM {{s}}.intents WHERE env IN (SELECT env FROM lease) AND id = %(id)s),
        bumped AS ({_BUMP})
        SELECT count(*) FROM lease""",
    "forget": f"""
        WITH lease AS ({_LEASE}),
        removed AS (DELETE FROM {{s}}.nodes WHERE env IN (SELECT env FROM lease) AND id = %(id)s),
        cleared AS (DELETE FROM {{s}}.intents WHERE env IN (SELECT env FROM lease) AND id = %(id)s),
        bumped AS ({_BUMP})
        SELECT count(*) FROM lease""",
    # the lease's own row is updated (applied_at), which locks it as a writer's check would
    "finish": f"""
        WITH lease AS (
            UPDATE {{s}}.environments SET applied_at = {_NOW}
            WHERE env = %(env)s AND fence = %(fence)s AND holder IS NOT NULL
            AND expires_at > clock_timestamp() RETURNING env
        ),
        dropped AS (
            DELETE FROM {{s}}.runtime WHERE env IN (SELECT env FROM lease)
            AND NOT (service = ANY(%(services)b::text[]))
        ),
        written AS (
            INSERT INTO {{s}}.runtime (env, service, config)
            SELECT lease.env, given.service, given.config
            FROM lease, unnest(%(services)b::text[], %(configs)b::text[]) AS given (service, config)
            ON CONFLICT (env, service) DO UPDATE SET config = excluded.config
            WHERE runtime.config IS DISTINCT FROM excluded.config
        ),
        bumped AS ({_BUMP})
        SELECT count(*) FROM lease""",
}
# arrays go in binary (%(name)b): psycopg's text format quotes each element in Python, 40 times slower
_NODE_COLUMNS = "id, type, provider, provider_id, desired, observed, outputs, resource, depends_on, drift"
_BATCH = f"""
    WITH lease AS ({_LEASE}),
    added AS (
        INSERT INTO {{s}}.intents (env, id, action, token, created_at)
        SELECT lease.env, given.id, given.action, given.token, {_NOW}
        FROM lease, unnest(%(i_id)b::text[], %(i_action)b::text[], %(i_token)b::text[])
            AS given (id, action, token)
        ON CONFLICT (env, id) DO UPDATE
        SET action = excluded.action, token = excluded.token, created_at = excluded.created_at
    ),
    written AS (
        INSERT INTO {{s}}.nodes (env, {_NODE_COLUMNS}, updated_at)
        SELECT lease.env, given.*, {_NOW}
        FROM lease, unnest(
            %(id)b::text[], %(type)b::text[], %(provider)b::text[], %(provider_id)b::text[],
            %(desired)b::text[], %(observed)b::text[], %(outputs)b::text[], %(resource)b::text[],
            %(depends_on)b::text[], %(drift)b::text[]
        ) AS given ({_NODE_COLUMNS})
        ON CONFLICT (env, id) DO UPDATE SET type = excluded.type, provider = excluded.provider,
            provider_id = excluded.provider_id, desired = excluded.desired, observed = excluded.observed,
            outputs = excluded.outputs, resource = excluded.resource, depends_on = excluded.depends_on,
            drift = excluded.drift, updated_at = excluded.updated_at
    ),
    cleared AS (
        DELETE FROM {{s}}.intents WHERE env IN (SELECT env FROM lease) AND id = ANY(%(cleared)b::text[])
    ),
    removed AS (
        DELETE FROM {{s}}.nodes WHERE env IN (SELECT env FROM lease) AND id = ANY(%(forgotten)b::text[])
    ),
    bumped AS (
        INSERT INTO {{s}}.serials (env, slot, count) SELECT env, %(slot)s, 1 FROM lease WHERE %(moves)s
        ON CONFLICT (env, slot) DO UPDATE SET count = serials.count + 1
    )
    SELECT count(*) FROM lease"""
"""Intents, records and forgotten nodes of one environment in one statement (the engine's group commit);
the caller makes the three sets of ids disjoint, as their net effect."""
_SNAPSHOT = """
    SELECT serial.total, n.id, n.type, n.provider, n.provider_id, n.desired, n.observed, {outputs},
        n.resource, n.depends_on, {drift}, {updated_at}
    FROM (SELECT coalesce(sum(count), 0)::bigint AS total FROM {s}.serials WHERE env = %(env)s) AS serial
    LEFT JOIN {s}.nodes AS n ON n.env = %(env)s"""
"""The serial and the records in one statement, so one snapshot; lean leaves out outputs and drift."""
_READS = {
    "serial": "SELECT coalesce(sum(count), 0)::bigint FROM {s}.serials WHERE env = %(env)s",
    "applied_at": "SELECT applied_at FROM {s}.environments WHERE env = %(env)s",
    "nodes": (
        "SELECT id, type, provider, provider_id, desired, observed, outputs, resource, depends_on, drift, "
        "updated_at FROM {s}.nodes WHERE env = %(env)s"
    ),
    "intents": "SELECT id, action FROM {s}.intents WHERE env = %(env)s",
    "runtime": "SELECT service, config FROM {s}.runtime WHERE env = %(env)s",
}
_LEASES = {
    "create": "INSERT INTO {s}.environments (env) VALUES (%(env)s) ON CONFLICT (env) DO NOTHING",
    "current": (
        "SELECT holder, expires_at > clock_timestamp(), extract(epoch FROM clock_timestamp() - acquired_at)"
        "::float8, extract(epoch FROM expires_at - clock_timestamp())::float8 "
        "FROM {s}.environments WHERE env = %(env)s FOR UPDATE"
    ),
    "take": (
        "UPDATE {s}.environments SET fence = greatest(fence, issued) + 1, "
        "issued = greatest(fence, issued) + 1, holder = %(holder)s, "
        "acquired_at = clock_timestamp(), expires_at = clock_timestamp() + make_interval(secs => %(ttl)s) "
        "WHERE env = %(env)s RETURNING fence"
    ),
    "renew": (
        "UPDATE {s}.environments SET expires_at = clock_timestamp() + make_interval(secs => %(ttl)s) "
        "WHERE env = %(env)s AND fence = %(fence)s AND holder IS NOT NULL"
    ),
    "break": (
        "WITH held AS (SELECT env FROM {s}.environments WHERE env = %(env)s FOR UPDATE) "
        "UPDATE {s}.environments AS e SET holder = NULL, acquired_at = NULL, expires_at = NULL "
        "FROM held WHERE e.env = held.env"
    ),
    "release": (
        "WITH held AS (SELECT env FROM {s}.environments WHERE env = %(env)s AND fence = %(fence)s "
        "AND holder IS NOT NULL FOR UPDATE) "
        "UPDATE {s}.environments AS e SET holder = NULL, acquired_at = NULL, expires_at = NULL "
        "FROM held WHERE e.env = held.env"
    ),
}


_TRANSFER = {
    "environment": "SELECT greatest(fence, issued), applied_at FROM {s}.environments WHERE env = %(env)s",
    "intents": "SELECT id, action, token FROM {s}.intents WHERE env = %(env)s",
    "held": (
        "UPDATE {s}.environments SET applied_at = %(applied_at)s, "
        "issued = greatest(fence, issued, %(issued)s) WHERE env = %(env)s AND fence = %(fence)s "
        "AND holder IS NOT NULL AND expires_at > clock_timestamp() RETURNING env"
    ),
    "clear nodes": "DELETE FROM {s}.nodes WHERE env = %(env)s",
    "clear intents": "DELETE FROM {s}.intents WHERE env = %(env)s",
    "clear runtime": "DELETE FROM {s}.runtime WHERE env = %(env)s",
    "nodes": (
        "COPY {s}.nodes (env, id, type, provider, provider_id, desired, observed, outputs, resource, "
        "depends_on, drift, updated_at) FROM STDIN"
    ),
    "intent": (
        f"INSERT INTO {{s}}.intents (env, id, action, token, created_at) "
        f"VALUES (%(env)s, %(id)s, %(action)s, %(token)s, {_NOW})"
    ),
    "runtime": "INSERT INTO {s}.runtime (env, service, config) VALUES (%(env)s, %(service)s, %(config)s)",
    # the serial becomes max(wanted, serial + 1): the difference goes to this connection's counter
    "serial": (
        "WITH total AS (SELECT coalesce(sum(count), 0) AS now FROM {s}.serials WHERE env = %(env)s) "
        "INSERT INTO {s}.serials (env, slot, count) "
        "SELECT %(env)s, %(slot)s, greatest(%(serial)s, now + 1) - now FROM total "
        "ON CONFLICT (env, slot) DO UPDATE SET count = serials.count + excluded.count"
    ),
}


class PostgresStore:
    """State of every environment of one app, in one schema of a PostgreSQL database."""

    def __init__(self, url: str, root: Path) -> None:
        self.location = locate(url, root)
        schema = sql.Identifier(self.location.schema).as_string(None)

        def statement(text: str) -> bytes:
            return text.replace("{s}", schema).encode()

        self._writes = {name: statement(text) for name, text in _WRITES.items()}
        self._reads = {name: statement(text) for name, text in _READS.items()}
        self._leases = {name: statement(text) for name, text in _LEASES.items()}
        self._transfer = {name: statement(text) for name, text in _TRANSFER.items()}
        self._batch = statement(_BATCH)
        self._snapshots = {
            lean: statement(
                _SNAPSHOT.replace("{outputs}", "'{}'" if lean else "n.outputs")
                .replace("{drift}", "'[]'" if lean else "n.drift")
                .replace("{updated_at}", "0.0::float8" if lean else "n.updated_at")
            )
            for lean in (False, True)
        }
        self._quoted = schema
        self._pool = _Pool(self._connect, POOL_SIZE)
        self._migrate()

    def __repr__(self) -> str:
        return f"PostgresStore({self.location})"

    def _connect(self) -> psycopg.Connection[Any]:
        where = self.location
        given = psycopg.conninfo.conninfo_to_dict(where.conninfo)
        options: dict[str, Any] = {}
        if "connect_timeout" not in given and "PGCONNECT_TIMEOUT" not in os.environ:
            options["connect_timeout"] = 10
        if "application_name" not in given and "PGAPPNAME" not in os.environ:
            options["application_name"] = "skyrig state"
        for name, value in KEEPALIVES.items():  # a server that vanished is noticed within about 30 s
            if name not in given:
                options[name] = value
        try:
            connection = psycopg.connect(where.conninfo, autocommit=True, **options)
        except psycopg.Error as error:
            raise explained(error, where, "connecting", connecting=True) from None
        try:
            connection.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}".encode())
        except psycopg.Error as error:
            connection.close()
            raise explained(error, where, "connecting") from None
        return connection

    def _run(
        self,
        doing: str,
        work: Callable[[psycopg.Connection[Any], int], T],
        retry: bool | Callable[[], bool] = True,
    ) -> T:
        """``work(connection, slot)`` on a pooled connection. A connection that was idle in the pool and
        is found broken (the server restarted, say) is replaced, and the work done again once if
        ``retry`` says it may be (the work is idempotent, or, asked when it failed, changed nothing)."""
        while True:
            slot, connection, reused = self._pool.get()
            try:
                result = work(connection, slot)
            except psycopg.Error as error:
                broken = connection.closed or connection.broken
                if broken:
                    self._pool.discard(slot, connection)
                else:
                    self._pool.put(slot, connection)
                if broken and reused and (retry() if callable(retry) else retry):
                    retry = False
                    continue
                raise explained(error, self.location, doing) from None
            except BaseException:  # Locked, StateUnusable, an interrupt: the pool keeps it only if idle
                self._pool.put(slot, connection)
                raise
            self._pool.put(slot, connection)
            return result

    def _migrate(self) -> None:
        where = self.location

        def migrate(db: psycopg.Connection[Any], slot: int) -> None:
            exists, usable, has_meta = db.execute(
                "SELECT n.oid IS NOT NULL, n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE'), "
                "to_regclass(%s) IS NOT NULL "
                "FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = %s",
                (f"{self._quoted}.meta", where.schema),
            ).fetchone() or (False, False, False)
            if exists and not usable:
                raise denied(where, f"permission denied for schema {where.schema}")
            version = self._version(db) if has_meta else 0
            if exists and not has_meta:
                self._refuse_foreign(db)
            if version == SCHEMA_VERSION:
                return  # nothing written: a role that only reads state can open it
            with db.transaction():
                db.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"skyrig state {where.schema}",)
                )
                if not exists:
                    db.execute(f"CREATE SCHEMA IF NOT EXISTS {self._quoted}".encode())
                meta = f"{self._quoted}.meta (key text PRIMARY KEY, value text NOT NULL)"
                db.execute(f"CREATE TABLE IF NOT EXISTS {meta}".encode())
                version = self._version(db)  # again, under the lock: another process may have migrated
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    db.execute(MIGRATIONS[step].replace("{s}", self._quoted).encode())
                db.execute(
                    f"INSERT INTO {self._quoted}.meta VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value".encode(),
                    (str(SCHEMA_VERSION),),
                )

        self._run("opening state", migrate, retry=False)

    def _version(self, db: psycopg.Connection[Any]) -> int:
        where = self.location
        row = db.execute(
            f"SELECT value FROM {self._quoted}.meta WHERE key = 'schema_version'".encode()
        ).fetchone()
        found = row[0] if row else "0"
        try:
            version = int(found)
        except ValueError:
            raise StateUnusable(
                f"state: {where} has state schema version {found!r}, which no skyrig writes",
                "restore the schema from a backup, or name another schema in the state URL and rebuild state "
                "from the cloud: skyrig state recover --env ENV",
            ) from None
        if version > SCHEMA_VERSION:
            raise StateUnusable(
                f"state: {where} has state schema version {version}, newer than this skyrig-state-postgres's "
                f"({SCHEMA_VERSION}): a newer skyrig wrote it",
                "upgrade skyrig-state-postgres (pip install -U skyrig-state-postgres) to the version that "
                "wrote it; this one changed nothing in the schema",
            )
        return version

    def _refuse_foreign(self, db: psycopg.Connection[Any]) -> None:
        tables = [
            row[0]
            for row in db.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1",
                (self.location.schema,),
            )
        ]
        if tables:
            raise StateUnusable(
                f"state: schema {self.location.schema!r} of {self.location} is not skyrig state (it holds "
                f"{', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}, and no skyrig schema version)",
                "name another schema in the state URL (?schema=NAME): skyrig writes nothing into this one",
            )

    def close(self) -> None:
        self._pool.close()

    # -- reading --------------------------------------------------------------------------------

    def _read(self, name: str, env: str) -> list[Any]:
        statement = self._reads[name]
        return self._run(
            f"reading state of {env!r}", lambda db, slot: db.execute(statement, {"env": env}).fetchall()
        )

    @contextmanager
    def _decoding(self) -> Iterator[None]:
        try:
            yield
        except (ValueError, TypeError) as error:  # a record that does not decode: someone edited the table
            raise StateUnusable(
                f"state: a record of {self.location} does not decode ({error})",
                "restore the schema from a backup, or rebuild state from the cloud: skyrig state recover "
                "--env ENV",
            ) from None

    def serial(self, env: str) -> int:
        return int(self._read("serial", env)[0][0])

    def applied_at(self, env: str) -> float | None:
        rows = self._read("applied_at", env)
        return rows[0][0] if rows else None

    def nodes(self, env: str) -> dict[str, NodeRecord]:
        rows = self._read("nodes", env)
        with self._decoding():
            return self._records(rows)

    @staticmethod
    def _records(rows: list[Any], lean: bool = False) -> dict[str, NodeRecord]:
        """Records from rows of ``id, type, provider, provider_id, desired, observed, outputs, resource,
        depends_on, drift, updated_at``. Decoding JSON is most of a read's time: each column is decoded
        in one call for all rows, and what needs none is not (an empty list; ``lean``'s outputs and
        drift, which are empty)."""

        def column(index: int) -> list[Any]:
            return json.loads("[" + ",".join(row[index] for row in rows) + "]")

        def lists(index: int) -> list[list[Any]]:
            texts = [row[index] for row in rows]
            if all(text == "[]" for text in texts):
                return [[] for _ in texts]
            return json.loads("[" + ",".join(texts) + "]")

        desired, observed, depends_on = column(4), column(5), lists(8)
        outputs: list[Any] = [{} for _ in rows] if lean else column(6)
        drift = [[] for _ in rows] if lean else lists(9)
        return {
            row[0]: NodeRecord(
                row[0],
                row[1],
                row[2],
                row[3],
                desired[index],
                observed[index],
                outputs[index],
                row[7],
                depends_on[index],
                drift[index],
                row[10],
            )
            for index, row in enumerate(rows)
        }

    def intents(self, env: str) -> dict[str, str]:
        return dict(self._read("intents", env))

    def runtime_configs(self, env: str) -> dict[str, dict[str, Any]]:
        rows = self._read("runtime", env)
        with self._decoding():
            return {service: json.loads(config) for service, config in rows}

    # -- the lease ------------------------------------------------------------------------------

    def acquire(self, env: str, holder: str, ttl: float) -> int:
        """Take the environment's lease, or raise :class:`Locked`; returns the fence for later writes."""
        statements = self._leases
        params = {"env": env, "holder": holder, "ttl": float(ttl)}

        committing = [False]

        def take(db: psycopg.Connection[Any], slot: int) -> int:
            committing[0] = False
            with db.transaction():
                db.execute(statements["create"], params)
                row = db.execute(statements["current"], params).fetchone()
                assert row is not None
                current, held, age, left = row
                if current is not None and held:
                    now = time.time()  # the server's clock says how long; this machine's, when
                    raise Locked(env, current, now - age, now + left)
                fence = db.execute(statements["take"], params).fetchone()
                committing[0] = True
            assert fence is not None
            return int(fence[0])

        # retried only if the connection broke before the commit was sent (the server then rolled the
        # transaction back): had a commit got through, a second attempt would find the lease held, by us
        return self._run(f"taking the lock on environment {env!r}", take, retry=lambda: not committing[0])

    def renew(self, env: str, fence: int, ttl: float) -> bool:
        """Extend the lease held with ``fence``; False if it was lost. A renewal that cannot reach the
        server is no loss (True): the next heartbeat tries again, and writes stay fenced by the server."""
        statement = self._leases["renew"]
        params = {"env": env, "fence": fence, "ttl": float(ttl)}
        try:
            return self._run(
                f"renewing the lock on environment {env!r}",
                lambda db, slot: db.execute(statement, params).rowcount == 1,
            )
        except StateUnusable:
            return True

    def release(self, env: str, fence: int) -> None:
        statement = self._leases["release"]
        params = {"env": env, "fence": fence}
        try:
            self._run(
                f"releasing the lock on environment {env!r}", lambda db, slot: db.execute(statement, params)
            )
        except StateUnusable as error:
            raise StateUnusable(
                f"{error.message}; the lock on environment {env!r} stays until it expires by itself",
                error.hint,
            ) from None

    # -- the engine's group commit and one-snapshot reads (optional protocols) ------------------

    def write_batch(
        self,
        env: str,
        fence: int,
        *,
        intents: Sequence[tuple[str, str, str]] = (),
        records: Sequence[NodeRecord] = (),
        forgotten: Sequence[str] = (),
    ) -> None:
        """The intents, then the records, then the forgotten nodes, as one statement: one transaction,
        fenced, the serial moved once if a record or a forgotten node is in it."""
        by_id = {node.id: node for node in records}  # a node recorded twice: its last record
        gone = set(forgotten)
        kept = [node for node_id, node in by_id.items() if node_id not in gone]
        intended = {node_id: (action, token) for node_id, action, token in intents}
        intended = {i: at for i, at in intended.items() if i not in by_id and i not in gone}
        dumps = json.dumps
        self._write(
            "batch",
            env,
            fence,
            {
                "i_id": list(intended),
                "i_action": [action for action, _ in intended.values()],
                "i_token": [token for _, token in intended.values()],
                "id": [n.id for n in kept],
                "type": [n.type for n in kept],
                "provider": [n.provider for n in kept],
                "provider_id": [n.provider_id for n in kept],
                "desired": [dumps(n.desired, sort_keys=True) for n in kept],
                "observed": [dumps(n.observed, sort_keys=True) for n in kept],
                "outputs": [dumps(n.outputs, sort_keys=True) for n in kept],
                "resource": [n.resource for n in kept],
                "depends_on": [dumps(n.depends_on) for n in kept],
                "drift": [dumps(n.drift) for n in kept],
                "cleared": sorted(set(by_id) | gone),
                "forgotten": sorted(gone),
                "moves": bool(by_id or gone),
            },
        )

    def snapshot(self, env: str, *, lean: bool = False) -> tuple[int, dict[str, NodeRecord]]:
        """The serial and every record, read in one statement (one snapshot); ``lean``: without the
        records' outputs and drift (empty) and ``updated_at`` (0)."""
        statement = self._snapshots[lean]
        rows = self._run(
            f"reading state of {env!r}", lambda db, slot: db.execute(statement, {"env": env}).fetchall()
        )
        serial = int(rows[0][0]) if rows else 0
        with self._decoding():
            return serial, self._records([row[1:] for row in rows if row[1] is not None], lean)

    # -- moving state between stores (skyrig state migrate, skyrig state unlock --force) ----------

    def export(self, env: str) -> EnvironmentState:
        """Everything ``env`` holds but its lease, read in one snapshot."""
        from skyrig.state import EnvironmentState

        statements = self._transfer

        def read(db: psycopg.Connection[Any], slot: int) -> EnvironmentState:
            db.autocommit = False
            db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                with db.transaction():
                    db.execute("SET TRANSACTION READ ONLY")
                    environment = db.execute(statements["environment"], {"env": env}).fetchone()
                    rows = db.execute(self._reads["nodes"], {"env": env}).fetchall()
                    intents = db.execute(statements["intents"], {"env": env}).fetchall()
                    runtime = db.execute(self._reads["runtime"], {"env": env}).fetchall()
                    serial = db.execute(self._reads["serial"], {"env": env}).fetchone()
                db.commit()
            finally:
                db.autocommit = True
                db.isolation_level = None
            fence, applied_at = environment or (0, None)
            with self._decoding():
                return EnvironmentState(
                    nodes=self._records(rows),
                    intents={node_id: (action, token) for node_id, action, token in intents},
                    runtime={service: json.loads(config) for service, config in runtime},
                    applied_at=applied_at,
                    serial=int(serial[0]) if serial else 0,
                    fence=int(fence),
                )

        return self._run(f"exporting state of {env!r}", read)

    def load(self, env: str, fence: int, state: EnvironmentState) -> None:
        """Make ``env`` hold exactly ``state`` (but its lease), in one fenced transaction."""
        statements = self._transfer
        params = {"env": env, "fence": fence, "applied_at": state.applied_at, "issued": state.fence}
        dumps = json.dumps

        def load(db: psycopg.Connection[Any], slot: int) -> bool:
            with db.transaction():
                if db.execute(statements["held"], params).fetchone() is None:
                    return False
                for clear in ("clear nodes", "clear intents", "clear runtime"):
                    db.execute(statements[clear], params)
                with db.cursor().copy(statements["nodes"]) as copy:
                    for node in state.nodes.values():
                        copy.write_row(
                            (
                                env,
                                node.id,
                                node.type,
                                node.provider,
                                node.provider_id,
                                dumps(node.desired, sort_keys=True),
                                dumps(node.observed, sort_keys=True),
                                dumps(node.outputs, sort_keys=True),
                                node.resource,
                                dumps(node.depends_on),
                                dumps(node.drift),
                                node.updated_at,
                            )
                        )
                with db.cursor() as cursor:
                    cursor.executemany(
                        statements["intent"],
                        [
                            {"env": env, "id": node_id, "action": action, "token": token}
                            for node_id, (action, token) in state.intents.items()
                        ],
                    )
                    cursor.executemany(
                        statements["runtime"],
                        [
                            {"env": env, "service": service, "config": dumps(config, sort_keys=True)}
                            for service, config in state.runtime.items()
                        ],
                    )
                db.execute(statements["serial"], {"env": env, "slot": slot, "serial": state.serial})
            return True

        if not self._run(f"loading state into {env!r}", load):
            raise self._lost(env)

    def break_lease(self, env: str) -> None:
        """End ``env``'s lease, whoever holds it; its fence never writes again."""
        statement = self._leases["break"]
        self._run(
            f"breaking the lock on environment {env!r}", lambda db, slot: db.execute(statement, {"env": env})
        )

    # -- writing (each one statement, fenced) ---------------------------------------------------

    def _write(self, name: str, env: str, fence: int, params: dict[str, Any]) -> None:
        statement = self._batch if name == "batch" else self._writes[name]
        params = {"env": env, "fence": fence, **params}

        def write(db: psycopg.Connection[Any], slot: int) -> int:
            row = db.execute(statement, {**params, "slot": slot}).fetchone()
            return int(row[0]) if row else 0

        if not self._run(f"writing state of {env!r} ({name})", write):
            raise self._lost(env)

    @staticmethod
    def _lost(env: str) -> LeaseLost:
        return LeaseLost(
            f"the lock on environment {env!r} was lost; nothing more is written",
            "another apply may have taken over: run skyrig status to see where things stand",
        )

    def add_intent(self, env: str, fence: int, node_id: str, action: str, token: str) -> None:
        self._write("add_intent", env, fence, {"id": node_id, "action": action, "token": token})

    def record(self, env: str, fence: int, node: NodeRecord) -> None:
        dumps = json.dumps
        self._write(
            "record",
            env,
            fence,
            {
                "id": node.id,
                "type": node.type,
                "provider": node.provider,
                "provider_id": node.provider_id,
                "desired": dumps(node.desired, sort_keys=True),
                "observed": dumps(node.observed, sort_keys=True),
                "outputs": dumps(node.outputs, sort_keys=True),
                "resource": node.resource,
                "depends_on": dumps(node.depends_on),
                "drift": dumps(node.drift),
            },
        )

    def forget(self, env: str, fence: int, node_id: str) -> None:
        self._write("forget", env, fence, {"id": node_id})

    def finish(self, env: str, fence: int, runtime: dict[str, dict[str, Any]]) -> None:
        services = list(runtime)
        configs = [json.dumps(runtime[service], sort_keys=True) for service in services]
        self._write("finish", env, fence, {"services": services, "configs": configs})
