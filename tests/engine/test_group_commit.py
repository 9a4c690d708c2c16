"""State writes of an apply in groups, and a plan's one read of state (issue 13): the intents of the creates
are written a batch at a time, the first before the walk and the rest while it starts, each durable before
its cloud call; the records go to the recorder, which commits whatever completed during its last commit as
one batch; nodes that never started leave no intent; a batch the store refuses fails its nodes and keeps their intents, and the next apply
adopts what they made. A store without batches gets the per-node writes, as before."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from skyrig.errors import ProviderError
from skyrig.state import LeaseLost, StateStore
from skyrig.state.store import STORE_METHODS

from .conftest import cloud

NODES = 20  # the shop's graph on the memory provider


def _session(app):
    from skyrig.config import load_config
    from skyrig.engine.session import Session

    return Session(load_config(app), "dev")


class Spy:
    """Counts the calls made to a store's methods, with the sizes of the batches."""

    def __init__(self, store: Any, *, methods: frozenset[str] | None = None) -> None:
        self.store = store
        self.calls: list[tuple[str, dict[str, int]]] = []
        for name in methods or [n for n in dir(store) if not n.startswith("_")]:
            original = getattr(store, name)
            if callable(original):
                setattr(self, name, self._spied(name, original))

    def _spied(self, name: str, original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            sizes = {key: len(value) for key, value in kwargs.items() if isinstance(value, list | tuple)}
            self.calls.append((name, sizes))
            return original(*args, **kwargs)

        return call

    def count(self, name: str) -> int:
        return sum(1 for called, _ in self.calls if called == name)


def _apply(session, **options: Any):
    with session.locked() as fence:
        plan = session.plan()
        return session.apply(plan, fence, parallelism=options.get("parallelism", 10))


def _converged(app) -> None:
    session = _session(app)
    try:
        outcome = _apply(session)
        assert outcome.succeeded, outcome.failed
        assert session.store.intents("dev") == {}
        assert len(session.store.nodes("dev")) == NODES
        assert not session.plan().has_changes()
    finally:
        session.store.close()
    per_node = Counter(node for _, _, node in cloud(app).inventory("shop", "dev"))
    assert set(per_node.values()) == {1} and len(per_node) == NODES, "a resource was made twice"


def _checking_intents(monkeypatch, reader: Any, events: list[tuple[str, float]]) -> list[bool]:
    """For each create of the memory provider, in order: whether ``reader`` (another connection: it sees
    what is committed) saw its intent before the call; each call is also noted in ``events``."""
    import time

    from skyrig_memory.nodes import MemoryNodeType

    create = MemoryNodeType.create
    intended: list[bool] = []

    def checked(self, context, node):
        events.append(("create", time.monotonic()))
        intended.append(reader.intents("dev").get(node.id) == "create")
        return create(self, context, node)

    monkeypatch.setattr(MemoryNodeType, "create", checked)
    return intended


def test_an_apply_writes_state_in_a_few_batches_each_intent_before_its_create(app, monkeypatch):
    session = _session(app)
    spy = session.store = Spy(session.store)
    reader = _session(app).store  # another connection: what it sees is committed
    intended = _checking_intents(monkeypatch, reader, [])
    outcome = _apply(session)
    assert outcome.succeeded, outcome.failed
    assert len(intended) == NODES and all(intended), "every create's intent was durable before it"
    assert spy.count("add_intent") == spy.count("record") == 0, "no write of a node on its own"
    batches = [sizes for name, sizes in spy.calls if name == "write_batch"]
    assert batches[0] == {"intents": NODES}, "the intents, in one batch, before the walk"
    assert sum(b.get("records", 0) for b in batches) == NODES
    assert len(batches) < 1 + NODES, "records committed in groups, not one a node"
    assert len(reader.nodes("dev")) == NODES and reader.intents("dev") == {}
    assert outcome.done and set(outcome.done.values()) == {"created"}
    # the runtime configs are built from what the apply wrote, not from state read back: the same
    from skyrig.engine import runtime_config

    assert spy.count("nodes") == 0, "state is not read back after the apply"
    rebuilt = runtime_config.build(
        session.app, "dev", session.plan().grants, reader.nodes("dev"), session.types, session.model
    )
    assert reader.runtime_configs("dev") == rebuilt and rebuilt


def test_the_walk_starts_while_later_batches_of_intents_are_written_each_before_its_create(app, monkeypatch):
    import time

    from skyrig.engine import apply

    monkeypatch.setattr(apply, "BATCH", 4)  # 20 creates: 5 batches of intents
    session = _session(app)
    reader = _session(app).store
    store, events = session.store, []
    write_batch = store.write_batch

    def slow(env, fence, **batch):
        if batch.get("intents"):
            time.sleep(0.05)  # a slow store: the walk reaches nodes of batches not yet written
            events.append(("intents", time.monotonic()))
        return write_batch(env, fence, **batch)

    monkeypatch.setattr(store, "write_batch", slow)
    intended = _checking_intents(monkeypatch, reader, events)
    outcome = _apply(session)
    assert outcome.succeeded, outcome.failed
    assert len(intended) == NODES and all(intended), "every create's intent was durable before it"
    written = [at for what, at in events if what == "intents"]
    first_create = next(at for what, at in events if what == "create")
    assert len(written) == 5 and first_create < written[-1], "the walk began before the last batch"
    assert reader.intents("dev") == {} and len(reader.nodes("dev")) == NODES


class _ThreadKilled(BaseException):
    """What no ``except Exception`` catches: it ends the thread that writes the later batches."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("error", [LeaseLost("the store refused the batch"), _ThreadKilled()])
def test_a_later_batch_of_intents_that_fails_leaves_its_nodes_to_write_their_own(app, monkeypatch, error):
    from skyrig.engine import apply

    monkeypatch.setattr(apply, "BATCH", 4)
    session = _session(app)
    reader = _session(app).store
    store = session.store
    write_batch = store.write_batch
    batches = 0

    def failing_second(env, fence, **batch):
        nonlocal batches
        if batch.get("intents"):
            batches += 1
            if batches == 2:
                raise error
        return write_batch(env, fence, **batch)

    monkeypatch.setattr(store, "write_batch", failing_second)
    intended = _checking_intents(monkeypatch, reader, [])
    outcome = _apply(session)  # no node waits for ever for a batch that will not come
    assert outcome.succeeded, outcome.failed
    assert len(intended) == NODES and all(intended), "every create's intent was durable before it"
    assert reader.intents("dev") == {} and len(reader.nodes("dev")) == NODES


def test_nodes_that_never_started_leave_no_intent_the_failed_one_keeps_its(app, monkeypatch):
    from skyrig_memory.nodes import MemoryNodeType

    create = MemoryNodeType.create

    def failing(self, context, node):
        if node.id == "network":
            raise ProviderError("the network cannot be made")
        return create(self, context, node)

    monkeypatch.setattr(MemoryNodeType, "create", failing)
    session = _session(app)
    outcome = _apply(session)
    assert "network" in outcome.failed and outcome.skipped, outcome
    intents = session.store.intents("dev")
    assert intents == {"network": "create"}, "its create began; the skipped ones never did"
    assert set(session.store.nodes("dev")) == set(outcome.done)
    session.store.close()
    monkeypatch.setattr(MemoryNodeType, "create", create)
    _converged(app)


def test_a_batch_the_store_refuses_fails_its_nodes_and_the_next_apply_adopts_them(app):
    session = _session(app)
    store = session.store
    write_batch = store.write_batch

    def refusing(env, fence, **writes):
        if writes.get("records"):
            raise LeaseLost(f"the lock on environment {env!r} was lost; nothing more is written")
        return write_batch(env, fence, **writes)

    store.write_batch = refusing
    outcome = _apply(session)
    assert not outcome.succeeded
    assert outcome.failed and all("lock on environment 'dev' was lost" in e for e in outcome.failed.values())
    assert store.nodes("dev") == {}, "nothing recorded"
    assert set(outcome.failed) <= set(store.intents("dev")), "what was made keeps its intent"
    store.close()
    made = cloud(app).inventory("shop", "dev")
    assert made, "the creates happened"
    _converged(app)


def test_a_store_without_batches_gets_the_writes_of_each_node_as_before(app):
    session = _session(app)
    spy = session.store = Spy(session.store, methods=STORE_METHODS)
    assert isinstance(spy, StateStore) and not hasattr(spy, "write_batch") and not hasattr(spy, "snapshot")
    outcome = _apply(session)
    assert outcome.succeeded, outcome.failed
    assert spy.count("add_intent") == spy.count("record") == NODES
    assert len(spy.store.nodes("dev")) == NODES and spy.store.intents("dev") == {}
    assert spy.count("serial") >= 1, "read with serial, then nodes"


@pytest.mark.parametrize("refresh", [True, False])
def test_a_plan_reads_state_once(app, refresh):
    _converged(app)
    session = _session(app)
    spy = session.store = Spy(session.store)
    plan = session.plan(refresh=refresh)
    assert not plan.has_changes()
    assert [(name, sizes) for name, sizes in spy.calls if name in ("snapshot", "nodes", "serial")] == [
        ("snapshot", {})
    ], spy.calls
    assert spy.count("intents") == 1
    recorded = {node_id: r.provider_id for node_id, r in spy.store.nodes("dev").items()}
    contexts = list(session._contexts.values())  # none without a refresh: no cloud is called
    assert [c.recorded for c in contexts] == [recorded] * refresh, "recorded from that read"


def test_a_context_made_before_any_read_of_state_has_the_provider_ids(app):
    _converged(app)
    session = _session(app)
    recorded = {node_id: r.provider_id for node_id, r in session.store.nodes("dev").items()}
    assert session.context("memory").recorded == recorded
