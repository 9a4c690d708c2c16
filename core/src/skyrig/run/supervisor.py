"""Running an app's services locally: one uvicorn process per service, each with its runtime config.

Everything started is stopped again: on Ctrl-C, on a service that crashes while starting, and on any
error, so that no process outlives ``skyrig run``.
"""

from __future__ import annotations

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


@dataclass
class Running:
    """One service's process."""

    service: str
    port: int
    process: subprocess.Popen[bytes]
    log: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Supervisor:
    """Starts, watches and stops the services of one app."""

    def __init__(
        self, root: Path, runtime_folder: Path, echo: Callable[[str, str], None] | None = None
    ) -> None:
        self.root = root
        self.runtime_folder = runtime_folder
        self.echo = echo
        """Called with (name, line) for each line a process prints."""
        self.running: list[Running] = []

    def start(
        self,
        services: Sequence[tuple[str, str, int]],
        *,
        servers: Sequence[dict[str, Any]] = (),
        token: str | None = None,
        timeout: float = 30,
    ) -> list[Running]:
        """Start the providers' ``servers`` and the ``services`` (name, ``module:attribute`` app, port) under
        the service host, with their runtime config and the run's control ``token``; wait until each
        accepts connections."""
        try:
            import uvicorn  # noqa: F401 - only to say clearly when it is missing
        except ImportError:
            raise UserError("skyrig run needs uvicorn to serve the apps", "pip install uvicorn") from None
        plan = [
            (
                server["name"],
                server["app"],
                server["port"],
                server.get("env", {}),
                server.get("factory", False),
            )
            for server in servers
        ]
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
                self.stop()
                what = "service" if app == "skyrig.runtime.host:create" else "server"
                raise UserError(
                    f"port {port} for {what} {name!r} is in use; nothing was started",
                    "stop what uses it, or pass --port (services) or --dashboard-port to use other ports",
                )
        started = [self._spawn(*entry) for entry in plan]
        self.running.extend(started)
        deadline = time.monotonic() + timeout
        for item in started:
            while not self._ready(item):
                if item.process.poll() is not None or time.monotonic() > deadline:
                    self._collect(item)
                    self.stop()
                    why = "exited" if item.process.returncode is not None else "did not start in time"
                    tail = "\n    ".join(item.log) or "(no output)"
                    raise UserError(
                        f"service {item.service!r} {why} while starting; everything was stopped. "
                        f"Its last output:\n    {tail}",
                        "fix the error above, then run skyrig run again",
                    )
                time.sleep(0.02)
        return started

    def _spawn(self, name: str, app: str, port: int, extra: dict[str, str], factory: bool) -> Running:
        environment = {
            **os.environ,
            **extra,
            "PYTHONPATH": os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")]),
        }
        command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
        command += ["--app-dir", str(self.root), "--no-access-log", *(["--factory"] if factory else [])]
        process = subprocess.Popen(
            command,
            cwd=self.root,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        item = Running(name, port, process)
        reader = threading.Thread(target=self._pump, args=(item,), name=f"skyrig-log-{name}", daemon=True)
        reader.start()
        item.reader = reader
        return item

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
                os.killpg(item.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for item in chosen:
            try:
                item.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(item.process.pid, signal.SIGKILL)
                item.process.wait()
            self._collect(item)
        self.running = [item for item in self.running if item not in chosen]
