"""The FAKE Service Bus broker (skyrig_azure.fake.servicebus), driven by the real azure-servicebus client.

The broker is a FAKE (no Service Bus emulator is installable): these tests check that it enforces, through
Microsoft's own client over AMQP, the Service Bus semantics skyrig-azure relies on: fan-out, peek lock and
settlement, lock expiry and max delivery count, the dead-letter queue, sessions, duplicate detection,
scheduled messages, time to live, peek, and the message properties. Most of the time goes to the client
(it polls its socket every 50 ms and joins a keep-alive thread on close), not to the broker.
"""

from __future__ import annotations

import datetime
import itertools
import time

import pytest
from azure.servicebus import (
    NEXT_AVAILABLE_SESSION,
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import (
    MessageLockLostError,
    MessagingEntityNotFoundError,
    OperationTimeoutError,
    ServiceBusAuthenticationError,
    ServiceBusError,
    SessionCannotBeLockedError,
)

from skyrig_azure.fake.servicebus import FakeServiceBus

NS = "skyrig-test"
DLQ = ServiceBusSubQueue.DEAD_LETTER
DELETE = ServiceBusReceiveMode.RECEIVE_AND_DELETE
_names = itertools.count()


@pytest.fixture(scope="module")
def bus():
    with FakeServiceBus() as broker:
        yield broker


@pytest.fixture
def client(bus):
    with ServiceBusClient.from_connection_string(bus.connection_string(NS), retry_total=0) as c:
        yield c


def now():
    return datetime.datetime.now(datetime.UTC)


def topic_with(bus, topic_props=None, **subs):
    """A fresh topic with the given subscriptions (name -> ARM properties); returns the topic's name."""
    topic = f"topic-{next(_names)}"
    bus.ensure_topic(NS, topic, topic_props or {})
    for name, props in subs.items():
        bus.ensure_subscription(NS, topic, name, props)
    return topic


def send(client, topic, *batches):
    """Send each argument (a message, or a list sent as one batch) through one sender."""
    # keep_alive=0: no keep-alive thread, whose join costs up to a second on close
    with client.get_topic_sender(topic, keep_alive=0) as sender:
        for batch in batches:
            sender.send_messages(batch)


def receive(client, topic, sub, count=10, wait=1.0, **kwargs):
    with client.get_subscription_receiver(topic, sub, **kwargs) as receiver:
        return receiver.receive_messages(max_message_count=count, max_wait_time=wait)


def put_token_status(raised):
    """The CBS put-token status code behind a ServiceBusAuthenticationError."""
    return raised.value.inner_exception.status_code


def test_fan_out_to_every_subscription_with_properties_intact(bus, client):
    topic = topic_with(bus, billing={"lockDuration": "PT30S"}, audit={})
    before = now()
    send(
        client,
        topic,
        ServiceBusMessage(
            b'{"id": 1}',
            application_properties={"kind": "order", "attempt": 2},
            content_type="application/json",
            correlation_id="corr-1",
            message_id="msg-1",
            subject="order-created",
        ),
        [ServiceBusMessage(f"m{i}") for i in range(3)],
    )
    assert bus.counts(NS, topic, "billing") == {"active": 4, "deferred": 0, "dead_lettered": 0}
    with client.get_subscription_receiver(topic, "billing") as receiver:
        first, *batch = receiver.receive_messages(max_message_count=10, max_wait_time=1)
        assert b"".join(first.body) == b'{"id": 1}'
        assert first.application_properties == {b"kind": b"order", b"attempt": 2}
        assert (first.content_type, first.correlation_id, first.message_id, first.subject) == (
            "application/json",
            "corr-1",
            "msg-1",
            "order-created",
        )
        assert first.delivery_count == 0
        assert before - datetime.timedelta(seconds=1) <= first.enqueued_time_utc <= now()
        assert 28 < (first.locked_until_utc - now()).total_seconds() <= 30.5
        assert [str(m) for m in batch] == ["m0", "m1", "m2"]
        numbers = [m.sequence_number for m in (first, *batch)]
        assert numbers == sorted(set(numbers))
        for m in (first, *batch):
            receiver.complete_message(m)
    assert bus.counts(NS, topic, "billing")["active"] == 0
    audit = receive(client, topic, "audit", receive_mode=DELETE)
    assert [str(m) for m in audit[1:]] == ["m0", "m1", "m2"]
    assert audit[0].message_id == "msg-1"
    assert bus.counts(NS, topic, "audit")["active"] == 0


def test_missing_topic_or_subscription_is_refused_at_put_token_with_404(bus, client):
    # Service Bus answers the CBS put-token for a missing entity with 404 ("The messaging entity ... could
    # not be found"), which this client reports as ServiceBusAuthenticationError.
    topic = topic_with(bus, s={})
    with pytest.raises(ServiceBusAuthenticationError) as raised:
        send(client, "no-such-topic", ServiceBusMessage("x"))
    assert put_token_status(raised) == 404
    bus.delete_subscription(NS, topic, "s")
    with pytest.raises(ServiceBusAuthenticationError) as raised:
        receive(client, topic, "s")
    assert put_token_status(raised) == 404
    bus.delete_topic(NS, topic)
    with pytest.raises(ServiceBusAuthenticationError) as raised:
        send(client, topic, ServiceBusMessage("x"))
    assert put_token_status(raised) == 404


def test_entities_deleted_under_open_links_answer_not_found(bus, client):
    topic = topic_with(bus, s={})
    with client.get_subscription_receiver(topic, "s") as receiver:
        assert receiver.receive_messages(max_message_count=1, max_wait_time=0.2) == []
        bus.delete_subscription(NS, topic, "s")
        with pytest.raises(MessagingEntityNotFoundError):
            receiver.receive_messages(max_message_count=1, max_wait_time=1)
    with client.get_topic_sender(topic, keep_alive=0) as sender:
        sender.send_messages(ServiceBusMessage("to nobody"))  # a topic without subscriptions drops it
        bus.delete_topic(NS, topic)
        with pytest.raises(MessagingEntityNotFoundError):
            sender.send_messages(ServiceBusMessage("to no topic"))


def test_keys_sign_for_their_own_namespace_only(bus):
    topic = topic_with(bus, s={})
    bus.ensure_topic("other-ns", topic, {})
    bus.ensure_subscription("other-ns", topic, "s", {})
    keys = bus.access_keys("other-ns")
    assert keys["keyName"] == "RootManageSharedAccessKey"
    assert keys["primaryConnectionString"] == bus.connection_string("other-ns")

    def send_with(connection_string, body):
        with ServiceBusClient.from_connection_string(connection_string, retry_total=0) as c:
            send(c, topic, ServiceBusMessage(body))

    send_with(keys["primaryConnectionString"], "primary")
    send_with(keys["secondaryConnectionString"], "secondary")
    assert bus.counts("other-ns", topic, "s")["active"] == 2
    assert bus.counts(NS, topic, "s")["active"] == 0
    wrong = bus.connection_string(NS).replace(bus.key(NS), bus.key("other-ns")[:-4] + "AAA=")
    bus.regenerate_key("other-ns", "SecondaryKey")
    for refused in (wrong, keys["secondaryConnectionString"]):
        with pytest.raises(ServiceBusAuthenticationError) as raised:
            send_with(refused, "refused")
        assert put_token_status(raised) == 401
    assert bus.counts("other-ns", topic, "s")["active"] == 2


def test_abandon_dead_letter_and_max_delivery_count(bus, client):
    topic = topic_with(bus, s={"maxDeliveryCount": 2})
    send(client, topic, [ServiceBusMessage("poison"), ServiceBusMessage("bad"), ServiceBusMessage("good")])
    with client.get_subscription_receiver(topic, "s") as receiver:
        poison, bad, good = receiver.receive_messages(max_message_count=3, max_wait_time=1)
        receiver.abandon_message(poison)
        receiver.dead_letter_message(bad, reason="bad-payload", error_description="no customer id")
        receiver.complete_message(good)
        (again,) = receiver.receive_messages(max_message_count=3, max_wait_time=1)
        assert (str(again), again.delivery_count) == ("poison", 1)
        receiver.abandon_message(again)  # the second failed delivery of 2 allowed
        assert receiver.receive_messages(max_message_count=3, max_wait_time=0.3) == []
    assert bus.counts(NS, topic, "s") == {"active": 0, "deferred": 0, "dead_lettered": 2}
    with client.get_subscription_receiver(topic, "s", sub_queue=DLQ) as dlq:
        dead = dlq.receive_messages(max_message_count=3, max_wait_time=1)
        assert [(str(m), m.dead_letter_reason, m.dead_letter_error_description) for m in dead] == [
            (
                "poison",
                "MaxDeliveryCountExceeded",
                "Message could not be consumed after 2 delivery attempts.",
            ),
            ("bad", "bad-payload", "no customer id"),
        ]
        for m in dead:
            dlq.complete_message(m)
    assert bus.counts(NS, topic, "s")["dead_lettered"] == 0


def test_lock_expiry_redelivers_unless_renewed(bus, client):
    topic = topic_with(bus, s={"lockDuration": "PT1S"})
    send(client, topic, [ServiceBusMessage("slow"), ServiceBusMessage("renewed")])
    with client.get_subscription_receiver(topic, "s") as receiver:
        slow, renewed = receiver.receive_messages(max_message_count=2, max_wait_time=1)
        first_until = renewed.locked_until_utc
        for _ in range(3):
            time.sleep(0.4)
            receiver.renew_message_lock(renewed)
        assert renewed.locked_until_utc > first_until + datetime.timedelta(seconds=1)
        (again,) = receiver.receive_messages(max_message_count=2, max_wait_time=1)
        assert (str(again), again.delivery_count) == ("slow", 1)
        with pytest.raises(MessageLockLostError):
            receiver.complete_message(slow)
        receiver.complete_message(renewed)
        receiver.complete_message(again)
    assert bus.counts(NS, topic, "s")["active"] == 0


def test_peek_then_defer_and_receive_deferred_by_sequence_number(bus, client):
    topic = topic_with(bus, s={})
    send(client, topic, [ServiceBusMessage("later"), ServiceBusMessage("now"), ServiceBusMessage("too")])
    with client.get_subscription_receiver(topic, "s") as receiver:
        peeked = receiver.peek_messages(max_message_count=2)
        assert [str(m) for m in peeked] == ["later", "now"]
        assert [
            str(m)
            for m in receiver.peek_messages(max_message_count=5, sequence_number=peeked[1].sequence_number)
        ] == [
            "now",
            "too",
        ]
        later, *rest = receiver.receive_messages(max_message_count=5, max_wait_time=1)
        assert [str(m) for m in rest] == ["now", "too"]  # peeking locked nothing
        receiver.defer_message(later)
        for m in rest:
            receiver.complete_message(m)
        assert bus.counts(NS, topic, "s") == {"active": 0, "deferred": 1, "dead_lettered": 0}
        assert receiver.receive_messages(max_message_count=1, max_wait_time=0.3) == []
        (deferred,) = receiver.receive_deferred_messages([later.sequence_number])
        assert str(deferred) == "later"
        receiver.complete_message(deferred)
        with pytest.raises(ServiceBusError):
            receiver.receive_deferred_messages([later.sequence_number])
    assert bus.counts(NS, topic, "s") == {"active": 0, "deferred": 0, "dead_lettered": 0}


def test_sessions_serve_one_receiver_each_in_order(bus, client):
    topic = topic_with(bus, s={"requiresSession": True})
    send(
        client,
        topic,
        [ServiceBusMessage(f"{sid}{i}", session_id=sid) for i in range(3) for sid in ("a", "b")],
    )
    with pytest.raises(ServiceBusError, match="requires sessions"):
        receive(client, topic, "s")
    with client.get_subscription_receiver(topic, "s", session_id="a") as receiver_a:
        with pytest.raises(SessionCannotBeLockedError):
            receive(client, topic, "s", session_id="a")
        got = receiver_a.receive_messages(max_message_count=10, max_wait_time=1)
        assert [(str(m), m.session_id) for m in got] == [("a0", "a"), ("a1", "a"), ("a2", "a")]
        for m in got:
            receiver_a.complete_message(m)
        receiver_a.session.set_state(b"cursor=3")
        assert receiver_a.session.get_state() == b"cursor=3"
        before = receiver_a.session.locked_until_utc
        receiver_a.session.renew_lock()
        assert receiver_a.session.locked_until_utc >= before
        with client.get_subscription_receiver(
            topic, "s", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=2
        ) as b:
            assert b.session.session_id == "b"
            got = b.receive_messages(max_message_count=10, max_wait_time=1)
            assert [str(m) for m in got] == ["b0", "b1", "b2"]
            b.complete_message(got[0])
    # closing b's receiver gave its session up: the unsettled b1 and b2 are offered again
    with client.get_subscription_receiver(
        topic, "s", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=2
    ) as again:
        got = again.receive_messages(max_message_count=10, max_wait_time=1)
        assert [(str(m), m.delivery_count) for m in got] == [("b1", 1), ("b2", 1)]
        for m in got:
            again.complete_message(m)
    with pytest.raises(OperationTimeoutError):
        receive(client, topic, "s", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=1)


def test_duplicate_detection_drops_a_seen_message_id(bus, client):
    window = {"requiresDuplicateDetection": True, "duplicateDetectionHistoryTimeWindow": "PT10M"}
    topic, plain = topic_with(bus, window, s={}), topic_with(bus, s={})
    for t in (topic, plain):
        send(
            client,
            t,
            ServiceBusMessage("once", message_id="order-1"),
            ServiceBusMessage("twice", message_id="order-1"),
            [
                ServiceBusMessage("other", message_id="order-2"),
                ServiceBusMessage("again", message_id="order-2"),
            ],
        )
    assert [str(m) for m in receive(client, topic, "s", receive_mode=DELETE)] == ["once", "other"]
    assert bus.counts(NS, plain, "s")["active"] == 4


def test_scheduled_messages_arrive_at_their_time_or_never_if_cancelled(bus, client):
    topic = topic_with(bus, s={})
    at = now() + datetime.timedelta(seconds=2)
    with client.get_topic_sender(topic, keep_alive=0) as sender:
        (kept,) = sender.schedule_messages(ServiceBusMessage("retry #1"), at)
        (cancelled,) = sender.schedule_messages(ServiceBusMessage("never"), at)
        sender.send_messages(ServiceBusMessage("by annotation", scheduled_enqueue_time_utc=at))
        sender.cancel_scheduled_messages(cancelled)
    assert kept != cancelled
    assert now() < at
    assert bus.scheduled_count(NS, topic) == 2
    assert bus.counts(NS, topic, "s")["active"] == 0
    with client.get_subscription_receiver(topic, "s", receive_mode=DELETE) as receiver:
        msgs = receiver.receive_messages(max_message_count=5, max_wait_time=4)
        msgs += receiver.receive_messages(max_message_count=5, max_wait_time=0.3)
    assert sorted(str(m) for m in msgs) == ["by annotation", "retry #1"]
    assert all(m.enqueued_time_utc >= at - datetime.timedelta(milliseconds=100) for m in msgs)
    assert bus.scheduled_count(NS, topic) == 0


def test_time_to_live_expires_or_dead_letters(bus, client):
    ttl = {"defaultMessageTimeToLive": "PT1S"}
    topic = topic_with(bus, keep={**ttl, "deadLetteringOnMessageExpiration": True}, drop=ttl, forever={})
    short = ServiceBusMessage("short", time_to_live=datetime.timedelta(seconds=1))  # whole seconds only
    send(client, topic, [ServiceBusMessage("stale"), short])
    time.sleep(1.2)
    # the smaller of the message's and the subscription's time to live applies
    assert bus.counts(NS, topic, "forever") == {"active": 1, "deferred": 0, "dead_lettered": 0}
    assert bus.counts(NS, topic, "drop") == {"active": 0, "deferred": 0, "dead_lettered": 0}
    dead = receive(client, topic, "keep", sub_queue=DLQ, receive_mode=DELETE)
    assert [(str(m), m.dead_letter_reason) for m in dead] == [
        ("stale", "TTLExpiredException"),
        ("short", "TTLExpiredException"),
    ]
    (alive,) = receive(client, topic, "forever", receive_mode=DELETE)
    assert str(alive) == "stale"


def test_a_message_the_client_releases_is_available_again_at_once(bus, client):
    # With prefetch_count=0 the client gives credit per receive call and releases, pre-settled, what
    # arrives between calls: here the abandoned message, which the broker hands over again at once on the
    # credit the first call left. Service Bus unlocks a released message then and there (delivery count
    # unchanged); kept locked, it would come back only when its lock expired, counted one delivery higher.
    topic = topic_with(bus, s={"lockDuration": "PT30S"})
    send(client, topic, ServiceBusMessage("retried"))
    with client.get_subscription_receiver(topic, "s", prefetch_count=0) as receiver:
        (first,) = receiver.receive_messages(max_message_count=5, max_wait_time=1)
        receiver.abandon_message(first)
        receiver.peek_messages(max_message_count=1)  # the client reads its link outside a receive
        again = receiver.receive_messages(max_message_count=5, max_wait_time=2)
        assert [(str(m), m.delivery_count) for m in again] == [("retried", 1)]
        receiver.complete_message(again[0])
    assert bus.counts(NS, topic, "s")["active"] == 0
