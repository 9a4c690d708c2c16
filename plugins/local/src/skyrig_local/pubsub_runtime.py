"""The local provider's pub/sub data plane: publishing to a topic, consuming a subscription.

Publishing works from synchronous code with no event loop (FastAPI runs sync endpoints in a threadpool)
and from any event loop: the process keeps one broker connection on the NATS loop thread
(:mod:`skyrig_local.natsio`) and submits to it. A consumer runs in the caller's own loop.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from skyrig_local import broker, natsio
from skyrig_local.consumer import ORDERING_HEADER, Consumer


def broker_url(entry: dict[str, Any]) -> str:
    """The URL of the broker serving ``entry``: the environment's running broker, else the one apply saw."""
    folder = entry.get("folder")
    found = broker.running(Path(folder)) if folder else None
    return found or entry["url"]


class TopicError(RuntimeError):
    """A message could not be published."""


class TopicClient:
    """Publishes to one topic's stream; returns once the broker has stored the message."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self.entry = entry
        self.name: str = entry.get("name") or entry["subject"].rpartition(".")[2]
        self.subject: str = entry["subject"]
        self._url: str | None = None

    def publish(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """Publish ``data`` (JSON-able) and return its message id. ``message_id`` names it yourself:
        on an exactly-once topic, the same id published again within the duplicate window is dropped."""
        if natsio.in_loop_thread():
            raise RuntimeError("publish() blocks: call publish_async() from skyrig's NATS loop")
        return natsio.run(self._publish(data, ordering_key, message_id), timeout=None)

    async def publish_async(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """:meth:`publish` from any event loop."""
        if natsio.in_loop_thread():
            return await self._publish(data, ordering_key, message_id)
        return await asyncio.wrap_future(natsio.submit(self._publish(data, ordering_key, message_id)))

    async def _publish(self, data: dict[str, Any], ordering_key: str | None, message_id: str | None) -> str:
        import nats.errors
        from nats.js.errors import NoStreamResponseError

        message_id = message_id or uuid.uuid4().hex
        headers = {"Nats-Msg-Id": message_id}
        if ordering_key is not None:
            headers[ORDERING_HEADER] = " ".join(ordering_key.splitlines()) or "-"
        payload = json.dumps(data, separators=(",", ":")).encode()
        for attempt in range(3):
            url = self._url or broker_url(self.entry)
            try:
                js = await natsio.jetstream(url)
                await js.publish(self.subject, payload, timeout=5, headers=headers)
            except natsio.BrokerNotRunning:
                if self._url is None or attempt:
                    raise
                self._url = None  # the broker may have come back elsewhere: look again, once
                continue
            except NoStreamResponseError:
                raise TopicError(
                    f"topic {self.name!r} has no stream in the broker at {url}: provision it with "
                    f"skyrig apply (skyrig run does)"
                ) from None
            except nats.errors.TimeoutError:
                continue  # no ack: publish again under the same id (the broker drops a duplicate)
            self._url = url
            return message_id
        raise TopicError(f"the broker at {self._url or self.entry['url']} did not store the message in time")


class SubscriptionClient:
    """Consumes one subscription (see :mod:`skyrig_local.consumer` for the delivery semantics)."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self.entry = entry
        self._consuming = False

    async def consume(
        self,
        handler: Callable[[dict[str, Any]], Awaitable[None]],
        stop: asyncio.Event,
        *,
        drain_timeout: float | None = None,
    ) -> None:
        """Handle messages with ``handler`` (raising means failure) until ``stop`` is set; then take no
        more and let running handlers finish, waiting at most ``drain_timeout`` seconds (by default the
        ack deadline, after which the broker would deliver them again anyway)."""
        if self._consuming:
            raise RuntimeError(f"subscription {self.entry['name']!r} is consumed already in this process")
        self._consuming = True
        try:
            consumer = Consumer(self.entry, broker_url(self.entry), handler, stop, drain_timeout)
            await consumer.run()
        finally:
            self._consuming = False
