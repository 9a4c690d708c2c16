"""The pubsub family against FAKES: Azure Resource Manager is the FAKE ARM (skyrig_azure.fake, not Azure:
Resource Manager has no emulator) and Service Bus is the FAKE broker (skyrig_azure.fake.servicebus, not
Azure: Microsoft's emulator is Docker-only), which the real azure-servicebus client talks AMQP to and
which enforces lock expiry, max delivery count and dead-lettering, sessions and duplicate detection.

Read back with azure-mgmt-servicebus as someone checking the portal would: the namespace (Standard, local
auth off, TLS 1.2), each topic (duplicate detection when exactly-once, its time to live), each
subscription (lock duration from the ack deadline, TTL from retention, max delivery count from
max_retries, sessions when ordered, dead-lettering on expiration); a re-apply is a no-op; drift (a tier
chosen in the portal adopted, a lock duration changed restored); an interrupted create converges; destroy
leaves nothing. The data plane through the runtime's own clients: dead letters after max_retries with the
handler's error, backoff timing between min and max, ordering by session, duplicates dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from skyrig_azure import api, names
from skyrig_azure.conformance import SUBSCRIPTION
from skyrig_azure.runtime import pubsub as runtime

RESOURCES = """
    from pydantic import BaseModel
    from skyrig import Subscription, Topic


    class Event(BaseModel):
        id: int = 0
        key: str = ""
        note: str = ""


    def handle(event: Event) -> None:
        pass


    events = Topic("events", Event)
    Subscription(events, "record", handler=handle, ack_deadline="2s", message_retention="3d",
                 max_retries=2, min_backoff="1s", max_backoff="2s")
    ordered = Topic("ordered", Event, ordering_attribute="key")
    Subscription(ordered, "in-order", handler=handle, max_retries=3, min_backoff="1s", max_backoff="1s")
    once = Topic("once", Event, delivery="exactly-once")
    Subscription(once, "once", handler=handle, ack_deadline="10m", max_retries=-1, min_backoff="0s",
                 max_backoff="0s")
"""
USE = """
    from .resources import events, ordered, once, Event


    def use() -> None:
        events.publish(Event())
        ordered.publish(Event())
        once.publish(Event())
"""
FILES = {
    "alpha/__init__.py": 'from skyrig import Service\n\nservice = Service("alpha", app="alpha.web:app")\n',
    "alpha/web.py": "async def app(scope, receive, send):\n    pass\n",
    "alpha/resources.py": RESOURCES,
    "alpha/use.py": USE,
}


def management(azure_app: Any) -> Any:
    from azure.mgmt.servicebus import ServiceBusManagementClient

    from skyrig_azure.credentials import EmulatorCredential

    return ServiceBusManagementClient(
        EmulatorCredential(),
        SUBSCRIPTION,
        base_url=azure_app.endpoints["arm"],
        credential_scopes=["https://management.azure.com/.default"],
    )


def namespace(azure_app: Any) -> str:
    return names.servicebus_namespace_name(SUBSCRIPTION, azure_app.name, "dev")


def group(azure_app: Any) -> str:
    return names.resource_group_name(azure_app.name, "dev")


def entries(azure_app: Any) -> dict[str, Any]:
    """The runtime config's resources of service alpha."""
    config = json.loads((azure_app.root / ".skyrig" / "runtime" / "dev" / "alpha.json").read_text())
    return config["resources"]


