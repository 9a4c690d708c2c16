"""Bad inputs a user can cause, each through the real CLI in its own process: a clear error that says where
and what to do, a non-zero exit, no traceback, the lease not left behind, nothing recorded lost.

A full disk is made two ways: a small tmpfs mounted over ``.skyrig`` (needs root, skipped otherwise;
SQLite says ``database or disk is full``), and a limit on the size of the files the process writes
(``RLIMIT_FSIZE``, works for anyone; SQLite says ``disk I/O error``). Permissions are taken away from
root by running it without the capabilities that let it write anywhere (``setpriv``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import cloud, run_process

NODES = 20
TTL = 3  # the lock's life in the full-disk tests, where it may not be released (the disk is full)


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr


def _refused(result: subprocess.CompletedProcess, *expected: str) -> str:
    """The one-line error: exit 1, each of ``expected`` in it, no traceback. Returns the error output."""
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.returncode == 1, out
    for text in expected:
        assert text in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors, result.stderr
    return result.stderr


def _lease(app: Path, env: str = "dev") -> tuple | None:
    with sqlite3.connect(app / ".skyrig" / "state.db") as db:
        return db.execute("SELECT holder, expires_at FROM leases WHERE env = ?", (env,)).fetchone()


def _applied(app: Path, env: str = "dev") -> None:
    _ok(run_process(app, "apply", "--env", env, "--yes"))


def _recorded(app: Path, env: str = "dev") -> dict[str, str]:
    result = run_process(app, "status", "--env", env, "--json")
    _ok(result)
    return {n["id"]: n["provider_id"] for n in json.loads(result.stdout)["nodes"]}


def _converged(app: Path, env: str = "dev") -> dict[str, str]:
    """A re-apply converges: every node once in the cloud, all of it recorded, nothing pending."""
    again = run_process(app, "apply", "--env", env, "--yes", "--wait")
    assert again.returncode == 0, again.stderr
    inventory = cloud(app).inventory("shop", env)
    per_node = Counter(node for _, _, node in inventory)
    assert not {n: c for n, c in per_node.items() if c > 1}, "duplicated resources"
    recorded = _recorded(app, env)
    assert len(recorded) == NODES and set(recorded) == set(per_node)
    assert {str(rid) for rid, _, _ in inventory} == set(recorded.values()), "orphans"
    return recorded


# -- the state database -------------------------------------------------------------------------


def _both_refused(app: Path, *expected: str) -> None:
    _refused(run_process(app, "status", "--env", "dev"), *expected)
    _refused(run_process(app, "apply", "--env", "dev", "--yes"), *expected)


def test_a_state_database_that_is_garbage(app):
    (app / ".skyrig").mkdir()
    (app / ".skyrig" / "state.db").write_bytes(b"this is no database, just text\n" * 10)
    _both_refused(app, ".skyrig/state.db", "is not a skyrig state database", "restore it from a backup")


def test_a_truncated_state_database(app):
    _applied(app)
    path = app / ".skyrig" / "state.db"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _both_refused(app, ".skyrig/state.db", "is damaged", "restore it from a backup")


def test_a_state_database_damaged_inside(app):
    _applied(app)
    path = app / ".skyrig" / "state.db"
    data = path.read_bytes()
    path.write_bytes(data[:4096] + b"\xff" * (len(data) - 4096))  # the header page intact, not the rest
    _both_refused(app, ".skyrig/state.db", "is damaged")


def test_a_state_database_of_an_unknown_schema_version(app):
    _applied(app)
    with sqlite3.connect(app / ".skyrig" / "state.db") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    _both_refused(app, ".skyrig/state.db", "schema version 99", "upgrade skyrig")


def test_a_state_database_of_an_unreadable_schema_version(app):
    _applied(app)
    with sqlite3.connect(app / ".skyrig" / "state.db") as db:
        db.execute("UPDATE meta SET value = 'two' WHERE key = 'schema_version'")
    _both_refused(app, ".skyrig/state.db", "schema version 'two'")


def test_a_database_of_something_else_is_not_taken_for_state(app):
    (app / ".skyrig").mkdir()
    with sqlite3.connect(app / ".skyrig" / "state.db") as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    _both_refused(app, ".skyrig/state.db", "is not a skyrig state database")
    with sqlite3.connect(app / ".skyrig" / "state.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"customers"}, "nothing was written into it"


def test_dot_skyrig_is_a_file(app):
    (app / ".skyrig").write_text("not a folder")
    _both_refused(app, ".skyrig is a file", "move it away")
    assert (app / ".skyrig").read_text() == "not a folder"


def test_a_file_where_skyrig_keeps_a_folder(app):
    (app / ".skyrig").mkdir()
    (app / ".skyrig" / "runtime").write_text("not a folder")  # where runtime configs go, at the end
    err = _refused(run_process(app, "apply", "--env", "dev", "--yes"), ".skyrig/runtime", "move it away")
    assert "Not a directory" in err
    assert _lease(app) is None
    assert len(_recorded(app)) == NODES, "what the apply did is recorded"


def _unprivileged(app: Path, *args: str) -> subprocess.CompletedProcess:
    """Run skyrig as if it were not root: root without the capabilities that let it write anywhere."""
    if os.geteuid() != 0:
        return run_process(app, *args)
    if shutil.which("setpriv") is None:
        pytest.skip("root, and no setpriv to drop its capabilities")
    caps = "-dac_override,-dac_read_search,-fowner"
    import sys

    return subprocess.run(
        ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", sys.executable, "-m", "skyrig", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SKYRIG_RETRY_BASE_MS": "1"},
        cwd=app,
    )


def test_dot_skyrig_not_writable(app):
    _applied(app)
    (app / ".skyrig").chmod(0o555)
    try:
        for args in (("status", "--env", "dev"), ("apply", "--env", "dev", "--yes")):
            _refused(_unprivileged(app, *args), ".skyrig", "is not writable", "chmod")
    finally:
        (app / ".skyrig").chmod(0o755)
    assert _lease(app) is None
    assert len(_recorded(app)) == NODES


def test_dot_skyrig_not_writable_before_any_state(app):
    (app / ".skyrig").mkdir(mode=0o555)
    try:
        _refused(_unprivileged(app, "apply", "--env", "dev", "--yes"), ".skyrig", "is not writable")
    finally:
        (app / ".skyrig").chmod(0o755)


# -- the memory provider's cloud ----------------------------------------------------------------


def test_a_memory_cloud_that_is_garbage(app):
    _applied(app)
    path = app / ".skyrig" / "memory-cloud.db"
    path.write_bytes(b"garbage\n" * 100)
    for args in (("plan", "--env", "dev"), ("apply", "--env", "dev", "--yes")):
        _refused(run_process(app, *args), ".skyrig/memory-cloud.db", "is not a memory cloud database")
    assert _lease(app) is None, "the lease was released"
    assert len(_recorded(app)) == NODES, "state kept what it recorded"


# -- SKYRIG_ variables ------------------------------------------------------------------------------

BAD_VARIABLES = [
    ("SKYRIG_LOCK_TTL", "abc"),
    ("SKYRIG_LOCK_TTL", "0"),
    ("SKYRIG_LOCK_TTL", "-1"),
    ("SKYRIG_LOCK_TTL", "nan"),
    ("SKYRIG_LOCK_TTL", ""),
    ("SKYRIG_RETRY_BASE_MS", "abc"),
    ("SKYRIG_RETRY_BASE_MS", "-5"),
    ("SKYRIG_RETRY_BASE_MS", "inf"),
    ("SKYRIG_CRASH_AFTER_CREATE", "x"),
    ("SKYRIG_CRASH_AFTER_CREATE", "0"),
    ("SKYRIG_CRASH_AFTER_CREATE", "2.5"),
    ("SKYRIG_ENV", "abc"),
    ("SKYRIG_ENV__DEV__MEMORY__LATENCY_MS", "abc"),
    ("SKYRIG_APP", "Not A Name"),
    ("SKYRIG_STATE", "nosuch://x"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_VARIABLES)
def test_a_bad_variable_is_refused_before_anything_happens(app, variable, value):
    err = _refused(run_process(app, "apply", "--env", "dev", "--yes", env={variable: value}), variable)
    assert "plan for" not in err, "refused before planning"
    if (app / ".skyrig" / "state.db").exists():
        assert _lease(app) is None
    assert cloud(app).inventory("shop", "dev") == [], "nothing was created"


def test_bad_variables_are_reported_with_the_rest_of_the_configuration(app):
    (app / "skyrig.toml").write_text((app / "skyrig.toml").read_text() + "\nstat = 'x'\n")
    result = run_process(
        app,
        "check",
        "--env",
        "dev",
        env={"SKYRIG_LOCK_TTL": "abc", "SKYRIG_RETRY_BASE_MS": "-1", "SKYRIG_CRASH_AFTER_CREATE": "soon"},
    )
    err = _refused(result)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 4, err
    assert "error: SKYRIG_LOCK_TTL: 'abc' is not a number of seconds" in err
    assert any(line.startswith("error: SKYRIG_RETRY_BASE_MS: ") for line in errors)
    assert any(line.startswith("error: SKYRIG_CRASH_AFTER_CREATE: ") for line in errors)
    assert any("stat: unknown field" in line for line in errors)


def test_good_variables_pass(app):
    env = {"SKYRIG_LOCK_TTL": "2.5", "SKYRIG_RETRY_BASE_MS": "0", "SKYRIG_CRASH_AFTER_CREATE": ""}
    _ok(run_process(app, "apply", "--env", "dev", "--yes", env=env))


# -- a full disk in the middle of an apply ----------------------------------------------------------


def _nothing_lost(app: Path) -> dict[str, str]:
    """After a failed apply, with room on the disk again: the lease released or expiring by itself.
    Returns what state recorded, which the next apply must keep."""
    lease = _lease(app, "prod")
    assert lease is None or lease[1] <= time.time() + TTL, "the lease is released, or expires"
    return _recorded(app, "prod")


def _full(app: Path, **kwargs) -> subprocess.CompletedProcess:
    """Apply prod on a disk that fills up: the error says which file, and to free space."""
    args = ("apply", "--env", "prod", "--yes", "--parallelism", "2")
    result = run_process(app, *args, env={"SKYRIG_LOCK_TTL": str(TTL)}, **kwargs)
    err = _refused(result)
    assert "free space" in err and ".skyrig/" in err
    return result


def _tmpfs(folder: Path, kilobytes: int) -> None:
    folder.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")


@pytest.fixture
def small_disk(app):
    """``.skyrig`` on a tmpfs that the test fills up (needs root), unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    folder = app / ".skyrig"
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


