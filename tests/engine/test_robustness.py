"""Crashes at every step boundary, transient errors and throttling, concurrent applies, stale plans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from skyrig.cli.testing import interrupt_twice

from .conftest import cloud, run_process

NODES = 20  # the shop's graph on the memory provider: 20 nodes, so a first apply makes 20 creates


def _converged(app, skyrig, env: str = "dev") -> None:
    """After a clean re-apply: every node exists exactly once, nothing is orphaned, state matches the cloud."""
    result = skyrig("apply", "--env", env, "--yes", "--wait")  # a killed holder's lock expires by itself
    assert result.code == 0, result.err
    inventory = cloud(app).inventory("shop", env)
    per_node = Counter(node for _, _, node in inventory)
    duplicated = {node: count for node, count in per_node.items() if count > 1}
    assert not duplicated, f"duplicated resources: {duplicated}"
    state = json.loads(skyrig("status", "--env", env, "--json").out)
    recorded = {n["id"]: n["provider_id"] for n in state["nodes"]}
    assert set(per_node) == set(recorded), "orphaned: in the cloud but not in state, or the other way round"
    assert {str(rid) for rid, _, _ in inventory} == set(recorded.values())
    assert len(recorded) == NODES and state["pending_intents"] == {}
    assert skyrig("plan", "--env", "dev", "--detailed-exitcode").code == 0


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("call", range(1, NODES + 1))
def test_a_kill_at_any_step_then_a_reapply_converges(app, skyrig, call, when):
    crashed = run_process(
        app,
        "apply",
        "--env",
        "dev",
        "--yes",
        "--parallelism",
        "3",
        env={f"SKYRIG_ENV__DEV__MEMORY__CRASH_{when.upper()}_CALL": str(call), "SKYRIG_LOCK_TTL": "0.5"},
    )
    assert crashed.returncode == 137, crashed.stderr
    _converged(app, skyrig)


def test_the_crash_switch_covers_every_call(app):
    beyond = run_process(
        app,
        "apply",
        "--env",
        "dev",
        "--yes",
        env={"SKYRIG_ENV__DEV__MEMORY__CRASH_AFTER_CALL": str(NODES + 1)},
    )
    assert beyond.returncode == 0, "a first apply makes exactly NODES mutating calls"


def test_transient_errors_and_throttling_are_retried(app, skyrig, monkeypatch):
    monkeypatch.setenv("SKYRIG_ENV__DEV__MEMORY__ERROR_RATE", "0.2")
    monkeypatch.setenv("SKYRIG_ENV__DEV__MEMORY__THROTTLE_RATE", "0.1")
    result = skyrig("apply", "--env", "dev", "--yes")
    assert result.code == 0, result.err
    assert "retried call(s)" in result.err
    monkeypatch.delenv("SKYRIG_ENV__DEV__MEMORY__ERROR_RATE")
    monkeypatch.delenv("SKYRIG_ENV__DEV__MEMORY__THROTTLE_RATE")
    _converged(app, skyrig)  # lost responses on creates made no duplicate either


def _wait_for_lock(app, timeout: float = 20) -> None:
    from skyrig.state.sqlite import SQLiteStore

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (app / ".skyrig" / "state.db").exists():
            store = SQLiteStore(app / ".skyrig" / "state.db")
            try:
                held = store._db.execute("SELECT holder FROM leases WHERE env = 'dev'").fetchone()
            finally:
                store.close()
            if held:
                return
        time.sleep(0.05)
    raise AssertionError("the first apply never took the lock")


def test_two_applies_one_proceeds_and_a_killed_holders_lock_expires(app, skyrig, monkeypatch):
    slow = _slow_apply(app, parallelism=1, ttl=3)
    try:
        _wait_for_lock(app)
        second = skyrig("apply", "--env", "dev", "--yes")
        assert second.code == 1
        assert "environment 'dev' is locked by" in second.err and " since " in second.err
        assert f"pid {slow.pid}" in second.err, "the message names the holder"
        time.sleep(3.5)  # longer than the TTL: the heartbeat keeps a live holder's lock
        assert skyrig("apply", "--env", "dev", "--yes").code == 1
        slow.send_signal(signal.SIGKILL)  # the holder dies without releasing anything
        slow.wait()
    finally:
        if slow.poll() is None:
            slow.kill()
    monkeypatch.setenv("SKYRIG_LOCK_TTL", "3")
    waited = skyrig("apply", "--env", "dev", "--yes", "--wait")
    assert waited.code == 0, waited.err
    _converged(app, skyrig)


def test_a_saved_plan_on_moved_state_is_refused(app, skyrig, tmp_path):
    saved = tmp_path / "dev.plan"
    assert skyrig("plan", "--env", "dev", "--out", str(saved)).code == 0
    assert skyrig("apply", "--env", "local", "--yes").code == 0, (
        "another environment does not move dev's state"
    )
    stale = tmp_path / "stale.plan"
    stale.write_text(saved.read_text())

    assert skyrig("apply", "--env", "dev", str(saved)).code == 0, "a saved plan is applied as it is"
    refused = skyrig("apply", "--env", "dev", str(stale))

    assert refused.code == 1
    assert "state of environment 'dev' has changed since the plan was made" in refused.err
    assert "nothing was applied" in refused.err
    assert len(cloud(app).inventory("shop", "dev")) == NODES


def _records(app) -> int:
    from skyrig.state.sqlite import SQLiteStore

    if not (app / ".skyrig" / "state.db").exists():
        return 0
    store = SQLiteStore(app / ".skyrig" / "state.db")
    try:
        return len(store.nodes("dev"))
    finally:
        store.close()


def _slow_apply(app, *, parallelism: int = 2, ttl: float = 1) -> subprocess.Popen:
    """An apply in its own process, 400 ms a call, with a short-lived lock."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skyrig",
            "apply",
            "--env",
            "dev",
            "--yes",
            "--parallelism",
            str(parallelism),
            "-C",
            str(app),
        ],
        env={**os.environ, "SKYRIG_ENV__DEV__MEMORY__LATENCY_MS": "400", "SKYRIG_LOCK_TTL": str(ttl)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_records(app, count: int = 1) -> None:
    deadline = time.monotonic() + 30
    while _records(app) < count:
        assert time.monotonic() < deadline, "the apply recorded nothing"
        time.sleep(0.05)


def test_the_first_ctrl_c_drains_what_is_in_flight(app, skyrig):
    slow = _slow_apply(app)
    _wait_for_records(app)
    slow.send_signal(signal.SIGINT)
    _, err = slow.communicate(timeout=30)
    assert slow.returncode == 130, err
    assert "stopping: waiting for" in err
    assert "stopped:" in err
    state = json.loads(skyrig("status", "--env", "dev", "--json").out)
    assert state["pending_intents"] == {}, "what was in flight finished and was recorded"
    assert 0 < len(state["nodes"]) < NODES
    _converged(app, skyrig)


def test_a_second_ctrl_c_aborts_and_keeps_the_intents(app, skyrig):
    slow = _slow_apply(app)
    _wait_for_records(app)
    err = interrupt_twice(slow, timeout=30)
    assert slow.returncode == 130, err
    assert "aborted: operations in flight keep their intents" in err
    _converged(app, skyrig)
