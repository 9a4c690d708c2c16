"""What an interrupted command leaves on the local provider: a crash's temporaries are swept, and an apply
aborted with a second Ctrl-C leaves no ``initdb`` running and no lease behind."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from skyrig.cli.testing import interrupt_twice

FILES = {
    "skyrig.toml": 'app = "bank"\n[env.local]\ntype = "local"\nprovider = "local"\n',
    "ledger/__init__.py": 'from skyrig import Service\nservice = Service("ledger", app="ledger.api:app")\n',
    "ledger/api.py": "app = None\n",
}
SQL = 'from skyrig import SQLDatabase\ndb = SQLDatabase("ledger", migrations="./migrations")\n'
MIGRATION = "CREATE TABLE accounts (id serial PRIMARY KEY);\n"


def _app(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _skyrig(app: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skyrig", *args, "-C", str(app)],
        capture_output=True,
        text=True,
        env={**os.environ, "SKYRIG_RETRY_BASE_MS": "1"},
        timeout=120,
    )


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_crash_s_temporaries_are_swept_and_no_one_else_s(tmp_path):
    app = _app(tmp_path / "bank", FILES)
    env = app / ".skyrig" / "local" / "local"
    dead, live = _dead_pid(), os.getpid()
    gone = [
        env / "services" / f".ledger.json.{dead}.tmp",  # a record being written
        env / f".pubsub.json.{dead}.tmp",  # the topics' definitions
        env / "nats" / f".broker.json.{dead}.tmp",  # the broker's address
        env / "objects" / "receipts" / f"..bucket.json.{dead}.tmp",  # a bucket's settings
    ]
    kept = [
        env / "services" / f".other.json.{live}.tmp",  # a live process is writing it
        env / "services" / "notes.tmp",  # not one of skyrig's names
        env / "objects" / "receipts" / "objects" / f".upload.{dead}.tmp",  # a bucket's own objects
        env / "postgres" / f".x.{dead}.tmp",  # PostgreSQL's folder is PostgreSQL's
    ]
    for path in gone + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half of something")

    result = _skyrig(app, "apply", "--env", "local", "--yes")

    assert result.returncode == 0, result.stderr
    assert [p for p in gone if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []
    assert (env / "services" / "ledger.json").exists()


def _initdb_running(data: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "initdb" and str(data) in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.slow
def test_a_second_ctrl_c_stops_initdb_and_releases_the_lease(tmp_path):
    app = _app(
        tmp_path / "bank",
        {**FILES, "ledger/db.py": SQL, "ledger/migrations/0001_accounts.up.sql": MIGRATION},
    )
    data = (app / ".skyrig" / "local" / "local" / "postgres").resolve()
    apply = subprocess.Popen(
        [sys.executable, "-m", "skyrig", "apply", "--env", "local", "--yes", "-C", str(app)],
        env={**os.environ, "SKYRIG_RETRY_BASE_MS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _initdb_running(data):
            assert apply.poll() is None, apply.communicate()[1]
            assert time.monotonic() < deadline, "initdb never ran"
            time.sleep(0.01)
        err = interrupt_twice(apply)
    finally:
        if apply.poll() is None:
            apply.kill()
    assert apply.returncode == 130, err
    assert "aborted" in err
    time.sleep(0.5)
    assert _initdb_running(data) == [], "initdb went with the apply"
    with sqlite3.connect(app / ".skyrig" / "state.db") as db:
        assert db.execute("SELECT * FROM leases").fetchall() == [], "so did the lease"

    again = _skyrig(app, "apply", "--env", "local", "--yes")  # at once: nothing to wait for
    assert again.returncode == 0, again.stderr
    assert (data / "PG_VERSION").exists()
