"""In-process pub/sub for tests: topics that record what is published, and delivery on demand.

Nothing runs in the background: a test publishes (through app code), looks at what was published, and
drains the subscriptions, which calls their handlers right there, in publish order, until no message is
left (messages the handlers publish included).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from skyrig.runtime import load_reference

if TYPE_CHECKING:
    from skyrig.model import AppModel

MAX_DELIVERIES = 10_000
"""A drain stops (with an error) after this many deliveries: handlers that keep publishing never settle."""


@dataclass(frozen=True)
class Message:
    """One published message, as the topic recorded it."""

    topic: str
    id: str
    data: dict[str, Any]
    """The message as JSON-able data, validated against the topic's type."""
    ordering_key: str | None
    published_at: datetime
    sequence: int = field(repr=False)


class DeliveryError(RuntimeError):
    """A subscription's handler raised; the message stays pending, as it would be redelivered."""


class TopicClient:
    """The data plane client of one topic in tests: ``publish`` records the message on the bus."""

    def __init__(self, bus: Bus, topic: str) -> None:
        self.bus = bus
        self.topic = topic

    def publish(self, data: dict[str, Any], *, ordering_key: str | None) -> str:
        """Record ``data``; returns its message id."""
        return self.bus.record(self.topic, data, ordering_key)

    async def publish_async(self, data: dict[str, Any], *, ordering_key: str | None) -> str:
        """:meth:`publish` for async code."""
        return self.bus.record(self.topic, data, ordering_key)


class Bus:
    """Every topic and subscription of the app, in this process."""

    def __init__(self, model: AppModel) -> None:
        self.topics = {r.name: r for r in model.of_kind("topic")}
        self.subscriptions = {r.name: r for r in model.of_kind("subscription")}
        self._lock = threading.Lock()
        self._sequence = itertools.count()
        self._messages: list[Message] = []
        self._delivered: dict[str, set[int]] = {name: set() for name in self.subscriptions}

    def client(self, topic: str) -> TopicClient:
        """The client app code publishes to ``topic`` through."""
        return TopicClient(self, topic)

    def record(self, topic: str, data: dict[str, Any], ordering_key: str | None) -> str:
        """Keep a published message; returns its id."""
        with self._lock:
            message = Message(
                topic, uuid.uuid4().hex, data, ordering_key, datetime.now(UTC), next(self._sequence)
            )
            self._messages.append(message)
        return message.id

    def clear(self) -> None:
        """Forget every message (published or pending)."""
        with self._lock:
            self._messages.clear()
            for delivered in self._delivered.values():
                delivered.clear()

    def published(self, topic: str) -> list[Message]:
        """The messages published to ``topic`` so far, in publish order."""
        self._check_topic(topic)
        with self._lock:
            return [m for m in self._messages if m.topic == topic]

    def decode(self, message: Message) -> Any:
        """``message`` as an instance of its topic's message type."""
        from skyrig.declarations.pubsub import decode_message

        return decode_message(load_reference(self.topics[message.topic].message_type), message.data)

    def pending(self, subscriptions: list[str] | None = None) -> list[tuple[str, Message]]:
        """``(subscription, message)`` not yet handled, in publish order."""
        names = self._check_subscriptions(subscriptions)
        with self._lock:
            return [
                (name, message)
                for message in self._messages
                for name in names
                if self.subscriptions[name].topic == message.topic
                and message.sequence not in self._delivered[name]
            ]

    def drain(self, subscriptions: list[str] | None = None) -> int:
        """Run the handlers for every pending message until none is left; returns how many ran.

        Async handlers run on one event loop made for this drain; from async code, use :meth:`drain_async`.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("drain() was called from async code: use 'await drain_async()' there")
        count = 0
        with asyncio.Runner() as runner:
            for name, message in self._steps(subscriptions):
                result = self._call(name, message)
                if inspect.isawaitable(result):
                    try:
                        runner.run(_awaited(result))
                    except Exception as error:
                        raise self._failed(name, message, error) from error
                self._done(name, message)
                count += 1
        return count

    async def drain_async(self, subscriptions: list[str] | None = None) -> int:
        """:meth:`drain` for async code: async handlers are awaited on the running loop."""
        count = 0
        for name, message in self._steps(subscriptions):
            result = self._call(name, message)
            if inspect.isawaitable(result):
                try:
                    await result
                except Exception as error:
                    raise self._failed(name, message, error) from error
            self._done(name, message)
            count += 1
        return count

    def _steps(self, subscriptions: list[str] | None) -> Iterator[tuple[str, Message]]:
        for _ in range(MAX_DELIVERIES):
            pending = self.pending(subscriptions)
            if not pending:
                return
            yield pending[0]
        raise RuntimeError(
            f"the subscriptions did not settle after {MAX_DELIVERIES} deliveries: "
            "a handler keeps publishing to a topic that leads back to it"
        )

    def _call(self, name: str, message: Message) -> Any:
        try:
            handler = load_reference(self.subscriptions[name].handler)
            return handler(self.decode(message))
        except Exception as error:
            raise self._failed(name, message, error) from error

    def _done(self, name: str, message: Message) -> None:
        with self._lock:
            self._delivered[name].add(message.sequence)

    def _failed(self, name: str, message: Message, error: Exception) -> DeliveryError:
        return DeliveryError(
            f"subscription {name!r} failed on message {message.id} of topic {message.topic!r} "
            f"({type(error).__name__}: {error}); the message stays pending"
        )

    def _check_topic(self, topic: str) -> None:
        if topic not in self.topics:
            known = ", ".join(sorted(self.topics)) or "none"
            raise LookupError(f"the app declares no topic {topic!r} (topics: {known})")

    def _check_subscriptions(self, names: list[str] | None) -> list[str]:
        if names is None:
            return list(self.subscriptions)
        unknown = [name for name in names if name not in self.subscriptions]
        if unknown:
            known = ", ".join(sorted(self.subscriptions)) or "none"
            raise LookupError(f"the app declares no subscription {unknown[0]!r} (subscriptions: {known})")
        return list(names)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
