"""The store suite's tests of the optional :class:`~skyrig.state.StateTransfer` (``skyrig state migrate``,
``skyrig state unlock --force``): skipped for a store that does not have it."""

from __future__ import annotations

import dataclasses
import time

import pytest

from skyrig.state import EnvironmentState, LeaseLost, Locked, StateTransfer
from skyrig.state.suite.base import ENV, OTHER_ENV, StoreTests, record


class TestTransfer(StoreTests):
    @pytest.fixture(autouse=True)
    def _transfers(self, store):
        if not isinstance(store, StateTransfer):
            pytest.skip(f"{type(store).__name__} is no StateTransfer (optional)")

    @staticmethod
    def _written(store) -> EnvironmentState:
        """Two nodes, an intent, a finished apply and a released lease in ``ENV``; its export."""
        fence = store.acquire(ENV, "me", ttl=30)
        store.record(ENV, fence, record(outputs={"port": 5432, "nested": {"a": [1, 2.5, None, "ü"]}}))
        store.record(ENV, fence, record("network", depends_on=[], drift=["cidr"]))
        store.add_intent(ENV, fence, "queue.orders", "create", "token-1")
        store.finish(ENV, fence, {"web": {"resources": {"sql/main": {"port": 5432}}}})
        store.release(ENV, fence)
        return store.export(ENV)

    def test_an_environment_never_written_exports_empty(self, store):
        assert store.export(ENV) == EnvironmentState()

    def test_export_gives_everything_but_the_lease(self, store, open_handle):
        exported = self._written(store)
        assert exported.nodes == open_handle().nodes(ENV), "the records as read, updated_at included"
        assert exported.intents == {"queue.orders": ("create", "token-1")}
        assert exported.runtime == {"web": {"resources": {"sql/main": {"port": 5432}}}}
        assert exported.applied_at == store.applied_at(ENV) and exported.serial == store.serial(ENV)
        assert exported.fence >= 1

    def test_load_makes_another_environment_hold_exactly_that_state(self, store, open_handle):
        exported = self._written(store)
        fence = store.acquire(OTHER_ENV, "migrate", ttl=30)
        store.record(OTHER_ENV, fence, record("left.over"))  # replaced, not merged
        store.add_intent(OTHER_ENV, fence, "left.intent", "create", "token")
        store.load(OTHER_ENV, fence, exported)
        reader = open_handle()
        assert reader.nodes(OTHER_ENV) == exported.nodes, "records as they were, updated_at included"
        assert reader.intents(OTHER_ENV) == {"queue.orders": "create"}
        assert reader.runtime_configs(OTHER_ENV) == exported.runtime
        assert reader.applied_at(OTHER_ENV) == exported.applied_at
        assert reader.export(OTHER_ENV).intents == exported.intents, "tokens too"
        assert reader.serial(OTHER_ENV) == exported.serial
        store.record(OTHER_ENV, fence, record("after.load"))  # the lease held across the load still writes
        store.release(OTHER_ENV, fence)
        assert store.acquire(OTHER_ENV, "next", ttl=30) > max(fence, exported.fence)

    def test_load_moves_the_serial_and_raises_the_highest_fence(self, store):
        fence = store.acquire(ENV, "me", ttl=30)
        for number in range(3):
            store.record(ENV, fence, record(f"node-{number}"))
        before = store.serial(ENV)
        store.load(ENV, fence, EnvironmentState(serial=1, fence=fence + 40))
        assert store.serial(ENV) > before, "a serial never goes back: a plan saved before is refused"
        assert store.nodes(ENV) == {} and store.intents(ENV) == {} and store.applied_at(ENV) is None
        store.load(ENV, fence, EnvironmentState(serial=before + 100))
        assert store.serial(ENV) == before + 100, "a greater serial is taken as it is"
        store.release(ENV, fence)
        assert store.acquire(ENV, "next", ttl=30) > fence + 40, "no fence the other store issued comes again"

    def test_load_is_fenced(self, store, store_factory):
        exported = self._written(store)
        fence = store.acquire(OTHER_ENV, "migrate", ttl=store_factory.ttl)
        store.record(OTHER_ENV, fence, record("kept"))
        time.sleep(store_factory.ttl + 0.1)
        store.acquire(OTHER_ENV, "new", ttl=30)
        with pytest.raises(LeaseLost):
            store.load(OTHER_ENV, fence, exported)
        assert list(store.nodes(OTHER_ENV)) == ["kept"]

    def test_a_broken_lease_lets_the_next_holder_in_and_never_writes_again(self, store, open_handle):
        held = store.acquire(ENV, "stuck@host pid 1", ttl=600)
        with pytest.raises(Locked):
            open_handle().acquire(ENV, "me", ttl=30)
        open_handle().break_lease(ENV)
        fence = open_handle().acquire(ENV, "me", ttl=30)
        assert fence > held
        with pytest.raises(LeaseLost):
            store.record(ENV, held, record())
        assert store.renew(ENV, held, 30) is False
        store.record(ENV, fence, record())
        store.break_lease(OTHER_ENV)  # no lease: nothing to break, no error
        assert dataclasses.replace(store.nodes(ENV)["sql.cluster"], updated_at=0.0) == record()
