"""Pub/Sub for the data plane: publishing to a topic, pulling a subscription.

The service pulls (synchronous ``Pull`` calls, long-polled) rather than taking pushes: the consumer then
gives the semantics of :class:`skyrig.runtime.dataplane.SubscriptionClient` on every host the same way
(Cloud Run, a test, ``skyrig run``), as the AWS consumer does on SQS:

- at-least-once: a message is acknowledged only once its handler succeeded. A declared ack deadline
  shorter than Pub/Sub's 10 s minimum is set on each message as it arrives (``ModifyAckDeadline``);
- a failing handler's message comes back after ``min(max_backoff, min_backoff * 2**(attempt - 1))``
  (its deadline set to that), attempts being Pub/Sub's delivery attempts; after ``max_retries`` retries it
  is published to the dead-letter topic with its attempts and last error, then acknowledged. A message
  delivered more often than that without an answer (a crashed or slow consumer) is dead-lettered
  unhandled, and Pub/Sub's dead-letter policy (5 to 100 attempts) is the backstop;
- at most ``max_concurrency`` handlers at once in this process;
- ordered subscriptions: Pub/Sub hands over the messages of one ordering key in publish order; the
  consumer handles a key's messages one after the other (a later pull's after an earlier one's), keeps
  them leased until each is settled, and retries a failed one in place after its backoff, the rest of its
  key waiting (a nacked message is not always handed over again before later ones of its key);
- exactly-once subscriptions keep a message's deadline extended while its handler runs, so it is not
  handed over twice, and a publish retried with the same message id is handled once per consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import uuid
import warnings
from collections import OrderedDict
from typing import Any

import skyrig.provider as sdk
from skyrig.provider import Consuming, Handler, drain

PULL_VARIABLE = "SKYRIG_GCP_PULL_SECONDS"
"""How long one pull waits for messages (10 s by default)."""
MAX_DEADLINE = 600
"""Pub/Sub's longest ack deadline, and so the longest backoff one ``ModifyAckDeadline`` sets."""

_lock = threading.Lock()
_clients: dict[tuple[str, bool, str | None], Any] = {}


def pubsub(kind: str, ordered: bool = False) -> Any:
    """The process's Pub/Sub ``publisher`` (with message ordering, or not) or ``subscriber`` client: the
    library finds the credentials (the service's account) or ``PUBSUB_EMULATOR_HOST`` itself (one client
    per emulator, should the variable change)."""
    key = (kind, ordered, os.environ.get("PUBSUB_EMULATOR_HOST"))
    with _lock:
        if key not in _clients:
            from google.cloud import pubsub_v1

            if kind == "publisher":
                options = pubsub_v1.types.PublisherOptions(enable_message_ordering=ordered)
                _clients[key] = pubsub_v1.PublisherClient(publisher_options=options)
            else:
                _clients[key] = pubsub_v1.SubscriberClient()
        return _clients[key]


def backoff(entry: dict[str, Any], attempt: int) -> int:
    """Seconds before retrying a message whose ``attempt``-th delivery failed."""
    delay = min(entry["max_backoff_seconds"], entry["min_backoff_seconds"] * 2 ** max(0, attempt - 1))
    return int(min(delay, MAX_DEADLINE))


