"""The store under the engine: applies through the ``skyrig`` command with ``SKYRIG_STATE`` naming a
schema on a real server. One apply of N nodes costs O(N) small writes, each one statement (one
transaction), and no node's write grows with N."""

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


RECORD_FIELDS = (
    "id",
    "type",
    "provider",
    "provider_id",
    "desired",
    "observed",
    "outputs",
    "resource",
    "depends_on",
    "drift",
)


class Statements:
    """Every statement the store sends, by the name of what it does; the nodes recorded, intended and
    forgotten, with each record's size (bytes of its fields), whether one node a statement (``record``,
    ``add_intent``, ``forget``) or many (``batch``: the engine's group commit, where the store has it)."""

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()
        self.records: dict[str, int] = {}
        self.recorded = self.intended = self.forgotten = 0
        self.largest_batch = 0

    def patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = psycopg.Connection.execute

        def execute(connection, query, params=None, **kwargs):
            text = query.decode() if isinstance(query, bytes) else str(query)
            name = _name(text)
            self.names[name] += 1
            if name == "batch":
                self._batch(params)
            elif name == "record":
                self.recorded += 1
                self.records[params["id"]] = sum(len(str(params[f])) for f in RECORD_FIELDS)
            elif name == "add_intent":
                self.intended += 1
            elif name == "forget":
                self.forgotten += 1
            return original(connection, query, params, **kwargs)

        monkeypatch.setattr(psycopg.Connection, "execute", execute)

    def _batch(self, params: dict) -> None:
        for index, node_id in enumerate(params["id"]):
            self.records[node_id] = sum(len(str(params[f][index])) for f in RECORD_FIELDS)
        self.recorded += len(params["id"])
        self.intended += len(params["i_id"])
        self.forgotten += len(params["forgotten"])
        self.largest_batch = max(self.largest_batch, len(params["id"]), len(params["i_id"]))

    @property
    def writes(self) -> int:
        return sum(self.names[n] for n in ("add_intent", "record", "forget", "batch", "finish"))


def _name(text: str) -> str:
    if "unnest(" in text and "INSERT INTO" in text and ".nodes" in text:
        return "batch"
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


def test_an_apply_of_n_nodes_costs_o_n_small_writes(tmp_path, state, capsys, monkeypatch):
    """Each node's intent and record written once, in at most two statements a node (one each; or fewer,
    in the engine's batches, each of at most BATCH nodes), and a record as large as its node, whatever N."""
    seen = []
    for buckets in (20, 80):
        root = generate(tmp_path / f"app{buckets}", buckets)
        monkeypatch.setenv("SKYRIG_STATE", state.replace("?schema=", f"?schema=n{buckets}_"))
        counted, nodes = _apply(root, capsys, monkeypatch)
        assert (counted.recorded, counted.intended, counted.forgotten) == (nodes, nodes, 0), counted.names
        assert counted.names["finish"] == 1, counted.names
        assert counted.names["acquire"] == 1 and counted.names["release"] == 1
        assert counted.writes <= 2 * nodes + 1, counted.names
        assert counted.largest_batch <= 1000, "a batch is bounded (the engine's BATCH)"
        seen.append((nodes, counted.records))
    (small, small_records), (large, large_records) = seen
    assert large > 3 * small
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
    assert counted.forgotten == nodes and counted.recorded == 0
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
