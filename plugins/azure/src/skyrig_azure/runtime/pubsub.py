"""Service Bus for the data plane: publishing to a topic, consuming a subscription (azure-servicebus).

In Azure each service authenticates with its managed identity's Entra ID token (the namespace allows no
SAS key; the iam family gives the identity Data Sender on its topics and Data Receiver on its
subscriptions). Under the test fakes (``emulator = "fake"``) the FAKE broker takes only SAS: the client
asks the FAKE Resource Manager for the namespace's key (``listKeys``) and connects with the emulator's
connection string (``UseDevelopmentEmulator=true``); no key is ever kept in the runtime config.

The consumer gives the semantics of :class:`skyrig.runtime.dataplane.SubscriptionClient` with peek lock:

- at-least-once: a message is completed only once its handler succeeded. The declared ack deadline is
  kept by the consumer: a handler that overruns it has its message abandoned (handed over again), and a
  deadline longer than the subscription's lock (at most 5 minutes) is reached by renewing the lock;
- backoff: Service Bus has none. A failed message is kept locked (its lock renewed) for
  ``min(max_backoff, min_backoff * 2**(attempt - 1))``, then abandoned, so that Service Bus hands it over
  again with its delivery count one higher. A consumer that dies meanwhile loses nothing: the lock runs
  out and the message comes back sooner. (Deferring it would strand it if the consumer died before
  taking it back; a scheduled copy would reach every subscription of the topic.) On stop the held
  messages are abandoned at once;
- after ``max_retries`` retries the consumer dead-letters the message (reason ``MaxRetriesExceeded``,
  its attempts and last error in the description); one delivered more often than that without an answer
  (a crashed or overrunning consumer) is dead-lettered by Service Bus itself (``maxDeliveryCount``,
  reason ``MaxDeliveryCountExceeded``), or by the consumer unhandled when it sees it first;
- at most ``max_concurrency`` handlers at once in this process;
- ordered topics: the publisher puts the ordering attribute's value in the session id; the consumer takes
  sessions one at a time each (up to ``max_concurrency`` sessions at once), handles a session's messages
  one after the other holding the session lock, and retries a failed one in place after its backoff, the
  rest of its session waiting;
- exactly-once topics have duplicate detection: a message published again with the same message id within
  10 minutes is dropped by Service Bus, so a publish retried after an error is delivered once. The consumer
  holds a message's lock while its handler runs (renewed), so a slow handler does not get it twice, and
  remembers the ids it handled. What this does not guarantee: a consumer that dies after its handler
  succeeded but before the completion reached Service Bus has the message handled again by another, and
  a republish after the 10-minute window is a new message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import skyrig.provider as sdk
from skyrig.provider import Consuming, Handler, drain

RECEIVE_VARIABLE = "SKYRIG_AZURE_RECEIVE_SECONDS"
"""How long one receive waits for messages while nothing is in flight (5 s by default)."""
BUSY_WAIT = 0.5
"""How long one receive waits while messages are in flight (their settlements wait for it)."""
ROOT_RULE = "RootManageSharedAccessKey"
TRY_SECONDS = 60.0
"""How long one attempt of a Service Bus call (opening a link, sending) may take before it is retried or
fails: the client's own default waits for ever on a link the broker never attaches."""
MAX_SESSIONS = 16
"""Sessions one consumer holds at once at most (each is handled by a thread of its own)."""
RETRIES_EXCEEDED = "MaxRetriesExceeded"
DEADLINE_EXCEEDED = "AckDeadlineExceeded"
_ATTEMPT = re.compile(r"^attempt (\d+): (.*)$", re.DOTALL)

_lock = threading.Lock()
_clients: dict[tuple[Any, ...], Any] = {}


