"""One asyncio loop per process, on a daemon thread, for the NATS client (nats-py is asyncio only).

Synchronous code (node types, FastAPI's sync endpoints in a threadpool) and other event loops submit
coroutines to it; it keeps one connection per broker URL. The broker process is started from this
thread too: a child asked to die with its parent (PR_SET_PDEATHSIG) dies with the parent *thread*, and
this thread lives as long as the process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_pid: int | None = None
_connections: dict[str, asyncio.Future[Any]] = {}
_contexts: dict[str, tuple[Any, Any]] = {}


class BrokerNotRunning(RuntimeError):
    """No NATS server answers at the broker's URL."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"the pub/sub broker at {url} is not running: start the app with skyrig run "
            f"(it runs the local environment's broker)"
        )
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
    the one named ``name`` if given (a port can be taken again by another environment's broker)."""
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


async def connect(url: str, *, name: str = "skyrig") -> Any:
    """A new connection to ``url`` in the running loop; it reconnects for ever once established."""
    import nats

    host, port = urlsplit(url).hostname, urlsplit(url).port
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
        writer.close()
    except (TimeoutError, OSError):
        raise BrokerNotRunning(url) from None
    try:
        return await asyncio.wait_for(
            nats.connect(
                url,
                name=name,
                connect_timeout=2,
                reconnect_time_wait=0.25,
                max_reconnect_attempts=-1,
                error_cb=_quiet,
                disconnected_cb=_quiet,
                reconnected_cb=_quiet,
                closed_cb=_quiet,
                pending_size=8 * 1024 * 1024,
            ),
            5,
        )
    except (TimeoutError, OSError):
        raise BrokerNotRunning(url) from None


async def connection(url: str) -> Any:
    """This process's shared connection to ``url`` (call it on the NATS loop)."""
    task = _connections.get(url)
    if task is None or (task.done() and (task.cancelled() or task.exception() or task.result().is_closed)):
        task = _connections[url] = asyncio.ensure_future(connect(url))
    return await asyncio.shield(task)


def connected(url: str) -> bool:
    """Whether this process's shared connection to ``url`` is up now (call it on the NATS loop)."""
    task = _connections.get(url)
    if task is None or not task.done() or task.cancelled() or task.exception() is not None:
        return False
    return bool(task.result().is_connected)


async def jetstream(url: str) -> Any:
    """A JetStream context on the shared connection to ``url``."""
    connected = await connection(url)
    context = _contexts.get(url)
    if context is None or context[0] is not connected:
        context = _contexts[url] = (connected, connected.jetstream(timeout=10))
    return context[1]
