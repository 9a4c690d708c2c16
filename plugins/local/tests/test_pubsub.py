"""Local pub/sub on a real NATS JetStream broker, through the real SDK: what the conformance suite (which
checks the semantics every provider shares) does not. The dashboard's view of messages and their
deliveries; the timing of retries and redeliveries, dead letters' headers, ordering keys handled in
parallel; the broker's own bookkeeping (nothing redelivered while held, handled ids, deduplication by
message id); and the broker's life: definitions replayed into a new broker, a stopped one reported,
streams destroyed, the broker dying with its owner."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from skyrig.cli import main
from skyrig.cli.session import open_session
from skyrig.runtime import binding
from skyrig.runtime.jetstream import loop as natsio
from skyrig.runtime.jetstream import streams
from skyrig_local import provider
from skyrig_local.pids import alive
from skyrig_local.pubsub import broker
from skyrig_local.pubsub.client import SubscriptionClient
from skyrig_local.pubsub.messages import recent_messages

APP = """
import datetime
from pydantic import BaseModel
from skyrig import Service, Subscription, Topic

service = Service("web", app="{module}:app")
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
Subscription(orders, "audit", handler=handle, {fast})
Subscription(orders, "idle", handler=handle, {fast})
failing = Topic("failing", Keyed)
Subscription(failing, "retry", handler=handle, ack_deadline="1s", min_backoff="1s", max_backoff="10s", max_retries=2)
failing_fast = Topic("failing-fast", Keyed)
Subscription(failing_fast, "no-retry", handler=handle, max_retries=0, {fast})
slow = Topic("slow", Keyed)
Subscription(slow, "deadline", handler=handle, max_retries=-1, {fast})
slow_dl = Topic("slow-dl", Keyed)
Subscription(slow_dl, "deadline-dl", handler=handle, max_retries=0, {fast})
ordered = Topic("ordered", Keyed, ordering_attribute="key")
Subscription(ordered, "in-order", handler=handle, ack_deadline="1s", min_backoff="1s", max_backoff="1s",
             max_concurrency=20)
once = Topic("once", Keyed, delivery="exactly-once")
Subscription(once, "once", handler=handle, max_concurrency=10, {fast})

def use():
    for topic in (orders, failing, failing_fast, slow, slow_dl, ordered, once):
        topic.publish(None)
