"""Publishing from any thread or event loop through the process's one broker connection, in bursts.

Handing each message to the NATS loop on its own (``run_coroutine_threadsafe``) costs two thread
wake-ups and two system calls per message and capped publishing near 10,000 messages/s. Here callers
append to an outbox; the NATS loop is woken once per burst, sends the whole burst with pipelined
JetStream publishes (the acks come back while later messages go out), and hands the
acks back to each caller's loop once per burst too. A message not acknowledged within
:data:`ACK_TIMEOUT` is sent again under the same id (the broker drops a duplicate), up to
:data:`ATTEMPTS` times.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from dataclasses import dataclass
from typing import Any

from skyrig.runtime.jetstream import loop as natsio
from skyrig.runtime.jetstream.loop import BrokerUnreachable, Server

ACK_TIMEOUT = 5.0
ATTEMPTS = 3


@dataclass(slots=True)
class Message:
    """One message to publish, and who waits for its ack."""

    server: Server
    subject: str
    payload: bytes
    headers: dict[str, str]
    waiter: Any
    """A ``concurrent.futures.Future`` (a thread waits), or an ``asyncio.Future`` of ``loop``."""
    loop: asyncio.AbstractEventLoop | None
    attempt: int = 1


_lock = threading.Lock()
_outbox: list[Message] = []
_scheduled = False
_done: dict[asyncio.AbstractEventLoop, list[tuple[Message, BaseException | None]]] = {}
_tasks: set[asyncio.Future[None]] = set()


def send(message: Message) -> None:
    """Queue ``message``; its waiter gets None once the broker has stored it, or the error."""
    global _scheduled
    with _lock:
        _outbox.append(message)
        if _scheduled:
            return
        _scheduled = True
    natsio.loop().call_soon_threadsafe(_flush)


def _flush() -> None:
    global _scheduled
    with _lock:
        burst = _outbox[:]
        _outbox.clear()
        _scheduled = False
    _start(burst)


def _start(burst: list[Message]) -> None:
    task = asyncio.ensure_future(_send(burst))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


class _Pipe:
    """Pipelined JetStream publishes on one connection: each message names a reply subject of one
    wildcard subscription, so acks come back while later messages go out (nats-py's own
    ``publish_async`` costs a random token, a semaphore and a dataclass per message)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.prefix = f"{connection.new_inbox()}."
        self.waiting: dict[str, Message] = {}
        self.serial = 0

    async def start(self) -> _Pipe:
        await self.connection.subscribe(f"{self.prefix}*", cb=self._ack)
        return self

    async def send(self, message: Message) -> str:
        self.serial += 1
        token = f"{self.serial:x}"
        self.waiting[token] = message
        await self.connection.publish(
            message.subject, message.payload, reply=f"{self.prefix}{token}", headers=message.headers
        )
        return token

    async def _ack(self, reply: Any) -> None:
        message = self.waiting.pop(reply.subject[len(self.prefix) :], None)
        if message is None:
            return  # given up on already
        _finish(message, _error(reply))


def _error(reply: Any) -> BaseException | None:
    """None if ``reply`` is the broker's ack, else what went wrong."""
    from nats.js.errors import APIError, NoStreamResponseError

    if reply.headers and reply.headers.get("Status") == "503":
        return NoStreamResponseError()
    if b'"error"' in reply.data:
        return APIError.from_error(json.loads(reply.data)["error"])
    return None


_pipes: dict[Server, _Pipe] = {}


async def _pipe(server: Server) -> _Pipe:
    connection = await natsio.connection(server)
    if not connection.is_connected:  # reconnecting to a broker that went away: fail now, not in 5 s
        raise BrokerUnreachable(server.url, server.hint)
    pipe = _pipes.get(server)
    if pipe is None or pipe.connection is not connection:
        pipe = _pipes[server] = await _Pipe(connection).start()
    return pipe


async def _send(burst: list[Message]) -> None:
    import nats.errors

    sent = []
    pipes: dict[Server, _Pipe] = {}
    for message in burst:
        try:
            pipe = pipes.get(message.server) or await _pipe(message.server)
            pipes[message.server] = pipe
            sent.append((message, pipe, await pipe.send(message)))
        except (BrokerUnreachable, PermissionError, nats.errors.Error) as error:
            _finish(message, error)
    if sent:
        asyncio.get_running_loop().call_later(ACK_TIMEOUT, _check, sent)


def _check(sent: list[tuple[Message, _Pipe, str]]) -> None:
    """Messages whose ack never came: again under the same id, or given up."""
    again = []
    for message, pipe, token in sent:
        if pipe.waiting.pop(token, None) is None:
            continue
        if not natsio.connected(message.server):  # the broker went away: say so now, not after retries
            _finish(message, BrokerUnreachable(message.server.url, message.server.hint))
        elif message.attempt < ATTEMPTS:
            message.attempt += 1
            again.append(message)
        else:
            error = TimeoutError(f"the broker at {message.server.url} did not store the message in time")
            _finish(message, error)
    if again:
        _start(again)


def _finish(message: Message, error: BaseException | None) -> None:
    """Wake whoever waits for ``message``: a thread at once, a loop once per burst."""
    if message.loop is None:
        waiter: concurrent.futures.Future[None] = message.waiter
        if not waiter.done():
            waiter.set_exception(error) if error is not None else waiter.set_result(None)
        return
    with _lock:
        batch = _done.get(message.loop)
        if batch is None:
            _done[message.loop] = [(message, error)]
        else:
            batch.append((message, error))
            return
    try:
        message.loop.call_soon_threadsafe(_wake, message.loop)
    except RuntimeError:  # the caller's loop has closed: nobody waits any more
        with _lock:
            _done.pop(message.loop, None)


def _wake(loop: asyncio.AbstractEventLoop) -> None:
    with _lock:
        batch = _done.pop(loop, [])
    for message, error in batch:
        waiter: asyncio.Future[None] = message.waiter
        if not waiter.done():
            waiter.set_exception(error) if error is not None else waiter.set_result(None)
