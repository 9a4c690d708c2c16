"""The FAKE ARM's call log (:attr:`FakeAzure.calls <skyrig_azure.fake.FakeAzure.calls>`), for tests that
count API calls."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    """One request the fake answered.

    ``type`` is the full resource type (``Microsoft.KeyVault/vaults``; ``KeyVault/secrets`` for the vault
    data plane), ``method`` the HTTP method, ``action`` a POST action's name (``listKeys``), ``poll`` True
    for a long-running operation's status or result request (counted apart), ``mutating`` whether it
    asked for a change (PUT, PATCH, DELETE, a POST action that is not a read).
    """

    type: str
    method: str
    status: int
    mutating: bool
    poll: bool
    path: str
    action: str | None = None

    @property
    def namespace(self) -> str:
        """``Microsoft.KeyVault``."""
        return self.type.split("/", 1)[0]


class CallLog:
    """Every request the fake answered, in order; thread-safe."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def add(self, call: Call) -> None:
        """Records a call."""
        with self._lock:
            self._calls.append(call)

    def clear(self) -> None:
        """Forgets every call."""
        with self._lock:
            self._calls.clear()

    def __iter__(self) -> Iterator[Call]:
        with self._lock:
            return iter(list(self._calls))

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)

    def select(
        self,
        type: str | None = None,
        method: str | None = None,
        *,
        mutating: bool | None = None,
        poll: bool | None = False,
        action: str | None = None,
    ) -> list[Call]:
        """The calls of ``type`` (a full type or a namespace, case-insensitive), of HTTP ``method``, mutating
        or not; polls of long-running operations only when ``poll`` is True or None (both)."""
        found = []
        for call in self:
            if type is not None and not _type_matches(call.type, type):
                continue
            if method is not None and call.method != method.upper():
                continue
            if mutating is not None and call.mutating != mutating:
                continue
            if poll is not None and call.poll != poll:
                continue
            if action is not None and (call.action or "").lower() != action.lower():
                continue
            found.append(call)
        return found

    def count(self, type: str | None = None, method: str | None = None, **kwargs: object) -> int:
        """How many calls :meth:`select` finds."""
        return len(self.select(type, method, **kwargs))  # type: ignore[arg-type]

    def mutating(self, type: str | None = None) -> list[Call]:
        """The calls that asked for a change (polls excluded)."""
        return self.select(type, mutating=True)

    def counter(self) -> Counter[tuple[str, str]]:
        """Calls per (type, method), polls excluded."""
        return Counter((call.type, call.method) for call in self if not call.poll)


def _type_matches(actual: str, wanted: str) -> bool:
    actual, wanted = actual.lower(), wanted.lower()
    return actual == wanted or ("/" not in wanted and actual.split("/", 1)[0] == wanted)
