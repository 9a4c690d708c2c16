"""What the SQLite store's writes of a 5,000-node apply cost, alone and steadily: the writes of one real
apply (the memory provider, no added latency, as ``engine_scale.py`` makes it) are captured once, then
replayed, in order and in the same batches, against a fresh store of each tree, the trees alternating,
with the cyclic collector off. The processor time of a replay varies far less than an apply's share of
it, so a change to the store can be judged in one run; and the replay is split into what its parts cost:
without the intents, and without the runtime configs that ``finish`` stores.

    .venv/bin/python benchmarks/state_writes.py
    .venv/bin/python benchmarks/state_writes.py --baseline ../base     # git worktree add ../base COMMIT
    .venv/bin/python benchmarks/state_writes.py --instructions         # valgrind: instructions, not time

``--instructions`` counts the instructions of each replay under valgrind's callgrind (the replay's process
less an identical one that replays nothing): the same figure on every run, whatever else the machine does.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine_scale import TREE, WRITES, generate, session, tree_path

PARTS = {
    "all": "every write",
    "no intents": "the same writes without their intents",
    "no runtime": "the same writes, finish storing no runtime config",
}


def capture(nodes: int, into: Path) -> None:
    """Apply ``nodes`` nodes on the memory provider with this tree's SQLite store, and pickle every call
    to its write methods (name, arguments after the environment and fence, keywords) into ``into``."""
    with tempfile.TemporaryDirectory() as name:
        root = Path(name) / "app"
        generate(root, nodes - 21)  # + network + 10 roles + 10 services
        current = session(root)
        store = current.store
        calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        for method in WRITES:
            if hasattr(store, method):
                original = getattr(store, method)

                def write(
                    env: str,
                    fence: int,
                    *args: Any,
                    _original: Any = original,
                    _name: str = method,
                    **kw: Any,
                ):
                    calls.append((_name, args, kw))
                    return _original(env, fence, *args, **kw)

                setattr(store, method, write)
        with current.locked() as fence:
            outcome = current.apply(current.plan(), fence, parallelism=10)
        assert outcome.succeeded, outcome.failed
    into.write_bytes(pickle.dumps(calls))


def part(calls: list[Any], which: str) -> list[Any]:
    """The calls of one part of the replay (:data:`PARTS`); ``nothing``: none (what a process costs
    besides its replay)."""
    if which == "nothing":
        return []
    if which == "no intents":
        return [(n, a, {**k, "intents": ()} if n == "write_batch" else k) for n, a, k in calls]
    if which == "no runtime":
        return [(n, (*a[:-1], {}) if n == "finish" else a, k) for n, a, k in calls]
    return calls


def replay(calls: list[Any]) -> float:
    """Processor seconds of ``calls`` against a fresh SQLite store of the tree this process imports."""
    from skyrig.state.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as name:
        store = SQLiteStore(Path(name) / "state.db")
        fence = store.acquire("dev", "benchmark", 600)
        gc.collect()
        gc.disable()
        started = time.process_time()
        for method, args, keywords in calls:
            getattr(store, method)("dev", fence, *args, **keywords)
        seconds = time.process_time() - started
        gc.enable()
        store.close()
    return seconds


def child(captured: Path, which: str, runs: int) -> list[float]:
    calls = part(pickle.loads(captured.read_bytes()), which)
    return [replay(calls) for _ in range(runs)]


def instructions(tree: Path, captured: Path, which: str) -> int:
    """Instructions of one replay under callgrind: its process less one that replays nothing."""

    def count(what: str) -> int:
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                __file__,
                "--child",
                str(captured),
                what,
                "1",
            ],
            env={**os.environ, "PYTHONPATH": tree_path(tree)},
            capture_output=True,
            text=True,
            check=True,
        )
        return int(re.search(r"Collected : (\d+)", done.stderr)[1])  # type: ignore[index]

    return count(which) - count("nothing")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=9, help="replays per part, tree and round")
    parser.add_argument("--rounds", type=int, default=3, help="processes per part and tree, alternating")
    parser.add_argument("--baseline", type=Path, help="a checkout to compare with (git worktree add ...)")
    parser.add_argument("--instructions", action="store_true", help="count instructions with valgrind")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        captured, which, runs = args.child
        print(" ".join(f"{s:.6f}" for s in child(Path(captured), which, int(runs))))
        return
    trees = {"this": TREE, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    if args.instructions and not shutil.which("valgrind"):
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as name:
        captured = Path(name) / "calls.pickle"
        capture(args.nodes, captured)
        print(f"the store writes of an apply of {args.nodes} nodes (memory provider, no added latency)")
        for which, what in PARTS.items():
            figures = {}
            for label, tree in trees.items():
                if args.instructions:
                    figures[label] = f"{instructions(tree, captured, which) / 1e6:.0f} M instructions"
                    continue
                seconds: list[float] = []
                for _ in range(args.rounds):
                    done = subprocess.run(
                        [sys.executable, __file__, "--child", str(captured), which, str(args.runs)],
                        env={**os.environ, "PYTHONPATH": tree_path(tree)},
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    seconds += [float(s) for s in done.stdout.split()]
                figures[label] = (
                    f"{min(seconds) * 1000:.1f} ms (median {statistics.median(seconds) * 1000:.1f} ms)"
                )
            print(f"  {what}: " + " / ".join(f"{label} {figure}" for label, figure in figures.items()))


if __name__ == "__main__":
    main()
