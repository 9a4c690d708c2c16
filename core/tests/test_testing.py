"""The test harness of skyrig test without servers: in-process pub/sub, cron, secrets, grants, the plugin."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator

import pytest

from skyrig.analysis import build_model
from skyrig.runtime import binding
from skyrig.testing import pubsub
from skyrig.testing.harness import Harness, runtime_config
from skyrig.testing.pubsub import DeliveryError

APP = {
    "relay/__init__.py": """
        from skyrig import Service
        service = Service("relay", app="relay.api:app")
    """,
    "relay/api.py": """
        import asyncio

        from pydantic import BaseModel
        from skyrig import Bucket, CronJob, Secret, Subscription, Topic

        app = None
        seen = []


        class Ping(BaseModel):
            n: int
            room: str = "a"


        pings = Topic("pings", Ping, ordering_attribute="room")
        pongs = Topic("pongs", Ping)
        files = Bucket("files")
        token = Secret("token")


        def on_ping(ping: Ping) -> None:
            seen.append(("ping", ping.n))
            if ping.n < 0:
                raise ValueError("negative")
            if ping.n < 100:
                pongs.publish(Ping(n=ping.n + 1))


        async def on_pong(pong: Ping) -> None:
            await asyncio.sleep(0)
            seen.append(("pong", pong.n))


        def echo(ping: Ping) -> None:
            pings.publish(Ping(n=ping.n))


        Subscription(pings, "on-ping", handler=on_ping)
        Subscription(pongs, "on-pong", handler=on_pong)


        async def tick() -> str:
            return "ticked"


        CronJob("tick", every="5m", endpoint=tick)


        def send(n: int) -> str:
            return pings.publish(Ping(n=n))


        def upload() -> None:
            files.upload("a.txt", b"a")


        def read_token() -> str:
            return token.value
    """,
}


@pytest.fixture
def harness(write_app, monkeypatch) -> Iterator[Harness]:
    root = write_app(APP)
    model = build_model(root, "testapp")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("SKYRIG_RUNTIME_CONFIG", json.dumps(runtime_config(model, {})))
    binding.reset()
    harness = Harness({"root": str(root), "model": model.to_json(), "providers": {}, "supports": {}})
    harness.install()
    import relay.api

    relay.api.seen.clear()
    yield harness
    binding.reset()
    for name in [m for m in sys.modules if m == "relay" or m.startswith("relay.")]:
        del sys.modules[name]


def test_the_runtime_config_grants_every_resource_and_operation(write_app):
    model = build_model(write_app(APP), "testapp")
    config = runtime_config(model, {"bucket": "local"})
    assert config["service"] == "tests" and config["environment"] == "test"
    assert config["resources"]["topic/pings"]["operations"] == ["publish"]
    assert config["resources"]["bucket/files"]["provider"] == "local"
    assert config["resources"]["subscription/on-pong"] == {
        "provider": "skyrig-test",
        "operations": [],
        "handler": "relay.api:on_pong",
        "topic": "pongs",
        "message_type": "relay.api:Ping",
    }
    assert config["resources"]["cron_job/tick"]["endpoint"] == "relay.api:tick"


def test_published_messages_are_recorded_and_drained_in_order(harness):
    import relay.api

    message_id = relay.api.send(1)
    relay.api.send(2)
    [first, second] = harness.bus.published("pings")
    assert first.id == message_id and first.data == {"n": 1, "room": "a"} and first.ordering_key == "a"
    assert harness.bus.decode(second) == relay.api.Ping(n=2)
    assert harness.bus.drain() == 4  # two pings, and the two pongs their handler published
    assert relay.api.seen == [("ping", 1), ("ping", 2), ("pong", 2), ("pong", 3)]
    assert harness.bus.drain() == 0


def test_draining_some_subscriptions_leaves_the_others_pending(harness):
    import relay.api

    relay.api.send(1)
    assert harness.bus.drain(["on-ping"]) == 1
    assert [(name, m.topic) for name, m in harness.bus.pending()] == [("on-pong", "pongs")]
    assert asyncio.run(harness.bus.drain_async()) == 1
    with pytest.raises(LookupError, match=r"no subscription 'nope' \(subscriptions: on-ping, on-pong\)"):
        harness.bus.drain(["nope"])
    with pytest.raises(LookupError, match=r"no topic 'nope' \(topics: pings, pongs\)"):
        harness.bus.published("nope")


def test_a_failing_handler_keeps_its_message_pending(harness):
    import relay.api

    relay.api.send(-1)
    with pytest.raises(DeliveryError, match=r"subscription 'on-ping' failed .*\(ValueError: negative\)"):
        harness.bus.drain()
    assert len(harness.bus.pending()) == 1
    with pytest.raises(DeliveryError):
        harness.bus.drain()  # delivered again, as a broker would
    harness.bus.clear()
    assert harness.bus.pending() == []


def test_handlers_that_never_settle_are_stopped(harness, monkeypatch):
    import relay.api

    monkeypatch.setattr(pubsub, "MAX_DELIVERIES", 20)
    harness.bus.subscriptions["on-ping"] = harness.bus.subscriptions["on-ping"].model_copy(
        update={"handler": "relay.api:echo"}
    )
    relay.api.send(1)
    with pytest.raises(RuntimeError, match="did not settle after 20 deliveries"):
        harness.bus.drain()


def test_drain_from_async_code_must_be_awaited(harness):
    async def scenario() -> None:
        harness.bus.drain()

    with pytest.raises(RuntimeError, match="use 'await drain_async\\(\\)'"):
        asyncio.run(scenario())


def test_cron_secrets_and_unsupported_kinds(harness):
    import relay.api

    assert harness.run_cron("tick") == "ticked"
    assert asyncio.run(harness.run_cron_async("tick")) == "ticked"
    with pytest.raises(LookupError, match=r"no cron job 'tock' \(cron jobs: tick\)"):
        harness.run_cron("tock")
    with pytest.raises(LookupError, match="skyrig_secrets"):
        relay.api.read_token()
    harness.secrets["token"] = "t"
    assert relay.api.read_token() == "t"
    with pytest.raises(binding.BindingError, match="no installed provider runs bucket resources in tests"):
        relay.api.upload()


def test_the_plugin_is_inert_outside_skyrig_test(request):
    manager = request.config.pluginmanager
    assert manager.get_plugin("skyrig") is not None, "the entry point is installed"
    assert manager.get_plugin("skyrig-fixtures") is None
    assert "skyrig_drain" not in request.fixturenames
