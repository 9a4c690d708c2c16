"""skyrig run on the local provider: real PostgreSQL, cron on demand, reload on change, clean stops."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from skyrig.ports import free_ports

API = """
import os

from skyrig import CronJob, SQLDatabase

db = SQLDatabase("notes", migrations="./migrations")


def tidy() -> None:
    with db.connect() as conn:
        conn.execute("INSERT INTO notes (body) VALUES ('tidied')")


CronJob("tidy", title="Tidy", every="1h", endpoint=tidy)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/crash":
        os._exit(3)
    with db.connect() as conn:
        (count,) = conn.execute("SELECT count(*) FROM notes").fetchone()
    body = f"{GREETING} {count}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


GREETING = "notes"
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "notes-app"
    (root / "notes" / "migrations").mkdir(parents=True)
    (root / "skyrig.toml").write_text('app = "notes"\n[env.local]\ntype = "local"\nprovider = "local"\n')
    (root / "notes" / "__init__.py").write_text(
        'from skyrig import Service\n\nservice = Service("notes", app="notes.api:app")\n'
    )
    (root / "notes" / "migrations" / "0001_notes.up.sql").write_text(
        "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);\n"
    )
    (root / "notes" / "api.py").write_text(API)
    return root


def _skyrig(*args: str, **options) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skyrig", *args], capture_output=True, text=True, timeout=120, **options
    )


def _start(app: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "skyrig", "run", str(app), "--port", str(port), "--dashboard-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _get(url: str, runner: subprocess.Popen[str], expect: str | None = None, timeout: float = 60) -> str:
    """The body at ``url`` once the service answers (with ``expect`` in it, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = response.read().decode()
            if expect is None or expect in body:
                return body
        except OSError:
            pass
        assert runner.poll() is None, runner.communicate()[1]
        assert time.monotonic() < deadline, f"{url} never answered{f' with {expect!r}' if expect else ''}"
        time.sleep(0.1)


def _left_behind(app: Path) -> list[str]:
    """Command lines of processes that still mention the app's folder (servers, services)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().split()[2]
            except OSError:
                continue
            if str(app) in command and state != "Z":
                found.append(command)
    return found


def _stop(runner: subprocess.Popen[str]) -> str:
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    return err


def test_run_serves_cron_reloads_and_leaves_nothing_behind(app):
    port = free_ports(3)
    runner = _start(app, port)
    url = f"http://127.0.0.1:{port}/"
    try:
        assert _get(url, runner) == "notes 0", "the migration ran and the service reads its database"

        ran = _skyrig("cron", "run", "tidy", "-C", str(app))
        assert ran.returncode == 0, ran.stderr
        assert "ran in the running service" in ran.stdout
        assert _get(url, runner) == "notes 1", "the cron job's endpoint ran against the same database"

        run_file = json.loads((app / ".skyrig" / "run" / "local.json").read_text())
        forged = urllib.request.Request(
            f"http://127.0.0.1:{port}/__skyrig/cron/tidy",
            method="POST",
            data=b"",
            headers={"x-skyrig-token": "x"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=5)
        assert refused.value.code == 403, "a control request without the run's token is refused"
        assert run_file["token"] not in runner.args

        api = app / "notes" / "api.py"
        api.write_text(api.read_text().replace('GREETING = "notes"', 'GREETING = "changed"'))
        assert _get(url, runner, expect="changed") == "changed 1", "a code change restarts the service"
    finally:
        err = _stop(runner)
    assert "reloaded in" in err
    assert not (app / ".skyrig" / "run" / "local.json").exists()
    assert _left_behind(app) == [], "stopping skyrig run stops every process it started"


def test_a_service_that_crashes_is_restarted_with_its_output(app):
    port = free_ports(3)
    runner = _start(app, port)
    try:
        assert _get(f"http://127.0.0.1:{port}/", runner) == "notes 0"
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/crash", timeout=5)
        assert _get(f"http://127.0.0.1:{port}/", runner) == "notes 0", "the service runs again"
    finally:
        err = _stop(runner)
    assert "service 'notes' stopped (exit code 3); restarting it" in err
    assert "service 'notes' restarted" in err
    assert _left_behind(app) == []


def test_a_service_crashing_too_often_waits_for_a_code_change(app):
    from skyrig.run.runner import RESTARTS

    port = free_ports(3)
    runner = _start(app, port)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(runner.stderr), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}/"

    def said(text: str) -> int:
        return sum(text in line for line in list(lines))

    def crash() -> None:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{url}crash", timeout=5)

    try:
        assert _get(url, runner) == "notes 0"
        for restart in range(1, RESTARTS + 1):
            crash()
            _until(lambda restart=restart: said("service 'notes' restarted") == restart, runner)
            assert _get(url, runner) == "notes 0", f"the service runs again after crash {restart}"
        crash()
        _until(lambda: said("times in a minute; it waits for a code change") == 1, runner)
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=5)
        assert said("service 'notes' restarted") == RESTARTS, "no restart after the last crash"

        api = app / "notes" / "api.py"
        api.write_text(api.read_text().replace('GREETING = "notes"', 'GREETING = "changed"'))
        assert _get(url, runner, expect="changed") == "changed 0", "a code change starts it again"
    finally:
        runner.send_signal(signal.SIGINT)
        runner.wait(timeout=60)
        reader.join(timeout=10)
    assert runner.returncode == 0, "".join(lines)
    assert _left_behind(app) == []


def _until(check: Callable[[], bool], runner: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert runner.poll() is None, "skyrig run ended"
        assert time.monotonic() < deadline, "skyrig run did not say what was expected"
        time.sleep(0.05)


def test_a_missing_secret_is_named_at_startup_and_nothing_starts(app):
    (app / "notes" / "keys.py").write_text(
        'from skyrig import Secret\n\nkey = Secret("mail-key")\n\n\ndef use():\n    return key.value\n'
    )
    result = _skyrig("run", str(app), "--port", str(free_ports(3)), "--dashboard-port", "0")
    assert result.returncode == 1
    assert "secrets that have no value in 'local': mail-key; nothing was started" in result.stderr
    assert "skyrig secret set mail-key --env local" in result.stderr
    assert _left_behind(app) == []


def test_cron_run_without_skyrig_run_uses_the_runtime_config(app):
    applied = _skyrig("apply", "--env", "local", "--yes", "-C", str(app))
    assert applied.returncode == 0, applied.stderr
    ran = _skyrig("cron", "run", "tidy", "-C", str(app))
    assert ran.returncode == 0, ran.stderr
    assert "in a process of its own" in ran.stdout
    unknown = _skyrig("cron", "run", "nope", "-C", str(app))
    assert unknown.returncode == 1
    assert "the app declares no cron job 'nope'" in unknown.stderr and "tidy" in unknown.stderr
    assert _left_behind(app) == [], "the servers a command started stop when it exits"
