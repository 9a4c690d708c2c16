"""The engine on the reference provider: plans at 1k / 10k / 50k nodes, what writing state costs an apply of
5,000 nodes, and a 500-node apply at 50 ms a call.

Targets (issue 13): a plan of 10,000 nodes under 0.25 s (median), growing with an exponent of at most 1.1
over 1k / 10k / 50k nodes; state writes under 10% of a 5,000-node apply with no added latency; peak memory
per node reported. Kept from before: an apply of 500 nodes with 50 ms injected latency per call within 1.2x
of the critical-path lower bound for the chosen parallelism.

Run it on two trees in one go to compare (the machines are noisy: compare ratios measured in one run), for
instance the commit before a change, checked out with ``git worktree add ../base COMMIT``::

    .venv/bin/python benchmarks/engine_scale.py
    .venv/bin/python benchmarks/engine_scale.py --baseline ../base

It imports only what both old and new trees have (``Session``, a store's methods).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

SERVICE = 'from skyrig import Service\nservice = Service("svc{s}", app="svc{s}.api:app")\n'
WRITES = ("add_intent", "record", "forget", "finish", "write_batch")
"""The store's write methods (``write_batch``: stores that write batches)."""


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


def in_memory(store: Any) -> None:
    """Make ``store`` keep what an apply writes in dictionaries: no encoding, no SQLite, no transaction.
    The apply's reads of it (its records, its intents, the records the runtime configs are built from)
    answer from them, so that an apply against it does everything an apply does but write state."""
    nodes: dict[str, Any] = {}
    intents: dict[str, str] = {}

    def add_intent(env, fence, node_id, action, token):
        intents[node_id] = action

    def record(env, fence, node):
        nodes[node.id] = node
        intents.pop(node.id, None)

    def forget(env, fence, node_id):
        nodes.pop(node_id, None)
        intents.pop(node_id, None)

    def write_batch(env, fence, *, intents=(), records=(), forgotten=()):
        for node_id, action, token in intents:
            add_intent(env, fence, node_id, action, token)
        for node in records:
            record(env, fence, node)
        for node_id in forgotten:
            forget(env, fence, node_id)

    store.add_intent, store.record, store.forget = add_intent, record, forget
    store.finish = lambda env, fence, runtime: None
    store.nodes = lambda env: dict(nodes)
    store.intents = lambda env: dict(intents)
    if hasattr(store, "write_batch"):
        store.write_batch = write_batch
    if hasattr(store, "snapshot"):
        store.snapshot = lambda env, lean=False: (0, dict(nodes))


CPU: dict[str, float] = {}
"""Of the last :func:`apply_all`: processor seconds of the apply (every thread's), and of its store writes
(``writing``: the threads' processor time inside the store's write methods)."""


def apply_all(root: Path, parallelism: int, *, write_state: bool = True) -> tuple[float, int, int]:
    """Plan and apply everything; returns (seconds the apply took, store writes it made, nodes).

    Without ``write_state``, the store keeps what the apply writes in memory (:func:`in_memory`).

    The heap is collected before the apply is timed. The plan pauses the cyclic garbage collector, so the
    first apply of a process began with the plan's objects pending and paid for a full collection
    (25-90 ms at 5,000 nodes) that a later one did not: when the apply writing state ran first, that
    collection was counted as a cost of writing state."""
    current = session(root)
    store = current.store
    calls = [0]
    writing = [0.0]
    lock = threading.Lock()

    def counted(original):
        def write(*args, **kwargs):
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                with lock:
                    calls[0] += 1
                    writing[0] += time.thread_time() - started

        return write

    with current.locked() as fence:
        plan = current.plan()
        if not write_state:
            in_memory(store)
        for name in WRITES:
            if hasattr(store, name):
                setattr(store, name, counted(getattr(store, name)))
        gc.collect()  # the same heap for every apply measured: see the docstring
        started, cpu = time.perf_counter(), time.process_time()
        outcome = current.apply(plan, fence, parallelism=parallelism)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert outcome.succeeded, outcome.failed
    CPU.update(apply=cpu, writing=writing[0])
    return seconds, calls[0], len(plan.changes)


