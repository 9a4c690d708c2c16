"""A second Ctrl-C aborts an apply at once: the lease goes with it, so the next apply need not wait for it
to expire (30 s by default), and what was in flight keeps its intent."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

from skyrig.cli.testing import interrupt_twice

from .conftest import cloud, run_process


def _slow_apply(app) -> subprocess.Popen:
    """An apply in its own process, 400 ms a call, with the default lock life (30 s)."""
    environ = {k: v for k, v in os.environ.items() if k != "SKYRIG_LOCK_TTL"}
    args = ["apply", "--env", "dev", "--yes", "--parallelism", "2", "-C", str(app)]
    return subprocess.Popen(
        [sys.executable, "-m", "skyrig", *args],
        env={**environ, "SKYRIG_ENV__DEV__MEMORY__LATENCY_MS": "400", "SKYRIG_RETRY_BASE_MS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_ctrl_c_releases_the_lease(app):
    apply = _slow_apply(app)
    try:
        deadline = time.monotonic() + 30
        while not cloud(app).inventory("shop", "dev"):  # the apply is under way
            assert time.monotonic() < deadline and apply.poll() is None, "the apply made nothing"
            time.sleep(0.05)
        err = interrupt_twice(apply, timeout=30)
    finally:
        if apply.poll() is None:
            apply.kill()
    assert apply.returncode == 130, err
    assert "aborted: operations in flight keep their intents" in err
    with sqlite3.connect(app / ".skyrig" / "state.db") as db:
        assert db.execute("SELECT * FROM leases").fetchall() == [], "the lease went with the process"
    started = time.monotonic()
    again = run_process(app, "apply", "--env", "dev", "--yes")  # no --wait: the lock is free
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 20
    inventory = cloud(app).inventory("shop", "dev")
    assert len(inventory) == len({node for _, _, node in inventory}) == 20, "no duplicate"
