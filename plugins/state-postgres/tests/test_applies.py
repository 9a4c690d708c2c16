"""The store under the engine: applies through the ``skyrig`` command with ``SKYRIG_STATE`` naming a
schema on a real server. One apply of N nodes costs O(N) small writes, one statement (one transaction)
each, and no write grows with N."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from skyrig.cli.testing import run_cli


def generate(root: Path, buckets: int, app: str = "bench") -> Path:
    """An app of one service and ``buckets`` buckets, on the memory provider (no added latency)."""
    (root / "api").mkdir(parents=True)
    (root / "api" / "__init__.py").write_text(
        'from skyrig import Service\nservice = Service("api", app="api.web:app")\n'
    )
    (root / "api" / "web.py").write_text("app = None\n")
    lines = ["from skyrig import Bucket", ""] + [f'bucket_{i} = Bucket("bucket-{i}")' for i in range(buckets)]
    (root / "api" / "buckets.py").write_text("\n".join(lines) + "\n")
    (root / "skyrig.toml").write_text(
        f'app = "{app}"\n[env.dev]\ntype = "development"\nprovider = "memory"\n'
    )
    return root


class Statements:
    """Every statement the store sends, by the name of what it does, and the largest parameters (in
    bytes of JSON) of each."""

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()
        self.largest: Counter[str] = Counter()
        self.records: dict[str, int] = {}

    def patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = psycopg.Connection.execute

        def execute(connection, query, params=None, **kwargs):
            text = query.decode() if isinstance(query, bytes) else str(query)
            name = _name(text)
            self.names[name] += 1
            if params:
                size = len(json.dumps(params, default=str))
                self.largest[name] = max(self.largest[name], size)
                if name == "record":
                    self.records[params["id"]] = size
            return original(connection, query, params, **kwargs)

        monkeypatch.setattr(psycopg.Connection, "execute", execute)


def _name(text: str) -> str:
    for pattern, name in (
        (r"INSERT INTO \S+\.nodes\b", "record"),
        (r"DELETE FROM \S+\.nodes\b", "forget"),
        (r"INSERT INTO \S+\.intents\b", "add_intent"),
    ):
        if re.search(pattern, text):
            return name
    if "SET applied_at" in text:
        return "finish"
    for word, name in (
        ("SET fence = greatest", "acquire"),
        ("FOR UPDATE) UPDATE", "release"),
        ("SET expires_at", "renew"),
    ):
        if word in text:
            return name
    return "other"


@pytest.fixture
def state(postgres_server, schema, monkeypatch) -> str:
    url = postgres_server.url("state", schema)
    monkeypatch.setenv("SKYRIG_STATE", url)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return url


def _apply(root: Path, capsys, monkeypatch) -> tuple[Statements, int]:
    counted = Statements()
    with monkeypatch.context() as patch:
        counted.patch(patch)
        result = run_cli(["apply", "--env", "dev", "--yes", "-C", str(root)], capsys)
    assert result.code == 0, result.text
    status = run_cli(["status", "--env", "dev", "--json", "-C", str(root)], capsys)
    return counted, len(json.loads(status.out)["nodes"])


def test_an_apply_of_n_nodes_costs_two_small_writes_per_node(tmp_path, state, capsys, monkeypatch):
    seen = []
    for buckets in (20, 80):
        root = generate(tmp_path / f"app{buckets}", buckets)
        monkeypatch.setenv("SKYRIG_STATE", state.replace("?schema=", f"?schema=n{buckets}_"))
        counted, nodes = _apply(root, capsys, monkeypatch)
        writes = {name: counted.names[name] for name in ("add_intent", "record", "forget", "finish")}
        assert writes == {"add_intent": nodes, "record": nodes, "forget": 0, "finish": 1}, counted.names
        assert counted.names["acquire"] == 1 and counted.names["release"] == 1
        seen.append((nodes, counted.largest["add_intent"], counted.records))
    (small, small_intent, small_records), (large, large_intent, large_records) = seen
    assert large > 3 * small and large_intent == small_intent
    # a node's record is its own properties: the same node, the same size (give or take a longer provider
    # id), however many nodes there are; only the service's role grows, its policy naming each bucket
    grown = {n for n in small_records if large_records[n] - small_records[n] > 8}
    assert grown == {"iam.role/api"}, f"writes that grew with the state: {grown}"


def test_apply_plan_and_destroy_through_the_command(tmp_path, state, capsys, monkeypatch):
    root = generate(tmp_path / "app", 5)
    _, nodes = _apply(root, capsys, monkeypatch)
    plan = run_cli(["plan", "--env", "dev", "--json", "-C", str(root)], capsys)
    assert plan.code == 0, plan.text
    assert not [c for c in json.loads(plan.out)["changes"] if c["action"] != "noop"], plan.out
    counted = Statements()
    with monkeypatch.context() as patch:
        counted.patch(patch)
        destroyed = run_cli(["destroy", "--env", "dev", "--include-data", "--yes", "-C", str(root)], capsys)
    assert destroyed.code == 0, destroyed.text
    assert counted.names["forget"] == nodes and counted.names["record"] == 0
    status = run_cli(["status", "--env", "dev", "--json", "-C", str(root)], capsys)
    assert json.loads(status.out)["nodes"] == []


def test_an_unreachable_store_is_one_error_line_from_the_command(tmp_path, capsys, monkeypatch):
    root = generate(tmp_path / "app", 1)
    monkeypatch.setenv("SKYRIG_STATE", "postgresql://skyrig:secret-pw@127.0.0.1:1/state")
    result = run_cli(["status", "--env", "dev", "-C", str(root)], capsys)
    assert result.code == 1 and "Traceback" not in result.text
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: state: cannot reach PostgreSQL at 127.0.0.1:1 for postgresql://skyrig@127.0.0.1:1/state "
        "(schema skyrig_bench) (Connection refused)"
    ], result.err
    assert "secret-pw" not in result.text
