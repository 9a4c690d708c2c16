"""Pub/sub in the memory cloud, through the real SDK: what the conformance suite (which checks the semantics
every provider shares) does not. The timing of retries and redeliveries, what a dead letter records,
ordering keys handled in parallel; the broker's bookkeeping (deduplication by message id, handled ids, a
message given back when the drain timeout cuts its handler short); consumers in several processes sharing
a subscription; and a topic that is gone."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import textwrap
import time

import pytest

from skyrig_memory import provider
from skyrig_memory.broker import Broker, Policy
from skyrig_memory.cloud import open_cloud
from skyrig_memory.runtime.pubsub import TopicError

from .conftest import App, deploy, skyrig

SOURCE = """
import datetime
from pydantic import BaseModel
from skyrig import Service, Subscription, Topic

service = Service("web", app="{package}:app")
app = None


class Order(BaseModel):
    id: int
    customer: str
    total: float = 0.0
    lines: list[str] = []
    when: datetime.datetime | None = None


class Keyed(BaseModel):
    key: str
    n: int


def handle(message) -> None:
    pass


orders = Topic("orders", Order)
Subscription(orders, "receipts", handler=handle, {fast})
failing = Topic("failing", Keyed)
Subscription(failing, "retry", handler=handle, ack_deadline="1s", min_backoff="1s", max_backoff="10s", max_retries=2)
failing_fast = Topic("failing-fast", Keyed)
Subscription(failing_fast, "no-retry", handler=handle, max_retries=0, {fast})
slow = Topic("slow", Keyed)
Subscription(slow, "deadline", handler=handle, max_retries=-1, {fast})
slow_dl = Topic("slow-dl", Keyed)
Subscription(slow_dl, "deadline-dl", handler=handle, max_retries=0, {fast})
work = Topic("work", Keyed)
Subscription(work, "drain", handler=handle, max_concurrency=5, {fast})
shared = Topic("shared", Keyed)
Subscription(shared, "shared", handler=handle, ack_deadline="30s", max_concurrency=4)
ordered = Topic("ordered", Keyed, ordering_attribute="key")
Subscription(ordered, "in-order", handler=handle, ack_deadline="1s", min_backoff="1s", max_backoff="1s",
             max_concurrency=20)
once = Topic("once", Keyed, delivery="exactly-once")
Subscription(once, "once", handler=handle, max_concurrency=10, {fast})
sequence = Topic("sequence", Keyed, ordering_attribute="key")
Subscription(sequence, "in-order-shared", handler=handle, ack_deadline="5s", min_backoff="0s",
             max_backoff="0s", max_concurrency=2)


def use():
    for topic in (orders, failing, failing_fast, slow, slow_dl, work, shared, ordered, once, sequence):
        topic.publish(None)