def time_plan(root: Path, repeat: int) -> tuple[float, list[float], int, float]:
    """Median seconds of a plan (graph + state + refresh + diff, model from its cache), each time, nodes,
    peak bytes allocated during one."""
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
    return statistics.median(times), times, len(plan.changes), peak


def critical_path(root: Path) -> int:
    """The longest chain of dependencies in the graph, in nodes."""
    graph = session(root).graph
    depth: dict[str, int] = {}
    for node in graph.order:
        depth[node] = 1 + max((depth[d] for d in graph.dependencies[node]), default=0)
    return max(depth.values())


def exponent(points: list[tuple[int, float]]) -> float:
    """The least-squares slope of log(time) over log(nodes)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


TREE = Path(__file__).resolve().parent.parent


def tree_path(tree: Path) -> str:
    """PYTHONPATH that imports skyrig and its memory provider from the checkout ``tree``."""
    return os.pathsep.join(str(tree / part) for part in ("core/src", "plugins/memory/src"))


def child(task: list[str]) -> dict[str, Any]:
    """One measurement, in this process (``--child``), printed as one JSON line by :func:`main`."""
    kind, *args = task
    with tempfile.TemporaryDirectory() as name:
        root = Path(name) / "app"
        if kind == "plan":
            size, repeat = int(args[0]), int(args[1])
            generate(root, size - 21)  # + network + 10 roles + 10 services = size nodes
            applied, _, _ = apply_all(root, parallelism=32)
            median, each, nodes, peak = time_plan(root, repeat)
            return {"nodes": nodes, "median": median, "each": each, "peak": peak, "applied": applied}
        if kind == "writes":
            nodes, parallelism, latency = int(args[0]), int(args[1]), float(args[2])
            results = {}
            for write_state in (True, False):
                folder = root / ("state" if write_state else "memory")
                generate(folder, nodes - 21, latency_ms=latency)
                seconds, writes, count = apply_all(folder, parallelism, write_state=write_state)
                results["state" if write_state else "memory"] = seconds
                if write_state:
                    results["cpu"], results["writing"] = CPU["apply"], CPU["writing"]
                results.setdefault("writes", writes)
            results["nodes"] = count
            results["depth"] = critical_path(folder)
            return results
    raise SystemExit(f"unknown task {kind}")


def measure(trees: dict[str, Path], task: list[str], repeat: int) -> dict[str, list[dict[str, Any]]]:
    """``task`` in a process of its own per tree, the trees alternating, ``repeat`` times each."""
    import json
    import subprocess
    import sys

    found: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
    for _ in range(repeat):
        for label, tree in trees.items():
            environ = {**os.environ, "PYTHONPATH": tree_path(tree)}
            done = subprocess.run(
                [sys.executable, __file__, "--child", *task],
                env=environ,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                raise SystemExit(f"{label}: {' '.join(task)} failed:\n{done.stderr}")
            found[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,50000", help="plan sizes, in nodes")
    parser.add_argument("--repeat", type=int, default=5, help="plans per size and process")
    parser.add_argument("--runs", type=int, default=3, help="processes per measurement and tree")
    parser.add_argument(
        "--write-nodes", type=int, default=5000, help="nodes of the state-writes apply (0: skip)"
    )
    parser.add_argument("--latency-nodes", type=int, default=500, help="nodes of the 50 ms apply (0: skip)")
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--baseline", type=Path, help="a checkout to compare with (git worktree add ...)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("SKYRIG_RETRY_BASE_MS", "1")
    if args.child:
        import json

        print(json.dumps(child(args.child)))
        return
    trees = {"this": TREE}
    if args.baseline:
        trees["baseline"] = args.baseline.resolve()
    for label, tree in trees.items():
        print(f"{label}: {tree}")
    labels = list(trees)

    def both(values: dict[str, float], unit: str, digits: int = 0, scale: float = 1.0) -> str:
        shown = [f"{values[label] * scale:.{digits}f}{unit}" for label in labels]
        ratio = f" ({values['this'] / values['baseline']:.2f}x)" if "baseline" in values else ""
        return " / ".join(shown) + ratio

    sizes = [int(s) for s in args.sizes.split(",") if s]
    medians: dict[str, list[tuple[int, float]]] = {label: [] for label in labels}
    if sizes:
        print(
            f"\nplans ({' / '.join(labels)}; the median of {args.repeat} plans a process, of {args.runs} "
            "processes)"
        )
        print(f"{'nodes':>8}  {'plan':>28}  {'peak memory per node':>24}  {'first apply':>20}")
        for size in sizes:
            found = measure(trees, ["plan", str(size), str(args.repeat)], args.runs)
            plan, peak, applied = {}, {}, {}
            for label, runs in found.items():
                plan[label] = statistics.median(r["median"] for r in runs)
                peak[label] = statistics.median(r["peak"] / r["nodes"] for r in runs)
                applied[label] = statistics.median(r["applied"] for r in runs)
                medians[label].append((runs[0]["nodes"], plan[label]))
            print(
                f"{size:>8}  {both(plan, ' ms', 0, 1000):>28}  {both(peak, ' kB', 1, 1e-3):>24}  "
                f"{both(applied, ' s', 2):>20}"
            )
        for label in labels:
            points = medians[label]
            if len(points) > 1:
                (n0, t0), (n1, t1) = points[0], points[-1]
                ends = math.log(t1 / t0) / math.log(n1 / n0)
                print(f"{label}: growth exponent {n0}→{n1}: {ends:.2f}, fitted: {exponent(points):.2f}")
            ten_k = next((t for n, t in points if n == 10000), None)
            if ten_k is not None:
                verdict = "met" if ten_k < 0.25 else "MISSED"
                print(f"{label}: plan of 10,000 nodes {ten_k:.3f} s (target < 0.25 s: {verdict})")
    if args.write_nodes:
        found = measure(trees, ["writes", str(args.write_nodes), str(args.parallelism), "0"], args.runs)
        print(f"\napply of {args.write_nodes} nodes, no added latency, parallelism {args.parallelism}")
        for label, runs in found.items():
            with_state = statistics.median(r["state"] for r in runs)
            without = statistics.median(r["memory"] for r in runs)
            share = statistics.median((r["state"] - r["memory"]) / r["state"] for r in runs)
            each_state = "/".join(f"{r['state']:.2f}" for r in runs)
            each_memory = "/".join(f"{r['memory']:.2f}" for r in runs)
            cpu = statistics.median(r["writing"] / r["cpu"] for r in runs)
            print(
                f"{label}: {with_state:.2f} s writing state ({each_state}), {without:.2f} s with state kept "
                f"in memory ({each_memory}); {runs[0]['writes']} store writes; state writes {share:.1%} of "
                f"the apply (median of the runs' shares; target < 10%: {'met' if share < 0.10 else 'MISSED'})"
                f"; processor time in the store's writes: {cpu:.1%} of the apply's"
            )
    if args.latency_nodes:
        found = measure(trees, ["writes", str(args.latency_nodes), str(args.parallelism), "50"], args.runs)
        print(f"\napply of {args.latency_nodes} nodes at 50 ms a call, parallelism {args.parallelism}")
        for label, runs in found.items():
            with_state = statistics.median(r["state"] for r in runs)
            without = statistics.median(r["memory"] for r in runs)
            count, depth = runs[0]["nodes"], runs[0]["depth"]
            bound = max(depth * 0.050, math.ceil(count / args.parallelism) * 0.050)
            ratio = with_state / bound
            print(
                f"{label}: {with_state:.2f} s; critical path {depth} nodes, lower bound {bound:.2f} s, ratio "
                f"{ratio:.2f} (target ≤ 1.2: {'met' if ratio <= 1.2 else 'MISSED'}); with state kept in "
                f"memory {without:.2f} s (writing state: {(with_state - without) / with_state:.1%})"
            )


if __name__ == "__main__":
    main()
