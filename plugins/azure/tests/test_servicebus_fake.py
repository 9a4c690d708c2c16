"""The FAKE Service Bus broker (skyrig_azure.fake.servicebus), driven by the real azure-servicebus client.

The broker is a FAKE (no Service Bus emulator is installable): these tests check that it enforces, through
Microsoft's own client over AMQP, the Service Bus semantics skyrig-azure relies on: fan-out, peek lock and
settlement, lock expiry and max delivery count, the dead-letter queue, sessions, duplicate detection,
scheduled messages, time to live, peek, and the message properties.
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
_names = itertools.count()


@pytest.fixture(scope="module")
def bus():
    with FakeServiceBus() as broker:
        yield broker


@pytest.fixture
def client(bus):
    with ServiceBusClient.from_connection_string(bus.connection_string(NS), retry_total=0) as c:
        yield c


def topic_with(bus, topic_props=None, **subs):
    """A fresh topic with the given subscriptions (name -> ARM properties); returns the topic's name."""
    topic = f"topic-{next(_names)}"
    bus.ensure_topic(NS, topic, topic_props or {})
    for name, props in subs.items():
        bus.ensure_subscription(NS, topic, name, props)
    return topic


def send(client, topic, *messages):
    with client.get_topic_sender(topic) as sender:
        sender.send_messages(list(messages) if len(messages) > 1 else messages[0])


def receive(client, topic, sub, count=10, wait=1.0, **kwargs):
    receiver = client.get_subscription_receiver(topic, sub, **kwargs)
    with receiver:
        return receiver, receiver.receive_messages(max_message_count=count, max_wait_time=wait)


def test_fan_out_to_every_subscription_with_properties_intact(bus, client):
    topic = topic_with(bus, billing={"lockDuration": "PT30S"}, audit={})
    before = datetime.datetime.now(datetime.UTC)
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
    )
    assert bus.counts(NS, topic, "billing") == {"active": 1, "deferred": 0, "dead_lettered": 0}
    for sub in ("billing", "audit"):
        with client.get_subscription_receiver(topic, sub) as receiver:
            (msg,) = receiver.receive_messages(max_message_count=5, max_wait_time=1)
            assert b"".join(msg.body) == b'{"id": 1}'
            assert msg.application_properties == {b"kind": b"order", b"attempt": 2}
            assert (msg.content_type, msg.correlation_id, msg.message_id, msg.subject) == (
                "application/json",
                "corr-1",
                "msg-1",
                "order-created",
            )
            assert msg.delivery_count == 0
            assert msg.sequence_number >= 1
            assert (
                before - datetime.timedelta(seconds=1)
                <= msg.enqueued_time_utc
                <= datetime.datetime.now(datetime.UTC)
            )
            if sub == "billing":
                remaining = (msg.locked_until_utc - datetime.datetime.now(datetime.UTC)).total_seconds()
                assert 28 < remaining <= 30.5
            receiver.complete_message(msg)
    assert bus.counts(NS, topic, "billing")["active"] == 0
    assert bus.counts(NS, topic, "audit")["active"] == 0


def test_a_batch_fans_out_in_order(bus, client):
    topic = topic_with(bus, s={})
    send(client, topic, *(ServiceBusMessage(f"m{i}") for i in range(3)))
    _, msgs = receive(client, topic, "s", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE)
    assert [str(m) for m in msgs] == ["m0", "m1", "m2"]
    assert [m.sequence_number for m in msgs] == sorted(m.sequence_number for m in msgs)
    assert bus.counts(NS, topic, "s")["active"] == 0


def put_token_status(raised):
    """The CBS put-token status code behind a ServiceBusAuthenticationError."""
    return raised.value.inner_exception.status_code