"""


def _skyrig(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as done:
        return done.code or 0
    return 0


def _write_app(root: Path, module: str) -> Path:
    (root / module).mkdir(parents=True)
    (root / "skyrig.toml").write_text('app = "ps"\n[env.local]\ntype = "local"\nprovider = "local"\n')
    (root / module / "__init__.py").write_text(
        APP.format(module=module, fast='ack_deadline="1s", min_backoff="0s", max_backoff="0s"')
    )
    return root


def _use(root: Path, module: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SKYRIG_RUNTIME_CONFIG", str(root / ".skyrig/runtime/local/web.json"))
    monkeypatch.syspath_prepend(str(root))
    binding.reset()
    __import__(module)
    return sys.modules[module]


class App:
    """The applied app: its folder, its declarations (the SDK) and its runtime config."""

    def __init__(self, root: Path, module: object) -> None:
        self.root = root
        self.sdk = module
        self.folder = root / ".skyrig/local/local"
        self.config = json.loads((root / ".skyrig/runtime/local/web.json").read_text())

    def entry(self, subscription: str) -> dict:
        return self.config["resources"][f"subscription/{subscription}"]

    def consume(self, subscription: str, handler, until, *, timeout: float = 15, before=None, after=None):
        """Consume ``subscription`` with ``handler`` in a fresh loop until ``until()`` is true (then
        stop), running ``before`` once consuming has started; returns the seconds it took."""

        async def run() -> float:
            stop = asyncio.Event()
            task = asyncio.create_task(SubscriptionClient(self.entry(subscription)).consume(handler, stop))
            started = time.monotonic()
            if before is not None:
                await before()
            while not until():
                assert not task.done(), task.exception()
                assert time.monotonic() - started < timeout, f"{subscription}: timed out"
                await asyncio.sleep(0.01)
            if after is not None:
                await after()
            stop.set()
            await asyncio.wait_for(task, timeout)
            return time.monotonic() - started

        return asyncio.run(run())

    def js(self, coroutine_function):
        async def run():
            return await coroutine_function(await natsio.jetstream(broker.ensure(self.folder)))

        return natsio.run(run())


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    root = _write_app(tmp_path_factory.mktemp("pubsub"), "psapp")
    assert _skyrig("apply", "--env", "local", "--yes", "-C", str(root)) == 0
    yield root
    broker.stop(root / ".skyrig/local/local")


@pytest.fixture
def app(applied, monkeypatch):
    yield App(applied, _use(applied, "psapp", monkeypatch))
    binding.reset()


def test_recent_messages_show_each_message_and_its_deliveries(app):
    import datetime

    sdk = app.sdk
    order = sdk.Order(
        id=7, customer="ada", total=12.5, lines=["tea", "cake"], when=datetime.datetime(2026, 1, 2, 3, 4, 5)
    )
    message_id = sdk.orders.publish(order)
    for name in ("receipts", "audit"):
        got = []

        async def handler(data, got=got):
            got.append(data)

        app.consume(name, handler, until=lambda got=got: got)
        assert got == [order.model_dump(mode="json")]
        assert sdk.Order.model_validate(got[0]) == order
    session = open_session(str(app.root), "local")  # as the dashboard asks: through the provider's hook
    try:
        messages = provider.recent_messages(session.context("local"), 5)
    finally:
        session.store.close()
    assert messages == recent_messages(app.folder, 5)
    assert messages[0]["id"] == message_id
    assert messages[0]["topic"] == "orders"
    assert messages[0]["data"] == order.model_dump(mode="json")
    outcomes = {d["subscription"]: (d["attempt"], d["outcome"]) for d in messages[0]["deliveries"]}
    assert outcomes == {"receipts": (1, "ok"), "audit": (1, "ok"), "idle": (0, "pending")}


def _dead_letters(app: App, subscription: str) -> list:
    async def read(js):
        state = (await js.stream_info(streams.dead_letter_stream(subscription))).state
        return (
            [
                await js.get_msg(streams.dead_letter_stream(subscription), seq)
                for seq in range(state.first_seq, state.last_seq + 1)
            ]
            if state.messages
            else []
        )

    return app.js(read)


def test_retries_back_off_exponentially_then_dead_letter(app):
    calls = []

    async def handler(data):
        calls.append(time.monotonic())
        raise ValueError(f"boom {data['n']}")

    app.sdk.failing.publish(app.sdk.Keyed(key="k", n=1))
    app.consume("retry", handler, until=lambda: _dead_letters(app, "retry") if len(calls) == 3 else False)
    assert len(calls) == 3  # the first delivery and max_retries=2 retries
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert 0.9 < gaps[0] < 1.9, gaps  # min_backoff 1s
    assert 1.9 < gaps[1] < 3.2, gaps  # doubled
    [dead] = _dead_letters(app, "retry")
    assert json.loads(dead.data) == {"key": "k", "n": 1}
    assert dead.headers["Skyrig-Attempts"] == "3"
    assert dead.headers["Skyrig-Error"] == "ValueError: boom 1"
    assert dead.headers["Skyrig-Subject"] == "skyrig.topic.failing"
    # the dashboard shows each attempt (the consumer sends them in bursts)
    shown = next(m for m in recent_messages(app.folder, 50) if m["topic"] == "failing")
    attempts = [
        (d["attempt"], d["outcome"], d["error"]) for d in shown["deliveries"] if d["subscription"] == "retry"
    ]
    assert attempts == [
        (1, "failed", "ValueError: boom 1"),
        (2, "failed", "ValueError: boom 1"),
        (3, "dead-lettered", "ValueError: boom 1"),
    ]


def test_publishing_from_one_event_loop_after_another(app):
    """Each loop publishes on a connection of its own, closed with the loop: the next loop's publishes
    go out on a new one, and every message arrives."""
    ids = [asyncio.run(app.sdk.orders.publish_async(app.sdk.Order(id=n, customer="ada"))) for n in (901, 902)]
    assert len(set(ids)) == 2
    got = []

    async def handler(data):
        got.append(data["id"])

    app.consume("receipts", handler, until=lambda: {901, 902} <= set(got))


def test_max_retries_zero_dead_letters_after_the_first_failure(app):
    calls = []

    async def handler(data):
        calls.append(data)
        raise RuntimeError("no")

    app.sdk.failing_fast.publish(app.sdk.Keyed(key="k", n=2))
    app.consume("no-retry", handler, until=lambda: bool(_dead_letters(app, "no-retry")))
    time.sleep(0.2)
    assert calls == [{"key": "k", "n": 2}]
    [dead] = _dead_letters(app, "no-retry")
    assert dead.headers["Skyrig-Attempts"] == "1"


def test_a_message_not_acked_within_the_ack_deadline_is_delivered_again(app):
    calls = []

    async def handler(data):
        calls.append(time.monotonic())
        if len(calls) == 1:
            await asyncio.sleep(1.6)  # past the 1 s ack deadline

    app.sdk.slow.publish(app.sdk.Keyed(key="k", n=1))
    app.consume("deadline", handler, until=lambda: len(calls) >= 2)
    assert 0.9 < calls[1] - calls[0] < 1.6


def test_a_message_redelivered_past_max_retries_is_dead_lettered_unhandled(app):
    calls = []

    async def handler(data):
        calls.append(data)
        await asyncio.sleep(1.5)  # the deadline passes: a second delivery, past max_retries=0

    app.sdk.slow_dl.publish(app.sdk.Keyed(key="k", n=2))
    app.consume("deadline-dl", handler, until=lambda: bool(_dead_letters(app, "deadline-dl")))
    assert calls == [{"key": "k", "n": 2}]
    [dead] = _dead_letters(app, "deadline-dl")
    assert dead.headers["Skyrig-Attempts"] == "2"
    assert "ack deadline" in dead.headers["Skyrig-Error"]


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
    assert peak[0] > 1  # different keys in parallel
    # held messages (waiting 2 s of backoff behind a-1, past the 1 s ack deadline) were kept alive
    info = app.js(lambda js: js.consumer_info("topic-ordered", "in-order"))
    assert info.num_redelivered == 0


def test_exactly_once_with_a_handler_slower_than_its_ack_deadline(app):
    calls = []

    async def handler(data):
        calls.append(data["n"])
        if data["n"] == 0:
            await asyncio.sleep(2.5)  # well past the 1 s ack deadline

    for n in range(3):
        app.sdk.once.publish(app.sdk.Keyed(key="k", n=n))

    def settled():
        info = app.js(lambda js: js.consumer_info("topic-once", "once"))
        return len(calls) >= 3 and info.num_pending == 0 and info.num_ack_pending == 0

    app.consume("once", handler, until=settled)
    assert sorted(calls) == [0, 1, 2]
    # the broker never had to deliver it again: the slow handler's message was kept in progress
    assert app.js(lambda js: js.consumer_info("topic-once", "once")).num_redelivered == 0


def test_exactly_once_publish_dedupes_and_handled_ids_are_skipped(app):
    client = binding.client(app.sdk.once, "publish")
    before = app.js(lambda js: js.stream_info("topic-once")).state.messages
    assert client.publish({"key": "k", "n": 10}, message_id="fixed1") == "fixed1"
    assert client.publish({"key": "k", "n": 10}, message_id="fixed1") == "fixed1"
    assert app.js(lambda js: js.stream_info("topic-once")).state.messages == before + 1

    # a crash between the handler's success and its ack: the id is recorded, the ack never came
    async def record(js):
        await (await js.key_value("handled-once")).put("crashed1", b"")

    app.js(record)
    client.publish({"key": "k", "n": 11}, message_id="crashed1")
    calls = []

    async def handler(data):
        calls.append(data["n"])

    def settled():
        info = app.js(lambda js: js.consumer_info("topic-once", "once"))
        return info.num_pending == 0 and info.num_ack_pending == 0

    app.consume("once", handler, until=settled)
    assert calls == [10]


def test_definitions_replay_into_a_new_broker_and_a_stopped_broker_is_reported(tmp_path, monkeypatch):
    root = _write_app(tmp_path, "psrestart")
    result = subprocess.run(
        [sys.executable, "-m", "skyrig", "apply", "--env", "local", "--yes", "-C", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    folder = root / ".skyrig/local/local"
    assert broker.running(folder) is None  # it died with the process that applied
    sdk = _use(root, "psrestart", monkeypatch)
    url = json.loads((root / ".skyrig/runtime/local/web.json").read_text())["resources"]["topic/orders"][
        "url"
    ]
    with pytest.raises(broker.BrokerNotRunning, match=f"{url}.*skyrig run"):
        sdk.orders.publish(sdk.Order(id=1, customer="ada"))
    try:
        assert broker.ensure(folder) == url  # the same port again
        assert _skyrig("plan", "--env", "local", "--detailed-exitcode", "-C", str(root)) == 0
        binding.reset()
        sdk.orders.publish(sdk.Order(id=2, customer="bob"))
        got = []

        async def handler(data):
            got.append(data["id"])

        App(root, sdk).consume("receipts", handler, until=lambda: got)
        assert got == [2]  # the message published while no broker ran was refused, not lost in silence
        broker.stop(folder)
        started = time.monotonic()
        with pytest.raises(broker.BrokerNotRunning, match="skyrig run"):
            sdk.orders.publish(sdk.Order(id=3, customer="cy"))
        assert time.monotonic() - started < 2
    finally:
        broker.stop(folder)
        binding.reset()


def test_destroy_removes_the_streams(tmp_path):
    root = _write_app(tmp_path, "psdestroy")
    folder = root / ".skyrig/local/local"
    try:
        assert _skyrig("apply", "--env", "local", "--yes", "-C", str(root)) == 0

        async def names(js):
            return {info.config.name for info in await js.streams_info()}

        async def run(function):
            return await function(await natsio.jetstream(broker.ensure(folder)))

        before = natsio.run(run(names))
        assert {"topic-orders", "topic-once", "dead-letter-retry", "KV_handled-once"} <= before
        assert _skyrig("destroy", "--env", "local", "--yes", "-C", str(root)) == 0
        assert natsio.run(run(names)) == {streams.EVENTS_STREAM}
        assert broker.definitions(folder) == {"topics": {}, "subscriptions": {}}
    finally:
        broker.stop(folder)


def test_the_broker_dies_with_its_owner(tmp_path):
    folder = tmp_path / "env"
    code = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from skyrig_local.pubsub import broker
        broker.ensure(Path({str(folder)!r}))
        print(broker._owned[Path({str(folder)!r}).resolve()][0].pid, flush=True)
        os._exit(0) if sys.argv[1] == "crash" else None
        """
    )
    for how in ("exit", "crash"):
        result = subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True, timeout=30)
        pid = int(result.stdout.strip())
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(pid) or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", how
        assert broker.running(folder) is None
