"""Watches, for the FAKE Kubernetes API server (:mod:`skyrig_kubernetes.fake`).

Every change the store makes goes into a :class:`Journal` (the last :data:`JOURNAL_SIZE` events, each with
its resourceVersion). A ``GET ...?watch=true`` on a collection answers a :class:`WatchStream`: with no
``resourceVersion`` (or ``0``) first an ``ADDED`` event per object that matches, then every change after;
with a ``resourceVersion`` the changes after it, or one ``ERROR`` event (410 Expired) when the journal no
longer reaches back that far, as the real server answers a compacted version. Label and field selectors
filter the events by the object's labels as they are in each event. The stream ends after
``timeoutSeconds`` (60 when not given) or when the fake stops; the listener writes it chunked, one JSON
event per line, as the real server does.
"""

from __future__ import annotations

import collections
import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from skyrig_kubernetes.fake import errors

#: How many events the journal keeps (each a copy of an object: a crash-looping Pod adds one per restart).
JOURNAL_SIZE = 2_000
#: How long a watch lasts when the request does not say.
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Event:
    """One change: ``ADDED``, ``MODIFIED`` or ``DELETED``, of an object of a kind (a copy, as it was)."""

    revision: int
    type: str
    kind: str
    namespace: str
    obj: dict[str, Any]


class Journal:
    """The store's recent events, and a condition that watchers wait on."""

    def __init__(self, lock: threading.RLock) -> None:
        self.changed = threading.Condition(lock)
        self.events: collections.deque[Event] = collections.deque(maxlen=JOURNAL_SIZE)
        self.closed = False

    def record(self, revision: int, event_type: str, kind: str, obj: dict[str, Any]) -> None:
        """Adds an event (the caller holds the store's lock) and wakes the watchers."""
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        self.events.append(Event(revision, event_type, kind, namespace, copy.deepcopy(obj)))
        self.changed.notify_all()

    def oldest(self) -> int:
        """The revision before the oldest event kept (a watch may resume from it or later)."""
        return self.events[0].revision - 1 if self.events else 0

    def close(self) -> None:
        """Ends every watch (the fake stops)."""
        with self.changed:
            self.closed = True
            self.changed.notify_all()


class WatchStream:
    """The events one watch request receives, as dicts ``{"type", "object"}``; iterate outside the lock."""

    def __init__(
        self,
        journal: Journal,
        kind: str,
        namespace: str | None,
        accepts: Callable[[dict[str, Any]], bool],
        initial: list[dict[str, Any]] | None,
        since: int,
        timeout: float,
    ) -> None:
        self.journal = journal
        self.kind = kind
        self.namespace = namespace
        self.accepts = accepts
        self.initial = initial or []
        self.since = since
        self.deadline = time.monotonic() + timeout

    def _wanted(self, event: Event) -> bool:
        return (
            event.kind == self.kind
            and (self.namespace is None or event.namespace == self.namespace)
            and self.accepts(event.obj)
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for obj in self.initial:
            yield {"type": "ADDED", "object": obj}
        since = self.since
        while True:
            expired: errors.ApiError | None = None
            pending: list[Event] = []
            with self.journal.changed:
                if since < self.journal.oldest():
                    expired = errors.ApiError(
                        410, "Expired", f"too old resource version: {since} ({self.journal.oldest() + 1})"
                    )
                else:
                    pending = [event for event in self.journal.events if event.revision > since]
                    if not pending:
                        remaining = self.deadline - time.monotonic()
                        if remaining <= 0 or self.journal.closed:
                            return
                        self.journal.changed.wait(min(remaining, 0.5))
                        continue
                    since = pending[-1].revision
            if expired is not None:
                yield {"type": "ERROR", "object": expired.status()}
                return
            for event in pending:
                if self._wanted(event):
                    yield {"type": event.type, "object": event.obj}
