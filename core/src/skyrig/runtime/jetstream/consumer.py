"""A subscription's consumer: pulls messages from its durable JetStream consumer and runs the handler.

The semantics are those the clouds give:

- at-least-once: a message not acknowledged within the ack deadline is delivered again;
- a failing handler is retried after ``min(max_backoff, min_backoff * 2**(attempt - 1))`` (a delayed
  nak; attempts are the broker's delivery count), and after ``max_retries`` retries the message goes to
  the subscription's dead-letter stream (``-1``: never), as does one delivered more often than that
  (after ack timeouts) without its handler being called;
- at most ``max_concurrency`` handlers run at once in this process (and at most that many messages are
  unacknowledged across processes: the consumer's max ack pending);
- ordered topics: messages with the same ordering key are handled one at a time in publish order, even
  across retries (a failing message keeps its key, and is retried here, until it succeeds or is
  dead-lettered), different keys in parallel;
- exactly-once topics: the handled message ids are recorded in a key-value bucket checked before each
  call, held messages are kept alive with ``in_progress()`` and acknowledged with a confirmed double ack.

Ordering and exactly-once hold messages while they are handled, so those hold within one consuming
process (one process per service, as the local and hosted providers run them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable
from typing import Any

from skyrig.runtime.dataplane import Handler, drain
from skyrig.runtime.jetstream import loop as natsio
from skyrig.runtime.jetstream import streams
from skyrig.runtime.jetstream.loop import Server

ORDERING_HEADER = "Skyrig-Ordering-Key"
_EXPIRES = 5.0
"""Seconds a pull request waits at the broker for messages."""
_EVENTS_PER_MESSAGE = 1000
"""Delivery attempts in one message of the events stream, at most (about 200 bytes each)."""


class Delivery:
    """One delivery of a message to this consumer."""

    __slots__ = ("attempt", "id", "key", "msg", "seq")

    def __init__(self, msg: Any) -> None:
        headers = msg.headers or {}
        self.msg = msg
        tokens = msg.reply.split(".")
        if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>...
            self.seq: int = int(tokens[5])
            self.attempt: int = int(tokens[4])
        else:  # the longer form, with a domain and an account: nats-py reads it (at 10x the cost)
            metadata = msg.metadata
            self.seq = metadata.sequence.stream
            self.attempt = metadata.num_delivered
        self.id: str = message_id(headers, self.seq)
        self.key: str | None = headers.get(ORDERING_HEADER)


def message_id(headers: dict[str, str] | None, seq: int) -> str:
    """A message's id as a subject token: its ``Nats-Msg-Id`` (a uuid) or, without one, its sequence."""
    found = (headers or {}).get("Nats-Msg-Id") or f"seq-{seq}"
    return found if found.isalnum() else "".join(c if c.isalnum() else "-" for c in found)


def backoff(settings: dict[str, Any], attempt: int) -> float:
    """Seconds before retrying a message whose ``attempt``-th delivery failed."""
    return float(
        min(settings["max_backoff_seconds"], settings["min_backoff_seconds"] * 2 ** max(0, attempt - 1))
    )


def _header(text: str) -> str:
    return " ".join(text.split())[:1000]