def test_every_property_reads_back_as_declared(deploy: Any, fake: Any) -> None:
    app = deploy(FILES)
    app.apply()
    sb, rg, ns = management(app), group(app), namespace(app)
    found = sb.namespaces.get(rg, ns)
    assert found.sku.name == "Standard"
    assert found.properties.disable_local_auth is True, "SAS keys must not work: Entra ID only"
    assert found.properties.minimum_tls_version == "1.2"
    assert found.tags["skyrig-app"] == app.name and found.tags["skyrig-node"] == "pubsub.namespace"

    topics = {t.name: t.properties for t in sb.topics.list_by_namespace(rg, ns)}
    assert sorted(topics) == ["events", "once", "ordered"]
    assert topics["once"].requires_duplicate_detection is True
    assert topics["once"].duplicate_detection_history_time_window.total_seconds() == 600
    assert topics["events"].requires_duplicate_detection is False

    record = sb.subscriptions.get(rg, ns, "events", "record").properties
    assert record.lock_duration.total_seconds() == 5, "a 2 s ack deadline is Service Bus's shortest lock"
    assert record.default_message_time_to_live.total_seconds() == 3 * 86400
    assert record.max_delivery_count == 3, "max_retries=2: three deliveries"
    assert record.dead_lettering_on_message_expiration is True
    assert record.requires_session is False
    in_order = sb.subscriptions.get(rg, ns, "ordered", "in-order").properties
    assert in_order.requires_session is True and in_order.max_delivery_count == 4
    assert in_order.lock_duration.total_seconds() == 30
    once = sb.subscriptions.get(rg, ns, "once", "once").properties
    assert once.lock_duration.total_seconds() == 300, "a 10 min ack deadline: the longest lock, renewed"
    assert once.max_delivery_count == 2000, "max_retries=-1: as many deliveries as allowed"

    resources = entries(app)
    assert resources["topic/ordered"]["ordered"] is True and resources["topic/once"]["exactly_once"] is True
    record_entry = resources["subscription/record"]
    assert (record_entry["ack_deadline_seconds"], record_entry["max_retries"]) == (2, 2)
    # no SAS key anywhere skyrig writes (under the fakes the data plane asks ARM's listKeys for it)
    if fake.servicebus is not None:
        key = fake.servicebus.key(namespace(app))
        written = [p for p in (app.root / ".skyrig").rglob("*") if p.is_file()]
        assert written and not any(key.encode() in p.read_bytes() for p in written)


def test_the_fake_refuses_what_service_bus_refuses(deploy: Any, fake: Any) -> None:
    """The FAKE ARM is only worth testing against if it refuses what Azure refuses."""
    from azure.core.exceptions import HttpResponseError

    app = deploy(FILES)
    app.apply()
    sb, rg, ns = management(app), group(app), namespace(app)
    refused = {
        "a lock under 5 s": ("events", "x", {"lockDuration": "PT2S"}),
        "a lock over 5 min": ("events", "x", {"lockDuration": "PT6M"}),
        "no delivery at all": ("events", "x", {"maxDeliveryCount": 0}),
        "sessions turned off": ("ordered", "in-order", {"requiresSession": False}),
    }
    for why, (topic, name, properties) in refused.items():
        with pytest.raises(HttpResponseError) as raised:
            sb.subscriptions.create_or_update(rg, ns, topic, name, {"properties": properties})
        assert raised.value.status_code == 400, why
    with pytest.raises(HttpResponseError):
        sb.topics.create_or_update(rg, ns, "once", {"properties": {"requiresDuplicateDetection": False}})
    with pytest.raises(HttpResponseError):
        sb.topics.create_or_update(
            rg, ns, "x", {"properties": {"duplicateDetectionHistoryTimeWindow": "PT5S"}}
        )


def test_a_second_apply_changes_nothing_and_a_refresh_lists_once(deploy: Any, fake: Any) -> None:
    app = deploy(FILES)
    app.apply()
    fake.calls.clear()
    api.CALLS.clear()
    assert app.plan() == []
    assert fake.calls.mutating() == []
    reads = Counter(
        {
            k: n
            for (k, method), n in api.CALLS.items()
            if k.startswith("Microsoft.ServiceBus") and method == "GET"
        }
    )
    # the namespace read, the topics listed once, the subscriptions listed once per topic
    assert reads == {
        "Microsoft.ServiceBus/namespaces": 1,
        "Microsoft.ServiceBus/namespaces/topics": 1,
        "Microsoft.ServiceBus/namespaces/topics/subscriptions": 3,
    }, reads
    assert "nothing to do" in app.apply().text
    assert fake.calls.mutating() == [], "a second apply changed something"


def test_a_tier_chosen_in_the_portal_is_adopted_and_a_changed_lock_is_restored(
    deploy: Any, fake: Any
) -> None:
    app = deploy(FILES)
    app.apply()
    sb, rg, ns = management(app), group(app), namespace(app)
    fake.edit(sb.namespaces.get(rg, ns).id, {"sku": {"name": "Premium", "tier": "Premium", "capacity": 1}})
    record = sb.subscriptions.get(rg, ns, "events", "record")
    fake.edit(record.id, {"properties": {"lockDuration": "PT1M", "maxDeliveryCount": 10}})
    fake.edit(sb.namespaces.get(rg, ns).id, {"properties": {"disableLocalAuth": False}})
    changes = {c["node"]: c for c in app.plan()}
    assert set(changes) == {"pubsub.subscription/record", "pubsub.namespace"}, changes
    app.apply()
    assert sb.namespaces.get(rg, ns).sku.name == "Premium", "a tier chosen in the portal was reverted"
    assert sb.namespaces.get(rg, ns).properties.disable_local_auth is True
    record = sb.subscriptions.get(rg, ns, "events", "record").properties
    assert (record.lock_duration.total_seconds(), record.max_delivery_count) == (5, 3)
    assert app.plan() == []