def test_missing_topic_or_subscription_is_refused_at_put_token_with_404(bus, client):
    # Service Bus answers the CBS put-token for a missing entity with 404 ("The messaging entity ... could
    # not be found"), which this client reports as ServiceBusAuthenticationError.
    topic = topic_with(bus, s={})
    with pytest.raises(ServiceBusAuthenticationError) as raised:
        send(client, "no-such-topic", ServiceBusMessage("x"))
    assert put_token_status(raised) == 404
    with pytest.raises(ServiceBusAuthenticationError) as raised:
        receive(client, topic, "no-such-sub")
    assert put_token_status(raised) == 404
    bus.delete_subscription(NS, topic, "s")
    with pytest.raises(ServiceBusAuthenticationError) as raised:
        receive(client, topic, "s")
    assert put_token_status(raised) == 404
    bus.delete_topic(NS, topic)
    with pytest.raises(ServiceBusAuthenticationError) as raised:
        send(client, topic, ServiceBusMessage("x"))
    assert put_token_status(raised) == 404


def test_a_subscription_deleted_under_an_open_receiver_detaches_it_with_not_found(bus, client):
    topic = topic_with(bus, s={})
    with client.get_subscription_receiver(topic, "s") as receiver:
        assert receiver.receive_messages(max_message_count=1, max_wait_time=0.2) == []
        bus.delete_subscription(NS, topic, "s")
        with pytest.raises(MessagingEntityNotFoundError):
            receiver.receive_messages(max_message_count=1, max_wait_time=1)


def test_a_wrong_key_is_refused_and_namespaces_are_apart(bus):
    topic = topic_with(bus, s={})
    bus.ensure_topic("other-ns", topic, {})
    bus.ensure_subscription("other-ns", topic, "s", {})
    wrong = bus.connection_string(NS).replace(bus.key(NS), bus.key("other-ns")[:-4] + "AAA=")
    with (
        ServiceBusClient.from_connection_string(wrong, retry_total=0) as c,
        pytest.raises(ServiceBusAuthenticationError) as raised,
    ):
        send(c, topic, ServiceBusMessage("x"))
    assert put_token_status(raised) == 401
    with ServiceBusClient.from_connection_string(bus.connection_string("other-ns"), retry_total=0) as c:
        send(c, topic, ServiceBusMessage("for the other namespace"))
    assert bus.counts("other-ns", topic, "s")["active"] == 1
    assert bus.counts(NS, topic, "s")["active"] == 0