# this apply of 20 nodes writes about 450 KB (its records committed in groups, a few transactions)
@pytest.mark.parametrize("room", [24, 96, 240, 320])
def test_a_full_disk_mid_apply(app, small_disk, room):
    _tmpfs(small_disk, 2048)
    _applied(app)  # dev takes its share; then prod gets only ``room`` KB more: it fails at some point
    disk = os.statvfs(small_disk)
    used = (disk.f_blocks - disk.f_bfree) * disk.f_frsize // 1024
    remount = ["mount", "-o", f"remount,size={used + room}k", str(small_disk)]
    subprocess.run(remount, check=True)
    result = _full(app)
    said = ("database or disk is full", "disk I/O error", "No space left")
    assert any(text in result.stderr for text in said), result.stderr
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    before = _nothing_lost(app)
    after = _converged(app, "prod")
    assert all(after[node] == rid for node, rid in before.items()), "nothing recorded was lost"


@pytest.mark.parametrize("room", [16, 40, 80])
def test_a_file_size_limit_mid_apply(app, room):
    _applied(app)
    largest = max(p.stat().st_size for p in (app / ".skyrig").rglob("*") if p.is_file())
    limit = largest + room * 1024

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = _full(app, preexec_fn=limited)
    assert "disk I/O error" in result.stderr or "too large" in result.stderr, result.stderr
    before = _nothing_lost(app)
    after = _converged(app, "prod")
    assert all(after[node] == rid for node, rid in before.items()), "nothing recorded was lost"