"""


def _source(package: str) -> str:
    return SOURCE.format(package=package, fast='ack_deadline="1s", min_backoff="0s", max_backoff="0s"')


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    root = tmp_path_factory.mktemp("pubsub")
    return deploy(root, "ps", "psapp", _source("psapp"))


@pytest.fixture
def app(deployed, monkeypatch):
    return App(deployed, "psapp", monkeypatch)


def _broker(app: App, subscription: str) -> tuple[Broker, Policy]:
    entry = app.config["resources"][f"subscription/{subscription}"]
    return Broker(open_cloud(entry["cloud"])), Policy.from_entry(entry)


def _left(app: App, subscription: str) -> int:
    """Messages of ``subscription`` not yet settled (ready, leased or waiting to be retried)."""
    broker, policy = _broker(app, subscription)
    query = "SELECT count(*) FROM messages WHERE subscription = ?"
    return broker.cloud.connection.execute(query, (policy.id,)).fetchone()[0]


def _dead(app: App, subscription: str) -> list[dict]:
    with app.context() as context:
        return provider.dead_letters(context, subscription)


def test_retries_back_off_exponentially_then_dead_letter(app):
    calls = []

    async def handler(data):
        calls.append(time.monotonic())
        raise ValueError(f"boom {data['n']}")

    app.sdk.failing.publish(app.sdk.Keyed(key="k", n=1))
    app.consume("retry", handler, until=lambda: _left(app, "retry") == 0)
    assert len(calls) == 3  # the first delivery and max_retries=2 retries
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert 0.95 < gaps[0] < 1.5, gaps  # min_backoff 1s
    assert 1.95 < gaps[1] < 2.5, gaps  # doubled
    assert _dead(app, "retry") == [
        {"data": {"key": "k", "n": 1}, "attempts": 3, "error": "ValueError: boom 1"}
    ]


def test_max_retries_zero_dead_letters_after_the_first_failure(app):
    calls = []

    async def handler(data):
        calls.append(data)
        raise RuntimeError("no")

    app.sdk.failing_fast.publish(app.sdk.Keyed(key="k", n=2))
    app.consume("no-retry", handler, until=lambda: _left(app, "no-retry") == 0)
    assert calls == [{"key": "k", "n": 2}]
    assert _dead(app, "no-retry") == [
        {"data": {"key": "k", "n": 2}, "attempts": 1, "error": "RuntimeError: no"}
    ]


def test_a_message_not_acked_within_the_ack_deadline_is_delivered_again(app):
    calls = []

    async def handler(data):
        calls.append(time.monotonic())
        if len(calls) == 1:
            await asyncio.sleep(1.4)  # past the 1 s ack deadline

    app.sdk.slow.publish(app.sdk.Keyed(key="k", n=1))
    app.consume("deadline", handler, until=lambda: len(calls) >= 2 and _left(app, "deadline") == 0)
    assert 0.95 < calls[1] - calls[0] < 1.3
    assert _dead(app, "deadline") == [], "max_retries=-1: no dead-letter queue"


def test_a_message_redelivered_past_max_retries_is_dead_lettered_unhandled(app):
    calls = []

    async def handler(data):
        calls.append(data)
        await asyncio.sleep(1.3)  # the deadline passes: a second delivery would be past max_retries=0

    app.sdk.slow_dl.publish(app.sdk.Keyed(key="k", n=2))
    app.consume("deadline-dl", handler, until=lambda: bool(_dead(app, "deadline-dl")))
    assert calls == [{"key": "k", "n": 2}]
    [dead] = _dead(app, "deadline-dl")
    assert dead["attempts"] == 1 and "ack deadline" in dead["error"]


def test_ordering_per_key_under_concurrency_and_with_a_failing_message(app):
    log, running, peak, failures = [], [0], [0], {"a-1": 2}

    async def handler(data):
        name = f"{data['key']}-{data['n']}"
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        try:
            await asyncio.sleep(0.02)
            if failures.get(name):
                failures[name] -= 1
                log.append((name, "failed"))
                raise ValueError("not yet")
            log.append((name, "ok"))
        finally:
            running[0] -= 1

    for n in range(4):
        for key in "abc":
            app.sdk.ordered.publish(app.sdk.Keyed(key=key, n=n))
    app.consume("in-order", handler, until=lambda: sum(1 for _, outcome in log if outcome == "ok") == 12)
    for key in "abc":
        handled = [name for name, outcome in log if name.startswith(key) and outcome == "ok"]
        assert handled == [f"{key}-{n}" for n in range(4)]
    a = [entry for entry in log if entry[0].startswith("a")]
    assert a == [
        ("a-0", "ok"),
        ("a-1", "failed"),
        ("a-1", "failed"),
        ("a-1", "ok"),
        ("a-2", "ok"),
        ("a-3", "ok"),
    ]
    assert peak[0] > 1, "different keys in parallel"


def test_exactly_once_publish_dedupes_and_handled_ids_are_never_handed_out_again(app):
    client = app.client("topic/once")
    assert client.publish({"key": "k", "n": 10}, message_id="fixed1") == "fixed1"
    assert client.publish({"key": "k", "n": 10}, message_id="fixed1") == "fixed1"
    assert _left(app, "once") == 1, "the second publish of the id was dropped"
    # a message handled already (say the same id published again after the dedupe window)
    broker, policy = _broker(app, "once")
    broker.cloud.connection.execute(
        "INSERT INTO handled_ids VALUES (?, 'handled1', ?)", (policy.id, time.time())
    )
    broker.publish(int(client.id), "once", '{"key": "k", "n": 11}', message_id="handled1")
    calls = []

    async def handler(data):
        calls.append(data["n"])

    app.consume("once", handler, until=lambda: _left(app, "once") == 0)
    assert calls == [10]


def test_a_handler_cut_short_by_the_drain_timeout_gives_its_message_back(app):
    async def handler(data):
        await asyncio.sleep(30)

    app.sdk.work.publish(app.sdk.Keyed(key="k", n=9))
    broker, policy = _broker(app, "drain")
    leased = "SELECT count(*) FROM messages WHERE subscription = ? AND lease IS NOT NULL"
    app.consume(
        "drain",
        handler,
        until=lambda: broker.cloud.connection.execute(leased, (policy.id,)).fetchone()[0] == 1,
        drain_timeout=0.1,
    )
    row = broker.cloud.connection.execute(
        "SELECT lease, attempts FROM messages WHERE subscription = ?", (policy.id,)
    ).fetchone()
    assert row == (None, 0), "ready again at once, the delivery not counted"
    done = []

    async def quick(data):
        done.append(data["n"])

    app.consume("drain", quick, until=lambda: _left(app, "drain") == 0)
    assert done == [9]


CONSUMER = """
import asyncio, json, os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from skyrig.runtime import binding

