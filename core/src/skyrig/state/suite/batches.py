"""The store suite's tests of the optional :class:`~skyrig.state.store.BatchWrites` (the engine's group
commit) and :class:`~skyrig.state.store.Snapshots` (a plan's one read of state): each skipped for a store
that does not have it."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from skyrig.state import LeaseLost
from skyrig.state.store import BatchWrites, Snapshots
from skyrig.state.suite.base import ENV, OTHER_ENV, StoreTests, record, snapshot
from skyrig.state.suite.child import BATCH, batch_record
from skyrig.state.suite.processes import _killed, _Lines, _spawn


class TestBatches(StoreTests):
    @pytest.fixture(autouse=True)
    def _batches(self, store):
        if not isinstance(store, BatchWrites):
            pytest.skip(f"{type(store).__name__} writes no batches (optional)")

    def test_a_batch_does_what_its_writes_would_do_one_by_one(self, store, open_handle):
        fence = store.acquire(ENV, "me", ttl=30)
        store.record(ENV, fence, record("old"))
        store.add_intent(ENV, fence, "old", "replace", "token")
        before = store.serial(ENV)
        store.write_batch(
            ENV,
            fence,
            intents=[("made", "create", "token-1"), ("pending", "create", "token-2")],
            records=[record("made", outputs={"port": 1}), record("other", provider_id="9")],
            forgotten=["old", "never.recorded"],
        )
        reader = open_handle()
        nodes = reader.nodes(ENV)
        assert sorted(nodes) == ["made", "other"], "records written, the forgotten gone"
        assert dataclasses.replace(nodes["made"], updated_at=0.0) == record("made", outputs={"port": 1})
        assert dataclasses.replace(nodes["other"], updated_at=0.0) == record("other", provider_id="9")
        assert reader.intents(ENV) == {"pending": "create"}, "a record or a forget clears its node's intent"
        assert reader.serial(ENV) > before
        assert reader.nodes(OTHER_ENV) == {}

    def test_intents_alone_are_kept_and_move_no_record(self, store, open_handle):
        fence = store.acquire(ENV, "me", ttl=30)
        store.write_batch(ENV, fence, intents=[(f"node-{n}", "create", f"token-{n}") for n in range(300)])
        reader = open_handle()
        assert reader.intents(ENV) == {f"node-{n}": "create" for n in range(300)}
        assert reader.nodes(ENV) == {}

    def test_a_stale_fence_writes_nothing_of_a_batch(self, store, store_factory):
        fence = store.acquire(ENV, "slow", ttl=30)
        store.record(ENV, fence, record())
        store.add_intent(ENV, fence, "queue.orders", "create", "token")
        store.release(ENV, fence)
        before = snapshot(store)
        with pytest.raises(LeaseLost):
            store.write_batch(
                ENV,
                fence,
                intents=[("cache.main", "create", "token")],
                records=[record("queue.orders")],
                forgotten=["sql.cluster"],
            )
        assert snapshot(store) == before, "a refused batch changed state"

    def test_batches_from_many_threads_at_once_are_all_kept(self, store):
        fence = store.acquire(ENV, "me", ttl=60)
        errors: list[BaseException] = []

        def write(thread: int) -> None:
            try:
                for number in range(10):
                    ids = [f"node-{thread}-{number}-{n}" for n in range(5)]
                    store.write_batch(ENV, fence, intents=[(i, "create", "token") for i in ids])
                    store.write_batch(ENV, fence, records=[record(i, provider_id=i) for i in ids])
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        nodes = store.nodes(ENV)
        assert len(nodes) == 200 and all(r.provider_id == node_id for node_id, r in nodes.items())
        assert store.intents(ENV) == {}

    def test_a_writer_killed_at_any_moment_leaves_whole_batches(self, store_factory, open_handle):
        for attempt, lines_before_kill in enumerate((1, 4, 9)):
            env = f"batches-{attempt}"
            child = _spawn(store_factory, "write-batches", env)
            try:
                output = _Lines(child)
                for _ in range(lines_before_kill):
                    output.next()
            finally:
                _killed(child)  # meanwhile the child kept writing: the kill lands anywhere
            said = [int(line.split()[1]) for line in output.rest()]
            store = open_handle()
            nodes, intents = store.nodes(env), store.intents(env)
            where = f"killed after batch {said[-1]}"
            batches = {int(node_id.split("-")[1]) for node_id in nodes}
            assert set(said) <= batches, f"a batch said written was lost, {where}"
            for number in batches:
                ids = [f"batch-{number}-{n}" for n in range(BATCH)]
                found = [nodes.get(node_id) for node_id in ids]
                assert all(found), f"batch {number} is there in part, {where}"
                assert [dataclasses.replace(r, updated_at=0.0) for r in found if r] == [
                    batch_record(number, n) for n in range(BATCH)
                ], f"batch {number} is torn, {where}"
                following = {f"batch-{number + 1}-{n}": "create" for n in range(BATCH)}
                if number + 1 not in batches:
                    assert following.items() <= intents.items(), f"the intents of a batch were lost, {where}"
            assert not set(intents) & set(nodes), f"recorded, yet their intents remain, {where}"


class TestSnapshots(StoreTests):
    @pytest.fixture(autouse=True)
    def _snapshots(self, store):
        if not isinstance(store, Snapshots):
            pytest.skip(f"{type(store).__name__} takes no snapshots (optional)")

    def test_a_snapshot_is_the_serial_and_the_records(self, store, open_handle):
        assert store.snapshot(ENV) == (0, {}) and store.snapshot(ENV, lean=True) == (0, {})
        fence = store.acquire(ENV, "me", ttl=30)
        store.record(ENV, fence, record(outputs={"port": 1, "nested": {"a": [1, None]}}, drift=["size"]))
        store.record(ENV, fence, record("network", desired={"cidr": "10.0.0.0/16"}, depends_on=["x"]))
        store.record(ENV, fence, record("mixed", desired={"a": 1}, observed={"a": True}))
        reader = open_handle()
        assert reader.snapshot(ENV) == (reader.serial(ENV), reader.nodes(ENV))
        serial, lean = reader.snapshot(ENV, lean=True)
        assert serial == reader.serial(ENV)
        assert lean == {
            node_id: dataclasses.replace(r, outputs={}, drift=[], updated_at=0.0)
            for node_id, r in reader.nodes(ENV).items()
        }, "lean: everything a plan reads, outputs and drift left out"
        assert type(lean["mixed"].observed["a"]) is bool, "values come back as they were written"

    def test_a_snapshot_never_mixes_two_instants(self, store, open_handle):
        writer, reader = open_handle(), store
        fence = writer.acquire(ENV, "writer", ttl=60)
        at: dict[int, int] = {}  # serial -> count after each write (one writer: each write moves it)
        enough = threading.Event()
        errors: list[BaseException] = []

        def write() -> None:
            count = 0
            try:
                while not enough.is_set() and count < 100_000:
                    count += 1
                    writer.record(ENV, fence, record("counter", desired={"count": count}, observed={}))
                    at[writer.serial(ENV)] = count
            except BaseException as error:
                errors.append(error)

        thread = threading.Thread(target=write)
        thread.start()
        seen: list[tuple[int, int]] = []
        deadline = time.monotonic() + 30
        while len(seen) < 200 and time.monotonic() < deadline and thread.is_alive():
            serial, nodes = reader.snapshot(ENV, lean=True)
            if "counter" in nodes:
                seen.append((serial, nodes["counter"].desired["count"]))
        enough.set()
        thread.join()
        assert errors == [] and seen, f"no snapshot was taken while the writer wrote ({errors})"
        mixed = [(serial, count) for serial, count in seen if at.get(serial) != count]
        assert not mixed, f"snapshots whose records are not at their serial: {mixed[:5]}"