def test_abandon_redelivers_and_dead_letter_keeps_reason(bus, client):
    topic = topic_with(bus, s={})
    send(client, topic, ServiceBusMessage("a"), ServiceBusMessage("b"))
    with client.get_subscription_receiver(topic, "s") as receiver:
        first, second = receiver.receive_messages(max_message_count=2, max_wait_time=1)
        receiver.abandon_message(first)
        receiver.dead_letter_message(second, reason="bad-payload", error_description="no customer id")
        (again,) = receiver.receive_messages(max_message_count=2, max_wait_time=1)
        assert (str(again), again.delivery_count) == ("a", 1)
        receiver.complete_message(again)
    assert bus.counts(NS, topic, "s") == {"active": 0, "deferred": 0, "dead_lettered": 1}
    with client.get_subscription_receiver(topic, "s", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        (dead,) = dlq.receive_messages(max_message_count=2, max_wait_time=1)
        assert (str(dead), dead.dead_letter_reason, dead.dead_letter_error_description) == (
            "b",
            "bad-payload",
            "no customer id",
        )
        dlq.complete_message(dead)
    assert bus.counts(NS, topic, "s")["dead_lettered"] == 0


def test_max_delivery_count_moves_to_the_dead_letter_queue(bus, client):
    topic = topic_with(bus, s={"maxDeliveryCount": 2})
    send(client, topic, ServiceBusMessage("poison"))
    with client.get_subscription_receiver(topic, "s") as receiver:
        for expected in (0, 1):
            (msg,) = receiver.receive_messages(max_message_count=1, max_wait_time=1)
            assert msg.delivery_count == expected
            receiver.abandon_message(msg)
        assert receiver.receive_messages(max_message_count=1, max_wait_time=0.5) == []
    assert bus.counts(NS, topic, "s") == {"active": 0, "deferred": 0, "dead_lettered": 1}
    _, (dead,) = receive(client, topic, "s", sub_queue=ServiceBusSubQueue.DEAD_LETTER)
    assert (str(dead), dead.dead_letter_reason) == ("poison", "MaxDeliveryCountExceeded")


def test_lock_expiry_redelivers_and_the_old_lock_is_lost(bus, client):
    topic = topic_with(bus, s={"lockDuration": "PT1S"})
    send(client, topic, ServiceBusMessage("slow"))
    with client.get_subscription_receiver(topic, "s") as receiver:
        (msg,) = receiver.receive_messages(max_message_count=1, max_wait_time=1)
        assert receiver.receive_messages(max_message_count=1, max_wait_time=0.3) == []
        time.sleep(1.2)
        (again,) = receiver.receive_messages(max_message_count=1, max_wait_time=1)
        assert (str(again), again.delivery_count) == ("slow", 1)
        with pytest.raises(MessageLockLostError):
            receiver.complete_message(msg)
        receiver.complete_message(again)
    assert bus.counts(NS, topic, "s")["active"] == 0


def test_renew_lock_keeps_the_message(bus, client):
    topic = topic_with(bus, s={"lockDuration": "PT1S"})
    send(client, topic, ServiceBusMessage("long job"))
    with client.get_subscription_receiver(topic, "s") as receiver:
        (msg,) = receiver.receive_messages(max_message_count=1, max_wait_time=1)
        first_until = msg.locked_until_utc
        for _ in range(3):
            time.sleep(0.5)
            receiver.renew_message_lock(msg)
        assert msg.locked_until_utc > first_until + datetime.timedelta(seconds=1)
        receiver.complete_message(msg)
    assert bus.counts(NS, topic, "s")["active"] == 0


def test_defer_then_receive_deferred_by_sequence_number(bus, client):
    topic = topic_with(bus, s={})
    send(client, topic, ServiceBusMessage("later"))
    with client.get_subscription_receiver(topic, "s") as receiver:
        (msg,) = receiver.receive_messages(max_message_count=1, max_wait_time=1)
        receiver.defer_message(msg)
        assert bus.counts(NS, topic, "s") == {"active": 0, "deferred": 1, "dead_lettered": 0}
        assert receiver.receive_messages(max_message_count=1, max_wait_time=0.3) == []
        (deferred,) = receiver.receive_deferred_messages([msg.sequence_number])
        assert str(deferred) == "later"
        receiver.complete_message(deferred)
        with pytest.raises(ServiceBusError):
            receiver.receive_deferred_messages([msg.sequence_number])
    assert bus.counts(NS, topic, "s") == {"active": 0, "deferred": 0, "dead_lettered": 0}


def test_sessions_serve_one_receiver_each_in_order(bus, client):
    topic = topic_with(bus, s={"requiresSession": True})
    send(
        client,
        topic,
        *(ServiceBusMessage(f"{sid}{i}", session_id=sid) for i in range(3) for sid in ("a", "b")),
    )
    with pytest.raises(ServiceBusError):
        receive(client, topic, "s")
    with client.get_subscription_receiver(topic, "s", session_id="a") as receiver_a:
        assert receiver_a.session.session_id == "a"
        with pytest.raises(SessionCannotBeLockedError):
            receive(client, topic, "s", session_id="a")
        got = receiver_a.receive_messages(max_message_count=10, max_wait_time=1)
        assert [str(m) for m in got] == ["a0", "a1", "a2"]
        assert {m.session_id for m in got} == {"a"}
        for m in got:
            receiver_a.complete_message(m)
        receiver_a.session.set_state(b"cursor=3")
        assert receiver_a.session.get_state() == b"cursor=3"
        receiver_a.session.renew_lock()
        with client.get_subscription_receiver(
            topic, "s", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=2
        ) as receiver_b:
            assert receiver_b.session.session_id == "b"
            got = receiver_b.receive_messages(max_message_count=10, max_wait_time=1)
            assert [str(m) for m in got] == ["b0", "b1", "b2"]
            receiver_b.complete_message(got[0])
    # closing b's receiver gave up its session: the unsettled b1 and b2 are available again
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
    topic = topic_with(
        bus,
        {"requiresDuplicateDetection": True, "duplicateDetectionHistoryTimeWindow": "PT10M"},
        s={},
    )
    plain = topic_with(bus, s={})
    for t in (topic, plain):
        send(client, t, ServiceBusMessage("once", message_id="order-1"))
        send(client, t, ServiceBusMessage("twice", message_id="order-1"))
        send(client, t, ServiceBusMessage("other", message_id="order-2"))
    _, msgs = receive(client, topic, "s", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE)
    assert [str(m) for m in msgs] == ["once", "other"]
    assert bus.counts(NS, plain, "s")["active"] == 3


def test_scheduled_messages_arrive_at_their_time_or_never_if_cancelled(bus, client):
    topic = topic_with(bus, s={})
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
    with client.get_topic_sender(topic) as sender:
        (kept,) = sender.schedule_messages(ServiceBusMessage("retry #1"), at)
        (cancelled,) = sender.schedule_messages(ServiceBusMessage("never"), at)
        sender.send_messages(ServiceBusMessage("by annotation", scheduled_enqueue_time_utc=at))
        sender.cancel_scheduled_messages(cancelled)
    assert kept != cancelled
    assert datetime.datetime.now(datetime.UTC) < at
    assert bus.scheduled_count(NS, topic) == 2
    assert bus.counts(NS, topic, "s")["active"] == 0
    with client.get_subscription_receiver(
        topic, "s", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
    ) as r:
        msgs = r.receive_messages(max_message_count=5, max_wait_time=4)
        msgs += r.receive_messages(max_message_count=5, max_wait_time=0.3)
    assert sorted(str(m) for m in msgs) == ["by annotation", "retry #1"]
    assert all(m.enqueued_time_utc >= at - datetime.timedelta(milliseconds=100) for m in msgs)
    assert bus.scheduled_count(NS, topic) == 0


def test_time_to_live_expires_or_dead_letters(bus, client):
    topic = topic_with(
        bus,
        keep={"defaultMessageTimeToLive": "PT1S", "deadLetteringOnMessageExpiration": True},
        drop={"defaultMessageTimeToLive": "PT1S"},
        forever={},
    )
    send(client, topic, ServiceBusMessage("stale"))
    time.sleep(1.2)
    _, msgs = receive(client, topic, "drop", wait=0.3)
    assert msgs == []
    assert bus.counts(NS, topic, "drop") == {"active": 0, "deferred": 0, "dead_lettered": 0}
    assert bus.counts(NS, topic, "forever")["active"] == 1
    _, (dead,) = receive(client, topic, "keep", sub_queue=ServiceBusSubQueue.DEAD_LETTER)
    assert (str(dead), dead.dead_letter_reason) == ("stale", "TTLExpiredException")


def test_peek_does_not_lock(bus, client):
    topic = topic_with(bus, s={})
    send(client, topic, *(ServiceBusMessage(f"p{i}") for i in range(3)))
    with client.get_subscription_receiver(topic, "s") as receiver:
        peeked = receiver.peek_messages(max_message_count=2)
        assert [str(m) for m in peeked] == ["p0", "p1"]
        assert receiver.peek_messages(max_message_count=5, sequence_number=peeked[1].sequence_number)[0].body
        got = receiver.receive_messages(max_message_count=5, max_wait_time=1)
        assert [str(m) for m in got] == ["p0", "p1", "p2"]
