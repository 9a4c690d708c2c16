"""The engine on the reference provider: plan at 1k / 10k / 50k nodes, and a 500-node apply at 50 ms a call.

Targets: a plan of 10,000 nodes under 2 s, growing with an exponent of at most 1.15; an apply of 500
nodes with 50 ms injected latency per call within 1.2x of the critical-path lower bound for the chosen
parallelism, with state writes under 5% of the apply time. Peak memory per node is reported.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

SERVICE = 'from skyrig import Service\nservice = Service("svc{s}", app="svc{s}.api:app")\n'
MODULE = "from skyrig import Bucket\n\n" + 'bucket_{i} = Bucket("bucket-{i}")\n'


def generate(root: Path, buckets: int, *, services: int = 10, latency_ms: float = 0) -> None:
    """An app whose graph has ``buckets`` bucket nodes, plus a network and a role and service per service."""
    per_module = 100
    index = 0
    for s in range(services):
        folder = root / f"svc{s}"
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text(SERVICE.format(s=s))
        (folder / "api.py").write_text("app = None\n")
    module = 0
    while index < buckets:
        folder = root / f"svc{module % services}"
        lines = ["from skyrig import Bucket", ""]
        for _ in range(min(per_module, buckets - index)):
            lines.append(f'bucket_{index} = Bucket("bucket-{index}")')
            index += 1
        (folder / f"m{module}.py").write_text("\n".join(lines) + "\n")
        module += 1
    (root / "skyrig.toml").write_text(
        f'app = "bench"\n[env.dev]\ntype = "development"\nprovider = "memory"\n'
        f"[env.dev.memory]\nlatency_ms = {latency_ms}\n"
    )


def session(root: Path):
    from skyrig.config import load_config
    from skyrig.engine.session import Session

    return Session(load_config(root), "dev")


def apply_all(root: Path, parallelism: int, *, write_state: bool = True) -> tuple[float, float, int]:
    """Apply everything; returns (seconds, thread-seconds spent writing state, nodes).

    Without ``write_state``, intents and node records are not written (to measure what writing costs).
    """
    current = session(root)
    store = current.store
    spent = [0.0]

    def timed(original):
        def write(*args, **kwargs):
            started = time.perf_counter()
            if write_state:
                original(*args, **kwargs)
            spent[0] += time.perf_counter() - started

        return write

    store.record, store.add_intent = timed(store.record), timed(store.add_intent)
    with current.locked() as fence:
        plan = current.plan()
        started = time.perf_counter()
        outcome = current.apply(plan, fence, parallelism=parallelism)
        seconds = time.perf_counter() - started
    assert outcome.succeeded, outcome.failed
    return seconds, spent[0], len(plan.changes)


def time_plan(root: Path, repeat: int) -> tuple[float, int, float]:
    """Median seconds of a plan (graph + refresh + diff, model from its cache), nodes, peak bytes."""
    times = []
    for _ in range(repeat):
        current = session(root)
        current.model  # noqa: B018 - served from the model cache; the plan is what is measured
        started = time.perf_counter()
        plan = current.plan()
        times.append(time.perf_counter() - started)
        assert not plan.has_changes()
    current = session(root)
    current.model  # noqa: B018
    tracemalloc.start()
    plan = current.plan()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), len(plan.changes), peak


def critical_path(root: Path) -> int:
    """The longest chain of dependencies in the graph, in nodes."""
    graph = session(root).graph
    depth: dict[str, int] = {}
    for node in graph.order:
        depth[node] = 1 + max((depth[d] for d in graph.dependencies[node]), default=0)
    return max(depth.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--apply-nodes", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("SKYRIG_RETRY_BASE_MS", "1")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for size in (int(s) for s in args.sizes.split(",")):
            root = Path(folder) / f"plan{size}"
            generate(root, size - 21)  # + network + 10 roles + 10 services = size nodes
            applied, _, nodes = apply_all(root, parallelism=32)
            seconds, planned, peak = time_plan(root, args.repeat)
            results.append((planned, seconds, peak, applied))
        header = ("nodes", "plan (median)", "peak memory", "per node", "first apply (0 ms)")
        print(f"{header[0]:>8} {header[1]:>14} {header[2]:>14} {header[3]:>10} {header[4]:>20}")
        for nodes, seconds, peak, applied in results:
            print(
                f"{nodes:>8} {seconds * 1000:>12.0f}ms {peak / 1e6:>12.1f}MB {peak / nodes / 1e3:>8.1f}kB "
                f"{applied:>18.1f}s"
            )
        if len(results) > 1:
            (n0, t0, _, _), (n1, t1, _, _) = results[0], results[-1]
            exponent = math.log(t1 / t0) / math.log(n1 / n0)
            ten_k = next((t for n, t, _, _ in results if n == 10000), None)
            verdict = "met" if exponent <= 1.15 else "MISSED"
            print(f"growth exponent {n0}→{n1}: {exponent:.2f} (target ≤ 1.15: {verdict})")
            if ten_k is not None:
                print(
                    f"plan of 10,000 nodes: {ten_k:.2f} s (target < 2 s: {'met' if ten_k < 2 else 'MISSED'})"
                )

        runs = []
        for index, write_state in enumerate((True, False, True, False)):
            root = Path(folder) / f"apply{index}"
            generate(root, args.apply_nodes - 21, latency_ms=50)
            runs.append((write_state, *apply_all(root, args.parallelism, write_state=write_state)))
        depth = critical_path(root)
        with_state = statistics.median(r[1] for r in runs if r[0])
        without = statistics.median(r[1] for r in runs if not r[0])
        writing = statistics.median(r[2] for r in runs if r[0])
        nodes = runs[0][3]
        call = 0.050
        bound = max(depth * call, math.ceil(nodes / args.parallelism) * call)
        ratio = with_state / bound
        print(
            f"apply of {nodes} nodes at 50 ms a call, parallelism {args.parallelism}: {with_state:.2f} s; "
            f"critical path {depth} nodes; lower bound {bound:.2f} s; ratio {ratio:.2f} "
            f"(target ≤ 1.2: {'met' if ratio <= 1.2 else 'MISSED'})"
        )
        overhead = (with_state - without) / with_state
        print(
            f"the same apply without writing state: {without:.2f} s; state writing adds {overhead:.1%} "
            f"of the apply time (target < 5%: {'met' if overhead < 0.05 else 'MISSED'}); the writes take "
            f"{writing:.2f} thread-seconds, mostly while other threads wait on the cloud"
        )


if __name__ == "__main__":
    main()
