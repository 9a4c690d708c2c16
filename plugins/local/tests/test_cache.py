"""Local caches: a real Redis server per cluster, its eviction policy real, typed keyspaces with expiry."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from skyrig.cli import main

SERVICE = """
from pydantic import BaseModel
from skyrig import CacheCluster, Service

service = Service("web", app="web:app")
app = None


class Session(BaseModel):
    user: str


sessions_cluster = CacheCluster("sessions", eviction_policy="{policy}")
sessions = sessions_cluster.keyspace("session/{{id}}", value=Session, default_expiry="1s")
counters = sessions_cluster.keyspace("count/{{name}}/{{day}}", value=int)


def use():
    sessions.set("a", Session(user="ada"))
    sessions.get("a")
    sessions.delete("a")
    counters.set("x", 1, value=1)
"""


def _app(tmp_path, policy: str, maxmemory: str = "64mb"):
    app = tmp_path / policy
    (app / "web").mkdir(parents=True)
    (app / "skyrig.toml").write_text(
        f'app = "c"\n[env.local]\ntype = "local"\nprovider = "memory"\ncache = "local"\n'
        f'[env.local.local]\ncache_maxmemory = "{maxmemory}"\n'
    )
    (app / "web" / "__init__.py").write_text(SERVICE.format(policy=policy))
    try:
        main(["apply", "--env", "local", "--yes", "-C", str(app)])
    except SystemExit as done:
        assert not done.code
    return app


def _run(app, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, '.')\n" + textwrap.dedent(code)],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
        env={"SKYRIG_RUNTIME_CONFIG": str(app / ".skyrig/runtime/local/web.json"), "PATH": "/usr/bin:/bin"},
    )


def test_typed_keyspaces_with_expiry(tmp_path):
    app = _app(tmp_path, "allkeys-lfu")
    result = _run(
        app,
        """
        import time
        from web import Session, counters, sessions, sessions_cluster
        from skyrig.runtime.binding import client
        sessions.set("a", Session(user="ada"))
        print(sessions.get("a"))
        counters.set("visits", "mon", 3, expiry="1h")
        print(counters.get(name="visits", day="mon"), counters.get("visits", "tue"))
        time.sleep(1.2)
        print(sessions.get("a"))  # past its default expiry of 1s
        counters.delete("visits", "mon")
        print(counters.get("visits", "mon"))
        print(client(sessions, "get").redis.config_get("maxmemory-policy"))
        try:
            sessions.set("b", "not a session")
        except TypeError as error:
            print(error)
    """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "user='ada'",
        "3 None",
        "None",
        "None",
        "{'maxmemory-policy': 'allkeys-lfu'}",
        "keyspace 'session/{id}' holds Session, not str",
    ]


@pytest.mark.parametrize("policy, evicts", [("allkeys-lru", True), ("noeviction", False)])
def test_the_eviction_policy_is_real(tmp_path, policy, evicts):
    app = _app(tmp_path, policy, maxmemory="2mb")
    result = _run(
        app,
        """
        from web import Session, sessions
        try:
            for i in range(8000):
                sessions.set(str(i), Session(user="x" * 400), expiry="1h")
            # LRU is sampled, so which key goes first is chance: some of the oldest hundred must have gone
            print("all written", any(sessions.get(str(i)) is None for i in range(100)))
        except Exception as error:
            print("refused", type(error).__name__)
    """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("all written True" if evicts else "refused OutOfMemoryError")
