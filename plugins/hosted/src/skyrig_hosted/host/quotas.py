"""The host's fair-use quotas (host configuration; these are the defaults).

A quota answers 429 with a message naming it and its limit. Checks that count rows (environments,
services) run in the transaction that inserts, under a lock on the app's row, so they hold under
concurrent requests; storage is measured on the servers before a resource is made or grown.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class Quotas:
    """Limits per app and per environment."""

    environments_per_app: int = 20
    services_per_environment: int = 10
    storage_per_environment: int = GIB
    """Bytes: databases, objects and streams together."""


class QuotaExceeded(Exception):
    """A request would pass a quota; the message names it and its limit."""

    def __init__(self, quota: str, limit: int, unit: str = "") -> None:
        shown = _size(limit) if unit == "bytes" else f"{limit}{unit}"
        super().__init__(f"quota {quota} reached: the limit is {shown}")
        self.quota = quota
        self.limit = limit


def _size(count: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"
