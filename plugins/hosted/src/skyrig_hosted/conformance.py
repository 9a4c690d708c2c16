"""The hosted provider's conformance profile: a host of its own (``skyrig-hosted serve --data TMP --fast``
in a process of its own, on 127.0.0.1 and a free port), with its real PostgreSQL, Redis and object
server. The suite's environments use the host's admin token (each deployment of the suite is an app of
its own, which the provider makes on the host: only the admin token may) and the host for every family,
services and cron jobs included.

The host is started as a command, never imported: the provider (this module included) uses the public
SDK only, as a user's machine would.
"""

from __future__ import annotations

import atexit
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from skyrig_hosted.settings import TOKEN_VARIABLE

START_TIMEOUT = 120.0
"""Seconds a host may take to start its servers and print its API's address."""
_URL = re.compile(r"(https?://[0-9a-zA-Z.:\[\]-]+/v1)\b")

_WATCHDOG = """
import os, shutil, signal, sys, time
sys.stdin.read()  # returns when the test process ends, however it ends
pid, folder = int(sys.argv[1]), sys.argv[2]
try:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
except OSError:
    pass
if folder:
    shutil.rmtree(folder, ignore_errors=True)
"""
"""Stops the host, and removes its data folder, when the test process that started it ends without
stopping it (killed, say): it waits for its standard input to close."""

NOT_HOSTED_YET: tuple[str, ...] = ()
"""The families the host does not run (the suite's environments would hand them to the memory provider):
none, the host runs every family."""


def families() -> dict[str, str]:
    """The families handed to the memory provider."""
    return dict.fromkeys(NOT_HOSTED_YET, "memory")


def settings(url: str) -> dict[str, Any]:
    """Provider settings for the host at ``url``: short waits (it answers on loopback), and services
    provisioned but not deployed: the suite drives the app's subscriptions with consumers of its own, which
    the host running the app's own consumers would race for the messages (and the suite serves a service
    itself where it needs one: cron)."""
    return {"url": url, "max_attempts": 3, "wait_delay": 0.1, "deploy": False}


class Host:
    """``skyrig-hosted serve`` in a process of its own, for tests: :attr:`url` (its API) and
    :attr:`admin_token` once entered; stopped (SIGTERM, then SIGKILL) on exit, its data removed unless it
    was given a folder."""

    def __init__(self, data: Path | None = None, *, fast: bool = True, options: Sequence[str] = ()) -> None:
        self._given = data is not None
        self.data = data or Path(tempfile.mkdtemp(prefix="skyrig-hosted-"))
        self.fast = fast
        self.options = list(options)
        """More ``serve`` options (``--idle-suspend 2``, quotas, ...)."""
        self.url = ""
        self.admin_token = ""
        self.process: subprocess.Popen[str] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []

    def command(self) -> list[str]:
        script = shutil.which("skyrig-hosted", path=str(Path(sys.executable).parent))
        head = [script] if script else [sys.executable, "-m", "skyrig_hosted.host.cli"]
        fast = ["--fast"] * self.fast
        return [*head, "serve", "--data", str(self.data), "--host", "127.0.0.1", *fast, *self.options]

    def __enter__(self) -> Host:
        environ = {k: v for k, v in os.environ.items() if k != TOKEN_VARIABLE}
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=environ,
        )
        atexit.register(self.stop)  # a test process that ends without leaving the block stops it too
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.process.pid), "" if self._given else str(self.data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.url = self._wait_for_url()
            self.admin_token = self._token()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.output.append(line)
            if found := _URL.search(line):
                return found.group(1)
        text = "".join(self.output[-40:])
        raise RuntimeError(f"skyrig-hosted serve printed no API address in {START_TIMEOUT:.0f} s:\n{text}")

    def _token(self) -> str:
        path = self.data / "admin-token"
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return path.read_text().strip()

    def stop(self) -> None:
        """Stop the host (its servers stop with it) and remove its data unless a folder was given."""
        running, self.process = self.process, None
        if running is not None and running.poll() is None:
            running.send_signal(signal.SIGTERM)
            try:
                running.wait(timeout=30)
            except subprocess.TimeoutExpired:
                running.kill()
                running.wait(timeout=10)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:  # the host is stopped: nothing is left for it to do
            watchdog.kill()
            watchdog.wait(timeout=10)
        if not self._given:
            shutil.rmtree(self.data, ignore_errors=True)


def profile_for(host: Host) -> Any:
    """The suite's profile on a running ``host``."""
    from skyrig_conformance import Profile

    return Profile(
        provider="hosted",
        environment_type="preview",
        settings=settings(host.url),
        environ={TOKEN_VARIABLE: host.admin_token},
        families=families(),
    )


@contextmanager
def profile() -> Iterator[Any]:
    """The profile ``skyrig conformance hosted`` uses: a host of its own."""
    with Host() as host:
        yield profile_for(host)