def _fake_key(entry: dict[str, Any]) -> str:
    """The namespace's SAS key, from the FAKE Resource Manager (the FAKE broker takes only SAS)."""
    from azure.mgmt.servicebus import ServiceBusManagementClient

    from skyrig_azure.credentials import EmulatorCredential

    parts = entry["namespace_id"].strip("/").split("/")
    subscription, group, namespace = parts[1], parts[3], parts[-1]
    options: dict[str, Any] = {
        "base_url": entry["arm"],
        "credential_scopes": ["https://management.azure.com/.default"],
    }
    if entry.get("ca_bundle"):
        options["connection_verify"] = entry["ca_bundle"]
    with ServiceBusManagementClient(EmulatorCredential(), subscription, **options) as mgmt:
        return str(mgmt.namespaces.list_keys(group, namespace, ROOT_RULE).primary_key)


def bus(entry: dict[str, Any]) -> Any:
    """The process's ``ServiceBusClient`` of the entry's namespace (one per namespace and endpoint)."""
    key = (entry["namespace"], entry.get("address"), entry.get("emulator"))
    with _lock:
        made = _clients.get(key)
    if made is not None:
        return made
    from azure.servicebus import ServiceBusClient

    if entry.get("emulator") == "fake":
        connection = (
            f"Endpoint=sb://{entry['address']};SharedAccessKeyName={ROOT_RULE};"
            f"SharedAccessKey={_fake_key(entry)};UseDevelopmentEmulator=true"
        )
        # the FAKE broker is local: an error is not worth the client's default 3 retries (15 s on a key
        # refused, which a namespace made again under the fakes gives once)
        made = ServiceBusClient.from_connection_string(
            connection, retry_total=1, retry_backoff_factor=0.2, try_timeout=TRY_SECONDS
        )
    else:
        from skyrig_azure.credentials import credential

        made = ServiceBusClient(
            entry.get("address") or entry["namespace"], credential(None), try_timeout=TRY_SECONDS
        )
    with _lock:
        return _clients.setdefault(key, made)


def forget(entry: dict[str, Any]) -> None:
    """Drop the process's client of the entry's namespace (closed): the next use makes a new one. Under
    the fakes a namespace made again has a new key, which a kept client would not know."""
    key = (entry["namespace"], entry.get("address"), entry.get("emulator"))
    with _lock:
        made = _clients.pop(key, None)
    if made is not None:
        with contextlib.suppress(Exception):
            made.close()


def _refused(error: Exception) -> bool:
    """Whether ``error`` is Service Bus refusing the client's credentials."""
    from azure.servicebus.exceptions import ServiceBusAuthenticationError, ServiceBusAuthorizationError

    return isinstance(error, ServiceBusAuthenticationError | ServiceBusAuthorizationError)


