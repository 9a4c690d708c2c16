"""skyrig run: provision the local environment, serve each service, stop everything on Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from skyrig.ports import free_ports

APP = """
from skyrig import Secret, Service

service = Service("web", app="web:app")
greeting = Secret("greeting")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"{greeting.value}, world".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "hello"
    (root / "web").mkdir(parents=True)
    (root / "skyrig.toml").write_text('app = "hello"\n[env.local]\ntype = "local"\nprovider = "memory"\n')
    (root / "web" / "__init__.py").write_text(APP)
    subprocess.run(
        [sys.executable, "-m", "skyrig", "secret", "set", "greeting", "--env", "local", "-C", str(root)],
        input="hello",
        text=True,
        check=True,
        capture_output=True,
    )
    return root


def _start(app: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "skyrig", "run", str(app), "--port", str(port), "--dashboard-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().split()
            except OSError:
                continue
            if int(stat[3]) == pid:
                found.append(int(entry.name))
    return found


def test_run_serves_each_service_and_stops_cleanly(app):
    port = free_ports(2)
    runner = _start(app, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    body = response.read().decode()
                break
            except OSError:
                assert runner.poll() is None, runner.communicate()[1]
                assert time.monotonic() < deadline, "the service never answered"
                time.sleep(0.1)
        assert body == "hello, world", "the service read its secret through its runtime config"
        children = _children(runner.pid)
        assert children, "each service runs in a process of its own"
    finally:
        runner.send_signal(signal.SIGINT)
        _, err = runner.communicate(timeout=30)
    assert runner.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in err and "stopped: every service is down" in err
    for child in children:
        assert (
            not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
        )


def test_a_port_in_use_is_named_and_nothing_is_left_running(app):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "skyrig", "run", str(app), "--port", str(port), "--dashboard-port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} for service 'web' is in use; nothing was started" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_service_that_crashes_while_starting_is_reported(app):
    (app / "web" / "__init__.py").write_text(APP + "\nraise RuntimeError('the app is broken')\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "skyrig",
            "run",
            str(app),
            "--port",
            str(free_ports(2)),
            "--dashboard-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "service 'web' exited while starting; everything was stopped" in result.stderr
    assert "RuntimeError: the app is broken" in result.stderr
