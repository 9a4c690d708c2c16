"""The host's services: one supervised process per deployed service of each environment.

A deployment (a source archive, the service's ``module:attribute`` app and its runtime config) is kept in
the host's store with the port its process listens on (127.0.0.1; the same one again after a restart
when it is free). Each process is ``python -m uvicorn skyrig.runtime.host:create --factory`` in the
source's folder, with a minimal environment: ``PATH``, ``HOME``, ``LANG``, ``PYTHONPATH`` (the source),
``SKYRIG_SERVICE_APP``, ``SKYRIG_RUNTIME_CONFIG`` (inline JSON) and ``SKYRIG_HOSTED_TOKEN`` (the
environment's runtime token), never the host's own variables.

:class:`Services` supervises them: a process that exits is started again after 1 s, 2 s, 4 s ... (at
most 60 s); its last output lines are kept; an environment with no activity (:meth:`Services.touch`: a
proxied request, a cron call) for ``idle_suspend`` seconds has its processes stopped ("suspended") and
:meth:`Services.wake` starts them again. At host start the services of every environment not suspended
start again. With a ``user`` (``serve --service-user``), each process runs as that user and its group,
umask 077, ``HOME`` its own folder ``DATA/homes/<env id>.<service>`` (see :mod:`.isolation`), and
``python`` is the interpreter. A source with a ``requirements.txt`` runs with its own virtual environment's
python instead (:mod:`.venvs`): while it is built the service is "building" (shown as "starting") and its
process starts after; a build that fails leaves it "failed" with pip's last lines. No process outlives
the host: a watchdog process stops them when the host's process ends, however it ends, and a later start
stops those a dead host left (when the pid still names a service of this host's data folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from skyrig.provider import free_port, port_free
from skyrig_hosted.host.isolation import ServiceUser, service_home
from skyrig_hosted.host.processes import WAIT_THEN_KILL
from skyrig_hosted.host.store import Environment, Store, env_label
from skyrig_hosted.host.venvs import Build, RequirementsError, Venvs

log = logging.getLogger("skyrig_hosted.host.services")

__all__ = ["Deployment", "NotDeployed", "ServiceFailed", "Services", "env_label"]

MARKER = "skyrig.runtime.host:create"
"""What every service process's command line holds (how a leftover one is recognised)."""
LOG_LINES = 50
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 60.0
STABLE = 10.0
"""A process up this long has its backoff reset: its next crash is restarted after 1 s again."""
START_TIMEOUT = 30.0
TICK = 0.2
INLINE_CONFIG = 64 * 1024
"""A runtime config longer than this (characters of JSON) is handed over in a file instead."""

RUNNING, SUSPENDED, FAILED, STOPPED = "running", "suspended", "failed", "stopped"
BUILDING = "building"
"""Its app's requirements are being installed (shown as "starting"); the process starts after."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    environment text NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    service text NOT NULL,
    app_ref text NOT NULL,
    source text NOT NULL CHECK (source ~ '^[0-9a-f]{64}$'),
    config jsonb NOT NULL,
    config_sha256 text NOT NULL,
    port integer,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment, service)
);
ALTER TABLE environments ADD COLUMN IF NOT EXISTS suspended boolean NOT NULL DEFAULT false;
ALTER TABLE environments ADD COLUMN IF NOT EXISTS service_uid integer UNIQUE;
"""


class NotDeployed(LookupError):
    """The environment has no deployment of that service."""


class ServiceFailed(RuntimeError):
    """A service's process exited or did not accept connections in time; ``log``: its last output."""

    def __init__(self, message: str, log_lines: list[str]) -> None:
        super().__init__(message)
        self.log = log_lines


