"""Pub/sub through the real SDK data plane: publish-to-handler latency and throughput, per provider.

Writes an app with one topic and one subscription, applies an environment of each provider asked for
(``--providers``, in a process of its own, as ``skyrig run`` does before it starts the services), then
publishes (``Topic.publish_async``) and consumes (``SubscriptionClient.consume``, a no-op handler) in
this process:

- end to end: ``--messages`` published as fast as the publisher goes (``--window`` awaiting their ack at
  once) while the consumer runs; messages per second from the first publish to the last handler. On
  ``local``, a **bare nats-py client** does the same on the same broker in the same run, alternately with
  skyrig's path (``--rounds`` times each): ``publish_async`` with ``--window`` in flight, a stream kept
  in memory, a durable pull consumer with explicit acks; the ratio skyrig / bare is printed each round,
  and beside it the ratio of this process's CPU time a message (the broker's not counted), which other
  processes on a busy machine move less than they move wall time;
- latency: messages published at a steady rate (``--rate``, comma-separated), each carrying its publish
  time; the handler records publish -> handler start. Run as is, then after ``gc.freeze()``, as the
  service host does once started (the collector's full passes set the p99 at high rates); what follows
  runs frozen too;
- publish only, and consume only (a backlog drained), for where the time goes.

``local`` runs the environment's NATS broker (it is started again in this process, the definitions
replayed); ``memory`` its SQLite cloud in the app's folder; ``aws`` SNS and SQS on moto's server (started
here). The counts asked for are cut, on a provider slower than they assume, to about
``--seconds`` of that provider's own end-to-end rate, and said so.

Targets (issue 19, local): end to end >= 0.9x the bare client, p99 < 10 ms at 10,000/s.

    .venv/bin/python benchmarks/pubsub.py [--providers local,memory,aws] [--messages 50000]
        [--window 1000] [--rate 1000,5000,10000] [--latency 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

ENVIRONMENT = {
    "local": ("local", "local"),
    "memory": ("bench", "development"),
    "aws": ("bench", "development"),
}
"""Provider -> (environment name, environment type)."""


@contextlib.contextmanager
def _environment(provider: str, root: Path, concurrency: int) -> Iterator[str]:
    """The bench app in ``root`` applied on ``provider``'s environment; yields the environment's name.

    Apply runs in a process of its own, so that this process holds what a service holds and not the CLI
    and engine."""
    name, kind = ENVIRONMENT[provider]
    (root / "benchapp").mkdir(parents=True)
    (root / "benchapp" / "__init__.py").write_text(APP.format(concurrency=concurrency))
    lines = ['app = "bench"', f"[env.{name}]", f'type = "{kind}"', f'provider = "{provider}"']
    with contextlib.ExitStack() as stack:
        if provider == "aws":
            from skyrig_aws.conformance import CREDENTIALS, moto_server, settings

            os.environ.update({**CREDENTIALS, "SKYRIG_AWS_POLL_SECONDS": "1"})
            endpoint = stack.enter_context(moto_server())
            lines.append(f"[env.{name}.aws]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in settings(endpoint).items()]
        (root / "skyrig.toml").write_text("\n".join(lines) + "\n")
        command = [sys.executable, "-m", "skyrig", "apply", "--env", name, "--yes", "-C", str(root)]
        subprocess.run(command, check=True, capture_output=True)
        if provider == "local":
            from skyrig_local.pubsub import broker

            broker.ensure(root / ".skyrig/local/local")
        yield name


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _latency(ms: list[float]) -> dict[str, float]:
    return {
        "messages": len(ms),
        "p50": round(statistics.median(ms), 2),
        "p99": round(_percentile(ms, 0.99), 2),
        "max": round(max(ms), 2),
    }


def _end_to_end(count: int, seconds: float, cpu: float, latencies: list[float]) -> dict[str, Any]:
    """The figures of an end-to-end round: rate, processor time a message, latency (``latencies`` in s)."""
    ms = [x * 1000 for x in latencies]
    return {
        "messages": count,
        "per_second": round(count / seconds),
        "cpu_us_per_message": round(cpu / count * 1e6, 1),
        "latency_p50_ms": round(statistics.median(ms), 1),
        "latency_p99_ms": round(_percentile(ms, 0.99), 1),
    }


class Bench:
    """Publishing and consuming the bench app's topic through the SDK, bound to ``environment``."""

    def __init__(self, root: Path, environment: str) -> None:
        from skyrig.runtime import binding

        os.environ["SKYRIG_RUNTIME_CONFIG"] = str(root / f".skyrig/runtime/{environment}/bench.json")
        binding.reset()
        sys.modules.pop("benchapp", None)
        sys.path.insert(0, str(root))
        import benchapp

        sys.path.remove(str(root))
        self.app = benchapp
        self.subscription = binding.client_for_key("subscription/sink")
        self.latencies: list[float] = []
        self.handled = 0

    async def handler(self, data: dict) -> None:
        self.handled += 1
        if data["t"]:
            self.latencies.append(time.time() - data["t"])

    async def consuming(self, work: Any, warm: bool = True) -> float:
        """Run ``work`` while consuming; seconds from its start until the handler saw every message."""
        stop = asyncio.Event()
        base = self.handled
        task = asyncio.create_task(self.subscription.consume(self.handler, stop, drain_timeout=5))
        if warm:
            await asyncio.sleep(0.2)  # connected, pulling
        started = time.perf_counter()
        expected = base + await work()
        while self.handled < expected:
            if task.done():
                task.result()  # the consumer failed: say why
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

    async def end_to_end(self, count: int, window: int) -> dict[str, Any]:
        self.latencies.clear()
        cpu = time.process_time()
        seconds = await self.consuming(lambda: self.publish(count, window, True))
        return _end_to_end(count, seconds, time.process_time() - cpu, self.latencies)


