"""The store suite's tests in one process: the protocol, leases, fencing, intents, the journal and
``finish``."""

from __future__ import annotations

import dataclasses
import inspect
import threading
import time
from collections.abc import Callable

import pytest

from skyrig.state import LeaseLost, Locked, StateStore
from skyrig.state.store import STORE_METHODS
from skyrig.state.suite.base import ENV, OTHER_ENV, StoreTests, record, snapshot


class TestProtocol(StoreTests):
    def test_the_store_has_every_method_of_the_protocol_with_its_parameters(self, store):
        assert isinstance(store, StateStore)
        for name in sorted(STORE_METHODS):
            wanted = list(inspect.signature(getattr(StateStore, name)).parameters)[1:]
            found = list(inspect.signature(getattr(store, name)).parameters)
            assert found[: len(wanted)] == wanted, f"{name}{tuple(found)}: the engine calls it with {wanted}"


class TestLease(StoreTests):
    def test_a_second_holder_is_refused_while_the_lease_is_held(self, store, open_handle):
        store.acquire(ENV, "first@host pid 1", ttl=30)
        for handle in (store, open_handle()):
            with pytest.raises(Locked, match="locked by first@host pid 1 since") as refused:
                handle.acquire(ENV, "second@host pid 2", ttl=30)
            assert refused.value.holder == "first@host pid 1"
        with pytest.raises(Locked):
            store.acquire(ENV, "first@host pid 1", ttl=30)  # not even the holder takes it twice

    def test_a_lease_expires_after_its_ttl_by_itself(self, store, store_factory):
        first = store.acquire(ENV, "first@host pid 1", ttl=store_factory.ttl)
        with pytest.raises(Locked):
            store.acquire(ENV, "second@host pid 2", ttl=30)
        time.sleep(store_factory.ttl + 0.1)
        assert store.acquire(ENV, "second@host pid 2", ttl=30) > first, "a dead holder's lease expires"

    def test_the_heartbeat_keeps_the_lease_past_its_first_ttl(self, store, store_factory):
        ttl = store_factory.ttl
        fence = store.acquire(ENV, "first", ttl=ttl)
        time.sleep(0.6 * ttl)
        assert store.renew(ENV, fence, ttl) is True
        time.sleep(0.6 * ttl)  # past the first expiry, within the renewed one
        with pytest.raises(Locked):
            store.acquire(ENV, "second", ttl=30)
        store.record(ENV, fence, record())
        assert list(store.nodes(ENV)) == ["sql.cluster"]

    def test_release_lets_the_next_holder_in_at_once(self, store, open_handle):
        first = store.acquire(ENV, "first", ttl=30)
        store.release(ENV, first)
        assert open_handle().acquire(ENV, "second", ttl=30) > first

    def test_a_stale_holder_cannot_renew_or_release_the_new_holders_lease(self, store, store_factory):
        stale = store.acquire(ENV, "slow", ttl=store_factory.ttl)
        time.sleep(store_factory.ttl + 0.1)
        current = store.acquire(ENV, "new", ttl=30)
        assert store.renew(ENV, stale, 30) is False
        store.release(ENV, stale)
        with pytest.raises(Locked, match="locked by new"):
            store.acquire(ENV, "third", ttl=30)
        store.record(ENV, current, record())
        assert store.renew(ENV, current, 30) is True

    def test_a_released_lease_cannot_be_renewed(self, store):
        fence = store.acquire(ENV, "first", ttl=30)
        store.release(ENV, fence)
        assert store.renew(ENV, fence, 30) is False
        store.acquire(ENV, "second", ttl=30)  # and nothing holds it meanwhile

    def test_fences_only_grow_across_releases_and_reopening(self, store, open_handle):
        fences = []
        for handle in (store, store, open_handle()):
            fences.append(handle.acquire(ENV, "me", ttl=30))
            handle.release(ENV, fences[-1])
        store.close()
        fences.append(open_handle().acquire(ENV, "me", ttl=30))
        assert fences == sorted(set(fences)), f"fences must strictly grow: {fences}"

    def test_leases_are_per_environment(self, store):
        store.acquire(ENV, "dev applier", ttl=30)
        fence = store.acquire(OTHER_ENV, "preview applier", ttl=30)
        store.record(OTHER_ENV, fence, record())
        assert store.serial(ENV) == 0 and list(store.nodes(OTHER_ENV)) == ["sql.cluster"]