def config_digest(config: dict[str, Any]) -> str:
    """The SHA-256 of a runtime config's canonical JSON (what tells a changed deployment)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class Deployment:
    """What runs for one service of one environment."""

    environment: Environment
    service: str
    app_ref: str
    source: str
    config: dict[str, Any]
    config_sha256: str
    port: int | None = None


@dataclass
class _Slot:
    """One service's process and what the supervisor knows of it."""

    deployment: Deployment
    process: subprocess.Popen[bytes] | None = None
    state: str = STOPPED
    ready: bool = False
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    failures: int = 0
    restart_at: float | None = None
    started_at: float = 0.0
    build: Build | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _stop_group(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM to the process's group (it leads its own session), SIGKILL after ``grace`` seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # anything the service left in its group


_WATCHDOG = (
    WAIT_THEN_KILL
    + """
import os, signal, sys
marker, folder = sys.argv[1].encode(), sys.argv[2]
sys.stdin.read()  # returns when the host's process ends, however it ends
def ours():
    found = []
    for name in os.listdir(folder):
        if name.endswith(".pid"):
            try:
                pid = int(open(os.path.join(folder, name)).read().strip())
                if marker in open(f"/proc/{pid}/cmdline", "rb").read():
                    found.append(pid)
            except (OSError, ValueError):
                pass
    return found
pids = ours()
for pid in pids:
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        pass
wait_then_kill(pids, 10, os.killpg)
"""
)


class Services:
    """The supervisor of every environment's service processes (see the module's docstring).

    ``runtime_token(environment)`` gives the environment's runtime token for its processes (the store's
    :meth:`~skyrig_hosted.host.store.Store.runtime_token` by default). :meth:`start` at host start,
    :meth:`close` at its end.
    """

    def __init__(
        self,
        store: Store,
        data: Path,
        *,
        domain: str = "localhost",
        scheme: str = "http",
        port: int | None = None,
        idle_suspend: float = 1800.0,
        runtime_token: Callable[[Environment], str] | None = None,
        user: ServiceUser | None = None,
        python: str | None = None,
        uids: tuple[int, int] | None = None,
    ) -> None:
        self.store = store
        self.user = user
        self.uids = uids if user is not None else None
        self._uids: dict[str, int] = {}
        self.python = python or sys.executable
        self.venvs = Venvs(Path(data), self.python, user)
        self.homes = Path(data) / "homes"
        self.data = Path(data)
        self.sources = self.data / "sources"
        self.run_dir = self.data / "services"
        self.domain = domain
        self.scheme = scheme
        self.port = port
        self.idle_suspend = idle_suspend
        self._runtime_token = runtime_token or store.runtime_token  # type: ignore[attr-defined]
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._lock = threading.Lock()
        self._activity: dict[str, float] = {}
        self._closing = threading.Event()
        self._monitor: threading.Thread | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        with store._transaction() as connection:
            connection.execute("SELECT pg_advisory_xact_lock(17018)")
            connection.execute(SCHEMA)

    # -- addresses ---------------------------------------------------------------------------------------

    def url(self, environment: Environment, service: str) -> str:
        """The service's public address: ``<scheme>://<service>.<envlabel>.<app>.<domain>[:port]``."""
        default = {"http": 80, "https": 443}.get(self.scheme)
        port = f":{self.port}" if self.port and self.port != default else ""
        host = f"{service}.{env_label(environment.name)}.{environment.app}.{self.domain}"
        return f"{self.scheme}://{host.lower()}{port}"

    def route(self, host: str) -> tuple[Environment, str] | None:
        """The environment and service a request's ``Host`` (port stripped) names, or None."""
        host = host.lower().rstrip(".")
        suffix = f".{self.domain.lower()}"
        if not host.endswith(suffix):
            return None
        parts = host[: -len(suffix)].split(".")
        if len(parts) != 3:
            return None
        service, label, app = parts
        with self._lock:
            for (_, name), slot in self._slots.items():
                environment = slot.deployment.environment
                if (
                    name.lower() == service
                    and environment.app == app
                    and env_label(environment.name).lower() == label
                ):
                    return environment, name
        return None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """At host start: stops what a dead host left, starts the watchdog, then every service of the
        environments not suspended (without waiting: :meth:`wake` waits)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.sources.mkdir(parents=True, exist_ok=True)
        self.venvs.prepare()
        self._stop_leftovers()
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, MARKER, str(self.run_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        now = time.monotonic()
        for deployment, suspended in self._load():
            slot = _Slot(deployment, state=SUSPENDED if suspended else STOPPED)
            with self._lock:
                self._slots[self._key(deployment.environment, deployment.service)] = slot
            if not suspended:
                self._activity[deployment.environment.id] = now
                try:
                    self._spawn(slot)
                except Exception as error:  # a source gone, say: said, and the others start
                    log.warning("service %s could not start: %s", deployment.service, error)
        self._monitor = threading.Thread(target=self._watch, name="skyrig-services", daemon=True)
        self._monitor.start()

    def close(self) -> None:
        """At host end: stops every process (their environments are not suspended: the next start
        starts them again) and the watchdog."""
        self._closing.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        with self._lock:
            slots = list(self._slots.values())
        threads = [threading.Thread(target=self._halt, args=(slot, STOPPED)) for slot in slots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._watchdog is not None:
            with contextlib.suppress(OSError):
                self._watchdog.stdin.close()  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=15)
            self._watchdog = None
        self.venvs.close()

    def __enter__(self) -> Services:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the API, the proxy and the cron scheduler call ---------------------------------------------

    def touch(self, environment: Environment) -> None:
        """Activity in ``environment`` (a proxied request, a cron call): its idle clock starts again."""
        self._activity[environment.id] = time.monotonic()

    def wake(self, environment: Environment, service: str, timeout: float = START_TIMEOUT) -> int:
        """The port of ``service``'s process once it accepts connections: a suspended or stopped
        environment's services are started first. :class:`NotDeployed` when it has no deployment,
        :class:`ServiceFailed` when its process fails (or failed and waits for its restart)."""
        slot = self._slot(environment, service)
        self.touch(environment)
        if slot.state != RUNNING:
            if slot.state == FAILED and slot.restart_at is not None and not self._closing.is_set():
                raise ServiceFailed(f"service {service!r} failed; it is restarted shortly", list(slot.log))
            self._resume(environment)
        return self._ready(slot, timeout)

    def ready_port(self, environment: Environment, service: str) -> int | None:
        """The port of ``service``'s process when it runs and accepts connections already (activity
        counted), else None (then :meth:`wake`, which may wait): the proxy's path without a thread."""
        with self._lock:
            slot = self._slots.get(self._key(environment, service))
        if slot is None or slot.state != RUNNING or not slot.ready:
            return None
        process, port = slot.process, slot.deployment.port
        if process is None or process.poll() is not None or port is None:
            return None
        self.touch(environment)
        return int(port)

    def stop_environment(self, environment: Environment) -> None:
        """Stops the environment's processes and forgets them (it is being deleted: its deployments'
        rows go with it)."""
        with self._lock:
            chosen = [key for key in self._slots if key[0] == environment.id]
            slots = [self._slots.pop(key) for key in chosen]
        for slot in slots:
            self._halt(slot, STOPPED)
        self._activity.pop(environment.id, None)
        self._uids.pop(environment.id, None)
        for path in self.run_dir.glob(f"{environment.id}.*.json"):
            path.unlink(missing_ok=True)
        for home in self.homes.glob(f"{environment.id}.*"):
            shutil.rmtree(home, ignore_errors=True)
        self.collect_envs()

    def remove(self, environment: Environment, service: str) -> None:
        """Stops ``service``'s process and forgets its deployment (the service is deleted)."""
        with self._lock:
            slot = self._slots.pop(self._key(environment, service), None)
        if slot is not None:
            self._halt(slot, STOPPED)
        for path in self.run_dir.glob(f"{environment.id}.{service}.*.json"):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.homes / f"{environment.id}.{service}", ignore_errors=True)
        with self.store._transaction() as connection:
            connection.execute(
                "DELETE FROM deployments WHERE environment = %s AND service = %s", (environment.id, service)
            )
        self.collect_envs()

    def suspend(self, environment: Environment) -> None:
        """Stops the environment's processes and marks it suspended (the next :meth:`wake` starts them)."""
        with self.store._transaction() as connection:
            connection.execute("UPDATE environments SET suspended = true WHERE id = %s", (environment.id,))
        for slot in self._slots_of(environment.id):
            self._halt(slot, SUSPENDED)
        log.info("environment %s of app %s suspended (idle)", environment.name, environment.app)

    def deploy(
        self,
        environment: Environment,
        service: str,
        app_ref: str,
        source: str,
        config: dict[str, Any],
        timeout: float = START_TIMEOUT,
    ) -> dict[str, Any]:
        """Records the deployment and (re)starts the service's process when anything changed; answers
        its :meth:`view` with ``changed``, once the process accepts connections (state "running") or
        failed (state "failed" with its log)."""
        digest = config_digest(config)
        key = self._key(environment, service)
        deadline = time.monotonic() + timeout
        build = self._start_build(source)  # its app's requirements (a failed build is tried again)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot(
                    Deployment(environment, service, app_ref, source, config, digest, self._stored_port(key))
                )
                changed = True
            else:
                current = slot.deployment
                was = (current.app_ref, current.source, current.config_sha256)
                changed = was != (app_ref, source, digest)
        if changed:
            with slot.lock:
                port = slot.deployment.port
                deployment = Deployment(environment, service, app_ref, source, config, digest, port)
                serving = slot.state == RUNNING and slot.ready and slot.process is not None
            python = self._prepared(build, timeout) if serving else None
            if python is not None and (self.sources / source).is_dir():
                self._replace(slot, deployment, max(1.0, deadline - time.monotonic()), python)
            else:
                with slot.lock:
                    slot.deployment = deployment
                    self._save(deployment)
                    self._halt(slot, STOPPED)
                    slot.failures, slot.restart_at = 0, None
        if not changed and slot.state == SUSPENDED:  # nothing happens: it wakes on its next request
            return {**self.view(environment, service), "changed": False}
        self.touch(environment)
        if slot.state != RUNNING:
            self._resume(environment)
        with contextlib.suppress(ServiceFailed):
            self._ready(slot, max(0.1, deadline - time.monotonic()))
        self.collect_envs()
        return {**self.view(environment, service), "changed": changed}

    def view(self, environment: Environment, service: str) -> dict[str, Any]:
        """The deployment as the API shows it: service, source, config_sha256, url, state (and the last
        output lines as ``log`` when it failed)."""
        slot = self._slot(environment, service)
        deployment = slot.deployment
        state = slot.state
        if (state == RUNNING and not slot.ready) or state == BUILDING:
            state = "starting"
        shown: dict[str, Any] = {
            "service": service,
            "source": deployment.source,
            "config_sha256": deployment.config_sha256,
            "url": self.url(environment, service),
            "state": state,
            "log": list(slot.log),
        }
        return shown

    def views(self, environment: Environment) -> list[dict[str, Any]]:
        """Every deployment of the environment, by service."""
        names = sorted(slot.deployment.service for slot in self._slots_of(environment.id))
        return [self.view(environment, name) for name in names]

    def collect_envs(self) -> list[str]:
        """Removes the apps' virtual environments no deployment uses (see :mod:`.venvs`)."""
        with self._lock:
            sources = {slot.deployment.source for slot in self._slots.values()}
        try:
            sources |= self.sources_in_use()
            return self.venvs.collect(self.venvs.keys_of(self.sources, sources))
        except Exception:  # a failed round: the next deployment collects
            log.exception("the unused virtual environments could not be collected")
            return []

    def sources_in_use(self) -> set[str]:
        """The source digests some deployment uses."""
        with self.store._transaction() as connection:
            return {row["source"] for row in connection.execute("SELECT DISTINCT source FROM deployments")}

    # -- inside ------------------------------------------------------------------------------------------

    @staticmethod
    def _key(environment: Environment, service: str) -> tuple[str, str]:
        return (environment.id, service)

    def _slot(self, environment: Environment, service: str) -> _Slot:
        with self._lock:
            slot = self._slots.get(self._key(environment, service))
        if slot is None:
            raise NotDeployed(f"service {service!r} of environment {environment.name!r} is not deployed")
        return slot

    def _slots_of(self, environment_id: str) -> list[_Slot]:
        with self._lock:
            return [slot for key, slot in self._slots.items() if key[0] == environment_id]

    def _load(self) -> list[tuple[Deployment, bool]]:
        with self.store._transaction() as connection:
            rows = connection.execute(
                "SELECT e.app, e.name, e.type, e.id, e.suspended, d.service, d.app_ref, d.source, d.config, "
                "d.config_sha256, d.port FROM deployments d JOIN environments e ON e.id = d.environment "
                "ORDER BY e.app, e.name, d.service"
            ).fetchall()
        return [
            (
                Deployment(
                    Environment(row["app"], row["name"], row["type"], row["id"]),
                    row["service"],
                    row["app_ref"],
                    row["source"],
                    row["config"],
                    row["config_sha256"],
                    row["port"],
                ),
                bool(row["suspended"]),
            )
            for row in rows
        ]

    def _stored_port(self, key: tuple[str, str]) -> int | None:
        with self.store._transaction() as connection:
            row = connection.execute(
                "SELECT port FROM deployments WHERE environment = %s AND service = %s", key
            ).fetchone()
        return None if row is None else row["port"]

    def _save(self, deployment: Deployment) -> None:
        with self.store._transaction() as connection:
            connection.execute(
                "INSERT INTO deployments (environment, service, app_ref, source, config, config_sha256, "
                "port) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (environment, service) DO UPDATE SET "
                "app_ref = EXCLUDED.app_ref, source = EXCLUDED.source, config = EXCLUDED.config, "
                "config_sha256 = EXCLUDED.config_sha256, port = EXCLUDED.port, updated_at = now()",
                (
                    deployment.environment.id,
                    deployment.service,
                    deployment.app_ref,
                    deployment.source,
                    Jsonb(deployment.config),
                    deployment.config_sha256,
                    deployment.port,
                ),
            )

    def _resume(self, environment: Environment) -> None:
        """Starts every stopped or suspended service of the environment (not waiting), unsuspended."""
        with self.store._transaction() as connection:
            connection.execute(
                "UPDATE environments SET suspended = false WHERE id = %s AND suspended", (environment.id,)
            )
        for slot in self._slots_of(environment.id):
            with slot.lock:
                if slot.state in (STOPPED, SUSPENDED) or (slot.state == FAILED and slot.restart_at is None):
                    self._spawn(slot)

    def _port(self, slot: _Slot) -> int:
        deployment = slot.deployment
        if deployment.port is None or not port_free(deployment.port):
            deployment.port = free_port()
            with self.store._transaction() as connection:
                connection.execute(
                    "UPDATE deployments SET port = %s WHERE environment = %s AND service = %s",
                    (deployment.port, deployment.environment.id, deployment.service),
                )
        return deployment.port

    def _user(self, environment: Environment) -> ServiceUser | None:
        """The OS user the environment's processes run as: the service user, or with ``uids`` a uid of the
        environment's own (kept in the store; the smallest free one of the range at first)."""
        if self.user is None or self.uids is None:
            return self.user
        uid = self._uids.get(environment.id)
        if uid is None:
            first, last = self.uids
            with self.store._transaction() as connection:
                connection.execute("SELECT pg_advisory_xact_lock(17021)")
                row = connection.execute(
                    "SELECT service_uid FROM environments WHERE id = %s", (environment.id,)
                ).fetchone()
                uid = None if row is None else row["service_uid"]
                if uid is None or not first <= uid <= last:
                    free = connection.execute(
                        "SELECT min(u) AS uid FROM generate_series(%s::integer, %s::integer) AS u "
                        "WHERE NOT EXISTS (SELECT 1 FROM environments WHERE service_uid = u) "
                        "AND NOT EXISTS (SELECT 1 FROM apps WHERE job_uid = u)",  # an app's jobs' uid
                        (first, last),
                    ).fetchone()
                    if free is None or free["uid"] is None:
                        raise RuntimeError(f"every uid of --service-uids {first}-{last} is taken")
                    uid = int(free["uid"])
                    connection.execute(
                        "UPDATE environments SET service_uid = %s WHERE id = %s", (uid, environment.id)
                    )
            self._uids[environment.id] = uid
        return ServiceUser(f"uid {uid}", uid, self.user.gid)

    def _home(self, deployment: Deployment) -> Path | None:
        """The service's own folder (its HOME, its runtime config file) when it runs as another user."""
        user = self._user(deployment.environment)
        if user is None:
            return None
        return service_home(self.data, f"{deployment.environment.id}.{deployment.service}", user)

    def _environ(self, deployment: Deployment, folder: Path, python: str) -> dict[str, str]:
        """The process's whole environment: nothing of the host's own but PATH, HOME and LANG (with the
        app's virtual environment's scripts first when it has one)."""
        home = self._home(deployment)
        path = os.environ.get("PATH", os.defpath)
        return {
            "PATH": path if python == self.python else f"{Path(python).parent}{os.pathsep}{path}",
            "HOME": str(home) if home else os.environ.get("HOME", str(folder)),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONPATH": str(folder),
            "PYTHONUNBUFFERED": "1",
            "SKYRIG_SERVICE_APP": deployment.app_ref,
            "SKYRIG_RUNTIME_CONFIG": self._config_value(deployment),
            "SKYRIG_HOSTED_TOKEN": self._runtime_token(deployment.environment),
        }

    def _config_value(self, deployment: Deployment) -> str:
        """The runtime config as inline JSON, or the path of a file holding it when it is too long for one
        environment variable (the kernel's limit is 128 KiB)."""
        text = json.dumps(deployment.config)
        if len(text) <= INLINE_CONFIG:
            return text
        prefix = f"{deployment.environment.id}.{deployment.service}."
        # as another user: in the service's own folder (DATA/services is the host's alone)
        where = self._home(deployment) or self.run_dir
        path = where / f"{prefix}{deployment.config_sha256}.json"
        for older in where.glob(f"{prefix}*.json"):  # read at its process's start only
            if older != path:
                older.unlink(missing_ok=True)
        if not path.exists():
            # a new file of its own (O_EXCL: never through a link the service may have left in its folder)
            descriptor, name = tempfile.mkstemp(prefix=".config-", dir=where)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
                user = self._user(deployment.environment)
                if user is not None:
                    os.fchown(handle.fileno(), user.uid, user.gid)
            Path(name).replace(path)
        return str(path)

    def _pid_file(self, deployment: Deployment, pid: int) -> Path:
        return self.run_dir / f"{deployment.environment.id}.{deployment.service}.{pid}.pid"

    def _launch(
        self, deployment: Deployment, port: int, lines: deque[str], python: str
    ) -> subprocess.Popen[bytes]:
        """Starts a process of ``deployment`` on ``port`` with ``python``, its output kept in ``lines``."""
        folder = self.sources / deployment.source
        command = [
            python, "-m", "uvicorn", MARKER, "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--app-dir", str(self.sources), "--no-access-log",
        ]  # fmt: skip
        # not the source's own folder: every user reads a command line, and the digest names the code
        # (the app is found through PYTHONPATH and the working folder, which only its user reads)
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=self._environ(deployment, folder, python),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **(user.popen() if (user := self._user(deployment.environment)) else {}),  # type: ignore[arg-type]
        )
        self._pid_file(deployment, process.pid).write_text(f"{process.pid}\n")
        threading.Thread(
            target=self._pump, args=(lines, process), name=f"skyrig-log-{deployment.service}", daemon=True
        ).start()
        return process

    def _replace(self, slot: _Slot, deployment: Deployment, timeout: float, python: str) -> None:
        """Starts ``deployment``'s process beside the slot's serving one, on another port, and puts it in
        the slot once it accepts connections (or failed: then :meth:`_ready` says so), then stops the
        old one: requests are answered all along."""
        lines: deque[str] = deque(maxlen=LOG_LINES)
        port = free_port()
        process = self._launch(deployment, port, lines, python)
        deadline = time.monotonic() + timeout
        while process.poll() is None and not _accepts(port) and time.monotonic() < deadline:
            time.sleep(0.02)
        deployment.port = port
        with slot.lock:
            old, slot.process = slot.process, process
            old_deployment, slot.deployment, slot.log = slot.deployment, deployment, lines
            slot.state, slot.restart_at, slot.failures = RUNNING, None, 0
            slot.ready = process.poll() is None and _accepts(port)
            slot.started_at = time.monotonic()
            self._save(deployment)
        if old is not None:
            _stop_group(old)
            self._pid_file(old_deployment, old.pid).unlink(missing_ok=True)

    def _start_build(self, source: str) -> Build | None:
        """The build of ``source``'s virtual environment (started, or tried again when it failed), or None
        when it has no ``requirements.txt`` (one the host refuses: a build failed already)."""
        folder = self.sources / source
        try:
            key = self.venvs.key(folder, source) if folder.is_dir() else None
        except (RequirementsError, OSError) as error:  # never run without them: a failed build
            refused = Build("", tail=[f"skyrig-hosted: {error}"])
            refused.done.set()
            return refused
        return None if key is None else self.venvs.ensure(key, folder, retry=True)

    def _prepared(self, build: Build | None, timeout: float) -> str | None:
        """The python a deployment runs with once its build is done (waiting up to ``timeout``), else
        None (still building, or failed)."""
        if build is None:
            return self.python
        build.done.wait(timeout)
        return build.python if build.done.is_set() else None

    def _interpreter(self, slot: _Slot) -> str | None:
        """The python the slot's process runs with: the service interpreter, or its app's virtual
        environment's. None while that is built (the slot "building": :meth:`_tick` starts it after) or
        when it could not be (the slot "failed", pip's last lines in its log). Caller holds the lock."""
        deployment = slot.deployment
        folder = self.sources / deployment.source
        try:
            key = self.venvs.key(folder, deployment.source)
        except (RequirementsError, OSError) as error:
            slot.log.append(f"skyrig-hosted: {error}")
            slot.state, slot.restart_at, slot.process, slot.ready = FAILED, None, None, False
            return None
        if key is None:
            return self.python
        build = self.venvs.ensure(key, folder)
        if build.done.is_set() and build.python is not None:
            return build.python
        slot.process, slot.ready, slot.restart_at, slot.build = None, False, None, build
        if build.done.is_set():
            slot.log.extend(build.tail)
            slot.state = FAILED
        elif slot.state != BUILDING:
            slot.log.append(f"skyrig-hosted: installing the app's requirements.txt (env {key[:12]})")
            slot.state = BUILDING
        return None

    def _built(self, slot: _Slot) -> None:
        """A slot whose build ended: its process started, or "failed" with pip's last lines (caller holds
        the slot's lock)."""
        build = slot.build
        if slot.state != BUILDING or build is None or not build.done.is_set():
            return
        slot.build = None
        if build.python is None:
            slot.log.extend(build.tail)
            slot.state, slot.restart_at = FAILED, None
            log.warning("service %s: its requirements could not be installed", slot.deployment.service)
            return
        slot.log.append(f"skyrig-hosted: requirements installed ({build.seconds:.1f} s)")
        slot.state = STOPPED
        self._spawn(slot)

    def _spawn(self, slot: _Slot) -> None:
        """Starts the slot's process (the caller holds its lock or owns it)."""
        with slot.lock:
            deployment = slot.deployment
            folder = self.sources / deployment.source
            if not folder.is_dir():
                slot.state, slot.restart_at = FAILED, None
                slot.log.append(f"skyrig-hosted: the source {deployment.source} is missing on the host")
                return
            python = self._interpreter(slot)
            if python is None:  # its requirements are being installed, or could not be
                return
            slot.process = self._launch(deployment, self._port(slot), slot.log, python)
            slot.state, slot.ready, slot.restart_at = RUNNING, False, None
            slot.started_at = time.monotonic()

    @staticmethod
    def _pump(lines: deque[str], process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.append(raw.decode(errors="replace").rstrip())

    def _halt(self, slot: _Slot, state: str) -> None:
        """Stops the slot's process (if any) and sets its state."""
        with slot.lock:
            process, slot.process = slot.process, None
            slot.ready, slot.restart_at = False, None
            if process is not None:
                _stop_group(process)
                self._pid_file(slot.deployment, process.pid).unlink(missing_ok=True)
            slot.state = state

    def _ready(self, slot: _Slot, timeout: float) -> int:
        """Waits until the slot's process accepts connections; its port."""
        deadline = time.monotonic() + timeout
        while True:
            with slot.lock:
                process, port = slot.process, slot.deployment.port
                if slot.ready and process is not None and process.poll() is None:
                    return int(port)  # type: ignore[arg-type]
                building = slot.state == BUILDING
                if building and time.monotonic() > deadline:
                    name = slot.deployment.service
                    message = f"service {name!r} is still installing its requirements ({timeout:.0f} s)"
                    raise ServiceFailed(message, list(slot.log))
                if building:
                    time.sleep(TICK / 4)
                    continue
                if process is None or process.poll() is not None or slot.state != RUNNING:
                    self._crashed(slot)
                    name = slot.deployment.service
                    raise ServiceFailed(f"service {name!r} exited while starting", list(slot.log))
            if port is not None and _accepts(port):
                with slot.lock:
                    if slot.process is process and process.poll() is None:
                        slot.ready = True
                        return int(port)
            if time.monotonic() > deadline:
                raise ServiceFailed(
                    f"service {slot.deployment.service!r} did not accept connections in {timeout:.0f} s",
                    list(slot.log),
                )
            time.sleep(0.02)

    def _crashed(self, slot: _Slot) -> None:
        """A process that exited: state "failed", its restart scheduled with backoff (caller holds the
        slot's lock)."""
        process = slot.process
        if process is None or process.poll() is None or slot.state != RUNNING:
            return
        time.sleep(0.05)  # its last lines, still in the pipe
        slot.log.append(f"skyrig-hosted: the process exited with status {process.returncode}")
        self._pid_file(slot.deployment, process.pid).unlink(missing_ok=True)
        if time.monotonic() - slot.started_at > STABLE:
            slot.failures = 0
        delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2**slot.failures)
        slot.failures += 1
        slot.process, slot.ready = None, False
        slot.state, slot.restart_at = FAILED, time.monotonic() + delay
        name = slot.deployment.service
        log.warning("service %s exited (%s); restarting in %.0f s", name, process.returncode, delay)

    def _watch(self) -> None:
        """The supervisor's loop: restarts crashed processes when their backoff is over, suspends idle
        environments."""
        while not self._closing.wait(TICK):
            try:
                self._tick()
            except Exception:  # the loop must go on
                log.exception("the services' supervisor failed a round")

    def _tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            slots = list(self._slots.values())
        live: dict[str, Environment] = {}
        starting: set[str] = set()
        for slot in slots:
            with slot.lock:
                if slot.state == BUILDING and not self._closing.is_set():
                    self._built(slot)
                if slot.state == RUNNING and slot.process is not None and slot.process.poll() is not None:
                    self._crashed(slot)
                due = slot.state == FAILED and slot.restart_at is not None and now >= slot.restart_at
                if due and not self._closing.is_set():
                    self._spawn(slot)
                if slot.state in (RUNNING, FAILED, BUILDING):
                    live[slot.deployment.environment.id] = slot.deployment.environment
                if (slot.state == RUNNING and not slot.ready) or slot.state == BUILDING:
                    starting.add(slot.deployment.environment.id)
        if self.idle_suspend > 0:
            for environment_id, environment in live.items():
                last = self._activity.setdefault(environment_id, now)
                if environment_id in starting:  # its idle clock starts once it answers
                    self._activity[environment_id] = now
                elif now - last >= self.idle_suspend:
                    self.suspend(environment)

    def _stop_leftovers(self) -> None:
        """Stops the service processes a dead host left (their pid files in ``DATA/services``), each only
        when its pid still names a service of this data folder."""
        for pid_file in self.run_dir.glob("*.pid"):
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                pid = 0
            command = _command_line(pid) if pid > 0 else b""
            if MARKER.encode() in command and str(self.sources).encode() in command:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while _running(pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
            pid_file.unlink(missing_ok=True)
