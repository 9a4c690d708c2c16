"""skyrig run forks each service from its zygote: a reload or a crash restarts only the service concerned,
again forked, and Ctrl-C leaves no process; without fork, services are fresh interpreters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from skyrig.ports import free_ports

API = """
import os

VERSION = "one"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/crash":
        os._exit(3)
    body = f"{VERSION} {os.getpid()} {os.getppid()}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "pair"
    root.mkdir(parents=True)
    (root / "skyrig.toml").write_text('app = "pair"\n[env.local]\ntype = "local"\nprovider = "memory"\n')
    for name in ("alpha", "beta"):
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(
            f'from skyrig import Service\n\nservice = Service("{name}", app="{name}.api:app")\n'
        )
        (root / name / "api.py").write_text(API)
    return root


def _start(app: Path, port: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "skyrig", "run", str(app), "--port", str(port), "--dashboard-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def _answer(
    port: int, runner: subprocess.Popen[str], expect: str = "", timeout: float = 60
) -> tuple[str, int, int]:
    """(version, pid, parent pid) of the service on ``port``, once it answers with ``expect`` in it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                body = response.read().decode()
            if expect in body:
                version, pid, parent = body.split()
                return version, int(pid), int(parent)
        except OSError:
            pass
        assert runner.poll() is None, runner.communicate()[1]
        assert time.monotonic() < deadline, f"port {port} never answered with {expect!r}"
        time.sleep(0.1)


def _command(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid``."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = _parent(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    found, pending = set(), [pid]
    while pending:
        current = pending.pop()
        children = {child for child, parent in parents.items() if parent == current}
        found |= children
        pending.extend(children)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _stop(runner: subprocess.Popen[str]) -> str:
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    return err


def test_services_are_forked_reloaded_and_restarted_one_at_a_time(app):
    port = free_ports(2)
    runner = _start(app, port)
    try:
        _, alpha, zygote = _answer(port, runner)
        _, beta, beta_parent = _answer(port + 1, runner)
        assert beta_parent == zygote, "both services are forked from one process"
        assert "skyrig.run.zygote" in _command(zygote) and _parent(zygote) == runner.pid

        api = app / "alpha" / "api.py"
        api.write_text(api.read_text().replace('VERSION = "one"', 'VERSION = "two"'))
        version, new_alpha, parent = _answer(port, runner, expect="two")
        assert (version, parent) == ("two", zygote), "the changed service is forked again, with the new code"
        assert new_alpha != alpha and not _alive(alpha)
        assert _answer(port + 1, runner)[:2] == ("one", beta), "the service whose code did not change runs on"

        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port + 1}/crash", timeout=5)
        version, restarted, parent = _answer(port + 1, runner)
        assert restarted != beta and parent == zygote, "the crashed service is forked again"
        assert _answer(port, runner)[1] == new_alpha, "a crash restarts only the service that crashed"

        everything = _descendants(runner.pid)
        assert {zygote, new_alpha, restarted} <= everything
    finally:
        err = _stop(runner)
    assert "reloaded in" in err and "(alpha)" in err
    assert "service 'beta' stopped (exit code 3); restarting it" in err
    assert [pid for pid in everything if _alive(pid)] == [], "Ctrl-C stops every process the run started"


def test_without_fork_each_service_is_a_process_of_its_own(app):
    port = free_ports(2)
    runner = _start(app, port, SKYRIG_RUN_FORK="0")
    try:
        _, alpha, parent = _answer(port, runner)
        assert parent == runner.pid and "uvicorn" in _command(alpha)
        api = app / "alpha" / "api.py"
        api.write_text(api.read_text().replace('VERSION = "one"', 'VERSION = "two"'))
        assert _answer(port, runner, expect="two")[2] == runner.pid
        everything = _descendants(runner.pid)
    finally:
        _stop(runner)
    assert [pid for pid in everything if _alive(pid)] == []


def test_a_zygote_whose_imports_start_a_thread_does_not_fork(app, tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    (library / "ticker.py").write_text(
        "import threading, time\n\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
    )
    (app / "alpha" / "api.py").write_text("import ticker  # noqa: F401\n" + API)
    port = free_ports(2)
    runner = _start(app, port, PYTHONPATH=str(library))
    try:
        assert _answer(port, runner)[2] == runner.pid, "forking after a thread started is unsafe: not done"
        assert _answer(port + 1, runner)[2] == runner.pid
    finally:
        err = _stop(runner)
    assert "services start as fresh processes: the fork server its imports started 1 thread(s)" in err
