"""Local pub/sub through the real SDK data plane: publish-to-handler latency and throughput.

Writes an app with one topic and one subscription, applies its ``local`` environment (the broker starts
in this process), then, with a no-op handler consuming through ``SubscriptionClient.consume``:

- latency: messages published (``Topic.publish_async``) at a steady rate (``--rate``, several rates
  comma-separated), each carrying its publish time; the handler records publish -> handler start. Run
  twice: as is, and with ``gc.freeze()`` (the collector's full passes, tens of ms each under load, set
  the p99 at high rates);
- throughput: ``--messages`` published as fast as the publisher goes (``--window`` in flight at once)
  while the consumer runs; messages per second from the first publish to the last handler;
- publish only, and consume only (a backlog drained), for where the time goes.

Targets: >= 10,000 messages/s end to end, p99 under 10 ms.

    .venv/bin/python benchmarks/pubsub.py [--messages 50000] [--window 1000] [--rate 1000,5000]
        [--latency 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = """
from pydantic import BaseModel
from skyrig import Service, Subscription, Topic

service = Service("bench", app="benchapp:app")
app = None


class Tick(BaseModel):
    n: int
    t: float


def handle(tick: Tick) -> None:
    pass


ticks = Topic("ticks", Tick)
Subscription(ticks, "sink", handler=handle, max_concurrency={concurrency})


def use():
    ticks.publish(Tick(n=0, t=0.0))
"""


def _apply(root: Path, concurrency: int) -> None:
    """Apply in a process of its own (as ``skyrig run`` does before it starts the services), so that this
    process holds what a service holds and not the CLI and engine; its broker dies with it and this
    process starts the environment's broker again, the definitions replayed."""
    (root / "benchapp").mkdir(parents=True)
    (root / "skyrig.toml").write_text('app = "bench"\n[env.local]\ntype = "local"\nprovider = "local"\n')
    (root / "benchapp" / "__init__.py").write_text(APP.format(concurrency=concurrency))
    command = [sys.executable, "-m", "skyrig", "apply", "--env", "local", "--yes", "-C", str(root)]
    subprocess.run(command, check=True, capture_output=True)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Bench:
    def __init__(self, root: Path) -> None:
        from skyrig.runtime.binding import client_for_key
        from skyrig_local.pubsub import broker

        broker.ensure(root / ".skyrig/local/local")

        os.environ["SKYRIG_RUNTIME_CONFIG"] = str(root / ".skyrig/runtime/local/bench.json")
        sys.path.insert(0, str(root))
        import benchapp

        self.app = benchapp
        self.subscription = client_for_key("subscription/sink")
        self.latencies: list[float] = []
        self.handled = 0

    async def handler(self, data: dict) -> None:
        self.handled += 1
        if data["t"]:
            self.latencies.append(time.time() - data["t"])

    async def consuming(self, work, warm: bool = True) -> float:
        """Run ``work`` while consuming; seconds from its start until the handler saw every message."""
        stop = asyncio.Event()
        base = self.handled
        task = asyncio.create_task(self.subscription.consume(self.handler, stop))
        if warm:
            await asyncio.sleep(0.2)  # connected, pulling
        started = time.perf_counter()
        expected = base + await work()
        while self.handled < expected:
            await asyncio.sleep(0.0005)
        elapsed = time.perf_counter() - started
        stop.set()
        await task
        return elapsed

    async def publish(self, count: int, window: int, stamp: bool) -> int:
        """Publish ``count`` ticks, at most ``window`` awaiting their ack at once."""
        ticks, tick = self.app.ticks, self.app.Tick
        for start in range(0, count, window):
            batch = range(start, min(count, start + window))
            await asyncio.gather(
                *(ticks.publish_async(tick(n=n, t=time.time() if stamp else 0.0)) for n in batch)
            )
        return count

    async def steady(self, count: int, rate: float) -> int:
        """Publish ``count`` ticks at ``rate`` per second, not waiting for one ack before the next
        message is due (as independent requests of a web service would)."""
        ticks, tick = self.app.ticks, self.app.Tick
        began, sent, pending = time.perf_counter(), 0, set()
        while sent < count:
            due = min(count, int((time.perf_counter() - began) * rate) + 1)
            for n in range(sent, due):
                task = asyncio.ensure_future(ticks.publish_async(tick(n=n, t=time.time())))
                pending.add(task)  # only while in flight: thousands of finished tasks kept would be
                task.add_done_callback(pending.discard)  # scanned by every full collection
            sent = due
            await asyncio.sleep(0.001)
        await asyncio.gather(*pending)
        return count


async def run(args: argparse.Namespace, root: Path) -> dict:
    bench = Bench(root)
    figures: dict = {}
    await bench.consuming(lambda: bench.publish(2000, args.window, False))  # warm up

    for key, freeze in (("latency_ms", False), ("latency_ms_gc_frozen", True)):
        if freeze:  # what the process held before the run is never scanned again by the collector
            gc.collect()
            gc.freeze()
        figures[key] = []
        for rate in (float(r) for r in args.rate.split(",")):
            bench.latencies.clear()
            await bench.consuming(lambda rate=rate: bench.steady(args.latency, rate))
            ms = [x * 1000 for x in bench.latencies]
            figures[key].append(
                {
                    "rate": rate,
                    "messages": len(ms),
                    "p50": round(statistics.median(ms), 2),
                    "p99": round(_percentile(ms, 0.99), 2),
                    "max": round(max(ms), 2),
                }
            )
        gc.unfreeze()

    bench.latencies.clear()
    seconds = await bench.consuming(lambda: bench.publish(args.messages, args.window, True))
    ms = [x * 1000 for x in bench.latencies]
    figures["end_to_end"] = {
        "messages": args.messages,
        "seconds": round(seconds, 2),
        "per_second": round(args.messages / seconds),
        "latency_p50_ms": round(statistics.median(ms), 1),
        "latency_p99_ms": round(_percentile(ms, 0.99), 1),
    }

    started = time.perf_counter()
    await bench.publish(args.messages, args.window, False)
    publish_seconds = time.perf_counter() - started
    figures["publish_only"] = {"per_second": round(args.messages / publish_seconds)}

    async def nothing() -> int:
        return args.messages  # the backlog just published

    seconds = await bench.consuming(nothing, warm=False)
    figures["consume_backlog"] = {"per_second": round(args.messages / seconds)}

    started = time.perf_counter()
    count = min(args.messages, 5000)
    for n in range(count):
        bench.app.ticks.publish(bench.app.Tick(n=n, t=0.0))  # sync publish from a loop-less thread
    figures["sync_publish_one_at_a_time"] = {"per_second": round(count / (time.perf_counter() - started))}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=1000, help="publishes awaiting their ack at once")
    parser.add_argument("--rate", default="1000,5000", help="messages/s of the latency runs, comma-separated")
    parser.add_argument("--latency", type=int, default=3000, help="messages of the latency run")
    parser.add_argument("--concurrency", type=int, default=1000, help="the subscription's max_concurrency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        _apply(root, args.concurrency)
        figures = asyncio.run(run(args, root))
    print(json.dumps(figures, indent=2))
    end_to_end = figures["end_to_end"]
    print(f"end to end {end_to_end['per_second']:,} messages/s (target >= 10,000)")
    for key, label in (("latency_ms", ""), ("latency_ms_gc_frozen", ", gc frozen")):
        for latency in figures[key]:
            print(
                f"latency at {latency['rate']:.0f}/s{label}: p50 {latency['p50']} ms, "
                f"p99 {latency['p99']} ms (target < 10 ms)"
            )


if __name__ == "__main__":
    main()
