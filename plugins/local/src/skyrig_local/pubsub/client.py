"""The local provider's pub/sub data plane: publishing to a topic, consuming a subscription.

Publishing works from synchronous code with no event loop (FastAPI runs sync endpoints in a threadpool)
and from any event loop: the process keeps one broker connection on the NATS loop thread
(:mod:`skyrig_local.pubsub.natsio`) and submits to it. A consumer runs in the caller's own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import uuid
from pathlib import Path
from typing import Any

from skyrig.provider import Consuming, Handler
from skyrig_local.pubsub import broker, natsio, outbox
from skyrig_local.pubsub.consumer import ORDERING_HEADER, Consumer

_encode = json.JSONEncoder(separators=(",", ":")).encode
_id_prefix = uuid.uuid4().hex[:16]
_id_counter = itertools.count(1)


def new_id() -> str:
    """A message id unique across processes: a random prefix per process and a counter (a uuid4 per
    message costs a system call)."""
    return f"{_id_prefix}{next(_id_counter):016x}"


def broker_url(entry: dict[str, Any]) -> str:
    """The URL of the broker serving ``entry``: the environment's running broker, else the one apply saw."""
    folder = entry.get("folder")
    found = broker.running(Path(folder)) if folder else None
    return found or entry["url"]


class TopicError(RuntimeError):
    """A message could not be published."""


class TopicClient:
    """Publishes to one topic's stream; returns once the broker has stored the message."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
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
        message_id = message_id or new_id()
        for again in (False, True):
            message = self._message(data, ordering_key, message_id, concurrent.futures.Future(), None)
            outbox.send(message)
            error = message.waiter.exception()
            if not self._retry(error, again):
                return self._result(message, error, message_id)
        raise AssertionError("unreachable")

    async def publish_async(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """:meth:`publish` from any event loop."""
        loop = asyncio.get_running_loop()
        message_id = message_id or new_id()
        for again in (False, True):
            message = self._message(data, ordering_key, message_id, loop.create_future(), loop)
            outbox.send(message)
            try:
                await message.waiter
                error = None
            except Exception as raised:
                error = raised
            if not self._retry(error, again):
                return self._result(message, error, message_id)
        raise AssertionError("unreachable")

    def _message(
        self, data: dict[str, Any], ordering_key: str | None, message_id: str, waiter: Any, loop: Any
    ) -> outbox.Message:
        headers = {"Nats-Msg-Id": message_id}
        if ordering_key is not None:
            headers[ORDERING_HEADER] = " ".join(ordering_key.splitlines()) or "-"
        if self._url is None:
            self._url = broker_url(self.entry)
        payload = _encode(data).encode()
        return outbox.Message(self._url, self.subject, payload, headers, waiter, loop)

    def _retry(self, error: BaseException | None, again: bool) -> bool:
        """Whether to publish again: once, when the broker may have come back at another address."""
        if isinstance(error, natsio.BrokerNotRunning) and not again:
            self._url = None
            return True
        return False

    def _result(self, message: outbox.Message, error: BaseException | None, message_id: str) -> str:
        from nats.js.errors import NoStreamResponseError

        if error is None:
            return message_id
        if isinstance(error, natsio.BrokerNotRunning):
            raise error
        if isinstance(error, NoStreamResponseError):
            raise TopicError(
                f"topic {self.name!r} has no stream in the broker at {message.url}: provision it with "
                f"skyrig apply (skyrig run does)"
            ) from None
        raise TopicError(f"publishing to topic {self.name!r} failed: {error}") from error


class SubscriptionClient(Consuming):
    """Consumes one subscription (see :mod:`skyrig_local.pubsub.consumer` for the delivery semantics)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.name: str = entry["name"]
        self.ack_deadline: float = entry["ack_deadline_seconds"]

    async def run(self, handler: Handler, stop: asyncio.Event, drain_timeout: float) -> None:
        """Handle messages with ``handler`` (raising means failure) until ``stop`` is set; then take no
        more and let running handlers finish, waiting at most ``drain_timeout`` seconds."""
        await Consumer(self.entry, broker_url(self.entry), handler, stop, drain_timeout).run()
