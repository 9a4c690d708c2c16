"""Pub/sub clients: publishing to a topic and consuming a subscription of the memory cloud's broker."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import skyrig.provider as sdk
from skyrig.provider import Consuming, Handler
from skyrig_memory.broker import Broker, NoSuchResource, Policy
from skyrig_memory.cloud import open_cloud

_encode = json.JSONEncoder(separators=(",", ":")).encode


class TopicError(RuntimeError):
    """A message could not be published."""


class TopicClient(sdk.TopicClient):
    """Publishes to one topic; returns once the message is stored in the cloud for every subscription."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.broker = Broker(open_cloud(entry["cloud"]))
        self.id = int(entry["resource_id"])
        self.name: str = entry["name"]
        self.ordered = bool(entry.get("ordered"))
        self.exactly_once = bool(entry.get("exactly_once"))

    def publish(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """Publish ``data`` (the message as JSON) and return its message id. ``message_id`` names it
        yourself: on an exactly-once topic the same id published again within the dedupe window is
        dropped (and its id returned)."""
        return self.publish_json(_encode(data).encode(), ordering_key=ordering_key, message_id=message_id)

    def publish_json(
        self, payload: bytes, *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """:meth:`publish` of a message already written as JSON."""
        message_id = message_id or uuid.uuid4().hex
        try:
            self.broker.publish(
                self.id,
                self.name,
                payload.decode(),
                message_id=message_id,
                ordering_key=ordering_key if self.ordered else None,
                dedupe=self.exactly_once,
            )
        except NoSuchResource:
            raise TopicError(
                f"topic {self.name!r} does not exist in the memory cloud: provision it with skyrig apply"
            ) from None
        return message_id


class SubscriptionClient(Consuming):
    """Consumes one subscription (see :mod:`skyrig_memory.runtime.consumer` for the semantics)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.policy = Policy.from_entry(entry)
        self.name = self.policy.name
        self.ack_deadline = self.policy.ack_deadline

    async def run(self, handler: Handler, stop: asyncio.Event, drain_timeout: float) -> None:
        """Handle messages with ``handler`` (raising means failure) until ``stop`` is set; then take no
        more and let running handlers finish, waiting at most ``drain_timeout`` seconds."""
        from skyrig_memory.runtime.consumer import Consumer

        broker = Broker(open_cloud(self.entry["cloud"]))
        await Consumer(broker, self.policy, handler, stop, drain_timeout).run()