class Consumer:
    """Consumes one subscription in the running event loop until ``stop`` is set."""

    def __init__(
        self,
        settings: dict[str, Any],
        server: Server,
        handler: Handler,
        stop: asyncio.Event,
        drain_timeout: float,
        *,
        missing: str = "provision it with skyrig apply",
    ) -> None:
        self.settings = settings
        self.server = server
        self.missing = missing
        self.handler = handler
        self.stop = stop
        self.drain_timeout = drain_timeout
        self.name: str = settings["name"]
        self.limit: int = settings["max_concurrency"]
        self.max_retries: int = settings["max_retries"]
        self.ordered: bool = settings["ordered"]
        self.exactly_once: bool = settings["exactly_once"]
        self.holds = self.ordered or self.exactly_once
        self.slots = asyncio.Semaphore(self.limit)
        self.in_flight = 0
        """Deliveries received and not yet settled (acked, nak'd, terminated)."""
        self.pending = 0
        """Messages asked for by pull requests and not yet received."""
        self.requests: deque[list[Any]] = deque()
        """Open pull requests, oldest first: [inbox, messages still to come, when it expires]. The broker
        fills them in order; a delivery does not say which request it answers."""
        self.held: dict[int, Delivery] = {}
        self.keys: dict[str, deque[Delivery]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.serial = 0
        self.events: list[str] = []
        """Delivery attempts recorded and not yet sent (:meth:`_record`)."""
        self.events_subject = streams.events_subject(self.name)
        self.event_head = f'{{"subscription":{json.dumps(self.name)},"topic":{json.dumps(settings["topic"])},'

    async def run(self) -> None:
        from nats.js.errors import NotFoundError

        self.nc = await natsio.connect(self.server, name=f"skyrig-consumer-{self.name}")
        try:
            self.js = self.nc.jetstream(timeout=10)
            try:
                await self.js.consumer_info(self.settings["stream"], self.settings["consumer"])
                self.kv = (
                    await self.js.key_value(self.settings["handled_bucket"]) if self.exactly_once else None
                )
            except NotFoundError:
                raise RuntimeError(
                    f"subscription {self.name!r} does not exist in the broker at {self.server.url}: "
                    f"{self.missing}"
                ) from None
            self.next_subject = (
                f"$JS.API.CONSUMER.MSG.NEXT.{self.settings['stream']}.{self.settings['consumer']}"
            )
            self.inbox = self.nc.new_inbox()
            await self.nc.subscribe(f"{self.inbox}.*", cb=self._on_message)
            beat = asyncio.create_task(self._heartbeat()) if self.holds else None
            try:
                while not self.stop.is_set():
                    while self.requests and time.monotonic() > self.requests[0][2] + 2:
                        # its end never came (a reconnect, say): forget it and ask again
                        self.pending = max(0, self.pending - self.requests.popleft()[1])
                    await self._pull()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), 1.0)
                await self._drain()
            finally:
                if beat is not None:
                    beat.cancel()
        finally:
            with contextlib.suppress(Exception):
                await self.nc.flush(2)
            await self.nc.close()

    # -- pulling -----------------------------------------------------------------------------------

    def _room(self) -> int:
        """How many messages to ask for now: as many as there is room for, in batches (not one by one)."""
        want = self.limit - self.in_flight - self.pending
        if self.stopping or want <= 0 or (self.pending and want < max(1, self.limit // 2)):
            return 0
        return want

    async def _pull(self) -> None:
        """Ask the broker for as many messages as there is room for (:meth:`_room`)."""
        want = self._room()
        if not want:
            return
        self.serial += 1
        reply = f"{self.inbox}.{self.serial}"
        self.requests.append([reply, want, time.monotonic() + _EXPIRES])
        self.pending += want
        request = {"batch": want, "expires": int(_EXPIRES * 1e9)}
        await self.nc.publish(self.next_subject, json.dumps(request).encode(), reply=reply)

    async def _on_message(self, msg: Any) -> None:
        if not msg.reply:  # a status for request msg.subject: 408 it expired, 409 it was cut short
            headers = msg.headers or {}
            if headers.get("Status", "100") != "100":
                for request in self.requests:
                    if request[0] == msg.subject:
                        self.requests.remove(request)
                        left = int(headers.get("Nats-Pending-Messages", request[1]))
                        self.pending = max(0, self.pending - left)
                        break
                if headers.get("Status") == "408":
                    await self._pull()
            return
        self.pending = max(0, self.pending - 1)
        if self.requests:
            self.requests[0][1] -= 1
            if self.requests[0][1] <= 0:
                self.requests.popleft()
        if self.stopping:
            await msg.nak()
            return
        delivery = Delivery(msg)
        if self.holds and delivery.seq in self.held:
            # delivered again while held here: answer through the newest delivery, never run it twice
            self.held[delivery.seq].msg = msg
            await self._pull()
            return
        self.in_flight += 1
        if self.holds:
            self.held[delivery.seq] = delivery
        if self.max_retries >= 0 and delivery.attempt > self.max_retries + 1:
            error = (
                f"delivered {delivery.attempt} times without being acknowledged within the ack deadline "
                f"({self.settings['ack_deadline_seconds']}s)"
            )
            self._spawn(self._settled(delivery, self._dead_letter(delivery, error)))
        elif self.ordered and delivery.key is not None:
            queue = self.keys.get(delivery.key)
            if queue is not None:
                queue.append(delivery)
            else:
                self.keys[delivery.key] = deque([delivery])
                self._spawn(self._run_key(delivery.key))
        else:
            self._spawn(self._handle(delivery))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _settled(self, delivery: Delivery, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            pass  # the broker went away mid-answer: unacknowledged, the message comes again
        finally:
            await self._settle(delivery)

    async def _settle(self, delivery: Delivery) -> None:
        self.in_flight -= 1
        if self.holds:
            self.held.pop(delivery.seq, None)
        if self._room():
            await self._pull()

    # -- handling ----------------------------------------------------------------------------------

    async def _call(self, delivery: Delivery) -> str | None:
        """Run the handler; the error's text if it failed."""
        async with self.slots:
            try:
                await self.handler(json.loads(delivery.msg.data))
            except Exception as error:
                return f"{type(error).__name__}: {error}"
        return None

    async def _handle(self, delivery: Delivery) -> None:
        """An unordered delivery: handled, answered, and settled whatever happens."""
        try:
            if self.exactly_once and await self._already_handled(delivery):
                return
            error = await self._call(delivery)
            if error is None:
                await self._succeed(delivery)
            elif self._exhausted(delivery):
                await self._dead_letter(delivery, error)
            else:
                await delivery.msg.nak(delay=backoff(self.settings, delivery.attempt))
                self._record(delivery, "failed", error)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await delivery.msg.nak()
            raise
        except Exception:
            pass  # the broker went away mid-answer: unacknowledged, the message comes again
        finally:
            await self._settle(delivery)

    async def _run_key(self, key: str) -> None:
        """Handle the messages of one ordering key, one at a time, in order."""
        queue = self.keys[key]
        try:
            while queue and not self.stopping:
                delivery = queue[0]
                if not (self.exactly_once and await self._already_handled(delivery)):
                    await self._handle_in_order(delivery)
                queue.popleft()
                await self._settle(delivery)
        except Exception:
            pass  # the broker went away mid-answer: what is left is given back below, or comes again
        finally:
            while queue:  # stopping: give back what waited here
                delivery = queue.popleft()
                with contextlib.suppress(Exception):
                    await delivery.msg.nak()
                await self._settle(delivery)
            del self.keys[key]

    async def _handle_in_order(self, delivery: Delivery) -> None:
        while True:
            error = await self._call(delivery)
            if error is None:
                await self._succeed(delivery)
                return
            if self._exhausted(delivery):
                await self._dead_letter(delivery, error)
                return
            self._record(delivery, "failed", error)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), backoff(self.settings, delivery.attempt))
            if self.stop.is_set():
                raise asyncio.CancelledError  # released by _run_key
            delivery.attempt += 1

    def _exhausted(self, delivery: Delivery) -> bool:
        return self.max_retries >= 0 and delivery.attempt >= self.max_retries + 1

    async def _already_handled(self, delivery: Delivery) -> bool:
        """Exactly-once: whether this subscription handled the message already (then it is acked)."""
        from nats.js.errors import KeyNotFoundError

        try:
            await self.kv.get(delivery.id)
        except KeyNotFoundError:
            return False
        await delivery.msg.ack_sync(timeout=5)
        return True

    async def _succeed(self, delivery: Delivery) -> None:
        if self.exactly_once:
            await self.kv.put(delivery.id, b"")
            await delivery.msg.ack_sync(timeout=5)
        else:
            await delivery.msg.ack()
        self._record(delivery, "ok", None)

    async def _dead_letter(self, delivery: Delivery, error: str) -> None:
        msg = delivery.msg
        headers = {
            "Nats-Msg-Id": delivery.id,
            "Skyrig-Subscription": self.name,
            "Skyrig-Attempts": str(delivery.attempt),
            "Skyrig-Error": _header(error) or "-",
            "Skyrig-Subject": msg.subject,
            "Skyrig-Sequence": str(delivery.seq),
        }
        if delivery.key is not None:
            headers[ORDERING_HEADER] = delivery.key
        await self.js.publish(self.settings["dead_letter_subject"], msg.data, headers=headers, timeout=5)
        await msg.term()
        self._record(delivery, "dead-lettered", error)

    def _record(self, delivery: Delivery, outcome: str, error: str | None) -> None:
        """One delivery attempt, for the dashboard: kept, and sent with the others of this loop pass as
        one message of the events stream (fire and forget: the stream takes it).

        Written by hand: ``json.dumps`` of a dict took a tenth of a message's time. The id is a subject
        token (letters, digits, dashes), the outcome one of three words."""
        written = "null" if error is None else json.dumps(error)
        event = (
            f'{self.event_head}"id":"{delivery.id}","attempt":{delivery.attempt},"outcome":"{outcome}",'
            f'"error":{written},"at":{time.time()!r}}}'
        )
        if not self.events:
            asyncio.get_running_loop().call_soon(self._send_events)
        self.events.append(event)

    def _send_events(self) -> None:
        events, self.events = self.events, []
        for start in range(0, len(events), _EVENTS_PER_MESSAGE):
            burst = "\n".join(events[start : start + _EVENTS_PER_MESSAGE]).encode()
            self._spawn(self._publish_events(burst))

    async def _publish_events(self, burst: bytes) -> None:
        with contextlib.suppress(Exception):  # the broker went away: the dashboard misses these
            await self.nc.publish(self.events_subject, burst)

    async def _heartbeat(self) -> None:
        """Keep held messages (waiting for their key, in backoff, or being handled) from redelivery."""
        interval = max(0.2, self.settings["ack_deadline_seconds"] / 3)
        while True:
            await asyncio.sleep(interval)
            for delivery in list(self.held.values()):
                with contextlib.suppress(Exception):
                    await delivery.msg.in_progress()

    async def _drain(self) -> None:
        """Stop taking messages and let the handlers running finish (up to the drain timeout)."""
        self.stopping = True
        for queue in list(self.keys.values()):
            while len(queue) > 1:  # waiting behind a running one: give them back now
                delivery = queue.pop()
                with contextlib.suppress(Exception):
                    await delivery.msg.nak()
                await self._settle(delivery)
        await drain(self.tasks, self.drain_timeout)
        if self.events:  # what the last handlers recorded
            self._send_events()
            await drain(self.tasks, 2)