def test_an_interrupted_create_converges_and_destroy_leaves_nothing(deploy: Any, fake: Any) -> None:
    app = deploy(FILES)
    subscriptions = "Microsoft.ServiceBus/namespaces/topics/subscriptions"
    fake.inject(403, type=subscriptions, method="PUT", code="AuthorizationFailed", times=3)
    from skyrig.cli.testing import invoke

    assert invoke(["apply", "--env", "dev", "--yes", "-C", str(app.root)]).code != 0
    sb, rg, ns = management(app), group(app), namespace(app)
    assert sorted(t.name for t in sb.topics.list_by_namespace(rg, ns)) == ["events", "once", "ordered"]
    # a subscription made behind skyrig's back meanwhile (the first PUT reached Azure, its answer lost)
    sb.subscriptions.create_or_update(rg, ns, "events", "record", {"properties": {"lockDuration": "PT5S"}})
    fake.calls.clear()
    app.apply()
    assert fake.calls.count("Microsoft.ServiceBus/namespaces", "PUT") == 0, "the namespace was made twice"
    assert sb.subscriptions.get(rg, ns, "events", "record").properties.max_delivery_count == 3
    assert app.plan() == []
    app.cli("destroy", "--env", "dev", "--yes", "--include-data")
    assert [r for r in fake.resources() if "Microsoft.ServiceBus" in r] == []
    assert fake.servicebus is None or ns not in fake.servicebus.namespaces


# -- the data plane ---------------------------------------------------------------------------------------


def consume(
    entry: dict[str, Any],
    handler: Callable[[dict[str, Any]], Awaitable[None]],
    until: Callable[[], bool],
    timeout: float = 30,
    settle: float = 0.0,
) -> None:
    """Consume with the runtime's client until ``until()`` holds (then ``settle`` seconds more)."""

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.SubscriptionClient(entry).consume(handler, stop))
        started = time.monotonic()
        while not until():
            assert not task.done(), f"the consumer stopped: {task.exception()!r}"
            assert time.monotonic() - started < timeout, "what the test waits for did not happen"
            await asyncio.sleep(0.01)
        await asyncio.sleep(settle)
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(run())


