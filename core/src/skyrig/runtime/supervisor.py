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
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from skyrig.errors import UserError


@dataclass
class Running:
    """One service's process."""

    service: str
    port: int
    process: subprocess.Popen[bytes]
    log: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Supervisor:
    """Starts, watches and stops the services of one app."""

    def __init__(self, root: Path, runtime_folder: Path) -> None:
        self.root = root
        self.runtime_folder = runtime_folder
        self.running: list[Running] = []

    def start(
        self,
        services: list[Any],
        first_port: int,
        *,
        servers: Sequence[dict[str, Any]] = (),
        timeout: float = 30,
    ) -> list[Running]:
        """Start the providers' ``servers`` and every service (``app`` as ``module:attribute``), and
        wait until each accepts connections."""
        try:
            import uvicorn  # noqa: F401 - only to say clearly when it is missing
        except ImportError:
            raise UserError("skyrig run needs uvicorn to serve the apps", "pip install uvicorn") from None
        plan = [(server["name"], server["app"], server["port"], server.get("env", {})) for server in servers]
        plan += [
            (
                service.name,
                service.app,
                first_port + index,
                {"SKYRIG_RUNTIME_CONFIG": str(self.runtime_folder / f"{service.name}.json")},
            )
            for index, service in enumerate(services)
        ]
        for name, app, port, extra in plan:
            if not port_free(port):
                self.stop()
                raise UserError(
                    f"port {port} for service {name!r} is in use; nothing was started",
                    "stop what uses it, or pass --port to start from another port",
                )
            environment = {
                **os.environ,
                **extra,
                "PYTHONPATH": os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")]),
            }
            command = [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--app-dir",
                str(self.root),
                "--no-access-log",
            ]
            process = subprocess.Popen(
                command,
                cwd=self.root,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.running.append(Running(name, port, process))
        deadline = time.monotonic() + timeout
        for item in self.running:
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
                time.sleep(0.05)
        return self.running

    def _ready(self, item: Running) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.2)
            return probe.connect_ex(("127.0.0.1", item.port)) == 0

    def _collect(self, item: Running) -> None:
        stream: IO[bytes] | None = item.process.stdout
        if stream is None:
            return
        os.set_blocking(stream.fileno(), False)
        data = stream.read() or b""
        item.log.extend(data.decode(errors="replace").splitlines()[-20:])

    def crashed(self) -> Running | None:
        """A service whose process has exited, if any."""
        return next((item for item in self.running if item.process.poll() is not None), None)

    def stop(self, grace: float = 5) -> None:
        """Stop every service: SIGTERM to its process group, SIGKILL after ``grace`` seconds."""
        for item in self.running:
            if item.process.poll() is None:
                os.killpg(item.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for item in self.running:
            try:
                item.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(item.process.pid, signal.SIGKILL)
                item.process.wait()
        self.running.clear()
