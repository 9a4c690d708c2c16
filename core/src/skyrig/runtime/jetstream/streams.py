"""The JetStream objects behind topics and subscriptions, declared from their definitions.

A topic is a stream on subject ``skyrig.topic.NAME``; a subscription is a durable pull consumer on it, a
dead-letter stream of its own and, for exactly-once topics, a key-value bucket of the message ids it has
handled. Settings the broker has no field for (retries, backoff, ordering) travel in the consumer's
metadata, so that the broker alone says what a subscription is. Every coroutine here runs on a JetStream
context and is safe to run again.

Streams are kept in memory unless ``storage="file"`` is asked for (a broker whose messages must survive
its restart). The names are the same for every environment: a broker serves one environment, or one
NATS account per environment, whose streams no other account sees.
"""

from __future__ import annotations

import contextlib
from typing import Any

EVENTS_STREAM = "skyrig-events"
"""The delivery attempts of each subscription, on ``skyrig.events.SUBSCRIPTION``: each message of the
stream is a burst of attempts, one JSON object a line (a message per attempt made the broker store two
messages for each one handled)."""
EXACTLY_ONCE_WINDOW = 120.0
"""Seconds within which a message id published again is dropped by the broker (exactly-once topics)."""
_AT_LEAST_ONCE_WINDOW = 1.0
_SETTINGS = ("max_retries", "min_backoff_seconds", "max_backoff_seconds", "retention_seconds")


def topic_stream(topic: str) -> str:
    return f"topic-{topic}"


def topic_subject(topic: str) -> str:
    return f"skyrig.topic.{topic}"


def dead_letter_stream(subscription: str) -> str:
    return f"dead-letter-{subscription}"


def dead_letter_subject(subscription: str) -> str:
    return f"skyrig.dead-letter.{subscription}"


def handled_bucket(subscription: str) -> str:
    return f"handled-{subscription}"


def events_subject(subscription: str) -> str:
    return f"skyrig.events.{subscription}"


Storage = str
"""``"memory"`` or ``"file"``: where the broker keeps a stream's messages."""


def _stream(name: str, subject: str, max_age: float, window: float, storage: Storage, **extra: Any) -> Any:
    from nats.js import api

    return api.StreamConfig(
        name=name,
        subjects=[subject],
        storage=api.StorageType(storage),
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD,
        max_age=float(max_age),
        duplicate_window=min(window, float(max_age)),
        **extra,
    )


async def _put_stream(js: Any, config: Any) -> None:
    """Create the stream, or bring an existing one to ``config``."""
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)


async def _delete_stream(js: Any, name: str) -> None:
    from nats.js.errors import NotFoundError

    with contextlib.suppress(NotFoundError):
        await js.delete_stream(name)


async def declare_events(js: Any, *, storage: Storage = "memory") -> None:
    """The stream of delivery attempts the dashboard reads (recent ones only)."""
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(EVENTS_STREAM)
    except NotFoundError:
        config = _stream(EVENTS_STREAM, "skyrig.events.>", 86400, _AT_LEAST_ONCE_WINDOW, storage)
        config.max_msgs = 100_000
        await js.add_stream(config)


async def declare_topic(js: Any, topic: dict[str, Any], *, storage: Storage = "memory") -> None:
    """The topic's stream, as ``topic`` defines it: ``name``, ``delivery`` (``at-least-once`` or
    ``exactly-once``), ``ordering_attribute`` (or None) and ``retention_seconds``."""
    exactly_once = topic["delivery"] == "exactly-once"
    metadata = {"delivery": topic["delivery"], "ordering_attribute": topic["ordering_attribute"] or ""}
    config = _stream(
        topic_stream(topic["name"]),
        topic_subject(topic["name"]),
        topic["retention_seconds"],
        EXACTLY_ONCE_WINDOW if exactly_once else _AT_LEAST_ONCE_WINDOW,
        storage,
        metadata=metadata,
    )
    await _put_stream(js, config)
    await declare_events(js, storage=storage)


async def read_topic(js: Any, name: str) -> dict[str, Any] | None:
    """The topic's properties as its stream says, or None without one."""
    from nats.js.errors import NotFoundError

    try:
        info = await js.stream_info(topic_stream(name))
    except NotFoundError:
        return None
    metadata = info.config.metadata or {}
    return {
        "name": name,
        "delivery": metadata.get("delivery", "at-least-once"),
        "ordering_attribute": metadata.get("ordering_attribute") or None,
        "retention_seconds": round(info.config.max_age or 0),
    }


async def remove_topic(js: Any, name: str) -> None:
    await _delete_stream(js, topic_stream(name))


async def declare_subscription(js: Any, subscription: dict[str, Any], *, storage: Storage = "memory") -> None:
    """The consumer, dead-letter stream and (exactly-once) handled-ids bucket of ``subscription``:
    ``name``, ``topic``, ``delivery``, ``ordering_attribute``, ``ack_deadline_seconds``,
    ``retention_seconds``, ``max_retries``, ``min_backoff_seconds``, ``max_backoff_seconds``,
    ``max_concurrency`` (the topic's stream must exist)."""
    from nats.js import api

    name = subscription["name"]
    retention = subscription["retention_seconds"]
    dead_letter = _stream(
        dead_letter_stream(name), dead_letter_subject(name), retention, EXACTLY_ONCE_WINDOW, storage
    )
    await _put_stream(js, dead_letter)
    if subscription["delivery"] == "exactly-once":
        bucket = _stream(f"KV_{handled_bucket(name)}", f"$KV.{handled_bucket(name)}.>", retention, 0, storage)
        bucket.max_msgs_per_subject = 1
        bucket.allow_direct = True
        bucket.allow_rollup_hdrs = True
        bucket.deny_delete = True
        await _put_stream(js, bucket)
    else:
        await _delete_stream(js, f"KV_{handled_bucket(name)}")
    metadata = {key: str(subscription[key]) for key in _SETTINGS}
    metadata["delivery"] = subscription["delivery"]
    metadata["ordering_attribute"] = subscription["ordering_attribute"] or ""
    config = api.ConsumerConfig(
        name=name,
        durable_name=name,
        deliver_policy=api.DeliverPolicy.NEW,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=float(subscription["ack_deadline_seconds"]),
        max_deliver=-1,
        max_ack_pending=subscription["max_concurrency"],
        max_waiting=512,
        metadata=metadata,
    )
    await js.add_consumer(topic_stream(subscription["topic"]), config)