class TopicClient(sdk.TopicClient):
    """Publishes to one Pub/Sub topic; returns once Pub/Sub has stored the message."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.ordered = bool(entry.get("ordered"))
        self.publisher = pubsub("publisher", self.ordered)

    def publish(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        message_id = message_id or uuid.uuid4().hex
        body = json.dumps(data, separators=(",", ":")).encode()
        key = (ordering_key or "") if self.ordered else ""
        topic = self.entry["topic"]
        try:
            self.publisher.publish(topic, body, ordering_key=key, **{"skyrig-id": message_id}).result()
        except Exception:
            if key:  # a failed publish pauses its ordering key: let the next one go
                self.publisher.resume_publish(topic, key)
            raise
        return message_id


class SubscriptionClient(Consuming):
    """Consumes one Pub/Sub subscription by pulling."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.name: str = entry.get("name", "")
        self.path: str = entry["subscription"]
        self.subscriber = pubsub("subscriber")
        self.ordered = bool(entry.get("ordered"))
        self.exactly_once = bool(entry.get("exactly_once"))
        self.limit = int(entry.get("max_concurrency", 100))
        self.max_retries = int(entry.get("max_retries", -1))
        self.ack_deadline = int(entry.get("ack_deadline_seconds") or 30)
        self.wait = float(os.environ.get(PULL_VARIABLE, "10"))
        self._attempts: OrderedDict[str, int] = OrderedDict()
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._chains: dict[str, asyncio.Task[None]] = {}

    async def run(self, handler: Handler, stop: asyncio.Event, drain_timeout: float) -> None:
        """Handle messages with ``handler`` until ``stop`` is set, then let running handlers finish (up to
        ``drain_timeout`` seconds) and give back what was not started."""
        slots = asyncio.Semaphore(self.limit)
        tasks: set[asyncio.Task[None]] = set()
        running = 0
        while not stop.is_set():
            free = self.limit - running
            if free <= 0:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            pull = asyncio.create_task(asyncio.to_thread(self._pull, min(100, free)))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({pull, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            try:
                messages = await pull
            except Exception:
                await asyncio.sleep(1)  # the endpoint failed: try again, without spinning
                continue
            if stop.is_set():
                await asyncio.to_thread(self._release, messages)
                break
            for key, group in self._groups(messages):
                running += len(group)
                after = self._chains.get(key) if key is not None else None

                async def work(group: list[Any] = group, after: asyncio.Task[None] | None = after) -> None:
                    nonlocal running
                    try:
                        await self._handle_group(group, handler, slots, stop, after)
                    finally:
                        running -= len(group)

                task = asyncio.create_task(work())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                if key is not None:
                    self._chains[key] = task
                    task.add_done_callback(lambda done, key=key: self._unchain(key, done))
        await drain(tasks, drain_timeout)

    def _unchain(self, key: str, task: asyncio.Task[None]) -> None:
        if self._chains.get(key) is task:
            del self._chains[key]

    def _pull(self, count: int) -> list[Any]:
        from google.api_core import exceptions

        try:
            received = self.subscriber.pull(
                request={"subscription": self.path, "max_messages": count}, timeout=self.wait
            ).received_messages
        except exceptions.DeadlineExceeded:
            return []  # nothing came within the wait (the emulator says so this way)
        received = list(received)
        if received and self.ack_deadline < 10:  # Pub/Sub's shortest: the declared one is set per message
            self._set_deadline(received, self.ack_deadline)
        return received

    def _groups(self, messages: list[Any]) -> list[tuple[str | None, list[Any]]]:
        """Messages to handle one after the other: one list per ordering key on ordered subscriptions
        (with the key: a later pull's messages of a key wait for the earlier ones)."""
        if not self.ordered:
            return [(None, [m]) for m in messages]
        groups: dict[str, list[Any]] = {}
        for message in messages:
            key = message.message.ordering_key or message.message.message_id
            groups.setdefault(key, []).append(message)
        return list(groups.items())

    async def _handle_group(
        self,
        group: list[Any],
        handler: Handler,
        slots: asyncio.Semaphore,
        stop: asyncio.Event,
        after: asyncio.Task[None] | None = None,
    ) -> None:
        pending = list(group)
        # an ordered key's messages stay leased from their pull until each is settled: while earlier
        # ones of the key are handled, and while a failed one waits for its retry
        beat = asyncio.create_task(self._keep_leased(pending) if self.ordered else asyncio.sleep(0))
        try:
            if after is not None:
                await asyncio.wait({after})  # however it ended
            while pending:
                if stop.is_set():
                    break
                done = await self._handle(pending[0], handler, slots)
                pending.pop(0)
                if not done:  # failed and comes back later: what follows in its key must wait for it
                    break
        finally:
            beat.cancel()
            if pending:
                await asyncio.to_thread(self._release, pending)

    def _attempt(self, message: Any) -> int:
        """Which delivery of the message this is: Pub/Sub's count where a dead-letter policy keeps it,
        else this process's."""
        if message.delivery_attempt:
            return int(message.delivery_attempt)
        key = message.message.message_id
        count = self._attempts.pop(key, 0) + 1
        self._attempts[key] = count
        while len(self._attempts) > 10000:
            self._attempts.popitem(last=False)
        return count

    async def _handle(self, message: Any, handler: Handler, slots: asyncio.Semaphore) -> bool:
        """Handle one message; True if it is settled (handled or dead-lettered). On an ordered
        subscription a failed message is retried here, after its backoff, its key waiting for it."""
        attempt = self._attempt(message)
        if self.max_retries >= 0 and attempt > self.max_retries + 1:
            error = (
                f"delivered {attempt} times without being acknowledged within the ack deadline "
                f"({self.ack_deadline}s)"
            )
            await asyncio.to_thread(self._dead_letter, message, attempt, error)
            return True
        identity = message.message.attributes.get("skyrig-id") or message.message.message_id
        if self.exactly_once and identity in self._handled:  # a publish retried with the same id
            await asyncio.to_thread(self._ack, message)
            return True
        while True:
            error = await self._call(message, handler, slots)
            if error is None:
                if self.exactly_once:
                    self._remember(identity)
                await asyncio.to_thread(self._ack, message)
                return True
            if self.max_retries >= 0 and attempt >= self.max_retries + 1:
                await asyncio.to_thread(self._dead_letter, message, attempt, error)
                return True
            delay = backoff(self.entry, attempt)
            if not self.ordered:
                await asyncio.to_thread(self._set_deadline, [message], delay)
                return False
            await asyncio.sleep(delay)
            attempt += 1

    async def _call(self, message: Any, handler: Handler, slots: asyncio.Semaphore) -> str | None:
        """Run the handler on ``message``: None if it succeeded, else its error."""
        async with slots:
            # The ack deadline is the handler's time per attempt: past it the message comes again. Only
            # ordered and exactly-once subscriptions hold a message while its handler runs, as the other
            # providers do: a redelivery there would break the order or hand it over twice.
            held = self.exactly_once and not self.ordered  # an ordered group keeps its own lease
            beat = asyncio.create_task(self._keep_leased([message]) if held else asyncio.sleep(0))
            try:
                await handler(json.loads(message.message.data))
                return None
            except asyncio.CancelledError:
                beat.cancel()
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._set_deadline, [message], 0)
                raise
            except Exception as failure:
                return f"{type(failure).__name__}: {failure}"
            finally:
                beat.cancel()

    def _remember(self, identity: str) -> None:
        self._handled[identity] = None
        while len(self._handled) > 10000:
            self._handled.popitem(last=False)

    async def _keep_leased(self, messages: list[Any]) -> None:
        """Extend the deadline of ``messages`` (which the caller shrinks as they are settled) while they
        are held: ordered and exactly-once subscriptions."""
        while True:
            await asyncio.sleep(max(0.5, self.ack_deadline / 2))
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._set_deadline, list(messages), self.ack_deadline)

    def _set_deadline(self, messages: list[Any], seconds: int) -> None:
        if messages:
            self.subscriber.modify_ack_deadline(
                request={
                    "subscription": self.path,
                    "ack_ids": [m.ack_id for m in messages],
                    "ack_deadline_seconds": seconds,
                }
            )

    def _ack(self, message: Any) -> None:
        # an ack that fails (an expired ack id) leaves the message to come again: at-least-once
        with contextlib.suppress(Exception):
            self.subscriber.acknowledge(request={"subscription": self.path, "ack_ids": [message.ack_id]})

    def _release(self, messages: list[Any]) -> None:
        with contextlib.suppress(Exception):
            self._set_deadline(messages, 0)

    def _dead_letter(self, message: Any, attempt: int, error: str) -> None:
        """Publish ``message`` to the dead-letter topic with its attempts and error, then acknowledge it."""
        target = self.entry.get("dead_letter_topic")
        if target is None:
            self._release([message])
            return
        attributes = {
            **dict(message.message.attributes),
            "skyrig-attempts": str(attempt),
            "skyrig-error": " ".join(error.split())[:1000] or "-",
            "skyrig-subscription": self.name,
        }
        publisher = pubsub("publisher")
        publisher.publish(target, message.message.data, **attributes).result()
        self._ack(message)