class Bare:
    """The bare nats-py client on the same broker: a stream of its own kept in memory, ``publish_async``
    with ``window`` in flight, a durable pull consumer with explicit acks (``fetch`` in batches)."""

    STREAM, SUBJECT, CONSUMER = "bare-ticks", "bare.ticks", "bare"

    def __init__(self, window: int, concurrency: int) -> None:
        self.window = window
        self.concurrency = concurrency

    async def start(self, url: str) -> Bare:
        import nats
        from nats.js import api

        self.nc = await nats.connect(url, pending_size=8 * 1024 * 1024)
        self.js = self.nc.jetstream(publish_async_max_pending=self.window)
        await self.js.add_stream(
            name=self.STREAM,
            subjects=[self.SUBJECT],
            storage=api.StorageType.MEMORY,
            max_age=3600.0,
            duplicate_window=1.0,
        )
        config = api.ConsumerConfig(
            durable_name=self.CONSUMER, ack_policy=api.AckPolicy.EXPLICIT, max_ack_pending=self.concurrency
        )
        await self.js.add_consumer(self.STREAM, config)
        self.sub = await self.js.pull_subscribe_bind(self.CONSUMER, self.STREAM)
        return self

    async def end_to_end(self, count: int) -> dict[str, Any]:
        import nats.errors

        latencies: list[float] = []

        async def consume() -> None:
            handled = 0
            while handled < count:
                try:
                    batch = await self.sub.fetch(min(self.concurrency, count - handled), timeout=0.05)
                except nats.errors.TimeoutError:
                    continue
                for msg in batch:
                    data = json.loads(msg.data)
                    latencies.append(time.time() - data["t"])
                    await msg.ack()
                handled += len(batch)

        started, cpu = time.perf_counter(), time.process_time()
        consumer = asyncio.create_task(consume())
        for n in range(count):
            payload = json.dumps({"n": n, "t": time.time()}, separators=(",", ":")).encode()
            await self.js.publish_async(self.SUBJECT, payload)
        await self.js.publish_async_completed()
        await consumer
        return _end_to_end(count, time.perf_counter() - started, time.process_time() - cpu, latencies)

    async def close(self) -> None:
        await self.js.delete_stream(self.STREAM)
        await self.nc.close()


def _broker_url(root: Path) -> str:
    from skyrig_local.pubsub import broker

    url = broker.running(root / ".skyrig/local/local")
    assert url is not None, "the local broker is not running"
    return url


async def run(args: argparse.Namespace, provider: str, root: Path, environment: str) -> dict[str, Any]:
    bench = Bench(root, environment)
    figures: dict[str, Any] = {"notes": []}
    messages, latency, window = args.messages, args.latency, args.window
    if provider != "local":  # a first measure, to cut the counts to what this provider does in --seconds
        probe = min(messages, 200 if provider == "aws" else 2000)
        rate = (await bench.end_to_end(probe, min(window, probe)))["per_second"]
        cut = max(100, int(rate * args.seconds))
        if cut < messages:
            messages, latency = cut, min(latency, cut)
            figures["notes"].append(f"counts cut to {cut:,} (about {args.seconds:.0f} s at {rate:,}/s)")
    else:
        await bench.consuming(lambda: bench.publish(2000, window, False))  # warm up

    for key, freeze in (("latency_ms", False), ("latency_ms_gc_frozen", True)):
        if freeze:  # as the service host does once started: what the process holds is never scanned
            gc.collect()  # again by the collector (the end-to-end rounds below run so too)
            gc.freeze()
        figures[key] = []
        for rate in (float(r) for r in args.rate.split(",")):
            bench.latencies.clear()
            await bench.consuming(lambda rate=rate: bench.steady(latency, rate))
            figures[key].append({"rate": rate, **_latency([x * 1000 for x in bench.latencies])})

    bare = await Bare(window, args.concurrency).start(_broker_url(root)) if provider == "local" else None
    figures.update(end_to_end=[], bare_end_to_end=[], ratio=[], cpu_ratio=[])
    for round_ in range(args.rounds if bare else 1):
        figures["end_to_end"].append(await bench.end_to_end(messages, window))
        if bare is not None:
            figures["bare_end_to_end"].append(await bare.end_to_end(messages))
            ours, theirs = figures["end_to_end"][-1], figures["bare_end_to_end"][-1]
            ratio = ours["per_second"] / theirs["per_second"]
            figures["ratio"].append(round(ratio, 2))
            figures["cpu_ratio"].append(round(theirs["cpu_us_per_message"] / ours["cpu_us_per_message"], 2))
            print(
                f"[{provider}] round {round_ + 1}: skyrig {ours['per_second']:,}/s "
                f"({ours['cpu_us_per_message']} µs CPU a message in this process), bare nats-py "
                f"{theirs['per_second']:,}/s ({theirs['cpu_us_per_message']} µs): ratio {ratio:.2f} "
                f"(target >= 0.9), by CPU {figures['cpu_ratio'][-1]:.2f}",
                flush=True,
            )
    if bare is not None:
        await bare.close()

    started = time.perf_counter()
    await bench.publish(messages, window, False)
    figures["publish_only"] = {"per_second": round(messages / (time.perf_counter() - started))}

    async def nothing() -> int:
        return messages  # the backlog just published

    seconds = await bench.consuming(nothing, warm=False)
    figures["consume_backlog"] = {"per_second": round(messages / seconds)}

    count = min(messages, 5000)
    started = time.perf_counter()
    await asyncio.to_thread(_publish_sync, bench.app, count)
    figures["sync_publish_one_at_a_time"] = {"per_second": round(count / (time.perf_counter() - started))}
    await bench.consuming(lambda: asyncio.sleep(0, count), warm=False)  # leave nothing behind
    return figures


