"""The data plane of topics and subscriptions on a JetStream broker: publishing and consuming.

Publishing works from any event loop, on a connection of that loop's own, and from synchronous code with
no event loop (FastAPI runs sync endpoints in a threadpool) through one broker connection per server on
the NATS loop thread (:mod:`skyrig.runtime.jetstream.loop`); :mod:`~skyrig.runtime.jetstream.outbox`
does both.
A consumer runs in the caller's own loop (:mod:`~skyrig.runtime.jetstream.consumer`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import uuid
from typing import Any

from skyrig.runtime.dataplane import Consuming, Handler
from skyrig.runtime.jetstream import loop as natsio
from skyrig.runtime.jetstream import outbox
from skyrig.runtime.jetstream.consumer import ORDERING_HEADER, Consumer
from skyrig.runtime.jetstream.loop import BrokerUnreachable, Server
from skyrig.runtime.servers import Resolve

_encode = json.JSONEncoder(separators=(",", ":")).encode
_id_prefix = uuid.uuid4().hex[:16]
_id_counter = itertools.count(1)


def new_id() -> str:
    """A message id unique across processes: a random prefix per process and a counter (a uuid4 per
    message costs a system call)."""
    return f"{_id_prefix}{next(_id_counter):016x}"


def server_of(entry: dict[str, Any], resolve: Resolve | None = None, hint: str = "") -> Server:
    """The broker an entry names: ``url``, and ``user`` with ``password`` (a secret reference, resolved
    by ``resolve`` when a connection is made) when the broker asks for a login."""
    reference = entry.get("password")
    password = None
    if reference is not None:
        if resolve is None:
            raise LookupError(f"the pub/sub broker at {entry['url']}: no way to read its password")
        password = lambda: resolve(reference)  # noqa: E731
    return Server(entry["url"], entry.get("user"), password, hint)


class TopicError(RuntimeError):
    """A message could not be published."""


class JetStreamClient:
    """What a topic's and a subscription's client share: the entry and the broker it names.

    A provider subclasses the clients to say where its broker is now (:meth:`server`) and what the user
    should do when it does not answer (:attr:`unreachable`) or lacks the resource (:attr:`missing`)."""

    unreachable = ""
    """The end of the message when the broker does not answer."""
    missing = "provision it with skyrig apply"
    """The end of the message when the broker has no stream or consumer for the resource."""

    def __init__(
        self, entry: dict[str, Any], config: dict[str, Any] | None = None, resolve: Resolve | None = None
    ) -> None:
        self.entry = entry
        self.resolve = resolve

    def server(self) -> Server:
        """The broker serving the entry (looked up again after it stopped answering)."""
        return server_of(self.entry, self.resolve, self.unreachable)

    def refused(self) -> bool:
        """Called once when the broker refuses the login: True to log in again (a provider whose
        passwords change forgets the one it read), False to fail with a :class:`PermissionError`."""
        return False


class TopicClient(JetStreamClient):
    """Publishes to one topic's stream; returns once the broker has stored the message."""

    def __init__(
        self, entry: dict[str, Any], config: dict[str, Any] | None = None, resolve: Resolve | None = None
    ) -> None:
        super().__init__(entry, config, resolve)
        self.name: str = entry.get("name") or entry["subject"].rpartition(".")[2]
        self.subject: str = entry["subject"]
        self._server: Server | None = None

    def publish(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """Publish ``data`` (JSON-able) and return its message id. ``message_id`` names it yourself:
        on an exactly-once topic, the same id published again within the duplicate window is dropped."""
        return self.publish_json(_encode(data).encode(), ordering_key=ordering_key, message_id=message_id)

    async def publish_async(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """:meth:`publish` from any event loop."""
        payload = _encode(data).encode()
        return await self.publish_json_async(payload, ordering_key=ordering_key, message_id=message_id)

    def publish_json(
        self, payload: bytes, *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """:meth:`publish` of a message already written as JSON."""
        if natsio.in_loop_thread():
            raise RuntimeError("publish() blocks: call publish_async() from skyrig's NATS loop")
        message_id = message_id or new_id()
        for again in (False, True):
            message = self._message(payload, ordering_key, message_id, concurrent.futures.Future(), None)
            outbox.send(message)
            error = message.waiter.exception()
            if not self._retry(error, again):
                return self._result(message, error, message_id)
        raise AssertionError("unreachable")

    async def publish_json_async(
        self, payload: bytes, *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """:meth:`publish_json` from any event loop."""
        loop = asyncio.get_running_loop()
        message_id = message_id or new_id()
        for again in (False, True):
            message = self._message(payload, ordering_key, message_id, loop.create_future(), loop)
            await outbox.publish_here(message)
            try:
                await message.waiter
                error = None
            except Exception as raised:
                error = raised
            if not self._retry(error, again):
                return self._result(message, error, message_id)
        raise AssertionError("unreachable")

    def _message(
        self, payload: bytes, ordering_key: str | None, message_id: str, waiter: Any, loop: Any
    ) -> outbox.Message:
        headers = {"Nats-Msg-Id": message_id}
        if ordering_key is not None:
            headers[ORDERING_HEADER] = " ".join(ordering_key.splitlines()) or "-"
        if self._server is None:
            self._server = self.server()
        return outbox.Message(self._server, self.subject, payload, headers, waiter, loop)

    def _retry(self, error: BaseException | None, again: bool) -> bool:
        """Whether to publish again: once, when the broker may have come back at another address."""
        if isinstance(error, BrokerUnreachable) and not again:
            self._server = None
            return True
        return isinstance(error, PermissionError) and not again and self.refused()

    def _result(self, message: outbox.Message, error: BaseException | None, message_id: str) -> str:
        from nats.js.errors import NoStreamResponseError

        if error is None:
            return message_id
        if isinstance(error, BrokerUnreachable | PermissionError):
            raise error
        if isinstance(error, NoStreamResponseError):
            raise TopicError(
                f"topic {self.name!r} has no stream in the broker at {message.server.url}: {self.missing}"
            ) from None
        raise TopicError(f"publishing to topic {self.name!r} failed: {error}") from error


class SubscriptionClient(JetStreamClient, Consuming):
    """Consumes one subscription (see :mod:`skyrig.runtime.jetstream.consumer` for the semantics)."""

    def __init__(
        self, entry: dict[str, Any], config: dict[str, Any] | None = None, resolve: Resolve | None = None
    ) -> None:
        super().__init__(entry, config, resolve)
        self.name: str = entry["name"]
        self.ack_deadline: float = entry["ack_deadline_seconds"]

    async def run(self, handler: Handler, stop: asyncio.Event, drain_timeout: float) -> None:
        """Handle messages with ``handler`` (raising means failure) until ``stop`` is set; then take no
        more and let running handlers finish, waiting at most ``drain_timeout`` seconds."""
        for again in (False, True):
            consumer = Consumer(self.entry, self.server(), handler, stop, drain_timeout, missing=self.missing)
            try:
                await consumer.run()
                return
            except PermissionError:
                if again or not self.refused():
                    raise