def read_dead_letters(context: Any, subscription: str) -> list[dict[str, Any]]:
    """The letters kept for declared ``subscription`` (``dead_letters`` of the provider), oldest first,
    left in place: pulled without waiting and given back at once. ``attempts`` and ``error`` are the
    consumer's; a letter Pub/Sub moved itself has only its delivery count."""
    from google.api_core import exceptions

    from skyrig.provider import NotFound
    from skyrig_gcp.names import dead_letter_subscription_name

    client = context.client
    name = dead_letter_subscription_name(context.app, context.environment.name, subscription)
    path = f"projects/{client.project}/subscriptions/{name}"
    subscriber = client.library("pubsub.subscriber")
    messages: dict[str, Any] = {}
    for _ in range(10):
        try:
            with warnings.catch_warnings():
                # return_immediately is deprecated for consumers, and the only pull that does not wait
                warnings.simplefilter("ignore", DeprecationWarning)
                received = subscriber.pull(
                    request={"subscription": path, "max_messages": 100, "return_immediately": True},
                    timeout=10,
                ).received_messages
        except NotFound:
            return []
        except exceptions.DeadlineExceeded:
            break
        fresh = [m for m in received if m.message.message_id not in messages]
        if received:
            with contextlib.suppress(Exception):
                subscriber.modify_ack_deadline(
                    request={
                        "subscription": path,
                        "ack_ids": [m.ack_id for m in received],
                        "ack_deadline_seconds": 0,
                    }
                )
        if not fresh:
            break
        for message in fresh:
            messages[message.message.message_id] = message.message
    letters = []
    for message in sorted(messages.values(), key=lambda m: m.publish_time):
        attributes = message.attributes
        attempts = attributes.get("skyrig-attempts") or attributes.get(
            "CloudPubSubDeadLetterSourceDeliveryCount"
        )
        letters.append(
            {
                "data": json.loads(message.data),
                "attempts": int(attempts) if attempts else None,
                "error": attributes.get("skyrig-error"),
            }
        )
    return letters
