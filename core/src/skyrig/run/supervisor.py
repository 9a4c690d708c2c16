"""Running an app's services locally: one uvicorn process per service, each with its runtime config.

Each process is forked from the run's zygote (:mod:`skyrig.run.zygote`), which has already imported
uvicorn and the app's frameworks, or, where that cannot be, started as a fresh interpreter. Everything
started is stopped again: on Ctrl-C, on a service that crashes while starting, and on any error, so that
no process outlives ``skyrig run``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyrig.errors import UserError
from skyrig.ports import port_free
from skyrig.run.zygote import ForkedProcess, Zygote

Entry = tuple[str, str, int, dict[str, str], bool]
"""What starts one process: its name, its ``module:attribute`` app, port, extra environment, factory."""


@dataclass
class Running:
    """One service's process."""

    service: str
    port: int
    process: subprocess.Popen[bytes] | ForkedProcess
    log: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    reader: threading.Thread | None = None
    entry: Entry | None = None
    """How it was started, to start it again."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def server_entry(server: dict[str, Any]) -> Entry:
    """How to start a provider's server (or the dashboard), as ``LocalServers.local_servers`` names it."""
    return (
        server["name"],
        server["app"],
        server["port"],
        server.get("env", {}),
        server.get("factory", False),
    )


class Supervisor:
    """Starts, watches and stops the services of one app."""

    def __init__(
        self,
        root: Path,
        runtime_folder: Path,
        echo: Callable[[str, str], None] | None = None,
        zygote: Zygote | None = None,
    ) -> None:
        self.root = root
        self.runtime_folder = runtime_folder
        self.echo = echo
        """Called with (name, line) for each line a process prints."""
        self.running: list[Running] = []
        self.zygote = zygote
        """The fork server (launched by the caller, early); without one, services are fresh interpreters."""

    def prepare(self, extra: Sequence[str] = ()) -> None:
        """Have the zygote load ``extra`` modules too, while the caller does other work (provisioning)."""
        if self.zygote is not None and extra:
            self.zygote.preload(extra)

    def start(
        self,
        services: Sequence[tuple[str, str, int]],
        *,
        servers: Sequence[dict[str, Any]] = (),
        token: str | None = None,
        early: Sequence[Running] = (),
        timeout: float = 30,
    ) -> list[Running]:
        """Start the providers' ``servers`` and the ``services`` (name, ``module:attribute`` app, port) under
        the service host, with their runtime config and the run's control ``token``; wait until each
        (and each of ``early``, started before by :meth:`spawn`) accepts connections."""
        if importlib.util.find_spec("uvicorn") is None:
            raise UserError("skyrig run needs uvicorn to serve the apps", "pip install uvicorn")
        plan = [server_entry(server) for server in servers]
        plan += [
            (
                name,
                "skyrig.runtime.host:create",
                port,
                {
                    "SKYRIG_RUNTIME_CONFIG": str(self.runtime_folder / f"{name}.json"),
                    "SKYRIG_SERVICE_APP": app,
                    **({"SKYRIG_CONTROL_TOKEN": token} if token else {}),
                },
                True,
            )
            for name, app, port in services
        ]
        for name, app, port, _, _ in plan:
            if not port_free(port):
                what = "service" if app == "skyrig.runtime.host:create" else "server"
                raise UserError(
                    f"port {port} for {what} {name!r} is in use; nothing was started",
                    "stop what uses it, or pass --port (services) or --dashboard-port to use other ports",
                )
        return self.wait([*early, *self.spawn(plan)], timeout)

    def launch(self, plan: Sequence[Entry], timeout: float = 30) -> list[Running]:
        """Start each entry of ``plan`` and wait until each accepts connections (see :meth:`wait`)."""
        return self.wait(self.spawn(plan), timeout)

    def spawn(self, plan: Sequence[Entry]) -> list[Running]:
        """Start each entry of ``plan``, without waiting for it to answer."""
        started: list[Running] = []
        try:
            for entry in plan:
                started.append(self._spawn(*entry))
        finally:
            self.running.extend(started)
        return started

    def wait(self, started: list[Running], timeout: float = 30) -> list[Running]:
        """Wait until each of ``started`` accepts connections; if one does not, stop them all and say why."""
        deadline = time.monotonic() + timeout
        for item in started:
            while not self._ready(item):
                if item.process.poll() is not None or time.monotonic() > deadline:
                    self._collect(item)
                    self.stop({item.service for item in started})
                    why = "exited" if item.process.returncode is not None else "did not start in time"
                    tail = "\n    ".join(item.log) or "(no output)"
                    stopped = "everything was stopped" if not self.running else "it was stopped"
                    raise UserError(
                        f"service {item.service!r} {why} while starting; {stopped}. "
                        f"Its last output:\n    {tail}",
                        "fix the error above, then run skyrig run again",
                    )
                time.sleep(0.01)
        return started

    def restart(self, item: Running) -> Running:
        """Start the exited ``item`` again as it was started (its output so far is kept)."""
        assert item.entry is not None
        self._collect(item)
        self.running = [other for other in self.running if other is not item]
        (again,) = self.launch([item.entry])
        return again

    def _spawn(self, name: str, app: str, port: int, extra: dict[str, str], factory: bool) -> Running:
        process = self._fork(name, app, port, extra, factory) or self._start_interpreter(
            app, port, extra, factory
        )
        item = Running(name, port, process, entry=(name, app, port, extra, factory))
        reader = threading.Thread(target=self._pump, args=(item,), name=f"skyrig-log-{name}", daemon=True)
        reader.start()
        item.reader = reader
        return item

    def _fork(
        self, name: str, app: str, port: int, extra: dict[str, str], factory: bool
    ) -> ForkedProcess | None:
        """The process forked from the zygote, or None when there is no zygote (said once)."""
        zygote = self.zygote
        if zygote is None or not zygote.wait_ready():
            if zygote is not None and self.echo is not None and zygote.why:
                self.echo("skyrig", f"services start as fresh processes: the fork server {zygote.why}")
                zygote.why = ""
            return None
        try:
            return zygote.fork(name, app, port, extra, factory, self.root)
        except OSError as error:
            if self.echo is not None:
                self.echo("skyrig", f"{error}; starting it as a fresh process")
            return None

    def _start_interpreter(
        self, app: str, port: int, extra: dict[str, str], factory: bool
    ) -> subprocess.Popen[bytes]:
        environment = {
            **os.environ,
            **extra,
            "PYTHONPATH": os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")]),
        }
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
        command += ["--app-dir", str(self.root), "--no-access-log", *(["--factory"] if factory else [])]
        return subprocess.Popen(
            command,
            cwd=self.root,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _pump(self, item: Running) -> None:
        """Keep the last lines of a process's output and pass them on, prefixed with its name."""
        assert item.process.stdout is not None
        for raw in item.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            item.log.append(line)
            if self.echo is not None:
                self.echo(item.service, line)

    def _ready(self, item: Running) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.2)
            return probe.connect_ex(("127.0.0.1", item.port)) == 0

    def _collect(self, item: Running) -> None:
        """Wait (briefly) until the output of an exited process has been read."""
        if item.reader is not None:
            item.reader.join(timeout=2)

    def crashed(self) -> Running | None:
        """A service whose process has exited, if any."""
        return next((item for item in self.running if item.process.poll() is not None), None)

    def stop(self, names: set[str] | None = None, grace: float = 10) -> None:
        """Stop the services ``names`` (default: all): SIGTERM to each one's process group, so that it
        finishes in-flight work, and SIGKILL after ``grace`` seconds."""
        chosen = [item for item in self.running if names is None or item.service in names]
        for item in chosen:
            if item.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(item.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for item in chosen:
            try:
                item.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(item.process.pid, signal.SIGKILL)
                item.process.wait()
            self._collect(item)
        self.running = [item for item in self.running if item not in chosen]
        if names is None and self.zygote is not None:
            self.zygote.close()
            self.zygote = None
