"""Declarations as the running app sees them: validated at import, with defaults and limits."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import BaseModel

from skyrig import (
    Bucket,
    CacheCluster,
    CronJob,
    DeclarationError,
    Secret,
    Service,
    SQLDatabase,
    Subscription,
    Topic,
)
from skyrig.values import duration_seconds, format_duration, suggest_name


class Order(BaseModel):
    order_id: int
    customer_id: str


@dataclasses.dataclass
class Shipment:
    order_id: int


def handle(message: Order) -> None:
    pass


def test_defaults_are_the_documented_ones():
    topic = Topic("order-created", Order)
    subscription = Subscription(topic, "send-receipt", handler=handle)
    assert subscription.spec.model_dump() == {
        "topic": "order-created",
        "name": "send-receipt",
        "handler": f"{__name__}:handle",
        "ack_deadline": "30s",
        "message_retention": "7d",
        "max_retries": 100,
        "min_backoff": "10s",
        "max_backoff": "10m",
        "max_concurrency": 100,
    }
    assert topic.spec.delivery == "at-least-once" and topic.spec.ordering_attribute is None
    assert CacheCluster("c").spec.eviction_policy == "allkeys-lru"
    assert Bucket("b").spec.model_dump() == {"name": "b", "public": False, "versioned": False}
    assert SQLDatabase("db").spec.migrations is None
    assert Secret("s").name == "s"
    assert Service("svc", app="svc.api:app").spec.app == "svc.api:app"


@pytest.mark.parametrize(
    "name, valid",
    [
        ("a", True),
        ("order-created", True),
        ("a1-b2", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("", False),
        ("1abc", False),
        ("abc-", False),
        ("Abc", False),
        ("a_b", False),
        ("a b", False),
    ],
)
def test_names(name, valid):
    if valid:
        assert Bucket(name).name == name
    else:
        with pytest.raises(DeclarationError):
            Bucket(name)


def test_ordering_attribute_must_be_a_field_of_the_message():
    assert Topic("t", Order, ordering_attribute="customer_id").spec.ordering_attribute == "customer_id"
    assert Topic("s", Shipment, ordering_attribute="order_id").message_type is Shipment
    with pytest.raises(DeclarationError, match="ordering_attribute 'customer' is not a field of Order"):
        Topic("t", Order, ordering_attribute="customer")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"ack_deadline": "0s"}, "must be between 1s and 10m"),
        ({"ack_deadline": "11m"}, "must be between 1s and 10m"),
        ({"message_retention": "59s"}, "must be between 1m and 14d"),
        ({"max_retries": -2}, "greater than or equal to -1"),
        ({"max_concurrency": 0}, "greater than or equal to 1"),
        ({"min_backoff": "5m", "max_backoff": "1m"}, "min_backoff '5m' is longer than max_backoff '1m'"),
        ({"max_retries": "3"}, "valid integer"),
    ],
)
def test_subscription_limits(settings, message):
    with pytest.raises(DeclarationError, match=message):
        Subscription(Topic("t", Order), "s", handler=handle, **settings)


def test_subscription_accepts_the_edges():
    spec = Subscription(
        Topic("t", Order),
        "s",
        handler=handle,
        ack_deadline="1s",
        message_retention="1m",
        max_retries=-1,
        min_backoff="0s",
        max_backoff="0s",
    ).spec
    assert (spec.max_retries, spec.min_backoff) == (-1, "0s")


def test_subscription_needs_a_topic():
    with pytest.raises(DeclarationError, match="topic must be a Topic"):
        Subscription("order-created", "s", handler=handle)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "every, valid",
    [
        ("1m", True),
        ("5m", True),
        ("1h", True),
        ("24h", True),
        ("90m", True),
        ("7m", False),
        ("30s", False),
        ("25h", False),
        ("1m30s", False),
    ],
)
def test_cron_every(every, valid):
    if valid:
        assert CronJob("c", every=every, endpoint=handle).spec.every == every
    else:
        with pytest.raises(DeclarationError, match="divide 24h"):
            CronJob("c", every=every, endpoint=handle)


def test_cron_schedule():
    assert CronJob("c", schedule="*/15 9-17 * * 1-5", endpoint=handle).spec.schedule == "*/15 9-17 * * 1-5"
    with pytest.raises(DeclarationError, match="five fields"):
        CronJob("c", schedule="0 0 3 * * *", endpoint=handle)
    with pytest.raises(DeclarationError, match="out of range"):
        CronJob("c", schedule="0 25 * * *", endpoint=handle)
    with pytest.raises(DeclarationError, match="exactly one of schedule= and every="):
        CronJob("c", endpoint=handle)


def test_keyspaces():
    cluster = CacheCluster("sessions", eviction_policy="volatile-ttl")
    keyspace = cluster.keyspace("session/{id}", value=Order, default_expiry="1h")
    assert (keyspace.cluster, keyspace.name, keyspace.spec.value_type) == (
        cluster,
        "session/{id}",
        f"{__name__}:Order",
    )
    for pattern in ("", "session/{", "session/{1d}", "a}b"):
        with pytest.raises(DeclarationError, match="invalid keyspace pattern"):
            cluster.keyspace(pattern, value=Order)
    with pytest.raises(DeclarationError, match="Input should be 'noeviction'"):
        CacheCluster("c", eviction_policy="lru")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, seconds", [("30s", 30), ("10m", 600), ("1h30m", 5400), ("7d", 604800), ("0s", 0)]
)
def test_durations(text, seconds):
    assert duration_seconds(text) == seconds
    assert duration_seconds(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "30", "30 s", "1m1h", "1.5h", "-1s", "30sec"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="invalid duration"):
        duration_seconds(text)


def test_name_suggestions_are_valid_names():
    for raw in ("My_Bucket", "123abc", "--", "OrderCreated", "x" * 80):
        Bucket(suggest_name(raw))