class TestFencing(StoreTests):
    """Every write with a stale fence raises LeaseLost and changes nothing a reader can see."""

    WRITES: dict[str, Callable[[StateStore, int], None]] = {
        "add_intent": lambda s, fence: s.add_intent(ENV, fence, "queue.orders", "create", "token"),
        "record": lambda s, fence: s.record(ENV, fence, record("queue.orders")),
        "record over": lambda s, fence: s.record(ENV, fence, record(provider_id="other")),
        "forget": lambda s, fence: s.forget(ENV, fence, "sql.cluster"),
        "finish": lambda s, fence: s.finish(ENV, fence, {"api": {"resources": {}}}),
    }

    @staticmethod
    def _write(store: StateStore, ttl: float) -> int:
        """State with a node, an intent and a finished apply, under a lease of ``ttl``; its fence."""
        fence = store.acquire(ENV, "slow", ttl=ttl)
        store.record(ENV, fence, record())
        store.add_intent(ENV, fence, "cache.main", "create", "token")
        store.finish(ENV, fence, {"web": {"resources": {"sql/main": {"port": 5432}}}})
        return fence

    @pytest.fixture
    def written(self, store, store_factory) -> int:
        """:meth:`_write` under a short lease; under a longer one if the store took longer than the lease
        to write (a loaded machine), so that the writes are whole. :attr:`ttl` is the lease's."""
        self.ttl = store_factory.ttl
        while True:
            try:
                return self._write(store, self.ttl)
            except LeaseLost:
                if self.ttl >= 16 * store_factory.ttl:
                    raise
                self.ttl *= 2

    def _refused(self, store: StateStore, fence: int) -> None:
        before = snapshot(store)
        for name, write in self.WRITES.items():
            with pytest.raises(LeaseLost):
                write(store, fence)
            assert snapshot(store) == before, f"a refused {name} changed state"

    def test_after_another_holder_took_over(self, store, written, store_factory, open_handle):
        time.sleep(self.ttl + 0.1)
        open_handle().acquire(ENV, "new", ttl=30)
        self._refused(store, written)

    def test_after_the_lease_expired_even_if_nobody_took_it(self, store, written, store_factory):
        time.sleep(self.ttl + 0.1)
        self._refused(store, written)

    def test_after_release(self, store, written):
        store.release(ENV, written)
        self._refused(store, written)

    def test_after_a_later_holder_released_and_another_took_the_lease(self, store, written, store_factory):
        time.sleep(self.ttl + 0.1)
        later = store.acquire(ENV, "later", ttl=30)
        store.release(ENV, later)
        store.acquire(ENV, "latest", ttl=30)
        self._refused(store, written)  # a superseded fence never becomes valid again

    def test_with_no_lease_ever_taken(self, store):
        for name, write in self.WRITES.items():
            with pytest.raises(LeaseLost):
                write(store, 1)
            assert snapshot(store) == ({}, {}, 0, None, {}), f"{name} without a lease changed state"

    def test_the_current_fence_writes(self, store):
        fence = self._write(store, 30)
        for write in self.WRITES.values():
            write(store, fence)
        assert list(store.nodes(ENV)) == ["queue.orders"] and store.intents(ENV) == {"cache.main": "create"}
        assert store.runtime_configs(ENV) == {"api": {"resources": {}}}


class TestIntents(StoreTests):
    def test_an_intent_is_listed_until_its_node_is_recorded(self, store, open_handle):
        fence = store.acquire(ENV, "me", ttl=30)
        store.add_intent(ENV, fence, "sql.cluster", "create", "token")
        store.add_intent(ENV, fence, "queue.orders", "create", "token")
        assert open_handle().intents(ENV) == {"sql.cluster": "create", "queue.orders": "create"}
        store.record(ENV, fence, record())
        assert store.intents(ENV) == {"queue.orders": "create"}, "recording a node clears its intent only"

    def test_forget_clears_an_intent(self, store):
        fence = store.acquire(ENV, "me", ttl=30)
        store.record(ENV, fence, record())
        store.add_intent(ENV, fence, "sql.cluster", "replace", "token")
        store.forget(ENV, fence, "sql.cluster")
        assert store.intents(ENV) == {} and store.nodes(ENV) == {}

    def test_a_nodes_later_intent_replaces_its_earlier_one(self, store):
        fence = store.acquire(ENV, "me", ttl=30)
        store.add_intent(ENV, fence, "sql.cluster", "replace", "token")
        store.add_intent(ENV, fence, "sql.cluster", "create", "token")
        assert store.intents(ENV) == {"sql.cluster": "create"}

    def test_intents_are_per_environment(self, store):
        fence = store.acquire(ENV, "me", ttl=30)
        store.add_intent(ENV, fence, "sql.cluster", "create", "token")
        assert store.intents(OTHER_ENV) == {}


