"""The previews an app has open, kept in the state store of its preview template.

A store keeps environments by name and cannot list them, so ``skyrig preview open`` notes each preview in
one more environment of that store, :data:`REGISTRY`, whose name no ``[env]`` table can take (it has a
dot): one record per preview (its name, pull request, template, seed, when it was opened, how the last
open ended), written under that environment's lock, like any record. ``skyrig preview close`` forgets it
once the preview is destroyed; ``skyrig preview list`` reads them.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from typing import Any

from skyrig.state import Locked, NodeRecord, StateStore

REGISTRY = "skyrig.previews"
"""The environment of the store that lists the previews."""
RECORD_TYPE = "skyrig.preview"
WAIT = 60.0
"""Seconds to wait for the registry's lock (held for one write only)."""


def listed(store: StateStore) -> list[dict[str, Any]]:
    """Every preview noted, by pull request number: ``{"environment", "pr", "template", "seed_from",
    "opened_at", "state"}``."""
    records = store.nodes(REGISTRY).values()
    entries = [{**record.desired, **record.observed} for record in records if record.type == RECORD_TYPE]
    return sorted(entries, key=lambda entry: int(entry.get("pr", 0)))


def note(store: StateStore, name: str, **fields: Any) -> None:
    """Note preview ``name`` (``pr:N``) with ``fields`` (``template``, ``seed_from``, ``state``), keeping
    when it was first opened."""
    previous = store.nodes(REGISTRY).get(_id(name))
    opened = previous.observed.get("opened_at") if previous else None
    desired = {"environment": name, "pr": int(name.partition(":")[2]), **fields}
    observed = {"opened_at": opened or time.time()}
    record = NodeRecord(_id(name), RECORD_TYPE, "skyrig", name, desired, observed, resource=None)
    _write(store, lambda fence: store.record(REGISTRY, fence, record))


def forget(store: StateStore, name: str) -> None:
    """Forget preview ``name`` (nothing when it was never noted)."""
    if _id(name) in store.nodes(REGISTRY):
        _write(store, lambda fence: store.forget(REGISTRY, fence, _id(name)))


def _id(name: str) -> str:
    return f"preview/{name}"


def _write(store: StateStore, write: Any) -> None:
    holder = f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"
    deadline = time.monotonic() + WAIT
    while True:
        try:
            fence = store.acquire(REGISTRY, holder, 30.0)
            break
        except Locked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        write(fence)
    finally:
        store.release(REGISTRY, fence)
