"""One asyncio loop per process, on a daemon thread, for the NATS client (nats-py is asyncio only).

Synchronous code (node types, FastAPI's sync endpoints in a threadpool) and other event loops submit
coroutines to it; it keeps one connection per :class:`Server` (URL and user). A provider that starts a
broker process may start it from this thread (:func:`call`): a child asked to die with its parent
(PR_SET_PDEATHSIG) dies with the parent *thread*, and this thread lives as long as the process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_pid: int | None = None
_connections: dict[Server, asyncio.Future[Any]] = {}
_contexts: dict[Server, tuple[Any, Any]] = {}


@dataclass(frozen=True)
class Server:
    """A NATS server and who to log in as: connections are shared per URL and user.

    ``password`` is called when a connection is made (a secret read then, never kept in an entry);
    ``hint`` ends the message of :class:`BrokerUnreachable` (what the user should do about it).
    """

    url: str
    user: str | None = None
    password: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    hint: str = field(default="", compare=False)


def server(target: Server | str) -> Server:
    """``target`` as a :class:`Server` (a bare URL logs in as nobody)."""
    return target if isinstance(target, Server) else Server(target)


class BrokerUnreachable(RuntimeError):
    """No NATS server answers at the broker's URL."""

    def __init__(self, url: str, hint: str = "") -> None:
        reason = f": {hint}" if hint else ""
        super().__init__(f"the pub/sub broker at {url} does not answer{reason}")
        self.url = url


def loop() -> asyncio.AbstractEventLoop:
    """The process's NATS loop, started on first use (and again in a forked child)."""
    global _loop, _thread, _pid
    with _lock:
        if _loop is None or _pid != os.getpid() or _thread is None or not _thread.is_alive():
            _connections.clear()
            _contexts.clear()
            _loop = asyncio.new_event_loop()
            _pid = os.getpid()
            _thread = threading.Thread(target=_loop.run_forever, name="skyrig-nats", daemon=True)
            _thread.start()
        return _loop


def in_loop_thread() -> bool:
    """True when called from the NATS loop's own thread (where blocking on it would deadlock)."""
    return _thread is threading.current_thread() and _pid == os.getpid()


def submit(coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coroutine`` on the NATS loop."""
    return asyncio.run_coroutine_threadsafe(coroutine, loop())


def run(coroutine: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
    """Run ``coroutine`` on the NATS loop and wait for its result (from any thread but the loop's)."""
    if in_loop_thread():
        coroutine.close()
        raise RuntimeError("skyrig's NATS loop cannot wait on itself")
    return submit(coroutine).result(timeout)


def call(function: Callable[[], T]) -> T:
    """Call ``function`` on the NATS loop's thread and return its result."""
    if in_loop_thread():
        return function()

    async def wrapper() -> T:
        return function()

    return run(wrapper())


def answers(url: str, name: str | None = None, timeout: float = 0.5) -> bool:
    """Whether a NATS server answers at ``url`` (it greets every connection with ``INFO {...}``), and is
    the one named ``name`` if given (a port can be taken again by another server)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
            greeting = b""
            while b"\r\n" not in greeting and len(greeting) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                greeting += chunk
    except OSError:
        return False
    if not greeting.startswith(b"INFO "):
        return False
    if name is None:
        return True
    try:
        return json.loads(greeting[5:].partition(b"\r\n")[0]).get("server_name") == name
    except ValueError:
        return False


async def _quiet(*args: Any) -> None:
    """Connection events are reported through errors where they matter, not logged as tracebacks."""


async def connect(target: Server | str, *, name: str = "skyrig") -> Any:
    """A new connection to ``target`` in the running loop; it reconnects for ever once established."""
    import nats
    import nats.errors

    target = server(target)
    parts = urlsplit(target.url)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), 2)
        writer.close()
    except (TimeoutError, OSError):
        raise BrokerUnreachable(target.url, target.hint) from None
    login: dict[str, Any] = {}
    if target.user is not None:
        login["user"] = target.user
        login["password"] = target.password() if target.password is not None else ""
    refused = asyncio.get_running_loop().create_future()

    async def errors(error: Exception) -> None:
        # a refused login is retried for ever (max_reconnect_attempts): say so at once instead
        refusal = isinstance(error, nats.errors.AuthorizationError) or "authorization" in str(error).lower()
        if refusal and not refused.done():
            refused.set_result(None)

    attempt = asyncio.ensure_future(
        nats.connect(
            target.url,
            name=name,
            connect_timeout=2,
            reconnect_time_wait=0.25,
            max_reconnect_attempts=-1,
            error_cb=errors,
            disconnected_cb=_quiet,
            reconnected_cb=_quiet,
            closed_cb=_quiet,
            pending_size=8 * 1024 * 1024,
            **login,
        )
    )
    await asyncio.wait({attempt, refused}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if attempt.done() and not attempt.cancelled() and attempt.exception() is None:
        return attempt.result()
    attempt.cancel()
    with contextlib.suppress(BaseException):
        await attempt
    if refused.done():
        raise PermissionError(
            f"the pub/sub broker at {target.url} refused user {target.user!r}: wrong credentials"
        )
    raise BrokerUnreachable(target.url, target.hint)


async def connection(target: Server | str) -> Any:
    """This process's shared connection to ``target`` (call it on the NATS loop)."""
    target = server(target)
    task = _connections.get(target)
    if task is None or (task.done() and (task.cancelled() or task.exception() or task.result().is_closed)):
        task = _connections[target] = asyncio.ensure_future(connect(target))
    return await asyncio.shield(task)


def connected(target: Server | str) -> bool:
    """Whether this process's shared connection to ``target`` is up now (call it on the NATS loop)."""
    task = _connections.get(server(target))
    if task is None or not task.done() or task.cancelled() or task.exception() is not None:
        return False
    return bool(task.result().is_connected)


async def jetstream(target: Server | str) -> Any:
    """A JetStream context on the shared connection to ``target``."""
    target = server(target)
    connected = await connection(target)
    context = _contexts.get(target)
    if context is None or context[0] is not connected:
        context = _contexts[target] = (connected, connected.jetstream(timeout=10))
    return context[1]