def _publish_sync(app: Any, count: int) -> None:
    for n in range(count):
        app.ticks.publish(app.Tick(n=n, t=0.0))  # sync publish from a loop-less thread


def _summary(results: dict[str, dict[str, Any]]) -> list[str]:
    """The figures of every provider side by side."""
    providers = list(results)

    def cell(provider: str, pick: Any) -> str:
        try:
            return pick(results[provider])
        except (KeyError, IndexError):
            return "-"

    def rates(f: list[dict[str, Any]]) -> str:
        return ", ".join(f"{e['per_second']:,}" for e in f) or "-"

    rows = [
        ("end to end, messages/s", lambda r: rates(r["end_to_end"])),
        ("bare nats-py, messages/s", lambda r: rates(r["bare_end_to_end"])),
        ("ratio skyrig / bare", lambda r: ", ".join(f"{x:.2f}" for x in r["ratio"]) or "-"),
        (
            "ratio by CPU a message (bare / skyrig)",
            lambda r: ", ".join(f"{x:.2f}" for x in r["cpu_ratio"]) or "-",
        ),
        (
            "CPU µs a message, skyrig",
            lambda r: ", ".join(f"{e['cpu_us_per_message']}" for e in r["end_to_end"]),
        ),
        ("publish only, messages/s", lambda r: f"{r['publish_only']['per_second']:,}"),
        ("consume only (backlog), messages/s", lambda r: f"{r['consume_backlog']['per_second']:,}"),
        (
            "sync publish one at a time, messages/s",
            lambda r: f"{r['sync_publish_one_at_a_time']['per_second']:,}",
        ),
    ]
    for key, label in (("latency_ms", ""), ("latency_ms_gc_frozen", ", gc frozen")):
        for index, rate in enumerate(results[providers[0]][key]):
            rows.append(
                (
                    f"p50 / p99 ms at {rate['rate']:,.0f}/s{label}",
                    lambda r, key=key, index=index: f"{r[key][index]['p50']} / {r[key][index]['p99']}",
                )
            )
    lines = ["| measure | " + " | ".join(providers) + " |", "| --- |" + " --- |" * len(providers)]
    for label, pick in rows:
        lines.append(f"| {label} | " + " | ".join(cell(p, pick) for p in providers) + " |")
    for provider in providers:
        lines += [f"{provider}: {note}" for note in results[provider]["notes"]]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--providers", default="local", help="comma-separated: local, memory, aws")
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=1000, help="publishes awaiting their ack at once")
    parser.add_argument("--rate", default="1000,5000,10000", help="messages/s of the latency runs")
    parser.add_argument("--latency", type=int, default=10_000, help="messages of each latency run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternations of skyrig's path and bare nats-py"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="what a slower provider's counts are cut to"
    )
    parser.add_argument("--concurrency", type=int, default=1000, help="the subscription's max_concurrency")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    for provider in args.providers.split(","):
        if provider not in ENVIRONMENT:
            parser.error(f"--providers: no provider {provider!r} (local, memory or aws)")
        with (
            tempfile.TemporaryDirectory() as folder,
            _environment(provider, Path(folder), args.concurrency) as env,
        ):
            results[provider] = asyncio.run(run(args, provider, Path(folder), env))
    print(json.dumps(results, indent=2))
    print("\n".join(_summary(results)))


if __name__ == "__main__":
    main()