@pytest.fixture
def applied(deploy: Any, fake: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    if fake.servicebus is None:
        pytest.skip("the FAKE ARM is not connected to the FAKE Service Bus broker here")
    monkeypatch.setenv(runtime.RECEIVE_VARIABLE, "1")
    app = deploy(FILES)
    app.apply()
    return app


def test_dead_lettered_after_max_retries_with_backoff_between_min_and_max(applied: Any) -> None:
    resources = entries(applied)
    runtime.TopicClient(resources["topic/events"]).publish({"id": 7, "note": "doomed"})
    attempts: list[float] = []

    async def handler(data: dict[str, Any]) -> None:
        attempts.append(time.monotonic())
        raise RuntimeError("fails on purpose")

    consume(resources["subscription/record"], handler, until=lambda: len(attempts) >= 3, settle=1.5)
    assert len(attempts) == 3, f"max_retries=2 means 3 deliveries, there were {len(attempts)}"
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert 0.9 <= gaps[0] <= 2.5, f"first retry after {gaps[0]:.2f} s, min_backoff is 1 s"
    assert 1.9 <= gaps[1] <= 3.5, f"second retry after {gaps[1]:.2f} s: doubled to max_backoff 2 s"
    broker = _BROKER["broker"]
    counts = broker.counts(namespace(applied), "events", "record")
    assert counts["dead_lettered"] == 1 and counts["active"] == 0, counts
    letters = dead_letters(applied, "record")
    assert [(x["data"]["id"], x["attempts"]) for x in letters] == [(7, 3)]
    assert "fails on purpose" in letters[0]["error"]


def test_a_handler_overrunning_the_ack_deadline_has_its_message_again(applied: Any) -> None:
    resources = entries(applied)
    runtime.TopicClient(resources["topic/events"]).publish({"id": 8, "note": "slow"})
    starts: list[float] = []

    async def handler(data: dict[str, Any]) -> None:
        starts.append(time.monotonic())
        if len(starts) == 1:
            await asyncio.sleep(3.5)  # past the declared 2 s, within the 5 s lock

    consume(resources["subscription/record"], handler, until=lambda: len(starts) >= 2, settle=0.5)
    assert 1.9 <= starts[1] - starts[0] <= 3.4, "given back at the declared ack deadline, not the lock's"


def test_messages_of_one_ordering_key_are_handled_in_order_in_sessions(applied: Any) -> None:
    resources = entries(applied)
    topic = runtime.TopicClient(resources["topic/ordered"])
    for number in range(12):
        topic.publish({"id": number, "key": "abc"[number % 3]}, ordering_key="abc"[number % 3])
    handled: dict[str, list[int]] = {}
    failed: set[int] = set()

    async def handler(data: dict[str, Any]) -> None:
        if data["id"] == 4 and 4 not in failed:
            failed.add(4)
            raise RuntimeError("fails once: the rest of its key waits")
        handled.setdefault(data["key"], []).append(data["id"])

    consume(resources["subscription/in-order"], handler, until=lambda: sum(map(len, handled.values())) >= 12)
    assert all(ids == sorted(ids) for ids in handled.values()), handled
    assert sorted(itertools.chain(*handled.values())) == list(range(12))


def test_duplicate_detection_drops_a_publish_retried_with_the_same_id(applied: Any) -> None:
    resources = entries(applied)
    topic = runtime.TopicClient(resources["topic/once"])
    for number in range(3):
        topic.publish({"id": number}, message_id=f"order-{number}")
        topic.publish({"id": number}, message_id=f"order-{number}")  # retried after a lost answer
    calls: Counter[int] = Counter()

    async def handler(data: dict[str, Any]) -> None:
        calls[data["id"]] += 1

    consume(resources["subscription/once"], handler, until=lambda: len(calls) >= 3, settle=1.5)
    assert calls == Counter({0: 1, 1: 1, 2: 1}), f"a duplicate was delivered: {calls}"


_BROKER: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _broker(fake: Any) -> None:
    _BROKER["broker"] = fake.servicebus


def dead_letters(app: Any, subscription: str) -> list[dict[str, Any]]:
    """What the provider's dead-letter reader (the one ``skyrig`` and the suite use) answers."""
    from skyrig.config import load_config
    from skyrig.engine.session import Session
    from skyrig_azure import provider

    session = Session(load_config(app.root), "dev")
    try:
        return provider.dead_letters(session.context("azure"), subscription)
    finally:
        session.store.close()


def test_a_namespace_made_again_is_reached_with_its_new_key(applied: Any) -> None:
    """Under the fakes a namespace made again has a new SAS key: a process that published before (its
    client kept) publishes and consumes again without a restart."""
    resources = entries(applied)
    runtime.TopicClient(resources["topic/events"]).publish({"id": 1})
    applied.cli("destroy", "--env", "dev", "--yes", "--include-data")
    applied.apply()
    resources = entries(applied)
    runtime.TopicClient(resources["topic/events"]).publish({"id": 2, "note": "again"})
    got: list[int] = []

    async def handler(data: dict[str, Any]) -> None:
        got.append(data["id"])

    consume(resources["subscription/record"], handler, until=lambda: bool(got))
    assert got == [2], "the namespace made again should hold only the message published to it"


def test_an_ordering_attribute_added_later_replaces_the_subscriptions(deploy: Any, fake: Any) -> None:
    """Sessions can only be chosen when a subscription is made (the FAKE refuses the change, as Azure
    does): declaring an ordering attribute replaces the topic's subscriptions, and only them."""
    app = deploy(FILES)
    app.apply()
    ordered = RESOURCES.replace('Topic("events", Event)', 'Topic("events", Event, ordering_attribute="key")')
    deploy({**FILES, "alpha/resources.py": ordered})
    changes = {c["node"]: c["action"] for c in app.plan()}
    assert changes == {"pubsub.subscription/record": "replace", "pubsub.topic/events": "update"}, changes
    app.apply()
    record = management(app).subscriptions.get(group(app), namespace(app), "events", "record").properties
    assert record.requires_session is True and record.max_delivery_count == 3
    assert app.plan() == []
