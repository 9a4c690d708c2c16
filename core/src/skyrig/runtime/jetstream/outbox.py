"""Publishing through pipelined JetStream publishes, from any thread or event loop.

A message published from an event loop goes out on that loop's own connection (:func:`publish_here`):
no thread hop, the ack comes back in the same loop (a hop to another thread and back costs the GIL's
switch interval when both are busy, and capped a loop at about 60% of a bare nats-py client). Each
message names a reply subject of one wildcard subscription, so acks come back while later messages go
out.

Synchronous code (no loop: FastAPI's sync endpoints in a threadpool) appends to an outbox instead
(:func:`send`); the process's NATS loop is woken once per burst and sends the whole burst on the shared
connection (handing each message over on its own, ``run_coroutine_threadsafe``, cost two thread wake-ups
and two system calls per message).

A message not acknowledged within :data:`ACK_TIMEOUT` is sent again under the same id (the broker drops
a duplicate), up to :data:`ATTEMPTS` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from skyrig.runtime.jetstream import loop as natsio
from skyrig.runtime.jetstream.loop import BrokerUnreachable, Server

ACK_TIMEOUT = 5.0
ATTEMPTS = 3
_SWEEP = 1.0
"""Seconds between two looks for messages whose ack is late."""


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
    sent_at: float = 0.0
    """When it was last sent (the loop's clock)."""


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
    _spawn(_send(burst))


def _spawn(coroutine: Any) -> None:
    task = asyncio.ensure_future(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


class _Pipe:
    """Pipelined JetStream publishes on one connection: each message names a reply subject of one
    wildcard subscription, so acks come back while later messages go out (nats-py's own
    ``publish_async`` costs a random token, a semaphore and a dataclass per message).

    ``here``: the pipe serves the loop it runs in (its callers wait in it), else callers of any
    thread or loop (through :func:`_finish`)."""

    def __init__(self, connection: Any, here: bool = False) -> None:
        self.connection = connection
        self.here = here
        self.prefix = f"{connection.new_inbox()}."
        self.waiting: dict[str, Message] = {}
        self.serial = 0
        self.sweeping: asyncio.TimerHandle | None = None
        self.closer: AsyncIterator[None] | None = None

    async def start(self) -> _Pipe:
        await self.connection.subscribe(f"{self.prefix}*", cb=self._ack)
        return self

    async def send(self, message: Message) -> None:
        """Send ``message``; its ack is looked for (:meth:`_sweep`) until :data:`ACK_TIMEOUT` has passed."""
        loop = asyncio.get_running_loop()
        self.serial += 1
        token = f"{self.serial:x}"
        self.waiting[token] = message
        message.sent_at = loop.time()
        if self.sweeping is None:
            self.sweeping = loop.call_later(_SWEEP, self._sweep)
        try:
            await self.connection.publish(
                message.subject, message.payload, reply=f"{self.prefix}{token}", headers=message.headers
            )
        except BaseException:
            self.waiting.pop(token, None)  # not sent: the caller hears why, nothing looks for its ack
            raise

    def _sweep(self) -> None:
        """Messages whose ack has not come within :data:`ACK_TIMEOUT`: again, or given up (:func:`_check`).
        Only the messages waiting are looked at: a list of everything sent, kept for the timeout, held
        thousands of messages alive, which the garbage collector's passes then scanned."""
        loop = asyncio.get_running_loop()
        due = loop.time() - ACK_TIMEOUT
        late = [(token, m) for token, m in self.waiting.items() if m.sent_at <= due]
        self.sweeping = loop.call_later(_SWEEP, self._sweep) if len(late) < len(self.waiting) else None
        if late:
            _check([(message, self, token) for token, message in late])

    async def _ack(self, reply: Any) -> None:
        message = self.waiting.pop(reply.subject[len(self.prefix) :], None)
        if message is None:
            return  # given up on already
        if self.here:
            _resolve(message.waiter, _error(reply))
        else:
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
_here: dict[tuple[asyncio.AbstractEventLoop, Server], asyncio.Future[_Pipe]] = {}


async def _pipe(server: Server) -> _Pipe:
    connection = await natsio.connection(server)
    if not connection.is_connected:  # reconnecting to a broker that went away: fail now, not in 5 s
        raise BrokerUnreachable(server.url, server.hint)
    pipe = _pipes.get(server)
    if pipe is None or pipe.connection is not connection:
        pipe = _pipes[server] = await _Pipe(connection).start()
    return pipe


async def _pipe_here(server: Server) -> _Pipe:
    """The running loop's own pipe to ``server`` (connected on first use, closed with the loop)."""
    loop = asyncio.get_running_loop()
    opening = _here.get((loop, server))
    if opening is None or (
        opening.done()
        and (opening.cancelled() or opening.exception() is not None or opening.result().connection.is_closed)
    ):
        for key in list(_here):  # forget the pipes of loops that have closed
            if key[0].is_closed():
                _here.pop(key, None)
        opening = _here[loop, server] = asyncio.ensure_future(_open_here(server))
    pipe = opening.result() if opening.done() else await asyncio.shield(opening)
    if not pipe.connection.is_connected:  # reconnecting to a broker that went away: fail now, not in 5 s
        raise BrokerUnreachable(server.url, server.hint)
    return pipe


async def _open_here(server: Server) -> _Pipe:
    connection = await natsio.connect(server, name="skyrig-publisher")
    pipe = await _Pipe(connection, here=True).start()
    pipe.closer = _closing(connection)
    await anext(pipe.closer)  # a running async generator: the loop closes it when it shuts down
    return pipe


async def _closing(connection: Any) -> AsyncIterator[None]:
    """Close ``connection`` when the loop shuts down (``asyncio.run`` closes its async generators)."""
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await connection.close()


async def publish_here(message: Message) -> None:
    """Publish ``message`` on the running loop's own connection; its waiter (a future of this loop)
    gets None once the broker has stored it, or the error."""
    import nats.errors

    try:
        ready = _here.get((asyncio.get_running_loop(), message.server))
        if ready is not None and ready.done() and not ready.cancelled() and ready.exception() is None:
            pipe = ready.result()  # the common case, without a coroutine more
            if not pipe.connection.is_connected:
                pipe = await _pipe_here(message.server)
        else:
            pipe = await _pipe_here(message.server)
        await pipe.send(message)
    except (BrokerUnreachable, PermissionError, nats.errors.Error) as error:
        _resolve(message.waiter, error)
        return


async def _send(burst: list[Message]) -> None:
    import nats.errors

    pipes: dict[Server, _Pipe] = {}
    for message in burst:
        try:
            pipe = pipes.get(message.server) or await _pipe(message.server)
            pipes[message.server] = pipe
            await pipe.send(message)
        except (BrokerUnreachable, PermissionError, nats.errors.Error) as error:
            _finish(message, error)


def _check(sent: list[tuple[Message, _Pipe, str]]) -> None:
    """Messages whose ack never came: again under the same id, or given up."""
    again, here = [], []
    for message, pipe, token in sent:
        if pipe.waiting.pop(token, None) is None:
            continue
        if not pipe.connection.is_connected:  # the broker went away: say so now, not after retries
            _finish(message, BrokerUnreachable(message.server.url, message.server.hint))
        elif message.attempt < ATTEMPTS:
            message.attempt += 1
            (here if pipe.here else again).append(message)
        else:
            error = TimeoutError(f"the broker at {message.server.url} did not store the message in time")
            _finish(message, error)
    if again:
        _start(again)
    for message in here:
        _spawn(publish_here(message))


def _finish(message: Message, error: BaseException | None) -> None:
    """Wake whoever waits for ``message``: a thread at once, a loop once per burst."""
    if message.loop is None:
        _resolve(message.waiter, error)
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
        _resolve(message.waiter, error)


def _resolve(waiter: Any, error: BaseException | None) -> None:
    """``waiter`` (a future of the running loop or a thread's) done with None, or ``error``."""
    if not waiter.done():
        waiter.set_exception(error) if error is not None else waiter.set_result(None)