def backoff(entry: dict[str, Any], attempt: int) -> float:
    """Seconds before retrying a message whose ``attempt``-th delivery failed."""
    return float(min(entry["max_backoff_seconds"], entry["min_backoff_seconds"] * 2 ** max(0, attempt - 1)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _property(message: Any, name: str) -> str | None:
    for key, value in (message.application_properties or {}).items():
        if _text(key) == name:
            return _text(value)
    return None


def _body(message: Any) -> bytes:
    body = message.body
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    return b"".join(bytes(part) for part in body)


def _one_line(error: str) -> str:
    return " ".join(error.split())[:1000] or "-"


class TopicClient(sdk.TopicClient):
    """Publishes to one Service Bus topic; returns once Service Bus has stored the message."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.ordered = bool(entry.get("ordered"))
        self._lock = threading.Lock()
        self._sender: Any = None

    def publish(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        from azure.servicebus import ServiceBusMessage

        message_id = message_id or uuid.uuid4().hex
        message = ServiceBusMessage(
            json.dumps(data, separators=(",", ":")),
            message_id=message_id[:128],
            content_type="application/json",
            # on an ordered topic every subscription has sessions: a message needs a session id
            session_id=(ordering_key or message_id)[:128] if self.ordered else None,
            application_properties={"skyrig-id": message_id},
        )
        with self._lock:  # a sender is not safe to share between threads (publish_async's)
            for attempt in (1, 2):
                if self._sender is None:
                    self._sender = bus(self.entry).get_topic_sender(self.entry["topic"])
                try:
                    self._sender.send_messages(message, timeout=2 * TRY_SECONDS)
                    break
                except Exception as error:
                    with contextlib.suppress(Exception):
                        self._sender.close()
                    self._sender = None
                    if attempt == 2 or not (_refused(error) and self.entry.get("emulator")):
                        raise
                    forget(self.entry)  # a namespace made again under the fakes: its new key
        return message_id


class SubscriptionClient(Consuming):
    """Consumes one Service Bus subscription with peek lock (sessions on ordered topics)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.name: str = entry.get("name", "")
        self.topic: str = entry["topic"]
        self.subscription: str = entry["subscription"]
        self.ordered = bool(entry.get("ordered"))
        self.exactly_once = bool(entry.get("exactly_once"))
        self.limit = int(entry.get("max_concurrency", 100))
        self.max_retries = int(entry.get("max_retries", -1))
        self.ack_deadline = float(entry.get("ack_deadline_seconds") or 30)
        self.lock_seconds = float(entry.get("lock_seconds") or 60)
        self.wait = float(os.environ.get(RECEIVE_VARIABLE, "5"))
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._pool: ThreadPoolExecutor | None = None
        self._receiver: Any = None
        self._receiver_lock = threading.Lock()
        self._in_flight = 0

    # -- plumbing ---------------------------------------------------------------------------------------

    async def _thread(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function`` in this consumer's threads (the default pool is too small for held sessions)."""
        assert self._pool is not None
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: function(*args, **kwargs))

    def _renew_every(self) -> float:
        return max(0.5, self.lock_seconds / 2)

    def _last(self, attempt: int) -> bool:
        return self.max_retries >= 0 and attempt >= self.max_retries + 1

    def _identity(self, message: Any) -> str:
        return _property(message, "skyrig-id") or str(message.message_id)

    def _remember(self, identity: str) -> None:
        self._handled[identity] = None
        while len(self._handled) > 10000:
            self._handled.popitem(last=False)

    def _overran(self, attempt: int) -> str:
        return (
            f"attempt {attempt}: delivered {attempt} times without being acknowledged within the ack "
            f"deadline ({self.ack_deadline:g}s)"
        )

    async def run(self, handler: Handler, stop: asyncio.Event, drain_timeout: float) -> None:
        """Handle messages with ``handler`` until ``stop`` is set, then let running handlers finish (up to
        ``drain_timeout`` seconds) and give back what was not started."""
        self._pool = ThreadPoolExecutor(
            max_workers=min(self.limit, MAX_SESSIONS) * 2 + 8, thread_name_prefix=f"sb-{self.name}"
        )
        try:
            if self.ordered:
                await self._run_sessions(handler, stop, drain_timeout)
            else:
                await self._run_plain(handler, stop, drain_timeout)
        finally:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=False)

    # -- without sessions ---------------------------------------------------------------------------------

    def _settle(self, action: str, message: Any, **kwargs: Any) -> None:
        """complete, abandon, dead_letter or renew ``message`` on the receiver (one caller at a time); a
        lost lock is no error: the message comes again, as at-least-once allows."""
        with contextlib.suppress(Exception), self._receiver_lock:
            if action == "renew":
                self._receiver.renew_message_lock(message)
            else:
                getattr(self._receiver, f"{action}_message")(message, **kwargs)

    def _receive(self, count: int, wait: float) -> list[Any]:
        with self._receiver_lock:
            return list(self._receiver.receive_messages(max_message_count=count, max_wait_time=wait))

    def _release(self, messages: list[Any]) -> None:
        for message in messages:
            self._settle("abandon", message)

    def _dead_letter(self, message: Any, reason: str, description: str) -> None:
        self._settle("dead_letter", message, reason=reason, error_description=_one_line(description))

    async def _run_plain(self, handler: Handler, stop: asyncio.Event, drain_timeout: float) -> None:
        # bus() may ask Resource Manager for the key: in a thread too, never on the event loop
        self._receiver = await self._thread(
            lambda: bus(self.entry).get_subscription_receiver(self.topic, self.subscription, prefetch_count=0)
        )
        try:
            await self._thread(self._receiver.__enter__)
        except Exception as error:
            if _refused(error):
                forget(self.entry)  # the next consumer asks for the key again
            raise
        slots = asyncio.Semaphore(self.limit)
        tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        try:
            while not stop.is_set():
                free = self.limit - self._in_flight
                if free <= 0:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED, timeout=0.5)
                    continue
                wait = BUSY_WAIT if tasks else self.wait
                receive = asyncio.create_task(self._thread(self._receive, min(free, 50), wait))
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait({receive, stopped}, return_when=asyncio.FIRST_COMPLETED)
                stopped.cancel()
                try:
                    messages = await receive
                except Exception:
                    await asyncio.sleep(1)  # the endpoint failed: try again, without spinning
                    continue
                if stop.is_set():
                    await self._thread(self._release, messages)
                    break
                for message in messages:
                    self._in_flight += 1
                    task = asyncio.create_task(self._handle(message, handler, slots, stop))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            await drain(tasks, drain_timeout)
        finally:
            receiver, self._receiver = self._receiver, None
            with contextlib.suppress(Exception):
                await self._thread(receiver.close)

    async def _handle(
        self, message: Any, handler: Handler, slots: asyncio.Semaphore, stop: asyncio.Event
    ) -> None:
        """Handle one message: complete it, dead-letter it, or hold it for its backoff and abandon it."""
        counted = True

        def done() -> None:
            nonlocal counted
            if counted:
                counted = False
                self._in_flight -= 1

        try:
            attempt = int(message.delivery_count or 0) + 1
            if self.max_retries >= 0 and attempt > self.max_retries + 1:
                await self._thread(self._dead_letter, message, DEADLINE_EXCEEDED, self._overran(attempt))
                return
            identity = self._identity(message)
            if self.exactly_once and identity in self._handled:  # a publish retried with the same id
                await self._thread(self._settle, "complete", message)
                return
            async with slots:
                outcome, error = await self._call(message, handler, attempt)
            done()
            if outcome == "gone":
                return
            if error is None:
                if self.exactly_once:
                    self._remember(identity)
                await self._thread(self._settle, "complete", message)
                return
            if self._last(attempt):
                await self._thread(
                    self._dead_letter, message, RETRIES_EXCEEDED, f"attempt {attempt}: {error}"
                )
                return
            await self._hold(message, backoff(self.entry, attempt), stop)
            await self._thread(self._settle, "abandon", message)
        finally:
            done()

    async def _call(self, message: Any, handler: Handler, attempt: int) -> tuple[str, str | None]:
        """Run the handler on ``message`` within the ack deadline: ``("done", None)``, ``("failed",
        error)``, or ``("gone", None)`` when it overran the deadline and the message was given back (or
        dead-lettered on its last attempt); exactly-once subscriptions hold the message instead."""
        work = asyncio.create_task(handler(json.loads(_body(message))))
        started = renewed = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                deadline = None if self.exactly_once else started + self.ack_deadline
                wake = renewed + self._renew_every()
                if deadline is not None:
                    wake = min(wake, deadline)
                finished, _ = await asyncio.wait({work}, timeout=max(0.0, wake - now))
                if finished:
                    break
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    if self._last(attempt):
                        await self._thread(
                            self._dead_letter, message, DEADLINE_EXCEEDED, self._overran(attempt)
                        )
                    else:
                        await self._thread(self._settle, "abandon", message)
                    with contextlib.suppress(Exception):
                        await work  # its outcome no longer counts: the message was given back
                    return "gone", None
                await self._thread(self._settle, "renew", message)
                renewed = time.monotonic()
        except asyncio.CancelledError:
            work.cancel()
            with contextlib.suppress(Exception):
                await self._thread(self._settle, "abandon", message)
            raise
        failure = work.exception()
        if failure is None:
            return "done", None
        return "failed", f"{type(failure).__name__}: {failure}"

    async def _hold(self, message: Any, delay: float, stop: asyncio.Event, renew: Any = None) -> None:
        """Keep ``message`` locked for ``delay`` seconds (or until ``stop``), renewing its lock."""
        end = time.monotonic() + delay
        stopped = asyncio.create_task(stop.wait())
        try:
            while (left := end - time.monotonic()) > 0 and not stop.is_set():
                await asyncio.wait({stopped}, timeout=min(left, self._renew_every()))
                if end - time.monotonic() > 0 and not stop.is_set():
                    if renew is not None:
                        await renew()
                    else:
                        await self._thread(self._settle, "renew", message)
        finally:
            stopped.cancel()

    # -- with sessions (ordered topics) -----------------------------------------------------------------

    def _accept(self, wait: float) -> Any:
        """The receiver of the next session with messages, or None when none came within ``wait``."""
        from azure.servicebus import NEXT_AVAILABLE_SESSION
        from azure.servicebus.exceptions import OperationTimeoutError

        receiver = bus(self.entry).get_subscription_receiver(
            self.topic,
            self.subscription,
            session_id=NEXT_AVAILABLE_SESSION,
            max_wait_time=wait,
            prefetch_count=0,
        )
        try:
            receiver.__enter__()
        except OperationTimeoutError:
            with contextlib.suppress(Exception):
                receiver.close()
            return None
        return receiver

    async def _run_sessions(self, handler: Handler, stop: asyncio.Event, drain_timeout: float) -> None:
        slots = asyncio.Semaphore(self.limit)
        workers: set[asyncio.Task[None]] = set()
        most = min(self.limit, MAX_SESSIONS)
        while not stop.is_set():
            if len(workers) >= most:
                await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED, timeout=0.5)
                continue
            accept = asyncio.create_task(self._thread(self._accept, 1.0 if workers else self.wait))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({accept, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            try:
                receiver = await accept
            except Exception:
                await asyncio.sleep(1)
                continue
            if receiver is None:
                continue
            if stop.is_set():
                with contextlib.suppress(Exception):
                    await self._thread(receiver.close)
                break
            worker = asyncio.create_task(self._session(receiver, handler, slots, stop))
            workers.add(worker)
            worker.add_done_callback(workers.discard)
        await drain(workers, drain_timeout)

    async def _session(
        self, receiver: Any, handler: Handler, slots: asyncio.Semaphore, stop: asyncio.Event
    ) -> None:
        """Handle one session's messages in order, holding its lock, until it has none or ``stop``."""
        lock = threading.Lock()

        def on_receiver(action: str, *args: Any, **kwargs: Any) -> Any:
            with lock:
                if action == "receive":
                    return list(receiver.receive_messages(*args, **kwargs))
                if action == "renew":
                    return receiver.session.renew_lock()
                return getattr(receiver, f"{action}_message")(*args, **kwargs)

        async def settle(action: str, *args: Any, **kwargs: Any) -> Any:
            with contextlib.suppress(Exception):
                return await self._thread(on_receiver, action, *args, **kwargs)

        async def keep() -> None:
            while True:
                await asyncio.sleep(self._renew_every())
                await settle("renew")

        keeper = asyncio.create_task(keep())
        pending: list[Any] = []
        try:
            while not stop.is_set():
                try:
                    pending = await self._thread(
                        on_receiver, "receive", max_message_count=20, max_wait_time=1
                    )
                except Exception:
                    break  # the session's lock was lost: another consumer takes it
                if not pending:
                    break  # nothing more in this session now: let it go
                while pending and not stop.is_set():
                    if not await self._handle_in_session(pending[0], handler, slots, stop, settle):
                        break
                    pending.pop(0)
                if pending:
                    break
        finally:
            keeper.cancel()
            for message in pending:
                await settle("abandon", message)
            with contextlib.suppress(Exception):
                await self._thread(receiver.close)

    async def _handle_in_session(
        self,
        message: Any,
        handler: Handler,
        slots: asyncio.Semaphore,
        stop: asyncio.Event,
        settle: Callable[..., Any],
    ) -> bool:
        """Handle one message of a session, retrying it in place after its backoff: True once it is
        settled (handled or dead-lettered), False when stopped first."""
        attempt = int(message.delivery_count or 0) + 1
        if self.max_retries >= 0 and attempt > self.max_retries + 1:
            await settle(
                "dead_letter", message, reason=DEADLINE_EXCEEDED, error_description=self._overran(attempt)
            )
            return True
        identity = self._identity(message)
        if self.exactly_once and identity in self._handled:
            await settle("complete", message)
            return True
        while True:
            async with slots:
                try:
                    await handler(json.loads(_body(message)))
                    error = None
                except asyncio.CancelledError:
                    raise
                except Exception as failure:
                    error = f"{type(failure).__name__}: {failure}"
            if error is None:
                if self.exactly_once:
                    self._remember(identity)
                await settle("complete", message)
                return True
            if self._last(attempt):
                description = _one_line(f"attempt {attempt}: {error}")
                await settle("dead_letter", message, reason=RETRIES_EXCEEDED, error_description=description)
                return True
            await self._hold(message, backoff(self.entry, attempt), stop, renew=lambda: settle("renew"))
            if stop.is_set():
                return False
            attempt += 1


# -- what the provider reads ----------------------------------------------------------------------------

_topics: dict[tuple[str, str], str] = {}


def _topic_of(context: Any, namespace: str, subscription: str) -> str | None:
    """The topic subscription ``subscription`` (its Azure name) is of, in ``namespace``."""
    client = context.client
    key = (namespace, subscription)
    with _lock:
        if key in _topics:
            return _topics[key]
    sb = client.mgmt("servicebus")
    for topic in sb.topics.list_by_namespace(client.resource_group, namespace):
        if subscription in {
            s.name for s in sb.subscriptions.list_by_topic(client.resource_group, namespace, topic.name)
        }:
            with _lock:
                _topics[key] = topic.name
            return str(topic.name)
    return None


def read_dead_letters(context: Any, subscription: str) -> list[dict[str, Any]]:
    """The letters in declared ``subscription``'s dead-letter queue, oldest first, left in place
    (peeked). ``attempts`` and ``error`` are the consumer's, or Service Bus's delivery count where it
    moved the message itself."""
    from skyrig.provider import NotFound
    from skyrig_azure import names

    client = context.client
    settings = context.settings
    namespace = names.servicebus_namespace_name(client.subscription, context.app, context.environment.name)
    name = names.subscription_name(subscription)
    try:
        topic = _topic_of(context, namespace, name)
    except NotFound:
        return []
    if topic is None:
        return []
    entry = {
        "namespace": f"{namespace}.servicebus.windows.net",
        "namespace_id": client.resource_id("Microsoft.ServiceBus/namespaces", namespace),
        "address": settings.endpoint("servicebus"),
        "emulator": settings.emulator,
        "arm": settings.endpoint("arm"),
        "ca_bundle": settings.ca_bundle,
    }
    from azure.servicebus import ServiceBusSubQueue

    letters: list[dict[str, Any]] = []
    with bus(entry).get_subscription_receiver(
        topic, name, sub_queue=ServiceBusSubQueue.DEAD_LETTER
    ) as receiver:
        next_number = 0
        while True:
            peeked = receiver.peek_messages(max_message_count=100, sequence_number=next_number)
            if not peeked:
                break
            for message in peeked:
                letters.append(_letter(message))
            next_number = max(m.sequence_number for m in peeked) + 1
    return letters


def _letter(message: Any) -> dict[str, Any]:
    description = message.dead_letter_error_description or ""
    found = _ATTEMPT.match(description)
    if found:
        attempts, error = int(found.group(1)), found.group(2)
    else:
        attempts, error = int(message.delivery_count or 0) or None, None
        if message.dead_letter_reason == "MaxDeliveryCountExceeded":
            error = f"delivered {attempts} times without being acknowledged within the ack deadline"
    try:
        data = json.loads(_body(message))
    except ValueError:
        data = {"raw": _body(message).decode(errors="replace")}
    return {"data": data, "attempts": attempts, "error": error}