class TestJournal(StoreTests):
    def test_a_record_comes_back_field_for_field(self, store, open_handle):
        fence = store.acquire(ENV, "me", ttl=30)
        written = record(
            desired={"size": 2, "tags": {"app": "shop", "note": "ünïcödé ✓"}, "list": [1, 2.5, None, True]},
            observed={"size": 2, "nested": {"a": [{"b": "c"}]}},
            outputs={"port": 5432, "password": {"secret": "shop/dev/sql.password"}},
            resource="sql/main",
            depends_on=["network", "subnet"],
            drift=["size"],
        )
        before = time.time()
        store.record(ENV, fence, written)
        after = time.time()
        read = open_handle().nodes(ENV)["sql.cluster"]
        assert before - 1 <= read.updated_at <= after + 1, "updated_at is the time of the write"
        assert dataclasses.replace(read, updated_at=0.0) == written
        store.record(ENV, fence, record(resource=None, depends_on=[], drift=[], outputs={}))
        assert dataclasses.replace(store.nodes(ENV)["sql.cluster"], updated_at=0.0) == record(
            resource=None, depends_on=[], drift=[], outputs={}
        ), "a record replaces the node's previous one, empty fields too"

    def test_the_serial_moves_with_every_change_and_only_with_changes(self, store):
        assert store.serial(ENV) == 0
        fence = store.acquire(ENV, "me", ttl=30)
        store.renew(ENV, fence, 30)
        assert store.serial(ENV) == 0, "taking the lock does not move the serial (a saved plan stays valid)"
        serials = []
        for change in (
            lambda: store.record(ENV, fence, record()),
            lambda: store.record(ENV, fence, record("network")),
            lambda: store.record(ENV, fence, record("network", provider_id="8")),
            lambda: store.forget(ENV, fence, "network"),
            lambda: store.finish(ENV, fence, {}),
        ):
            change()
            serials.append(store.serial(ENV))
        assert serials == sorted(set(serials)) and serials[0] > 0, f"serials: {serials}"
        for read in (store.nodes, store.intents, store.applied_at, store.runtime_configs):
            read(ENV)
        store.release(ENV, fence)
        assert store.serial(ENV) == serials[-1], "reads and the lease do not move the serial"

    def test_forgetting_a_node_never_recorded_is_no_error(self, store):
        fence = store.acquire(ENV, "me", ttl=30)
        store.record(ENV, fence, record())
        store.forget(ENV, fence, "never.recorded")
        assert list(store.nodes(ENV)) == ["sql.cluster"]

    def test_environments_are_separate(self, store):
        fence = store.acquire(ENV, "me", ttl=30)
        store.record(ENV, fence, record())
        store.finish(ENV, fence, {"web": {}})
        assert snapshot(store, OTHER_ENV) == ({}, {}, 0, None, {})

    def test_state_survives_closing_and_reopening_the_store(self, store, open_handle):
        fence = store.acquire(ENV, "me", ttl=30)
        store.record(ENV, fence, record())
        store.record(ENV, fence, record("network"))
        store.forget(ENV, fence, "network")
        store.finish(ENV, fence, {"web": {"resources": {}}})
        store.add_intent(ENV, fence, "queue.orders", "create", "token")
        before = snapshot(store)
        store.close()
        reopened = open_handle()
        assert snapshot(reopened) == before
        assert reopened.intents(ENV) == {"queue.orders": "create"}
        assert list(reopened.nodes(ENV)) == ["sql.cluster"]

    def test_records_written_from_many_threads_at_once_are_all_kept(self, store):
        fence = store.acquire(ENV, "me", ttl=60)
        errors: list[BaseException] = []

        def write(thread: int) -> None:
            try:
                for number in range(25):
                    node_id = f"node-{thread}-{number}"
                    store.add_intent(ENV, fence, node_id, "create", "token")
                    store.record(ENV, fence, record(node_id, provider_id=node_id))
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        nodes = store.nodes(ENV)
        assert len(nodes) == 100 and all(r.provider_id == node_id for node_id, r in nodes.items())
        assert store.intents(ENV) == {} and store.serial(ENV) >= 100


class TestFinish(StoreTests):
    def test_finish_marks_the_apply_and_keeps_exactly_the_runtime_configs_given(self, store, open_handle):
        assert store.applied_at(ENV) is None and store.runtime_configs(ENV) == {}
        fence = store.acquire(ENV, "me", ttl=30)
        before = time.time()
        configs = {
            "web": {"app": "shop", "resources": {"sql/main": {"port": 5432, "operations": ["query"]}}},
            "worker": {"app": "shop", "resources": {}},
        }
        store.finish(ENV, fence, configs)  # an environment that never recorded a node: still marked
        first = store.applied_at(ENV)
        assert first is not None and before - 1 <= first <= time.time() + 1
        assert open_handle().runtime_configs(ENV) == configs
        time.sleep(0.01)
        store.finish(ENV, fence, {"web": configs["web"]})
        assert store.runtime_configs(ENV) == {"web": configs["web"]}, "a service no longer there is dropped"
        assert store.applied_at(ENV) > first
        store.finish(ENV, fence, {})
        assert store.runtime_configs(ENV) == {}