async def read_subscription(js: Any, topic: str, name: str) -> dict[str, Any] | None:
    """The subscription's properties as the broker says, or None if any of its parts is missing."""
    from nats.js.errors import NotFoundError

    try:
        info = await js.consumer_info(topic_stream(topic), name)
        await js.stream_info(dead_letter_stream(name))
        metadata = info.config.metadata or {}
        if metadata.get("delivery") == "exactly-once":
            await js.stream_info(f"KV_{handled_bucket(name)}")
    except NotFoundError:
        return None
    return {
        "name": name,
        "topic": topic,
        "delivery": metadata.get("delivery", "at-least-once"),
        "ordering_attribute": metadata.get("ordering_attribute") or None,
        "ack_deadline_seconds": round(info.config.ack_wait or 0),
        "max_concurrency": info.config.max_ack_pending,
        **{key: int(metadata[key]) for key in _SETTINGS if key in metadata},
    }


async def remove_subscription(js: Any, topic: str, name: str) -> None:
    from nats.js.errors import NotFoundError

    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(topic_stream(topic), name)
    await _delete_stream(js, dead_letter_stream(name))
    await _delete_stream(js, f"KV_{handled_bucket(name)}")


SUBSCRIPTION_SETTINGS = (
    "ack_deadline_seconds",
    "retention_seconds",
    "max_retries",
    "min_backoff_seconds",
    "max_backoff_seconds",
    "max_concurrency",
)
"""A subscription's settings that change in place (the rest replaces it)."""


DEFAULT_RETENTION = 7 * 86400
"""A topic's retention, in seconds, when no subscription says otherwise (the subscriptions' default)."""


def definitions(model: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The definitions (a provider's node properties) of every topic and subscription of the app's
    ``model``, each by name: a topic keeps a message as long as its longest-keeping subscription asks; a
    subscription carries its topic's delivery and ordering."""
    from skyrig.values import duration_seconds

    retention: dict[str, int] = {}
    for r in model.of_kind("subscription"):
        retention[r.topic] = max(retention.get(r.topic, 0), duration_seconds(r.message_retention))
    topics = {
        r.name: {
            "name": r.name,
            "delivery": r.delivery,
            "ordering_attribute": r.ordering_attribute,
            "retention_seconds": retention.get(r.name, DEFAULT_RETENTION),
        }
        for r in model.of_kind("topic")
    }
    subscriptions = {}
    for r in model.of_kind("subscription"):
        topic = model.resource("topic", r.topic)
        subscriptions[r.name] = {
            "name": r.name,
            "topic": r.topic,
            "delivery": topic.delivery,
            "ordering_attribute": topic.ordering_attribute,
            "ack_deadline_seconds": duration_seconds(r.ack_deadline),
            "retention_seconds": duration_seconds(r.message_retention),
            "max_retries": r.max_retries,
            "min_backoff_seconds": duration_seconds(r.min_backoff),
            "max_backoff_seconds": duration_seconds(r.max_backoff),
            "max_concurrency": r.max_concurrency,
        }
    return topics, subscriptions


def topic_entry(topic: dict[str, Any]) -> dict[str, Any]:
    """What a topic's runtime config entry says of its stream, from its properties (the provider adds
    ``type`` and the connection: ``url``, ``user``, ``password``)."""
    name = topic["name"]
    return {
        "name": name,
        "stream": topic_stream(name),
        "subject": topic_subject(name),
        "exactly_once": topic["delivery"] == "exactly-once",
    }


def subscription_entry(subscription: dict[str, Any]) -> dict[str, Any]:
    """What a subscription's runtime config entry says of its consumer, from its properties (the provider
    adds ``type`` and the connection)."""
    name = subscription["name"]
    return {
        **{key: subscription[key] for key in SUBSCRIPTION_SETTINGS},
        "name": name,
        "topic": subscription["topic"],
        "stream": topic_stream(subscription["topic"]),
        "consumer": name,
        "dead_letter_subject": dead_letter_subject(name),
        "handled_bucket": handled_bucket(name),
        "ordered": subscription["ordering_attribute"] is not None,
        "exactly_once": subscription["delivery"] == "exactly-once",
    }


async def read_dead_letters(js: Any, subscription: str) -> list[dict[str, Any]]:
    """The messages in ``subscription``'s dead-letter stream, oldest first, left in place: each one's
    ``data``, ``attempts`` and ``error`` (what the ``DeadLetters`` capability answers)."""
    import json

    name = dead_letter_stream(subscription)
    state = (await js.stream_info(name)).state
    if not state.messages:
        return []
    letters = []
    for sequence in range(state.first_seq, state.last_seq + 1):
        message = await js.get_msg(name, sequence)
        headers = message.headers or {}
        attempts = headers.get("Skyrig-Attempts")
        letters.append(
            {
                "data": json.loads(message.data),
                "attempts": int(attempts) if attempts else None,
                "error": headers.get("Skyrig-Error"),
            }
        )
    return letters
