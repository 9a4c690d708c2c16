"""An operation waiting for the next entry of a log (:class:`Op`), and which operations of a group the lease
allows (:func:`check`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from skyrig.state import LeaseLost, Locked
from skyrig.state.objectlog.view import Lease, View


class Op:
    """One operation waiting to be written; ``settle`` ends the wait with a result or an error."""

    __slots__ = ("chunks", "done", "error", "fence", "holder", "kind", "payload", "result", "ttl")

    def __init__(self, kind: str, fence: int = 0, payload: dict[str, Any] | None = None, **extra: Any):
        self.kind, self.fence, self.payload = kind, fence, payload or {}
        self.holder: str = extra.get("holder", "")
        self.ttl: float = extra.get("ttl", 0.0)
        self.chunks: dict[str, bytes] = extra.get("chunks", {})
        """What the entry refers to, written before it: a ``load``'s records, by digest."""
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """End the wait: ``result`` is what the operation answers, unless ``error`` is raised instead."""
        self.result, self.error, self.done = result, error, True

    def outcome(self) -> Any:
        """The result, or the error raised."""
        if self.error is not None:
            raise self.error
        return self.result


Refused = dict[Op, tuple[Any, BaseException | None]]
"""Operations the log does not allow, each with what it answers (a result, or an error to raise)."""


def check(env: str, view: View, batch: list[Op], now: float) -> tuple[list[tuple[Op, Any]], Refused]:
    """Which operations of ``batch`` the log allows after ``view`` (each with its result), in order, and
    what each of the others answers: renew False, release nothing, a write :class:`LeaseLost`... An
    ``acquire`` or ``renew`` allowed gets its payload here (the lease it makes)."""
    lease = dataclasses.replace(view.lease) if view.lease else None
    highest = view.fence
    valid: list[tuple[Op, Any]] = []
    refused: Refused = {}
    for op in batch:
        if op.kind == "acquire":
            if lease is not None and lease.expires > now:
                refused[op] = (None, Locked(env, lease.holder, lease.since, lease.expires))
                continue
            highest += 1
            lease = Lease(highest, op.holder, now, now + op.ttl)
            op.payload = {"op": "acquire", **dataclasses.asdict(lease)}
            valid.append((op, highest))
        elif op.kind == "break":
            if lease is None:
                refused[op] = (None, None)
            else:
                lease = None
                valid.append((op, None))
        elif lease is None or lease.fence != op.fence:
            refused[op] = {"renew": (False, None), "release": (None, None)}.get(
                op.kind, (None, lease_lost(env))
            )
        elif op.kind == "renew":
            lease.expires = now + op.ttl
            op.payload = {"op": "renew", "fence": op.fence, "expires": lease.expires}
            valid.append((op, True))
        elif op.kind == "release":
            lease = None
            valid.append((op, None))
        elif lease.expires < now:
            refused[op] = (None, lease_lost(env))
        else:
            valid.append((op, None))
    return valid, refused


def lease_lost(env: str) -> LeaseLost:
    """The error of a write whose lease is gone."""
    return LeaseLost(
        f"the lock on environment {env!r} was lost; nothing more is written",
        "another apply may have taken over: run skyrig status to see where things stand",
    )
