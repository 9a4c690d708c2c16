"""What the store suite's tests share: the factory a store plugin gives, a sample record, a snapshot of
what a store holds, and the base class of every test class."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from skyrig.state import NodeRecord, StateStore, open_store

ENV = "dev"
OTHER_ENV = "preview:pr-12"


@dataclass
class StoreFactory:
    """Where the state under test lives: calling it opens one more handle on that same state."""

    url: str
    """The store's URL, as ``state`` in ``skyrig.toml`` would say it; empty state at the test's start."""
    root: Path
    """The app's folder, which relative URLs are relative to."""
    ttl: float = 0.5
    """The short lease TTL, in seconds, of the tests that wait for a lease to expire: long enough for a
    few calls to the store to take well under it (raise it for a store whose calls are slow)."""

    def open(self) -> StateStore:
        """A new handle on the state; the suite closes it."""
        return open_store(self.url, self.root)

    def __call__(self) -> StateStore:
        return self.open()


def record(node_id: str = "sql.cluster", **changes: Any) -> NodeRecord:
    """A node record as the engine writes one."""
    return dataclasses.replace(
        NodeRecord(node_id, "memory.sql.cluster", "memory", "7", {"size": 1}, {"size": 1}, {"port": 5432}),
        **changes,
    )


def snapshot(store: StateStore, env: str = ENV) -> tuple[Any, ...]:
    """Everything a reader can see of ``env``."""
    return (
        store.nodes(env),
        store.intents(env),
        store.serial(env),
        store.applied_at(env),
        store.runtime_configs(env),
    )


class StoreTests:
    """Fixtures of every suite class: ``open_handle`` opens another handle (closed after the test),
    ``store`` is a first one."""

    @pytest.fixture
    def open_handle(self, store_factory: StoreFactory) -> Iterator[Callable[[], StateStore]]:
        handles: list[StateStore] = []

        def opened() -> StateStore:
            handles.append(store_factory())
            return handles[-1]

        yield opened
        for handle in handles:
            with suppress(Exception):
                handle.close()

    @pytest.fixture
    def store(self, open_handle: Callable[[], StateStore]) -> StateStore:
        return open_handle()
