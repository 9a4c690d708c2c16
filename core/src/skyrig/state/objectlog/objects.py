"""What :class:`~skyrig.state.objectlog.ObjectLogStore` needs of an object store: four calls, which a store
plugin implements over its service's client (S3's, Cloud Storage's, ...)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ObjectStore(Protocol):
    """The objects of one bucket (or container, or folder), by key: UTF-8 names with ``/`` in them, sorted
    by their bytes.

    The store must be strongly consistent: an object created, by any process, is read and listed by every
    call that starts after the create returned. Every call is safe from several threads at once. A call
    that fails raises :class:`~skyrig.state.StateUnusable`, whose message names the store (masked) and what
    failed, and whose hint says what to do: the log passes it on as it is."""

    def create(self, key: str, body: bytes) -> bool:
        """Create ``key`` holding ``body`` if no object has that key, in one atomic step: True if this call
        created it, False if an object had it (or another create of it is in flight: the caller reads and
        tries again, so a short pause before answering False spares a busy store). Of any number of
        callers creating one key at once, exactly one gets True; an object is never replaced. A create that
        is retried after its first request landed may answer False: the log recognises its own entry."""
        ...

    def read(self, key: str) -> bytes:
        """The body of ``key``, which exists (a key the log listed or created)."""
        ...

    def list(self, prefix: str, after: str = "", most: int | None = None) -> list[str]:
        """The keys that start with ``prefix`` and sort after ``after`` (every one when empty), in order;
        the first ``most`` of them (all when None)."""
        ...

    def close(self) -> None:
        """Let go of the client's connections."""
        ...
