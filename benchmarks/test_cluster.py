"""How long a test session waits for a fresh, migrated database on the local provider's test cluster.

A plain script (not a pytest test). It writes an app with one SQLDatabase and --migrations migrations
(tables with indexes and foreign keys) and measures, each in a new process as a test session would be:

- cold: nothing on the throwaway storage: initdb, start, tune, migrate the template, clone, connect;
- warm: the cluster stopped, its template kept: start, find the template, clone, connect (what each
  ``skyrig test`` run pays before pytest);
- hot: the cluster running (held by this script): clone and connect (another pytest-xdist worker);
- reset: ``skyrig_reset`` cloning the database anew under the same name.

Then the wall time of a whole ``skyrig test -q`` of one test, warm. Target: warm under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SKYRIG = str(Path(sys.executable).with_name("skyrig"))

SESSION = """
import json, sys, time
started = time.perf_counter()
from pathlib import Path
from skyrig.analysis import build_model
from skyrig_local.testing import support
root = Path(sys.argv[1])
model = build_model(root, "bench")
imported = time.perf_counter()
state = support.prepare(root, model)
database = support.open(state).client("sql_database", "bench")
with database.connect() as c:
    count = c.execute("SELECT count(*) FROM skyrig_migrations").fetchone()[0]
done = time.perf_counter()
database.close()
print(json.dumps({"seconds": done - imported, "imports": imported - started, "migrations": count}))
"""


def write_app(root: Path, migrations: int) -> None:
    files = {
        "skyrig.toml": 'app = "bench"\n[env.local]\ntype = "local"\nprovider = "memory"\nsql = "local"\n',
        "bench/__init__.py": 'from skyrig import Service\nservice = Service("bench", app="bench.api:app")\n',
        "bench/api.py": "from skyrig import SQLDatabase\napp = None\n"
        'db = SQLDatabase("bench", migrations="./m")\n',
        "tests/test_one.py": "from bench.api import db\n\ndef test_one():\n"
        "    with db.connect() as c:\n        assert c.execute('SELECT 1').fetchone() == (1,)\n",
    }
    for number in range(1, migrations + 1):
        parent = f"REFERENCES t{number - 1} (id)" if number > 1 else ""
        files[f"bench/m/{number:04d}_t{number}.up.sql"] = (
            f"CREATE TABLE t{number} (id bigserial PRIMARY KEY, parent bigint {parent}, name text NOT NULL,\n"
            f"  created_at timestamptz NOT NULL DEFAULT now(), data jsonb);\n"
            f"CREATE INDEX ON t{number} (name);\nCREATE INDEX ON t{number} (created_at);\n"
            f"INSERT INTO t{number} (name) SELECT 'seed ' || i FROM generate_series(1, 100) i;\n"
        )
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def session(root: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", SESSION, str(root)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--migrations", type=int, default=20)
    args = parser.parse_args()

    from skyrig_local import postgres
    from skyrig_local.testing import SessionDatabase, throwaway_folder

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "bench"
        write_app(root, args.migrations)
        throwaway = throwaway_folder(root, "bench")
        try:
            cold = session(root)
            warm = [session(root)["seconds"] for _ in range(args.runs)]

            from skyrig.analysis import build_model
            from skyrig_local.testing import support

            state = support.prepare(root, build_model(root, "bench"))  # this process holds the cluster now
            data, template = Path(state["data"]), state["templates"]["bench"]
            hot, reset = [], []
            for _ in range(args.runs):
                start = time.perf_counter()
                database = SessionDatabase(data, "bench", template)
                database.connect().close()
                hot.append(time.perf_counter() - start)
                start = time.perf_counter()
                database.reset()
                reset.append(time.perf_counter() - start)
                database.close()
            postgres.stop(data)

            subprocess.run([SKYRIG, "test", "-q"], cwd=root, capture_output=True, check=True)
            whole = []
            for _ in range(max(3, args.runs // 2)):
                start = time.perf_counter()
                subprocess.run([SKYRIG, "test", "-q"], cwd=root, capture_output=True, check=True)
                whole.append(time.perf_counter() - start)
        finally:
            shutil.rmtree(throwaway, ignore_errors=True)

    print(f"one SQLDatabase, {cold['migrations']} migrations; storage {throwaway.parent.parent}")
    print(f"{'fresh migrated database':<44}{'median':>10}{'max':>10}")
    print(f"{'cold (initdb, migrate the template)':<44}{cold['seconds'] * 1000:>8.0f}ms")
    for label, times in (
        ("warm (start the cluster, clone the template)", warm),
        ("hot (cluster running: clone)", hot),
        ("skyrig_reset (clone anew, same name)", reset),
    ):
        print(f"{label:<44}{statistics.median(times) * 1000:>8.0f}ms{max(times) * 1000:>8.0f}ms")
    verdict = "ok" if statistics.median(warm) < 0.5 else "OVER 0.5 s"
    print(f"warm target < 500 ms: {verdict}")
    print(f"{'whole skyrig test -q, one test, warm':<44}{statistics.median(whole) * 1000:>8.0f}ms")


if __name__ == "__main__":
    main()
