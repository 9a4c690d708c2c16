"""Writes per apply: the first apply of N nodes on the memory provider (no added latency), state in
PostgreSQL (a server of its own, fsync on, on this machine's loopback), then the same in SQLite.

Reports, per N: the statements the store sent, by kind (``batch``: the engine's group commit, many
nodes' writes in one statement, where the engine has it); the transactions the server committed during
the apply (pg_stat_database, reads included); the largest write in bytes; the apply's time with each
store. ``python plugins/state-postgres/benchmarks/apply_writes.py --sizes 100,1000,5000 [--per-node]``
(``--per-node``: as an engine without group commit writes, one node a statement).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg

from skyrig_state_postgres.testing import TestServer

KINDS = (
    (r"SET applied_at", "finish"),
    (r"unnest\(", "batch"),
    (r"INSERT INTO \S+\.nodes\b", "record"),
    (r"DELETE FROM \S+\.nodes\b", "forget"),
    (r"INSERT INTO \S+\.intents\b", "add_intent"),
    (r"SET fence = greatest", "acquire"),
    (r"FOR UPDATE\) UPDATE", "release"),
    (r"SET expires_at", "renew"),
    (r"^\s*(SELECT|INSERT INTO \S+\.environments \(env\) VALUES)", "read"),
)


def generate(root: Path, buckets: int) -> None:
    (root / "api").mkdir(parents=True)
    (root / "api" / "__init__.py").write_text(
        'from skyrig import Service\nservice = Service("api", app="api.web:app")\n'
    )
    (root / "api" / "web.py").write_text("app = None\n")
    for module in range(0, buckets, 100):
        lines = ["from skyrig import Bucket", ""]
        lines += [f'bucket_{i} = Bucket("bucket-{i}")' for i in range(module, min(buckets, module + 100))]
        (root / "api" / f"b{module}.py").write_text("\n".join(lines) + "\n")
    (root / "skyrig.toml").write_text('app = "bench"\n[env.dev]\ntype = "development"\nprovider = "memory"\n')


def apply(root: Path, parallelism: int) -> tuple[float, int]:
    from skyrig.config import load_config
    from skyrig.engine.session import Session

    session = Session(load_config(root), "dev")
    with session.locked() as fence:
        plan = session.plan()
        started = time.perf_counter()
        outcome = session.apply(plan, fence, parallelism=parallelism)
        seconds = time.perf_counter() - started
    assert outcome.succeeded, outcome.failed
    session.store.close()
    return seconds, len(plan.changes)


def commits(server: TestServer) -> int:
    time.sleep(1.2)  # backends flush their statistics at most once a second
    return int(server.admin("SELECT xact_commit FROM pg_stat_database WHERE datname = 'state'")[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument(
        "--per-node", action="store_true", help="hide write_batch: the engine writes one node a statement"
    )
    args = parser.parse_args()
    if args.per_node:
        from skyrig_state_postgres.store import PostgresStore

        del PostgresStore.write_batch
    os.environ.setdefault("SKYRIG_RETRY_BASE_MS", "1")
    kinds: Counter[str] = Counter()
    largest = [0]
    original = psycopg.Connection.execute

    def counted(connection, query, params=None, **kwargs):
        text = query.decode() if isinstance(query, bytes) else str(query)
        kind = next((name for pattern, name in KINDS if re.search(pattern, text)), "other")
        kinds[kind] += 1
        if kind in ("record", "batch") and params:
            largest[0] = max(largest[0], len(json.dumps(params, default=str)))
        return original(connection, query, params, **kwargs)

    psycopg.Connection.execute = counted  # type: ignore[method-assign]
    rows = []
    with (
        TestServer({"fsync": "on", "full_page_writes": "on"}) as server,
        tempfile.TemporaryDirectory() as folder,
    ):
        server.database("state")
        os.environ["PGPASSWORD"] = server.password
        for size in (int(s) for s in args.sizes.split(",")):
            root = Path(folder) / f"pg{size}"
            generate(root, size - 3)  # + network, role, service
            os.environ["SKYRIG_STATE"] = server.url("state", f"bench_{size}")
            kinds.clear()
            largest[0] = 0
            before = commits(server)
            seconds, nodes = apply(root, args.parallelism)
            transactions = commits(server) - before
            del os.environ["SKYRIG_STATE"]
            sqlite_root = Path(folder) / f"sqlite{size}"
            generate(sqlite_root, size - 3)
            sqlite_seconds, _ = apply(sqlite_root, args.parallelism)
            rows.append((nodes, dict(kinds), transactions, largest[0], seconds, sqlite_seconds))
    print(
        f"{'nodes':>6} {'writes':>7} {'per node':>9} {'reads':>6} {'commits':>8} {'largest':>8} "
        f"{'apply pg':>9} {'sqlite':>7}  writes by kind"
    )
    for nodes, by_kind, transactions, size, seconds, sqlite_seconds in rows:
        writes = sum(v for k, v in by_kind.items() if k not in ("read", "other"))
        print(
            f"{nodes:>6} {writes:>7} {writes / nodes:>9.2f} {by_kind.get('read', 0):>6} {transactions:>8} "
            f"{size:>7}B {seconds:>8.2f}s {sqlite_seconds:>6.2f}s  "
            + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items()) if k not in ("read", "other"))
        )


if __name__ == "__main__":
    main()
