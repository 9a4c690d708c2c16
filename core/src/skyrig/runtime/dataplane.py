"""The data plane contract: what a provider's ``data_plane(kind, entry, config)`` returns, per kind.

The runtime SDK (the declarations' methods) calls these and nothing else, so the same app code runs on
every provider. A provider implements the protocols of the kinds it claims; the conformance suite calls
them through the SDK. Errors a caller can act on: ``KeyError`` (no such object), ``PermissionError``
(not allowed, e.g. ``public_url`` of a private bucket), ``LookupError`` (a secret with no value).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import asyncio

Handler = Callable[[dict[str, Any]], Awaitable[None]]
"""A subscription's handler as a data plane sees it: the message as JSON in, raising means failure."""


class SQLClient(Protocol):
    """``sql_database``: connections to one PostgreSQL database (psycopg 3)."""

    def connect(self, **options: Any) -> Any:
        """A new ``psycopg.Connection``."""

    async def connect_async(self, **options: Any) -> Any:
        """A new ``psycopg.AsyncConnection``."""

    def url(self) -> str:
        """The connection URL (with the password, if any: in memory only, never logged)."""


class TopicClient(Protocol):
    """``topic``: publishing; returns once the broker has stored the message. A client may subclass it
    to inherit :meth:`publish_async`."""

    def publish(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """Publish ``data`` (the message as JSON) and return its message id; callable without a loop.
        ``message_id``: the id to publish under (made up if None); on an exactly-once topic, a publish
        retried with the same id is delivered once."""

    async def publish_async(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """:meth:`publish` from an event loop; by default in a worker thread, so that the loop is not
        blocked (a natively asynchronous client overrides it)."""
        import asyncio

        return await asyncio.to_thread(self.publish, data, ordering_key=ordering_key, message_id=message_id)

    def publish_json(
        self, payload: bytes, *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """:meth:`publish` of a message already written as JSON, which is what the SDK passes (pydantic
        writes it faster than a dict and ``json.dumps``). By default read back and given to :meth:`publish`;
        a client that sends JSON overrides it (and :meth:`publish_json_async`) to send ``payload`` as is."""
        import json

        return self.publish(json.loads(payload), ordering_key=ordering_key, message_id=message_id)

    async def publish_json_async(
        self, payload: bytes, *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """:meth:`publish_json` from an event loop; by default in a worker thread (a natively
        asynchronous client overrides it, as it does :meth:`publish_async`)."""
        import asyncio

        return await asyncio.to_thread(
            self.publish_json, payload, ordering_key=ordering_key, message_id=message_id
        )


class SubscriptionClient(Protocol):
    """``subscription``: consuming, with the semantics the clouds give.

    At-least-once delivery; a message not acknowledged within the ack deadline comes again; a handler
    that raises is retried after ``min(max_backoff, min_backoff * 2**(attempt - 1))`` and, after
    ``max_retries`` retries, the message goes to the dead-letter destination (``-1``: never); at most
    ``max_concurrency`` handlers at once; ordered topics hand messages with one ordering key over one at
    a time, in publish order; exactly-once topics hand each message over once.
    """

    async def consume(
        self,
        handler: Handler,
        stop: asyncio.Event,
        *,
        drain_timeout: float | None = None,
    ) -> None:
        """Call ``handler`` with each message's data (raising means failure) until ``stop`` is set, then
        let running handlers finish (up to ``drain_timeout`` seconds, by default the ack deadline) and
        return."""


class Consuming:
    """The part of consuming that is the same on every provider; a subscription client subclasses it.

    :meth:`consume` allows one consumer per subscription and process (a second is a programming error),
    resolves the drain timeout (by default the ack deadline) and calls :meth:`run`, the provider's own
    loop, which ends with :func:`drain`.
    """

    name: str
    """The subscription's name."""
    ack_deadline: float
    """The subscription's ack deadline in seconds: how long a drain waits unless told otherwise (after it
    the broker would deliver the messages again anyway)."""
    _consuming: bool = False

    async def consume(
        self, handler: Handler, stop: asyncio.Event, *, drain_timeout: float | None = None
    ) -> None:
        """See :class:`SubscriptionClient`."""
        if self._consuming:
            raise RuntimeError(f"subscription {self.name!r} is consumed already in this process")
        self._consuming = True
        try:
            await self.run(handler, stop, self.ack_deadline if drain_timeout is None else drain_timeout)
        finally:
            self._consuming = False

    async def run(self, handler: Handler, stop: asyncio.Event, drain_timeout: float) -> None:
        """Hand messages to ``handler`` until ``stop`` is set; then :func:`drain` what runs, for at most
        ``drain_timeout`` seconds."""
        raise NotImplementedError


async def drain(tasks: set[asyncio.Task[Any]], timeout: float) -> None:
    """Let the handler ``tasks`` still running finish, for at most ``timeout`` seconds; cancel those that
    do not (their messages come again once the ack deadline has passed, as the broker promises)."""
    import asyncio

    if not tasks:
        return
    _, late = await asyncio.wait(set(tasks), timeout=timeout)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=2)


class CacheClient(Protocol):
    """``cache_cluster``: keys and bytes on a Redis-compatible server."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, data: bytes, expiry_seconds: int | None) -> None: ...

    def delete(self, key: str) -> None: ...


class BucketClient(Protocol):
    """``bucket``: objects by key (``receipts/42.txt``)."""

    def upload(self, key: str, data: bytes) -> None:
        """Store ``data``; a versioned bucket keeps the previous bytes."""

    def download(self, key: str) -> bytes:
        """The object's bytes; ``KeyError`` if there is none."""

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""

    def remove(self, key: str) -> None:
        """Delete; no error if it is not there. A versioned bucket keeps the bytes as a version."""

    def versions(self, key: str) -> list[bytes]:
        """Earlier versions, oldest first (``bucket.versioning``)."""

    def public_url(self, key: str) -> str:
        """A URL anyone can read (``bucket.public``); ``PermissionError`` for a private bucket."""

    def signed_url(self, key: str, expires_in: str = "1h", method: str = "GET") -> str:
        """A URL that grants ``method`` on the object until ``expires_in`` (a duration) has passed."""


class SecretClient(Protocol):
    """``secret``: values from the provider's secret store, read when asked (never in config)."""

    def value(self, name: str) -> str:
        """The value; ``LookupError`` naming ``skyrig secret set`` when none is set."""


class CachedSecrets:
    """Secret values a data plane has read, kept ``ttl`` seconds per key: a value set meanwhile is seen
    soon after, without a call to the secret store per use. Thread-safe; a provider keeps one per process.

    ``read(key, load)`` returns the value cached under ``key`` while fresh, else calls ``load()`` (the
    provider's one read of the secret store) and caches what it returns; None (no value) is not cached.
    """

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._values: dict[Hashable, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def read(self, key: Hashable, load: Callable[[], str | None]) -> str | None:
        """The value of the secret ``key`` names: cached if read less than :attr:`ttl` seconds ago, else
        ``load()``'s (None: the secret has no value)."""
        now = time.monotonic()
        with self._lock:
            found = self._values.get(key)
            if found and now - found[0] < self.ttl:
                return found[1]
        value = load()
        if value is not None:
            with self._lock:
                self._values[key] = (now, value)
        return value

    def forget(self) -> None:
        """Drop every cached value (the next read loads again)."""
        with self._lock:
            self._values.clear()


def secret_resolver(
    read: Callable[[str], str | None], pick: Callable[[str], str] | None = None
) -> Callable[[str], str]:
    """A password resolver (what :class:`~skyrig.runtime.servers.PostgresClient` and ``RedisClient``
    take): ``read(reference)`` gives a secret's stored value or None; ``pick`` turns a stored value into
    the password (by default the value itself). A secret with no value is a ``LookupError``."""

    def resolve(reference: str) -> str:
        value = read(reference)
        if value is None:
            raise LookupError(f"the secret {reference} has no value yet")
        return pick(value) if pick else value

    return resolve


class SecretClientBase:
    """The base of a ``secret`` data plane (:class:`SecretClient`): a provider subclass writes only
    :meth:`stored`, how to read the declared secret; :meth:`value` says when it has no value, naming the
    command that sets one. ``entry`` is the secret's runtime config entry, ``environment`` the
    environment's name."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any]) -> None:
        self.entry = entry
        self.environment: str = config["environment"]

    def stored(self, name: str) -> str | None:
        """The current value of the declared secret ``name`` in the secret store, or None if it has none."""
        raise NotImplementedError

    def value(self, name: str) -> str:
        """The secret's current value; a ``LookupError`` naming ``skyrig secret set`` when it has none."""
        found = self.stored(name)
        if found is None:
            raise LookupError(
                f"secret {name!r} has no value in environment {self.environment!r}: "
                f"set it with skyrig secret set {name} --env {self.environment}"
            )
        return found


class CronClient(Protocol):
    """``cron_job`` (``cron.managed``): what the service host needs to trust the scheduler."""

    def signing_key(self) -> bytes:
        """The environment's cron signing key (:mod:`skyrig.runtime.signing`), from the secret store."""


class SigningKeyClient:
    """The base of a ``cron_job`` data plane (:class:`CronClient`): a provider subclass writes only
    :meth:`stored_key`, how to read the signing key the runtime config ``entry`` names. The key is kept
    for the process's life unless :attr:`read_once` is False (then each call reads it, through whatever
    cache :meth:`stored_key` has)."""

    read_once: bool = True

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self._key: bytes | None = None

    def stored_key(self) -> str | None:
        """The signing key's value in the secret store, or None if it has none."""
        raise NotImplementedError

    def signing_key(self) -> bytes:
        """The environment's cron signing key; a ``LookupError`` when it has no value (not applied)."""
        if self._key is not None:
            return self._key
        value = self.stored_key()
        if value is None:
            raise LookupError("the environment's cron signing key has no value: run skyrig apply")
        if self.read_once:
            self._key = value.encode()
        return value.encode()