folder, subscription = Path(sys.argv[2]), sys.argv[3]
running = [0]

async def handler(data):
    running[0] += 1
    peak, started = running[0], time.time()
    await asyncio.sleep(0.05)  # long enough that one process cannot take all before the other polls
    running[0] -= 1
    failed = folder / f"failed-{data['key']}-{data['n']}"
    outcome = "ok"
    if data["n"] % 7 == 3 and not failed.exists():  # some fail once, and must hold their key back
        failed.touch()
        outcome = "failed"
    with (folder / "handled.jsonl").open("a") as f:
        f.write(json.dumps([os.getpid(), data["key"], data["n"], outcome, peak, started, time.time()]) + "\\n")
    if outcome == "failed":
        raise RuntimeError("once")

async def main():
    stop = asyncio.Event()
    task = asyncio.create_task(binding.client_for_key(f"subscription/{subscription}").consume(handler, stop))
    (folder / f"ready-{os.getpid()}").touch()
    while not (folder / "stop").exists():
        await asyncio.sleep(0.02)
    stop.set()
    await task

asyncio.run(main())
"""


def _two_consumers(app: App, folder, subscription: str, publish) -> list[list]:
    """Run two consumer processes of ``subscription``, ``publish`` once both consume, until nothing is
    left; what each handled: [pid, key, n, outcome, concurrent handlers, started, ended]."""
    import json
    import os

    env = {**os.environ, "SKYRIG_RUNTIME_CONFIG": str(app.config_path)}
    code = textwrap.dedent(CONSUMER)
    processes = [
        subprocess.Popen([sys.executable, "-c", code, str(app.root), str(folder), subscription], env=env)
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 20
        while len(list(folder.glob("ready-*"))) < 2:
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
            time.sleep(0.02)
        publish()
        while _left(app, subscription) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        (folder / "stop").touch()
        for process in processes:
            assert process.wait(10) == 0
    return [json.loads(line) for line in (folder / "handled.jsonl").read_text().splitlines()]


def test_two_consumer_processes_share_the_work_without_duplicates(app, tmp_path):
    def publish():
        for n in range(60):
            app.sdk.shared.publish(app.sdk.Keyed(key=f"k{n}", n=n * 7 + 1))  # none fails

    handled = _two_consumers(app, tmp_path, "shared", publish)
    assert sorted(n for _, _, n, *_ in handled) == [n * 7 + 1 for n in range(60)], "each message once"
    per_process = {pid: sum(1 for p, *_ in handled if p == pid) for pid in {p for p, *_ in handled}}
    assert len(per_process) == 2 and min(per_process.values()) >= 6, per_process
    assert max(peak for *_, peak, _, _ in handled) <= 4, "max_concurrency holds in each process"


def test_ordering_holds_across_consumer_processes(app, tmp_path):
    def publish():
        for n in range(15):
            for key in "abc":
                app.sdk.sequence.publish(app.sdk.Keyed(key=key, n=n))

    handled = _two_consumers(app, tmp_path, "in-order-shared", publish)
    for key in "abc":
        mine = sorted((entry for entry in handled if entry[1] == key), key=lambda entry: entry[5])
        assert [n for _, _, n, outcome, *_ in mine if outcome == "ok"] == list(range(15)), key
        assert [n for _, _, n, outcome, *_ in mine if outcome == "failed"] == [3, 10], key
        for before, after in itertools.pairwise(mine):
            assert before[6] <= after[5], f"key {key}: {before} and {after} overlapped"
    assert len({pid for pid, *_ in handled}) == 2, "both processes took part (2 keys at most each)"


def test_publishing_to_a_topic_that_is_gone_says_so(tmp_path, monkeypatch):
    root = deploy(tmp_path, "gone", "goneapp", _source("goneapp"))
    app = App(root, "goneapp", monkeypatch)
    assert skyrig(root, "destroy", "--env", "dev", "--yes") == 0
    with pytest.raises(TopicError, match="topic 'orders' does not exist in the memory cloud: provision it"):
        app.sdk.orders.publish(app.sdk.Order(id=1, customer="ada"))

    async def handler(data):
        pass

    consuming = app.client("subscription/receipts").consume(handler, asyncio.Event())
    with pytest.raises(RuntimeError, match="subscription 'receipts' does not exist in the memory cloud"):
        asyncio.run(consuming)
